//  redis_cluster_store.h - the cart data on a Redis Cluster
//
//  Behind a cart_store_t made from a redis-cluster:// URL. Learns the slot
//  map (CLUSTER SLOTS) from the seed nodes or any master it knows, keeps
//  one cart_store_t (one hiredis connection, cart.lua loaded) per master,
//  made when a call first needs it, and sends each call to the master of
//  its user's slot: a batch is split into one pipeline per master. A MOVED
//  answer updates the map (and marks it for a refresh) and the call is
//  sent once more to the new owner; ASK sends it once, after ASKING, to
//  the node named. TRYAGAIN and CLUSTERDOWN are 503 (nothing applied). A
//  master that fails makes the next batch fetch the map again, so a
//  failover needs no restart. The pure parts are redis_cluster.c.

#ifndef REDIS_CLUSTER_STORE_H
#define REDIS_CLUSTER_STORE_H

#include <stddef.h>

#include "cartmq/cart_codec.h"
#include "redis_url.h"

typedef struct _redis_cluster_store_t redis_cluster_store_t;

//  A store for url (REDIS_URL_CLUSTER); nothing connects yet. timeout_ms
//  bounds every connect, write and read.
redis_cluster_store_t *redis_cluster_store_new (const redis_url_t *url,
                                                int timeout_ms);

//  Closes every connection and frees the store. Safe twice.
void redis_cluster_store_destroy (redis_cluster_store_t **self_p);

//  WAIT for this many replicas after a batch's mutations, on each master.
void redis_cluster_store_set_wait (redis_cluster_store_t *self, int replicas);

//  Fetches the slot map if there is none (throttled like a reconnect).
//  0 when a map is known, else -1 (the reason is logged).
int redis_cluster_store_connect (redis_cluster_store_t *self);

//  As cart_store_execute: fills replies[i] for requests[i].
void redis_cluster_store_execute (redis_cluster_store_t *self,
                                  const cmq_cart_request_t *const *requests,
                                  cmq_cart_reply_t *replies, size_t count);

#endif
