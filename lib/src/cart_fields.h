//  cart_fields.h - reading and packing the fields of cart bodies
//
//  What cart_codec.c (requests) and cart_reply.c (replies) share: the
//  strict field readers and the packers. Internal to the cart library.

#ifndef CARTMQ_CART_FIELDS_H
#define CARTMQ_CART_FIELDS_H

#include "cartmq/cart_codec.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CART_FIELDS_MAX_DEPTH  16  //  we need 3; msgpack-c allows 32
#define CART_FIELDS_MAX_QUOTED 48  //  peer bytes echoed in an error

//  Where a failure's one-line reason goes (text may be NULL).
typedef struct {
    char *text;
    size_t size;
} cart_fields_error_t;

//  Writes the reason and returns -1, so callers can return it at once.
int cart_fields_fail (cart_fields_error_t *error, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

//  Copies peer bytes into an error message as printable ASCII, cut short,
//  so a reason stays one readable line whatever the peer sent.
void cart_fields_quote (char *dest, size_t dest_size, const char *data,
                        size_t size);

//  "integer", "string", ...: for a reason's text.
const char *cart_fields_type_name (msgpack_object_type type);

//  Every key a msgpack str, none twice. `where` names the map.
int cart_fields_check_keys (const msgpack_object *object, const char *where,
                            cart_fields_error_t *error);

//  Size-checks the body, scans it, and unpacks the one map it must hold.
//  The caller owns unpacked (init before, destroy after) on any return.
int cart_fields_unpack_map (const void *data, size_t size,
                            msgpack_unpacked *unpacked,
                            cart_fields_error_t *error);

//  Fails with "LABEL: must be EXPECTED, got TYPE".
int cart_fields_wrong_type (const msgpack_object *value, const char *label,
                            const char *expected, cart_fields_error_t *error);

//  A str that is not UTF-8 is a wrong type (contract §4): stored, it
//  would make every later reply that echoes it undecodable.
int cart_fields_check_utf8 (const msgpack_object *value, const char *label,
                            cart_fields_error_t *error);

//  A non-empty UTF-8 str of at most max_bytes, as a view into the body.
int cart_fields_str_value (const msgpack_object *value, const char *label,
                           size_t max_bytes, cmq_cart_str_t *out,
                           cart_fields_error_t *error);

//  Accepts msgpack integers only, and checks the range on the raw
//  uint64 / int64 before narrowing, so 2^64-1 never passes as -1.
int cart_fields_int_value (const msgpack_object *value, const char *label,
                           int64_t min, int64_t max, int64_t *out,
                           cart_fields_error_t *error);

//  The field under key (missing is a failure), read as above.
int cart_fields_take_str (const msgpack_object *map, const char *key,
                          const char *label, size_t max_bytes,
                          cmq_cart_str_t *out, cart_fields_error_t *error);

int cart_fields_take_int (const msgpack_object *map, const char *key,
                          const char *label, int64_t min, int64_t max,
                          int64_t *out, cart_fields_error_t *error);

//  A string field copied into an owned string, as a reply holds it.
int cart_fields_take_text (const msgpack_object *map, const char *key,
                           const char *label, size_t max_bytes,
                           cmq_cart_text_t *out, cart_fields_error_t *error);

//  A map field, its keys checked.
int cart_fields_take_map (const msgpack_object *map, const char *key,
                          const msgpack_object **out,
                          cart_fields_error_t *error);

//  Packs a key; msgpack-c reports a failed buffer write as non-zero.
int cart_fields_pack_key (msgpack_packer *packer, const char *key);

//  Packs a str of any size (a request's may be anything the caller gave).
int cart_fields_pack_str (msgpack_packer *packer, const char *data,
                          size_t size);

//  An item map, whichever side owns its strings.
int cart_fields_pack_item (msgpack_packer *packer, const char *id,
                           size_t id_size, const char *name, size_t name_size,
                           const int64_t *numbers);

//  Hands the buffer to the caller, or frees it if any write failed.
void *cart_fields_finish (msgpack_sbuffer *buffer, int rc, size_t *size_p);

#endif
