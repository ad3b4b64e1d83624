//  cart_store.h - the cart data in Redis (hiredis, synchronous)
//
//  One cart_store_t holds one Redis connection. Every cart call is one
//  atomic Redis operation (cart_command.h): GetCartItems is one HGETALL,
//  each mutation one EVALSHA of worker/cart.lua (loaded with SCRIPT LOAD at
//  connect, reloaded once on NOSCRIPT). A batch of calls goes out as one
//  pipeline. Every socket call is bounded by timeout_ms; when Redis is
//  down, slow or broken, the store drops the connection and reconnects on
//  a later call (at most every CART_STORE_RECONNECT_MS). A call whose
//  answer did not come is answered honestly (cart_reply.h, §4): 504
//  "outcome unknown" for a mutation any byte of which reached Redis'
//  socket (it may yet run there), 503 for a read or a command that never
//  left the worker (nothing was applied). Dropping the connection means no
//  late answer is ever read for a later call.
//
//  The pure parts live beside it: redis_url (where Redis is), cart_record
//  (keys and stored values, docs/data-model.md), cart_command (the command
//  per request) and cart_reply (answers into replies).

#ifndef CART_STORE_H
#define CART_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "cartmq/cart_codec.h"
#include "redis_cluster.h"
#include "redis_url.h"

#define CART_STORE_RECONNECT_MS 200

typedef struct _cart_store_t cart_store_t;

//  Creates a store; it connects on first use, or on cart_store_connect.
//  timeout_ms bounds every connect, write and read.
cart_store_t *cart_store_new (const redis_url_t *url, int timeout_ms);

//  With replicas > 0 every batch holding a mutation ends with Redis WAIT:
//  a mutation is answered 200 only once that many replicas have it, else
//  504 (contract §7). 0 (the default) sends no WAIT.
void cart_store_set_wait (cart_store_t *self, int replicas);

//  Closes the connection and frees the store. Safe twice.
void cart_store_destroy (cart_store_t **self_p);

//  Connects now if not connected (and no attempt was made in the last
//  CART_STORE_RECONNECT_MS). Returns 0 if connected afterwards, else -1.
int cart_store_connect (cart_store_t *self);

//  Runs count valid requests as one pipeline and fills replies[i] for
//  requests[i]: 200 with its fields, 404, 409, 503 when Redis could not be
//  reached or refused the command, 504 when a mutation was sent and its
//  answer did not come. Replies must be zeroed (or reset) on entry; the
//  caller resets them afterwards (GET replies own their items).
void cart_store_execute (cart_store_t *self,
                         const cmq_cart_request_t *const *requests,
                         cmq_cart_reply_t *replies, size_t count);

//  True while the store holds a connection (after a failure it has none
//  until the next connect).
bool cart_store_is_connected (const cart_store_t *self);

//  Why the last connect or call failed.
const char *cart_store_reason (const cart_store_t *self);

//  For a Redis Cluster store's node (redis_cluster_store.c), one half of
//  cart_store_execute each, so that a batch goes to every master before
//  any answer is read: sends the batch (each command after an ASKING when
//  is_asking) and returns; cart_store_collect then reads the answers, and
//  every error answer into errors[i] for requests[i] (MOVED, ASK,
//  TRYAGAIN, ...; zeroed by the caller). One batch at a time per store.
void cart_store_send_routed (cart_store_t *self,
                             const cmq_cart_request_t *const *requests,
                             cmq_cart_reply_t *replies, size_t count,
                             redis_cluster_error_t *errors, bool is_asking);

//  Reads the answers of the batch cart_store_send_routed sent.
void cart_store_collect (cart_store_t *self);

#endif
