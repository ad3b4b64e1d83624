//  cart_client.h - typed calls to the cart service over cmq_client_t
//
//  Each call encodes the request, sends it to the "cart" service (or the
//  client's chosen service) synchronously with the client's timeout and
//  retries, and decodes the reply into *reply (reset it with
//  cmq_cart_reply_reset). Returns 0 when a reply came, whatever its status
//  (check reply->status), or -1 when none came (cmq_client_error).
//
//  Mutations take an optional request_id (NULL: none). Give one to make
//  retries apply exactly once.

#ifndef CARTMQ_CART_CLIENT_H
#define CARTMQ_CART_CLIENT_H

#include "cartmq/cart_codec.h"
#include "cartmq/client.h"

#define CMQ_CART_SERVICE "cart"

int cmq_cart_get (cmq_client_t *client, const char *user_id,
                  cmq_cart_reply_t *reply);

int cmq_cart_add (cmq_client_t *client, const char *user_id,
                  const cmq_cart_item_t *item, const char *request_id,
                  cmq_cart_reply_t *reply);

int cmq_cart_remove (cmq_client_t *client, const char *user_id,
                     const char *item_id, const char *request_id,
                     cmq_cart_reply_t *reply);

int cmq_cart_update (cmq_client_t *client, const char *user_id,
                     const char *item_id, int64_t quantity,
                     const char *request_id, cmq_cart_reply_t *reply);

int cmq_cart_clear (cmq_client_t *client, const char *user_id,
                    const char *request_id, cmq_cart_reply_t *reply);

//  Sends any prepared request; the calls above are thin wrappers.
int cmq_cart_call (cmq_client_t *client, const cmq_cart_request_t *request,
                   cmq_cart_reply_t *reply);

#endif
