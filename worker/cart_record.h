//  cart_record.h - how a cart is spelled in Redis: keys and stored values
//
//  The data model (docs/data-model.md) as bytes, shared with worker/cart.lua.
//  Keys carry the user id as a Redis Cluster hash tag, so both keys of a
//  call land in one slot:
//      cart:{USER}               hash ITEM_ID -> "QUANTITY:PRICE:NAME"
//      cart:{USER}:rid:HEX(RID)  string "METHOD:QUANTITY:ITEM_ID", EX 86400
//  Pure: no Redis, no logging. Every parser refuses what cart.lua could not
//  have written, so a foreign or damaged value never becomes a reply.

#ifndef CART_RECORD_H
#define CART_RECORD_H

#include <stddef.h>

#include "cartmq/cart_codec.h"

#define CART_RECORD_REQUEST_ID_TTL_S 86400
//  Bytes a key may need: "cart:{" USER "}:rid:" and the id in hex.
#define CART_RECORD_MAX_KEY_BYTES                                              \
    (6 + CMQ_CART_MAX_ID_BYTES + 6 + 2 * CMQ_CART_MAX_REQUEST_ID_BYTES)

//  Writes "cart:{USER}" into key (CART_RECORD_MAX_KEY_BYTES) and returns
//  its length.
size_t cart_record_cart_key (const cmq_cart_str_t *user_id, char *key);

//  Writes "cart:{USER}:rid:HEX" into key (CART_RECORD_MAX_KEY_BYTES) and
//  returns its length.
size_t cart_record_request_key (const cmq_cart_str_t *user_id,
                                const cmq_cart_str_t *request_id, char *key);

//  Parses a stored item value "QUANTITY:PRICE:NAME" into item (id left
//  alone). Returns 0, or -1 if it is not one we could have written.
int cart_record_parse_item (const char *value, size_t size,
                            cmq_cart_item_t *item);

//  Parses a mutation's result record "METHOD:QUANTITY:ITEM_ID", as cart.lua
//  returns it and keeps it under the request id, into a 200 reply: the
//  same reply whether the call just ran or is replayed. Returns 0, or -1
//  (reply then half filled, the caller overwrites it) if it is malformed.
int cart_record_parse_result (const char *record, size_t size,
                              cmq_cart_reply_t *reply);

//  Sorts items by id in byte order, a shorter id first when one is a
//  prefix of the other.
void cart_record_sort_items (cmq_cart_item_t *items, size_t count);

#endif
