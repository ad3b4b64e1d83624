//  cart_service.h - cart request bodies in, reply bodies out (§4)
//
//  Decodes each request with the codec (a body it cannot decode gets its
//  400 at once), hands the valid ones to the store as one Redis pipeline,
//  and encodes every reply. Knows nothing of sockets or Majordomo.

#ifndef CART_SERVICE_H
#define CART_SERVICE_H

#include <czmq.h>
#include <stddef.h>

#include "cart_store.h"

typedef struct _cart_service_t cart_service_t;

//  Creates a service answering from store (borrowed: it must outlive the
//  service) in batches of at most max_batch requests.
cart_service_t *cart_service_new (cart_store_t *store, size_t max_batch);

void cart_service_destroy (cart_service_t **self_p);

//  Answers count (<= max_batch) request bodies. bodies[i] is borrowed;
//  replies[i] becomes a new one-frame message the caller owns (NULL only if
//  memory ran out).
void cart_service_handle (cart_service_t *self, zmsg_t **bodies,
                          zmsg_t **replies, size_t count);

#endif
