//  cart_fields.c - reading and packing the fields of cart bodies
//
//  Decoding takes two passes. msgpack-c trusts what it reads, so
//  cmq_msgpack_unpack (msgpack_scan.h) first walks the raw bytes and
//  refuses truncation, declared lengths past the end, nesting past
//  CART_FIELDS_MAX_DEPTH and trailing bytes; what msgpack-c then allocates
//  in its zone is bounded by the body, itself at most 1 MiB. Fields are
//  then checked one by one, strictly: msgpack str only for strings, msgpack
//  integers only for numbers, every range checked on the raw uint64 /
//  int64 so nothing wraps.

#include "cart_fields.h"

#include "cartmq/msgpack_scan.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_BODY_BYTES (1024 * 1024)  //  as the broker's ZMQ_MAXMSGSIZE

//  Writes the reason and returns -1, so callers can return it at once.
int
cart_fields_fail (cart_fields_error_t *error, const char *format, ...)
{
    if (error->text && error->size > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (error->text, error->size, format, args);
        va_end (args);
    }
    return -1;
}

//  Copies peer bytes into an error message as printable ASCII, cut short,
//  so a reason stays one readable line whatever the peer sent.
void
cart_fields_quote (char *dest, size_t dest_size, const char *data, size_t size)
{
    assert (dest_size > 3);
    size_t limit = dest_size - 4 < CART_FIELDS_MAX_QUOTED
                     ? dest_size - 4
                     : CART_FIELDS_MAX_QUOTED;
    size_t length = size > limit ? limit : size;
    for (size_t index = 0; index < length; index++) {
        unsigned char byte = (unsigned char) data[index];
        dest[index] = byte >= 0x20 && byte < 0x7f ? (char) byte : '?';
    }
    if (length < size) {
        memcpy (dest + length, "...", 3);
        length += 3;
    }
    dest[length] = '\0';
}

const char *
cart_fields_type_name (msgpack_object_type type)
{
    switch (type) {
        case MSGPACK_OBJECT_NIL:
            return "nil";
        case MSGPACK_OBJECT_BOOLEAN:
            return "bool";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return "integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return "float";
        case MSGPACK_OBJECT_STR:
            return "string";
        case MSGPACK_OBJECT_ARRAY:
            return "array";
        case MSGPACK_OBJECT_MAP:
            return "map";
        case MSGPACK_OBJECT_BIN:
            return "bin";
        case MSGPACK_OBJECT_EXT:
            return "ext";
    }
    return "unknown type";
}

//  Any total order on string keys will do: sorting is only there to put
//  duplicates side by side in O(n log n), whatever the peer sends.
static int
cart_fields_compare_keys (const void *left_p, const void *right_p)
{
    const msgpack_object *left = *(const msgpack_object *const *) left_p;
    const msgpack_object *right = *(const msgpack_object *const *) right_p;
    if (left->via.str.size != right->via.str.size)
        return left->via.str.size < right->via.str.size ? -1 : 1;
    if (left->via.str.size == 0)
        return 0;
    return memcmp (left->via.str.ptr, right->via.str.ptr, left->via.str.size);
}

//  Every key a msgpack str, none twice. `where` names the map.
int
cart_fields_check_keys (const msgpack_object *object, const char *where,
                        cart_fields_error_t *error)
{
    const msgpack_object_map *map = &object->via.map;
    for (uint32_t index = 0; index < map->size; index++)
        if (map->ptr[index].key.type != MSGPACK_OBJECT_STR)
            return cart_fields_fail (
              error, "%s: keys must be strings, got %s", where,
              cart_fields_type_name (map->ptr[index].key.type));
    if (map->size < 2)
        return 0;
    const msgpack_object **keys =
      (const msgpack_object **) malloc (map->size * sizeof (*keys));
    if (!keys)
        return cart_fields_fail (error, "%s: out of memory checking keys",
                                 where);
    for (uint32_t index = 0; index < map->size; index++)
        keys[index] = &map->ptr[index].key;
    qsort (keys, map->size, sizeof (*keys), cart_fields_compare_keys);
    int rc = 0;
    for (uint32_t index = 1; index < map->size && rc == 0; index++)
        if (cart_fields_compare_keys (&keys[index - 1], &keys[index]) == 0) {
            char quoted[CART_FIELDS_MAX_QUOTED + 4];
            cart_fields_quote (quoted, sizeof (quoted),
                               keys[index]->via.str.ptr,
                               keys[index]->via.str.size);
            rc =
              cart_fields_fail (error, "%s: duplicate key: %s", where, quoted);
        }
    free (keys);
    return rc;
}

//  Size-checks the body, scans it, and unpacks the one map it must hold.
//  The caller owns unpacked (init before, destroy after) on any return.
int
cart_fields_unpack_map (const void *data, size_t size,
                        msgpack_unpacked *unpacked, cart_fields_error_t *error)
{
    if (!data || size == 0)
        return cart_fields_fail (error, "empty body: not msgpack");
    if (size > S_MAX_BODY_BYTES)
        return cart_fields_fail (error,
                                 "body of %zu bytes is over the %d byte limit",
                                 size, S_MAX_BODY_BYTES);
    if (cmq_msgpack_unpack (data, size, CART_FIELDS_MAX_DEPTH, unpacked,
                            error->text, error->size))
        return -1;
    if (unpacked->data.type != MSGPACK_OBJECT_MAP)
        return cart_fields_fail (error, "body is not a map but %s",
                                 cart_fields_type_name (unpacked->data.type));
    return cart_fields_check_keys (&unpacked->data, "body", error);
}

int
cart_fields_wrong_type (const msgpack_object *value, const char *label,
                        const char *expected, cart_fields_error_t *error)
{
    return cart_fields_fail (error, "%s: must be %s, got %s", label, expected,
                             cart_fields_type_name (value->type));
}

//  A str that is not UTF-8 is a wrong type (contract §4): stored, it
//  would make every later reply that echoes it undecodable.
int
cart_fields_check_utf8 (const msgpack_object *value, const char *label,
                        cart_fields_error_t *error)
{
    size_t offset = 0;
    if (cmq_cart_utf8_is_valid (value->via.str.ptr, value->via.str.size,
                                &offset))
        return 0;
    return cart_fields_fail (error,
                             "%s: must be a UTF-8 string, got invalid UTF-8 "
                             "(byte 0x%02x at offset %zu)",
                             label, (unsigned char) value->via.str.ptr[offset],
                             offset);
}

int
cart_fields_str_value (const msgpack_object *value, const char *label,
                       size_t max_bytes, cmq_cart_str_t *out,
                       cart_fields_error_t *error)
{
    assert (max_bytes <= CMQ_CART_MAX_NAME_BYTES);
    if (value->type != MSGPACK_OBJECT_STR)
        return cart_fields_wrong_type (value, label, "a string", error);
    size_t size = value->via.str.size;
    if (size == 0)
        return cart_fields_fail (error, "%s: must not be empty", label);
    if (size > max_bytes)
        return cart_fields_fail (error, "%s: longer than %zu bytes", label,
                                 max_bytes);
    if (cart_fields_check_utf8 (value, label, error))
        return -1;
    out->data = value->via.str.ptr;  //  into the body, until kept
    out->size = size;
    return 0;
}

//  Accepts msgpack integers only, and checks the range on the raw
//  uint64 / int64 before narrowing, so 2^64-1 never passes as -1.
int
cart_fields_int_value (const msgpack_object *value, const char *label,
                       int64_t min, int64_t max, int64_t *out,
                       cart_fields_error_t *error)
{
    assert (min <= max && max >= 0);
    if (value->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        uint64_t number = value->via.u64;
        if (number > (uint64_t) max || (min > 0 && number < (uint64_t) min))
            return cart_fields_fail (
              error, "%s: %" PRIu64 " is outside %" PRId64 "..%" PRId64, label,
              number, min, max);
        *out = (int64_t) number;
        return 0;
    }
    if (value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        int64_t number = value->via.i64;
        if (number < min)
            return cart_fields_fail (
              error, "%s: %" PRId64 " is outside %" PRId64 "..%" PRId64, label,
              number, min, max);
        *out = number;
        return 0;
    }
    return cart_fields_wrong_type (value, label, "an integer", error);
}

int
cart_fields_take_str (const msgpack_object *map, const char *key,
                      const char *label, size_t max_bytes, cmq_cart_str_t *out,
                      cart_fields_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, key);
    if (!value)
        return cart_fields_fail (error, "missing field: %s", label);
    return cart_fields_str_value (value, label, max_bytes, out, error);
}

int
cart_fields_take_int (const msgpack_object *map, const char *key,
                      const char *label, int64_t min, int64_t max, int64_t *out,
                      cart_fields_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, key);
    if (!value)
        return cart_fields_fail (error, "missing field: %s", label);
    return cart_fields_int_value (value, label, min, max, out, error);
}

//  A string field copied into an owned string, as a reply holds it.
int
cart_fields_take_text (const msgpack_object *map, const char *key,
                       const char *label, size_t max_bytes,
                       cmq_cart_text_t *out, cart_fields_error_t *error)
{
    cmq_cart_str_t view;
    if (cart_fields_take_str (map, key, label, max_bytes, &view, error))
        return -1;
    memcpy (out->data, view.data, view.size);
    out->data[view.size] = '\0';
    out->size = view.size;
    return 0;
}

int
cart_fields_take_map (const msgpack_object *map, const char *key,
                      const msgpack_object **out, cart_fields_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, key);
    if (!value)
        return cart_fields_fail (error, "missing field: %s", key);
    if (value->type != MSGPACK_OBJECT_MAP)
        return cart_fields_wrong_type (value, key, "a map", error);
    *out = value;
    return cart_fields_check_keys (value, key, error);
}

//  Packs a key; msgpack-c reports a failed buffer write as non-zero.
int
cart_fields_pack_key (msgpack_packer *packer, const char *key)
{
    return msgpack_pack_str_with_body (packer, key, strlen (key));
}

//  Packs a str of any size (a request's may be anything the caller gave).
int
cart_fields_pack_str (msgpack_packer *packer, const char *data, size_t size)
{
    assert (data || size == 0);
    return msgpack_pack_str_with_body (packer, size ? data : "", size);
}

//  An item map, whichever side owns its strings.
int
cart_fields_pack_item (msgpack_packer *packer, const char *id, size_t id_size,
                       const char *name, size_t name_size,
                       const int64_t *numbers)
{
    int rc = msgpack_pack_map (packer, 4);
    rc |= cart_fields_pack_key (packer, "id");
    rc |= cart_fields_pack_str (packer, id, id_size);
    rc |= cart_fields_pack_key (packer, "name");
    rc |= cart_fields_pack_str (packer, name, name_size);
    rc |= cart_fields_pack_key (packer, "quantity");
    rc |= msgpack_pack_int64 (packer, numbers[0]);
    rc |= cart_fields_pack_key (packer, "price");
    rc |= msgpack_pack_int64 (packer, numbers[1]);
    return rc;
}

//  Hands the buffer to the caller, or frees it if any write failed.
void *
cart_fields_finish (msgpack_sbuffer *buffer, int rc, size_t *size_p)
{
    if (rc != 0) {
        msgpack_sbuffer_destroy (buffer);
        return NULL;
    }
    *size_p = buffer->size;
    return msgpack_sbuffer_release (buffer);
}
