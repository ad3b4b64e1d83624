//  stats_gather.h - mmi.stats of several brokers at once, one deadline
//
//  For `cartmq stats --prometheus` and `cartmq metrics`: a scrape must end
//  in bounded time however many brokers are down, so every broker is asked
//  at once (one client each, no retries) and the answers are collected
//  until all came or the timeout passed. A broker that did not answer gets
//  a fresh socket for the next round, so its late answer can never be
//  taken for a later one.

#ifndef CARTMQ_STATS_GATHER_H
#define CARTMQ_STATS_GATHER_H

#include "cartmq/client.h"

#include <msgpack.h>
#include <stddef.h>

typedef struct _stats_gather_t stats_gather_t;

//  One client per broker the config names (its endpoint list read by the
//  rule of cartmq/endpoint_list.h, so duplicates are refused as everywhere
//  else), each with the config's timeout as the one deadline, its CURVE
//  certs and no retries. NULL with the reason in error when an endpoint or
//  cert is unusable.
stats_gather_t *stats_gather_new (const cmq_client_config_t *config,
                                  char *error, size_t error_size);

//  How many brokers it asks.
size_t stats_gather_count (stats_gather_t *self);

void stats_gather_destroy (stats_gather_t **self_p);

//  Asks every broker and waits for the answers; returns how many brokers
//  gave a valid stats map. Earlier results are dropped.
size_t stats_gather_run (stats_gather_t *self);

//  Broker index's map from the last run, or NULL if it gave none; valid
//  until the next run.
const msgpack_object *stats_gather_stats (stats_gather_t *self, size_t index);

//  Broker index's endpoint.
const char *stats_gather_endpoint (stats_gather_t *self, size_t index);

//  Runs once and writes the Prometheus page (prometheus.h) to out.
//  Returns how many brokers answered, or -1 on a write error.
int stats_gather_write_prometheus (stats_gather_t *self, FILE *out);

#endif
