//  cart_codec.c - the cart service's msgpack requests and replies (§4)
//
//  Decoding takes two passes. msgpack-c trusts what it reads, so
//  cmq_msgpack_scan (msgpack_scan.h) first walks the raw bytes and refuses
//  truncation, declared lengths past the end, nesting past S_MAX_DEPTH and
//  trailing bytes; what msgpack_unpack_next then allocates in its zone is
//  bounded by the body, itself at most 1 MiB. Fields are then checked one
//  by one, strictly: msgpack str only for strings, msgpack integers only
//  for numbers, every range checked on the raw uint64 / int64 so nothing
//  wraps.

#include "cartmq/cart_codec.h"
#include "cartmq/msgpack_scan.h"

#include <assert.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_BODY_BYTES (1024 * 1024)  //  as the broker's ZMQ_MAXMSGSIZE
#define S_MAX_DEPTH      16             //  we need 3; msgpack-c allows 32
#define S_MAX_QUOTED     48             //  peer bytes echoed in an error

static const char *s_method_names[] = { NULL,
                                        "GetCartItems",
                                        "AddItemToCart",
                                        "RemoveItemFromCart",
                                        "UpdateItemQuantity",
                                        "ClearCart" };
#define S_METHOD_COUNT (sizeof (s_method_names) / sizeof (s_method_names[0]))

//  Where a failure's one-line reason goes (text may be NULL).
typedef struct {
    char *text;
    size_t size;
} s_error_t;

static int s_fail (s_error_t *error, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

//  Writes the reason and returns -1, so callers can `return s_fail (...)`.
static int
s_fail (s_error_t *error, const char *format, ...)
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
static void
s_quote (char *dest, size_t dest_size, const char *data, size_t size)
{
    assert (dest_size > 3);
    size_t limit = dest_size - 4 < S_MAX_QUOTED ? dest_size - 4 : S_MAX_QUOTED;
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
cmq_cart_method_name (cmq_cart_method_t method)
{
    if ((size_t) method < S_METHOD_COUNT)
        return s_method_names[method];
    return NULL;
}

bool
cmq_cart_method_is_mutation (cmq_cart_method_t method)
{
    return method >= CMQ_CART_ADD && method <= CMQ_CART_CLEAR;
}

size_t
cmq_cart_utf8_sequence (const void *data, size_t size)
{
    assert (data);
    assert (size > 0);
    const unsigned char *bytes = (const unsigned char *) data;
    unsigned char lead = bytes[0];
    if (lead < 0x80)
        return 1;
    //  The second byte's range is what rules out overlong forms (E0, F0),
    //  surrogates (ED) and code points past U+10FFFF (F4); C0, C1 and F5
    //  to FF can only start overlong or out-of-range sequences.
    size_t length;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF)
        length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0)
            low = 0xA0;
        else if (lead == 0xED)
            high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0)
            low = 0x90;
        else if (lead == 0xF4)
            high = 0x8F;
    } else
        return 0;
    if (size < length || bytes[1] < low || bytes[1] > high)
        return 0;
    for (size_t index = 2; index < length; index++)
        if (bytes[index] < 0x80 || bytes[index] > 0xBF)
            return 0;
    return length;
}

bool
cmq_cart_utf8_is_valid (const void *data, size_t size, size_t *bad_offset_p)
{
    assert (data || size == 0);
    const unsigned char *bytes = (const unsigned char *) data;
    size_t index = 0;
    while (index < size) {
        if (bytes[index] < 0x80) {
            index++;  //  ids and names are mostly ASCII
            continue;
        }
        size_t length = cmq_cart_utf8_sequence (bytes + index, size - index);
        if (length == 0) {
            if (bad_offset_p)
                *bad_offset_p = index;
            return false;
        }
        index += length;
    }
    return true;
}

cmq_cart_str_t
cmq_cart_str (const char *value)
{
    cmq_cart_str_t str = { value ? value : "", value ? strlen (value) : 0 };
    return str;
}

int
cmq_cart_text_set (cmq_cart_text_t *str, const char *value, size_t max_bytes)
{
    assert (str);
    str->size = 0;
    str->data[0] = '\0';
    if (max_bytes > CMQ_CART_MAX_NAME_BYTES)
        max_bytes = CMQ_CART_MAX_NAME_BYTES;  //  all the buffer holds
    if (!value)
        return -1;
    size_t length = strnlen (value, max_bytes + 1);
    if (length > max_bytes)
        return -1;
    memcpy (str->data, value, length);
    str->data[length] = '\0';
    str->size = length;
    return 0;
}

//  --------------------------------------------------------------------------
//  Pass two, after cmq_msgpack_scan: objects and fields

static const char *
s_type_name (msgpack_object_type type)
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
s_compare_keys (const void *left_p, const void *right_p)
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
static int
s_check_keys (const msgpack_object *object, const char *where, s_error_t *error)
{
    const msgpack_object_map *map = &object->via.map;
    for (uint32_t index = 0; index < map->size; index++)
        if (map->ptr[index].key.type != MSGPACK_OBJECT_STR)
            return s_fail (error, "%s: keys must be strings, got %s", where,
                           s_type_name (map->ptr[index].key.type));
    if (map->size < 2)
        return 0;
    const msgpack_object **keys =
      (const msgpack_object **) malloc (map->size * sizeof (*keys));
    if (!keys)
        return s_fail (error, "%s: out of memory checking keys", where);
    for (uint32_t index = 0; index < map->size; index++)
        keys[index] = &map->ptr[index].key;
    qsort (keys, map->size, sizeof (*keys), s_compare_keys);
    int rc = 0;
    for (uint32_t index = 1; index < map->size && rc == 0; index++)
        if (s_compare_keys (&keys[index - 1], &keys[index]) == 0) {
            char quoted[S_MAX_QUOTED + 4];
            s_quote (quoted, sizeof (quoted), keys[index]->via.str.ptr,
                     keys[index]->via.str.size);
            rc = s_fail (error, "%s: duplicate key: %s", where, quoted);
        }
    free (keys);
    return rc;
}

//  Size-checks the body, scans it, and unpacks the one map it must hold.
//  The caller owns unpacked (init before, destroy after) on any return.
static int
s_unpack_map (const void *data, size_t size, msgpack_unpacked *unpacked,
              s_error_t *error)
{
    if (!data || size == 0)
        return s_fail (error, "empty body: not msgpack");
    if (size > S_MAX_BODY_BYTES)
        return s_fail (error, "body of %zu bytes is over the %d byte limit",
                       size, S_MAX_BODY_BYTES);
    if (cmq_msgpack_unpack (data, size, S_MAX_DEPTH, unpacked, error->text,
                            error->size))
        return -1;
    if (unpacked->data.type != MSGPACK_OBJECT_MAP)
        return s_fail (error, "body is not a map but %s",
                       s_type_name (unpacked->data.type));
    return s_check_keys (&unpacked->data, "body", error);
}

static int
s_wrong_type (const msgpack_object *value, const char *label,
              const char *expected, s_error_t *error)
{
    return s_fail (error, "%s: must be %s, got %s", label, expected,
                   s_type_name (value->type));
}

//  A str that is not UTF-8 is a wrong type (contract §4): stored, it
//  would make every later reply that echoes it undecodable.
static int
s_check_utf8 (const msgpack_object *value, const char *label, s_error_t *error)
{
    size_t offset = 0;
    if (cmq_cart_utf8_is_valid (value->via.str.ptr, value->via.str.size,
                                &offset))
        return 0;
    return s_fail (error,
                   "%s: must be a UTF-8 string, got invalid UTF-8 "
                   "(byte 0x%02x at offset %zu)",
                   label, (unsigned char) value->via.str.ptr[offset], offset);
}

static int
s_str_value (const msgpack_object *value, const char *label, size_t max_bytes,
             cmq_cart_str_t *out, s_error_t *error)
{
    assert (max_bytes <= CMQ_CART_MAX_NAME_BYTES);
    if (value->type != MSGPACK_OBJECT_STR)
        return s_wrong_type (value, label, "a string", error);
    size_t size = value->via.str.size;
    if (size == 0)
        return s_fail (error, "%s: must not be empty", label);
    if (size > max_bytes)
        return s_fail (error, "%s: longer than %zu bytes", label, max_bytes);
    if (s_check_utf8 (value, label, error))
        return -1;
    out->data = value->via.str.ptr;  //  into the body, until kept
    out->size = size;
    return 0;
}

//  Accepts msgpack integers only, and checks the range on the raw
//  uint64 / int64 before narrowing, so 2^64-1 never passes as -1.
static int
s_int_value (const msgpack_object *value, const char *label, int64_t min,
             int64_t max, int64_t *out, s_error_t *error)
{
    assert (min <= max && max >= 0);
    if (value->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        uint64_t number = value->via.u64;
        if (number > (uint64_t) max || (min > 0 && number < (uint64_t) min))
            return s_fail (error,
                           "%s: %" PRIu64 " is outside %" PRId64 "..%" PRId64,
                           label, number, min, max);
        *out = (int64_t) number;
        return 0;
    }
    if (value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        int64_t number = value->via.i64;
        if (number < min)
            return s_fail (error,
                           "%s: %" PRId64 " is outside %" PRId64 "..%" PRId64,
                           label, number, min, max);
        *out = number;
        return 0;
    }
    return s_wrong_type (value, label, "an integer", error);
}

static int
s_take_str (const msgpack_object *map, const char *key, const char *label,
            size_t max_bytes, cmq_cart_str_t *out, s_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, key);
    if (!value)
        return s_fail (error, "missing field: %s", label);
    return s_str_value (value, label, max_bytes, out, error);
}

static int
s_take_int (const msgpack_object *map, const char *key, const char *label,
            int64_t min, int64_t max, int64_t *out, s_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, key);
    if (!value)
        return s_fail (error, "missing field: %s", label);
    return s_int_value (value, label, min, max, out, error);
}

//  A string field copied into an owned string, as a reply holds it.
static int
s_take_text (const msgpack_object *map, const char *key, const char *label,
             size_t max_bytes, cmq_cart_text_t *out, s_error_t *error)
{
    cmq_cart_str_t view;
    if (s_take_str (map, key, label, max_bytes, &view, error))
        return -1;
    memcpy (out->data, view.data, view.size);
    out->data[view.size] = '\0';
    out->size = view.size;
    return 0;
}

static int
s_take_map (const msgpack_object *map, const char *key,
            const msgpack_object **out, s_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, key);
    if (!value)
        return s_fail (error, "missing field: %s", key);
    if (value->type != MSGPACK_OBJECT_MAP)
        return s_wrong_type (value, key, "a map", error);
    *out = value;
    return s_check_keys (value, key, error);
}

//  --------------------------------------------------------------------------
//  Requests

static int
s_take_method (const msgpack_object *map, cmq_cart_method_t *method,
               s_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, "method");
    if (!value)
        return s_fail (error, "missing field: method");
    if (value->type != MSGPACK_OBJECT_STR)
        return s_wrong_type (value, "method", "a string", error);
    if (value->via.str.size == 0)
        return s_fail (error, "method: must not be empty");
    //  The names are ASCII, so a method that is not UTF-8 is unknown.
    for (size_t index = 1; index < S_METHOD_COUNT; index++)
        if (cmq_msgpack_str_is (value, s_method_names[index])) {
            *method = (cmq_cart_method_t) index;
            return 0;
        }
    char quoted[S_MAX_QUOTED + 4];
    s_quote (quoted, sizeof (quoted), value->via.str.ptr, value->via.str.size);
    return s_fail (error, "unknown method: %s", quoted);
}

static int
s_take_item (const msgpack_object *map, cmq_cart_request_item_t *item,
             s_error_t *error)
{
    const msgpack_object *fields = NULL;
    if (s_take_map (map, "item", &fields, error) ||
        s_take_str (fields, "id", "item.id", CMQ_CART_MAX_ID_BYTES, &item->id,
                    error) ||
        s_take_str (fields, "name", "item.name", CMQ_CART_MAX_NAME_BYTES,
                    &item->name, error) ||
        s_take_int (fields, "quantity", "item.quantity", 1,
                    CMQ_CART_MAX_QUANTITY, &item->quantity, error) ||
        s_take_int (fields, "price", "item.price", 0, CMQ_CART_MAX_PRICE,
                    &item->price, error))
        return -1;
    return 0;
}

static int
s_request_fields (const msgpack_object *map, cmq_cart_request_t *request,
                  s_error_t *error)
{
    if (s_take_method (map, &request->method, error) ||
        s_take_str (map, "user_id", "user_id", CMQ_CART_MAX_ID_BYTES,
                    &request->user_id, error))
        return -1;
    cmq_cart_request_item_t *item = &request->item;
    int rc = 0;
    switch (request->method) {
        case CMQ_CART_ADD:
            rc = s_take_item (map, item, error);
            break;
        case CMQ_CART_REMOVE:
            rc = s_take_str (map, "item_id", "item_id", CMQ_CART_MAX_ID_BYTES,
                             &item->id, error);
            break;
        case CMQ_CART_UPDATE:
            rc = s_take_str (map, "item_id", "item_id", CMQ_CART_MAX_ID_BYTES,
                             &item->id, error) ||
                 s_take_int (map, "quantity", "quantity", 0,
                             CMQ_CART_MAX_QUANTITY, &item->quantity, error);
            break;
        case CMQ_CART_GET:
        case CMQ_CART_CLEAR:
            break;
    }
    if (rc)
        return -1;
    //  A read has nothing to replay, so GET ignores request_id entirely.
    const msgpack_object *request_id = cmq_msgpack_map_get (map, "request_id");
    if (request_id && cmq_cart_method_is_mutation (request->method)) {
        if (s_str_value (request_id, "request_id",
                         CMQ_CART_MAX_REQUEST_ID_BYTES, &request->request_id,
                         error))
            return -1;
        request->has_request_id = true;
    }
    return 0;
}

//  Copies a view into the request's storage, NUL terminated, and points
//  it there; an absent field becomes the empty string.
static void
s_keep (cmq_cart_request_t *request, cmq_cart_str_t *str, size_t *used)
{
    char *target = request->storage + *used;
    assert (*used + str->size + 1 <= sizeof (request->storage));
    if (str->size > 0)
        memcpy (target, str->data, str->size);
    target[str->size] = '\0';
    str->data = target;
    *used += str->size + 1;
}

//  After a successful decode the views point into the body: copy them
//  out, so the request outlives it. The limits checked bound the total.
static void
s_keep_strings (cmq_cart_request_t *request)
{
    size_t used = 0;
    s_keep (request, &request->user_id, &used);
    s_keep (request, &request->item.id, &used);
    s_keep (request, &request->item.name, &used);
    s_keep (request, &request->request_id, &used);
}

int
cmq_cart_request_decode (const void *data, size_t size,
                         cmq_cart_request_t *request, char *error,
                         size_t error_size)
{
    assert (request);
    memset (request, 0, sizeof (*request));
    s_error_t reason = { error, error_size };
    if (error && error_size > 0)
        error[0] = '\0';

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = s_unpack_map (data, size, &unpacked, &reason);
    if (rc == 0)
        rc = s_request_fields (&unpacked.data, request, &reason);
    if (rc)
        memset (request, 0, sizeof (*request));
    else
        s_keep_strings (request);  //  before the body can go
    msgpack_unpacked_destroy (&unpacked);
    return rc ? CMQ_CART_BAD_REQUEST : CMQ_CART_OK;
}

//  --------------------------------------------------------------------------
//  Encoding

//  Packs a key; msgpack-c reports a failed buffer write as non-zero.
static int
s_pack_key (msgpack_packer *packer, const char *key)
{
    return msgpack_pack_str_with_body (packer, key, strlen (key));
}

//  Packs a str of any size (a request's may be anything the caller gave).
static int
s_pack_str (msgpack_packer *packer, const char *data, size_t size)
{
    assert (data || size == 0);
    return msgpack_pack_str_with_body (packer, size ? data : "", size);
}

//  An item map, whichever side owns its strings.
static int
s_pack_item (msgpack_packer *packer, const char *id, size_t id_size,
             const char *name, size_t name_size, const int64_t *numbers)
{
    int rc = msgpack_pack_map (packer, 4);
    rc |= s_pack_key (packer, "id");
    rc |= s_pack_str (packer, id, id_size);
    rc |= s_pack_key (packer, "name");
    rc |= s_pack_str (packer, name, name_size);
    rc |= s_pack_key (packer, "quantity");
    rc |= msgpack_pack_int64 (packer, numbers[0]);
    rc |= s_pack_key (packer, "price");
    rc |= msgpack_pack_int64 (packer, numbers[1]);
    return rc;
}

//  Hands the buffer to the caller, or frees it if any write failed.
static void *
s_finish (msgpack_sbuffer *buffer, int rc, size_t *size_p)
{
    if (rc != 0) {
        msgpack_sbuffer_destroy (buffer);
        return NULL;
    }
    *size_p = buffer->size;
    return msgpack_sbuffer_release (buffer);
}

//  The request map of §4, fields in the contract's order.
static int
s_pack_request (msgpack_packer *packer, const cmq_cart_request_t *request)
{
    const char *name = cmq_cart_method_name (request->method);
    assert (name);
    const cmq_cart_request_item_t *item = &request->item;
    uint32_t fields = 2 + (request->has_request_id ? 1 : 0);
    if (request->method == CMQ_CART_ADD || request->method == CMQ_CART_REMOVE)
        fields += 1;
    else if (request->method == CMQ_CART_UPDATE)
        fields += 2;
    int rc = msgpack_pack_map (packer, fields);
    rc |= s_pack_key (packer, "method");
    rc |= s_pack_key (packer, name);
    rc |= s_pack_key (packer, "user_id");
    rc |= s_pack_str (packer, request->user_id.data, request->user_id.size);
    if (request->method == CMQ_CART_ADD) {
        int64_t numbers[2] = { item->quantity, item->price };
        rc |= s_pack_key (packer, "item");
        rc |= s_pack_item (packer, item->id.data, item->id.size,
                           item->name.data, item->name.size, numbers);
    }
    if (request->method == CMQ_CART_REMOVE ||
        request->method == CMQ_CART_UPDATE) {
        rc |= s_pack_key (packer, "item_id");
        rc |= s_pack_str (packer, item->id.data, item->id.size);
    }
    if (request->method == CMQ_CART_UPDATE) {
        rc |= s_pack_key (packer, "quantity");
        rc |= msgpack_pack_int64 (packer, item->quantity);
    }
    if (request->has_request_id) {
        rc |= s_pack_key (packer, "request_id");
        rc |= s_pack_str (packer, request->request_id.data,
                          request->request_id.size);
    }
    return rc;
}

void *
cmq_cart_request_encode (const cmq_cart_request_t *request, size_t *size_p)
{
    assert (request);
    assert (size_p);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    return s_finish (&buffer, s_pack_request (&packer, request), size_p);
}

//  A fixed buffer msgpack-c writes into, counting what does not fit.
typedef struct {
    char *data;
    size_t capacity;
    size_t size;  //  bytes written, or that would have been
} s_sink_t;

static int
s_sink_write (void *data, const char *bytes, size_t size)
{
    s_sink_t *sink = (s_sink_t *) data;
    if (sink->size + size <= sink->capacity)
        memcpy (sink->data + sink->size, bytes, size);
    sink->size += size;
    return 0;
}

size_t
cmq_cart_request_encode_into (const cmq_cart_request_t *request, void *buffer,
                              size_t buffer_size)
{
    assert (request);
    assert (buffer || buffer_size == 0);
    s_sink_t sink = { (char *) buffer, buffer_size, 0 };
    msgpack_packer packer;
    msgpack_packer_init (&packer, &sink, s_sink_write);
    s_pack_request (&packer, request);
    return sink.size;
}

//  Every status but 200 must carry readable text, even if none was given.
static const char *
s_default_error (int status)
{
    switch (status) {
        case CMQ_CART_BAD_REQUEST:
            return "bad request";
        case CMQ_CART_NOT_FOUND:
            return "item not in cart";
        case CMQ_CART_CONFLICT:
            return "cart would exceed 1000 items";
        case CMQ_CART_UNAVAILABLE:
            return "storage unavailable";
    }
    return "error";
}

static void *
s_error_encode (int status, const char *text, size_t length, size_t *size_p)
{
    if (!text || length == 0) {
        text = s_default_error (status);
        length = strlen (text);
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    int rc = msgpack_pack_map (&packer, 2);
    rc |= s_pack_key (&packer, "status");
    rc |= msgpack_pack_int (&packer, status);
    rc |= s_pack_key (&packer, "error");
    rc |= msgpack_pack_str_with_body (&packer, text, length);
    return s_finish (&buffer, rc, size_p);
}

void *
cmq_cart_error_encode (int status, const char *error, size_t *size_p)
{
    assert (size_p);
    return s_error_encode (status, error, error ? strlen (error) : 0, size_p);
}

static int
s_pack_reply_item (msgpack_packer *packer, const cmq_cart_item_t *item)
{
    int64_t numbers[2] = { item->quantity, item->price };
    return s_pack_item (packer, item->id.data, item->id.size, item->name.data,
                        item->name.size, numbers);
}

void *
cmq_cart_reply_encode (const cmq_cart_reply_t *reply, size_t *size_p)
{
    assert (reply);
    assert (size_p);
    if (reply->status != CMQ_CART_OK)
        return s_error_encode (reply->status, reply->error,
                               strnlen (reply->error, sizeof (reply->error)),
                               size_p);
    assert (reply->item_count == 0 || reply->items);

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    bool is_get = reply->method == CMQ_CART_GET;
    bool has_item =
      reply->method == CMQ_CART_ADD || reply->method == CMQ_CART_UPDATE;
    bool has_message =
      reply->method == CMQ_CART_REMOVE || reply->method == CMQ_CART_CLEAR;
    assert (is_get || has_item || has_message);

    int rc = msgpack_pack_map (&packer, has_message ? 2 : 3);
    rc |= s_pack_key (&packer, "status");
    rc |= msgpack_pack_int (&packer, reply->status);
    if (is_get) {
        rc |= s_pack_key (&packer, "items");
        rc |= msgpack_pack_array (&packer, reply->item_count);
        for (size_t index = 0; index < reply->item_count; index++)
            rc |= s_pack_reply_item (&packer, &reply->items[index]);
        rc |= s_pack_key (&packer, "total");
        rc |= msgpack_pack_int64 (&packer, reply->total);
    }
    if (has_item) {
        rc |= s_pack_key (&packer, "item_id");
        rc |= s_pack_str (&packer, reply->item_id.data, reply->item_id.size);
        rc |= s_pack_key (&packer, "quantity");
        rc |= msgpack_pack_int64 (&packer, reply->quantity);
    }
    if (has_message) {
        const char *message = reply->message;
        size_t length = strnlen (message, sizeof (reply->message));
        if (length == 0) {
            message = reply->method == CMQ_CART_REMOVE ? "Item removed"
                                                       : "Cart cleared";
            length = strlen (message);
        }
        rc |= s_pack_key (&packer, "message");
        rc |= msgpack_pack_str_with_body (&packer, message, length);
    }
    return s_finish (&buffer, rc, size_p);
}

//  --------------------------------------------------------------------------
//  Replies, as a client reads them

static int
s_reply_item (const msgpack_object *value, cmq_cart_item_t *item,
              s_error_t *error)
{
    if (value->type != MSGPACK_OBJECT_MAP)
        return s_wrong_type (value, "items[]", "a map", error);
    const msgpack_object *fields = value;
    if (s_check_keys (fields, "items[]", error) ||
        s_take_text (fields, "id", "items[].id", CMQ_CART_MAX_ID_BYTES,
                     &item->id, error) ||
        s_take_text (fields, "name", "items[].name", CMQ_CART_MAX_NAME_BYTES,
                     &item->name, error) ||
        s_take_int (fields, "quantity", "items[].quantity", 0, INT64_MAX,
                    &item->quantity, error) ||
        s_take_int (fields, "price", "items[].price", 0, INT64_MAX,
                    &item->price, error))
        return -1;
    return 0;
}

static int
s_reply_items (const msgpack_object *map, cmq_cart_reply_t *reply,
               s_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, "items");
    if (!value)
        return s_fail (error, "missing field: items");
    if (value->type != MSGPACK_OBJECT_ARRAY)
        return s_wrong_type (value, "items", "an array", error);
    const msgpack_object_array *array = &value->via.array;
    //  No cart holds more, and the bound keeps the allocation small.
    if (array->size > CMQ_CART_MAX_ITEMS)
        return s_fail (error, "items: %" PRIu32 " is over %d", array->size,
                       CMQ_CART_MAX_ITEMS);
    if (array->size == 0)
        return 0;
    reply->items =
      (cmq_cart_item_t *) calloc (array->size, sizeof (cmq_cart_item_t));
    if (!reply->items)
        return s_fail (error, "out of memory decoding items");
    reply->item_count = array->size;
    for (uint32_t index = 0; index < array->size; index++)
        if (s_reply_item (&array->ptr[index], &reply->items[index], error))
            return -1;
    return 0;
}

static int
s_reply_fields (const msgpack_object *map, cmq_cart_reply_t *reply,
                s_error_t *error)
{
    cmq_cart_str_t message;
    switch (reply->method) {
        case CMQ_CART_GET:
            return s_reply_items (map, reply, error) ||
                   s_take_int (map, "total", "total", 0, INT64_MAX,
                               &reply->total, error);
        case CMQ_CART_ADD:
        case CMQ_CART_UPDATE:
            return s_take_text (map, "item_id", "item_id",
                                CMQ_CART_MAX_ID_BYTES, &reply->item_id,
                                error) ||
                   s_take_int (map, "quantity", "quantity", 0, INT64_MAX,
                               &reply->quantity, error);
        case CMQ_CART_REMOVE:
        case CMQ_CART_CLEAR:
            if (s_take_str (map, "message", "message",
                            sizeof (reply->message) - 1, &message, error))
                return -1;
            memcpy (reply->message, message.data, message.size);
            reply->message[message.size] = '\0';
            return 0;
    }
    return s_fail (error, "unknown method %d", (int) reply->method);
}

//  The service's error text, kept to one line of the buffer and to valid
//  UTF-8: a control character or a byte that starts no valid sequence
//  becomes '?', and a sequence that would not fit whole is left out.
static void
s_copy_error (char *dest, size_t dest_size, const msgpack_object *value)
{
    const char *text = value->via.str.ptr;
    size_t size = value->via.str.size;
    size_t length = 0;
    for (size_t index = 0; index < size;) {
        unsigned char byte = (unsigned char) text[index];
        size_t sequence = cmq_cart_utf8_sequence (text + index, size - index);
        if (sequence == 0 || byte < 0x20 || byte == 0x7f)
            sequence = 1;
        if (length + sequence > dest_size - 1)
            break;
        if (sequence == 1 && (byte < 0x20 || byte >= 0x7f))
            dest[length] = '?';
        else
            memcpy (dest + length, text + index, sequence);
        length += sequence;
        index += sequence;
    }
    dest[length] = '\0';
}

int
cmq_cart_reply_decode (const void *data, size_t size, cmq_cart_method_t method,
                       cmq_cart_reply_t *reply)
{
    assert (reply);
    //  Overwritten, not freed: the caller may pass a fresh uninitialised
    //  struct, and must reset one it reuses.
    memset (reply, 0, sizeof (*reply));
    reply->method = method;
    char reason_text[sizeof (reply->error)] = "";
    s_error_t reason = { reason_text, sizeof (reason_text) };

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = s_unpack_map (data, size, &unpacked, &reason);
    const msgpack_object *map = &unpacked.data;
    int64_t status = 0;
    if (rc == 0)
        rc = s_take_int (map, "status", "status", 100, 599, &status, &reason);
    if (rc == 0) {
        reply->status = (int) status;
        if (status == CMQ_CART_OK)
            rc = s_reply_fields (map, reply, &reason);
        else {
            const msgpack_object *error = cmq_msgpack_map_get (map, "error");
            if (error && error->type == MSGPACK_OBJECT_STR)
                s_copy_error (reply->error, sizeof (reply->error), error);
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    if (rc) {
        cmq_cart_reply_reset (reply);
        reply->method = method;
        memcpy (reply->error, reason_text, sizeof (reply->error));
        return -1;
    }
    return 0;
}

void
cmq_cart_reply_reset (cmq_cart_reply_t *reply)
{
    assert (reply);
    free (reply->items);
    memset (reply, 0, sizeof (*reply));
}
