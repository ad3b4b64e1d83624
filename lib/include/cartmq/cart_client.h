//  cart_client.h - typed calls to the cart service over cmq_client_t
//
//  Each call encodes the request, sends it to the "cart" service (or the
//  client's chosen service) synchronously with the client's timeout and
//  retries, and decodes the reply into *reply (reset it with
//  cmq_cart_reply_reset). Returns 0 when a reply came, whatever its status
//  (check reply->status), or -1 when none came (cmq_client_errstr).
//
//  The request borrows the caller's strings (cart_codec.h) and sends them
//  as they are: the service judges them. The C-string calls below only
//  answer locally, with the 400 the service would send, a string longer
//  than any field may be (CMQ_CART_MAX_NAME_BYTES).
//
//  Every mutation carries a request_id (contract §4): the caller's, or,
//  when request_id is NULL, a fresh random one (cmq_cart_request_id_new).
//  It is made once per call and sent unchanged on every retry of that
//  call, so however many attempts reach the service, the mutation applies
//  at most once.

#ifndef CARTMQ_CART_CLIENT_H
#define CARTMQ_CART_CLIENT_H

#include "cartmq/cart_codec.h"
#include "cartmq/client.h"

#define CMQ_CART_SERVICE "cart"

int cmq_cart_get (cmq_client_t *client, const char *user_id,
                  cmq_cart_reply_t *reply);

int cmq_cart_add (cmq_client_t *client, const char *user_id,
                  const cmq_cart_request_item_t *item, const char *request_id,
                  cmq_cart_reply_t *reply);

int cmq_cart_remove (cmq_client_t *client, const char *user_id,
                     const char *item_id, const char *request_id,
                     cmq_cart_reply_t *reply);

int cmq_cart_update (cmq_client_t *client, const char *user_id,
                     const char *item_id, int64_t quantity,
                     const char *request_id, cmq_cart_reply_t *reply);

int cmq_cart_clear (cmq_client_t *client, const char *user_id,
                    const char *request_id, cmq_cart_reply_t *reply);

//  Sends any prepared request; the calls above are thin wrappers. A
//  mutation without a request_id gets a fresh random one, as above.
//  Returns -1 also when no random id could be made (reply->error).
//  Hex digits of a generated request_id: 128 random bits.
#define CMQ_CART_REQUEST_ID_HEX_BYTES 32

//  Writes a fresh request_id into buffer: 128 bits from the kernel's
//  random source (getrandom, else /dev/urandom) as 32 lowercase hex digits
//  and a NUL, so buffer_size must be at least 33. Returns 0, or -1 (errno
//  set, buffer empty) if no random bytes could be had: no id is better
//  than a guessable or repeated one.
int cmq_cart_request_id_new (char *buffer, size_t buffer_size);

int cmq_cart_call (cmq_client_t *client, const cmq_cart_request_t *request,
                   cmq_cart_reply_t *reply);

//  Gives a mutation without a request_id a fresh random one, written into
//  buffer (at least CMQ_CART_REQUEST_ID_HEX_BYTES + 1 bytes), which the
//  request then borrows. Anything else is left as it is. Returns 0, or -1
//  (errno set) when no random id could be made.
int cmq_cart_request_give_id (cmq_cart_request_t *request, char *buffer,
                              size_t buffer_size);

//  Encodes the request once and calls the service with it, retries
//  resending the same bytes; the raw reply body goes to *reply_p (caller
//  frees) for a caller that shows it rather than decodes it. Sends the
//  request exactly as it is (give it its id first). Returns 0, -1 when no
//  reply came (cmq_client_errstr says why), or -2 when the request could
//  not be encoded (out of memory).
int cmq_cart_call_body (cmq_client_t *client, const cmq_cart_request_t *request,
                        void **reply_p, size_t *reply_size_p);

#endif
