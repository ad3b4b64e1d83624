//  cart_store.h - the cart data in Redis (hiredis, synchronous)
//
//  One cart_store_t holds one Redis connection. Every cart call is one
//  atomic Redis operation: GetCartItems is one HGETALL, each mutation one
//  EVALSHA of worker/cart.lua (loaded with SCRIPT LOAD at connect, reloaded
//  once on NOSCRIPT). A batch of calls goes out as one pipeline. Every
//  socket call is bounded by timeout_ms; when Redis is down, slow or
//  broken, the store drops the connection and reconnects on a later call
//  (at most every CART_STORE_RECONNECT_MS). A call whose answer did not
//  come is answered honestly (§4): 504 "outcome unknown" for a mutation
//  any byte of which reached Redis' socket (it may yet run there), 503 for
//  a read or a command that never left the worker (nothing was applied).
//  Dropping the connection means no late answer is ever read for a later
//  call.
//
//  The data model is in docs/data-model.md. Keys carry the user id as a
//  Redis Cluster hash tag:
//      cart:{USER}               hash ITEM_ID -> "QUANTITY:PRICE:NAME"
//      cart:{USER}:rid:HEX(RID)  string "METHOD:QUANTITY:ITEM_ID", EX 86400

#ifndef CART_STORE_H
#define CART_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cartmq/cart_codec.h"

#define CART_STORE_DEFAULT_URL      "redis://127.0.0.1:6379/0"
#define CART_STORE_RECONNECT_MS     200
#define CART_STORE_REQUEST_ID_TTL_S 86400
#define CART_STORE_MAX_HOST_BYTES   255
#define CART_STORE_MAX_PATH_BYTES   107  //  sun_path less its NUL
#define CART_STORE_MAX_SECRET_BYTES 255  //  user name or password
#define CART_STORE_MAX_DB           1000000
//  Bytes a key may need: "cart:{" USER "}:rid:" and the id in hex.
#define CART_STORE_MAX_KEY_BYTES                                               \
    (6 + CMQ_CART_MAX_ID_BYTES + 6 + 2 * CMQ_CART_MAX_REQUEST_ID_BYTES)

//  Where Redis is, from --redis.
typedef struct {
    bool is_unix;                                //  unix:// socket
    char host[CART_STORE_MAX_HOST_BYTES + 1];    //  TCP only
    int port;                                    //  TCP only
    char path[CART_STORE_MAX_PATH_BYTES + 1];    //  unix only
    char user[CART_STORE_MAX_SECRET_BYTES + 1];  //  ACL user, or ""
    char password[CART_STORE_MAX_SECRET_BYTES + 1];
    bool has_password;  //  send AUTH
    int db;             //  SELECT when > 0
} cart_store_url_t;

typedef struct _cart_store_t cart_store_t;

//  Parses a Redis URL strictly:
//      redis://[[USER]:PASSWORD@][HOST][:PORT][/DB]
//      unix:///PATH[?db=N][&password=PASSWORD]
//  HOST defaults to 127.0.0.1 (an IPv6 address goes in brackets), PORT to
//  6379, DB to 0; USER and PASSWORD may use %XX escapes. Returns 0, or -1
//  with a one-line reason in error. Never logs.
int cart_store_url_parse (const char *text, cart_store_url_t *url, char *error,
                          size_t error_size);

//  Writes the URL for logs into buffer, the password masked.
void cart_store_url_describe (const cart_store_url_t *url, char *buffer,
                              size_t buffer_size);

//  Creates a store; it connects on first use, or on cart_store_connect.
//  timeout_ms bounds every connect, write and read.
cart_store_t *cart_store_new (const cart_store_url_t *url, int timeout_ms);

//  Closes the connection and frees the store. Safe twice.
void cart_store_destroy (cart_store_t **self_p);

//  Connects now if not connected (and no attempt was made in the last
//  CART_STORE_RECONNECT_MS). Returns 0 if connected afterwards, else -1.
int cart_store_connect (cart_store_t *self);

//  True while the store holds a working connection.
bool cart_store_is_connected (cart_store_t *self);

//  Runs count valid requests as one pipeline and fills replies[i] for
//  requests[i]: 200 with its fields, 404, 409, 503 when Redis could not be
//  reached or refused the command, 504 when a mutation was sent and its
//  answer did not come. Replies must be zeroed (or reset) on entry; the caller resets
//  them afterwards (GET replies own their items).
void cart_store_execute (cart_store_t *self,
                         const cmq_cart_request_t *const *requests,
                         cmq_cart_reply_t *replies, size_t count);

//  -------------------------------------------------------------------------
//  Pure helpers, exposed for unit tests.

//  Writes "cart:{USER}" into key (CART_STORE_MAX_KEY_BYTES) and returns
//  its length.
size_t cart_store_cart_key (const cmq_cart_str_t *user_id, char *key);

//  Writes "cart:{USER}:rid:HEX" into key and returns its length.
size_t cart_store_request_key (const cmq_cart_str_t *user_id,
                               const cmq_cart_str_t *request_id, char *key);

//  Parses a stored item value "QUANTITY:PRICE:NAME" into item (id left
//  alone). Returns 0, or -1 if it is not one we could have written.
int cart_store_parse_item (const char *value, size_t size,
                           cmq_cart_item_t *item);

//  Sorts items by id in byte order, a shorter id first when one is a
//  prefix of the other.
void cart_store_sort_items (cmq_cart_item_t *items, size_t count);

//  The status of a call whose answer did not come (timeout, closed or
//  broken connection): 504 if it is a mutation and any byte of it was
//  written to Redis (it may or may not run), else 503 (nothing applied).
int cart_store_unanswered_status (cmq_cart_method_t method, bool is_sent);

//  Turns Redis's answer to a request into its reply: for GET an HGETALL
//  array, for mutations the script's {200, record, replayed} or
//  {status, reason}. Anything else is a 503 (reason in reply->error).
//  Sets *is_replayed for a mutation answered from its request_id.
void cart_store_parse_result (const cmq_cart_request_t *request,
                              const redisReply *result, cmq_cart_reply_t *reply,
                              bool *is_replayed);

#endif
