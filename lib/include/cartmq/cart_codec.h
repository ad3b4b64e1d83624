//  cart_codec.h - the cart service's msgpack requests and replies (§4)
//
//  The one encoder and decoder of cart bodies: the worker, the typed calls
//  (cart_client.h), the CLI and `cartmq bench` all use it.
//
//  Who owns the strings: a request BORROWS, a reply OWNS.
//  - A request's strings are cmq_cart_str_t views: size bytes at data,
//    any bytes and any length, so a caller can send what the service has
//    to refuse (an over-long or odd string) and the service judges it.
//    Encoding reads them; the caller keeps them alive until it returns.
//    Decoding checks every field and copies its strings, NUL terminated,
//    into the request's own storage (no allocation); the views then point
//    there and stay valid after the body is gone, for as long as the
//    request struct itself: never copy a decoded request by value. A field
//    the method does not carry is an empty string, never NULL; a refused
//    request is all zeros.
//  - A reply's strings are cmq_cart_text_t copies held in the struct
//    (NUL terminated, at most CMQ_CART_MAX_NAME_BYTES, the longest any
//    field may be); items is heap-owned (cmq_cart_reply_reset frees it).
//
//  Every size and type is checked before anything is copied, and every
//  string must be valid UTF-8; a bad request decodes to status 400 with a
//  readable reason.

#ifndef CARTMQ_CART_CODEC_H
#define CARTMQ_CART_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMQ_CART_MAX_ID_BYTES         128  //  user_id, item id, item_id
#define CMQ_CART_MAX_NAME_BYTES       256
#define CMQ_CART_MAX_REQUEST_ID_BYTES 64
#define CMQ_CART_MAX_QUANTITY         1000000
#define CMQ_CART_MAX_PRICE            2147483647LL
#define CMQ_CART_MAX_ITEMS            1000

#define CMQ_CART_OK              200
#define CMQ_CART_BAD_REQUEST     400
#define CMQ_CART_NOT_FOUND       404
#define CMQ_CART_CONFLICT        409
#define CMQ_CART_UNAVAILABLE     503
#define CMQ_CART_OUTCOME_UNKNOWN 504  //  sent to Redis, no answer in time

typedef enum {
    CMQ_CART_GET = 1,  //  GetCartItems
    CMQ_CART_ADD,      //  AddItemToCart
    CMQ_CART_REMOVE,   //  RemoveItemFromCart
    CMQ_CART_UPDATE,   //  UpdateItemQuantity
    CMQ_CART_CLEAR     //  ClearCart
} cmq_cart_method_t;

//  A borrowed string: size bytes at data (may hold NUL bytes). data may
//  be NULL only when size is 0.
typedef struct {
    const char *data;
    size_t size;
} cmq_cart_str_t;

//  An owned string, as a reply holds it: data is NUL terminated for
//  convenience but may itself hold NUL bytes, so use size.
typedef struct {
    char data[CMQ_CART_MAX_NAME_BYTES + 1];
    size_t size;
} cmq_cart_text_t;

//  An item of a reply (owned strings).
typedef struct {
    cmq_cart_text_t id;
    cmq_cart_text_t name;
    int64_t quantity;
    int64_t price;
} cmq_cart_item_t;

//  The item of a request (borrowed strings).
typedef struct {
    cmq_cart_str_t id;
    cmq_cart_str_t name;
    int64_t quantity;
    int64_t price;
} cmq_cart_request_item_t;

//  What a decoded request's strings need, each NUL terminated.
#define CMQ_CART_REQUEST_STORAGE_BYTES                                         \
    (2 * CMQ_CART_MAX_ID_BYTES + CMQ_CART_MAX_NAME_BYTES +                     \
     CMQ_CART_MAX_REQUEST_ID_BYTES + 4)

typedef struct {
    cmq_cart_method_t method;
    cmq_cart_str_t user_id;
    cmq_cart_request_item_t item;  //  ADD: all fields; REMOVE/UPDATE: id
                                   //  only; UPDATE: quantity too
    bool has_request_id;
    cmq_cart_str_t request_id;
    //  Decoding copies the strings here; unused when encoding.
    char storage[CMQ_CART_REQUEST_STORAGE_BYTES];
} cmq_cart_request_t;

//  A decoded or to-be-encoded reply. items is heap-owned (see
//  cmq_cart_reply_reset).
typedef struct {
    int status;
    char error[256];           //  status != 200
    cmq_cart_method_t method;  //  which success fields apply
    cmq_cart_item_t *items;    //  GET: sorted by id
    size_t item_count;
    int64_t total;            //  GET
    cmq_cart_text_t item_id;  //  ADD, UPDATE
    int64_t quantity;         //  ADD, UPDATE
    char message[32];         //  REMOVE, CLEAR
} cmq_cart_reply_t;

//  Method name as on the wire ("AddItemToCart"), or NULL.
const char *cmq_cart_method_name (cmq_cart_method_t method);

//  True if the method changes the cart (all but GET).
bool cmq_cart_method_is_mutation (cmq_cart_method_t method);

//  Decodes and validates a request body. Returns 200, or 400 with a reason
//  written into error (one line, at most error_size bytes with the NUL).
//  Trailing bytes after the map are a 400.
int cmq_cart_request_decode (const void *data, size_t size,
                             cmq_cart_request_t *request, char *error,
                             size_t error_size);

//  Encodes a request as a msgpack map, its strings as they are (the
//  service judges them). Returns a heap buffer the caller frees, its size
//  in *size_p; NULL on allocation failure.
void *cmq_cart_request_encode (const cmq_cart_request_t *request,
                               size_t *size_p);

//  The same into buffer, without allocating: returns the encoded size,
//  as snprintf does; the bytes are all there only if that is at most
//  buffer_size (buffer may be NULL when buffer_size is 0).
size_t cmq_cart_request_encode_into (const cmq_cart_request_t *request,
                                     void *buffer, size_t buffer_size);

//  Encodes a reply: exactly `status` and the method's success fields, or
//  `status` and `error`. Caller frees the buffer.
void *cmq_cart_reply_encode (const cmq_cart_reply_t *reply, size_t *size_p);

//  Encodes {status, error} alone: what a worker answers when it cannot
//  build more (400 on a request it cannot decode, 503).
void *cmq_cart_error_encode (int status, const char *error, size_t *size_p);

//  Decodes a reply map as a client receives it. The method says which
//  fields to expect. Returns 0, or -1 if the bytes are not a valid reply
//  (reason in reply->error).
int cmq_cart_reply_decode (const void *data, size_t size,
                           cmq_cart_method_t method, cmq_cart_reply_t *reply);

//  Frees items and zeroes the reply, ready for reuse.
void cmq_cart_reply_reset (cmq_cart_reply_t *reply);

//  Length of the one valid UTF-8 sequence (RFC 3629) that starts data: 1
//  to 4, or 0 if the bytes there are not one (a stray continuation byte,
//  an overlong form, a surrogate U+D800..U+DFFF, a code point past
//  U+10FFFF, or a sequence cut short by the end). size must be > 0.
size_t cmq_cart_utf8_sequence (const void *data, size_t size);

//  True if all size bytes are valid UTF-8 (U+0000 included). If not and
//  bad_offset_p is given, *bad_offset_p gets the offset of the first byte
//  that starts no valid sequence. Every string field of a request and a
//  reply must pass (contract §4): a str that does not is a 400.
bool cmq_cart_utf8_is_valid (const void *data, size_t size,
                             size_t *bad_offset_p);

//  A view of a C string (NULL gives the empty string).
cmq_cart_str_t cmq_cart_str (const char *value);

//  Sets an owned string from a C string; returns -1 (and leaves it empty)
//  if value is NULL or longer than max_bytes (at most
//  CMQ_CART_MAX_NAME_BYTES, all it holds).
int cmq_cart_text_set (cmq_cart_text_t *text, const char *value,
                       size_t max_bytes);

#endif
