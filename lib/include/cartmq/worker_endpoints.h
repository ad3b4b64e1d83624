//  worker_endpoints.h - the brokers a worker config names, no sockets
//
//  Internal to the tree (not installed): cmq_worker_new and cartmq-worker
//  both read a config's brokers through it, so a program can refuse a bad
//  list before it starts (or supervises) anything.
//
//  Rules: config->endpoints[0..endpoint_count) when endpoint_count > 0,
//  else config->endpoint (NULL: CMQ_DEFAULT_ENDPOINT). Every value is split
//  at commas and blanks (an endpoint holds neither), in order. An empty
//  list, more than CMQ_WORKER_MAX_BROKERS, or the same endpoint twice is
//  an error: two registrations with one broker would break §5.

#ifndef CARTMQ_WORKER_ENDPOINTS_H
#define CARTMQ_WORKER_ENDPOINTS_H

#include <czmq.h>

#include "cartmq/worker.h"

//  Returns the endpoints in order as a list of heap strings (autofree;
//  caller destroys), or NULL with the reason in error (which names the
//  offending endpoint, escaped).
zlist_t *cmq_worker_endpoints_new (const cmq_worker_config_t *config,
                                   char *error, size_t error_size);

#endif
