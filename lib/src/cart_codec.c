//  cart_codec.c - the cart service's requests (§4), methods and UTF-8
//
//  Fields are read and packed by cart_fields.c; replies are in
//  cart_reply.c.

#include "cart_fields.h"

#include "cartmq/msgpack_scan.h"

#include <assert.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_method_names[] = { NULL,
                                        "GetCartItems",
                                        "AddItemToCart",
                                        "RemoveItemFromCart",
                                        "UpdateItemQuantity",
                                        "ClearCart" };
#define S_METHOD_COUNT (sizeof (s_method_names) / sizeof (s_method_names[0]))

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
//  Requests

static int
s_take_method (const msgpack_object *map, cmq_cart_method_t *method,
               cart_fields_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, "method");
    if (!value)
        return cart_fields_fail (error, "missing field: method");
    if (value->type != MSGPACK_OBJECT_STR)
        return cart_fields_wrong_type (value, "method", "a string", error);
    if (value->via.str.size == 0)
        return cart_fields_fail (error, "method: must not be empty");
    //  The names are ASCII, so a method that is not UTF-8 is unknown.
    for (size_t index = 1; index < S_METHOD_COUNT; index++)
        if (cmq_msgpack_str_is (value, s_method_names[index])) {
            *method = (cmq_cart_method_t) index;
            return 0;
        }
    char quoted[CART_FIELDS_MAX_QUOTED + 4];
    cart_fields_quote (quoted, sizeof (quoted), value->via.str.ptr,
                       value->via.str.size);
    return cart_fields_fail (error, "unknown method: %s", quoted);
}

static int
s_take_item (const msgpack_object *map, cmq_cart_request_item_t *item,
             cart_fields_error_t *error)
{
    const msgpack_object *fields = NULL;
    if (cart_fields_take_map (map, "item", &fields, error) ||
        cart_fields_take_str (fields, "id", "item.id", CMQ_CART_MAX_ID_BYTES,
                              &item->id, error) ||
        cart_fields_take_str (fields, "name", "item.name",
                              CMQ_CART_MAX_NAME_BYTES, &item->name, error) ||
        cart_fields_take_int (fields, "quantity", "item.quantity", 1,
                              CMQ_CART_MAX_QUANTITY, &item->quantity, error) ||
        cart_fields_take_int (fields, "price", "item.price", 0,
                              CMQ_CART_MAX_PRICE, &item->price, error))
        return -1;
    return 0;
}

static int
s_request_fields (const msgpack_object *map, cmq_cart_request_t *request,
                  cart_fields_error_t *error)
{
    if (s_take_method (map, &request->method, error) ||
        cart_fields_take_str (map, "user_id", "user_id", CMQ_CART_MAX_ID_BYTES,
                              &request->user_id, error))
        return -1;
    cmq_cart_request_item_t *item = &request->item;
    int rc = 0;
    switch (request->method) {
        case CMQ_CART_ADD:
            rc = s_take_item (map, item, error);
            break;
        case CMQ_CART_REMOVE:
            rc = cart_fields_take_str (map, "item_id", "item_id",
                                       CMQ_CART_MAX_ID_BYTES, &item->id, error);
            break;
        case CMQ_CART_UPDATE:
            rc =
              cart_fields_take_str (map, "item_id", "item_id",
                                    CMQ_CART_MAX_ID_BYTES, &item->id, error) ||
              cart_fields_take_int (map, "quantity", "quantity", 0,
                                    CMQ_CART_MAX_QUANTITY, &item->quantity,
                                    error);
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
        if (cart_fields_str_value (request_id, "request_id",
                                   CMQ_CART_MAX_REQUEST_ID_BYTES,
                                   &request->request_id, error))
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
    cart_fields_error_t reason = { error, error_size };
    if (error && error_size > 0)
        error[0] = '\0';

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = cart_fields_unpack_map (data, size, &unpacked, &reason);
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
    rc |= cart_fields_pack_key (packer, "method");
    rc |= cart_fields_pack_key (packer, name);
    rc |= cart_fields_pack_key (packer, "user_id");
    rc |= cart_fields_pack_str (packer, request->user_id.data,
                                request->user_id.size);
    if (request->method == CMQ_CART_ADD) {
        int64_t numbers[2] = { item->quantity, item->price };
        rc |= cart_fields_pack_key (packer, "item");
        rc |= cart_fields_pack_item (packer, item->id.data, item->id.size,
                                     item->name.data, item->name.size, numbers);
    }
    if (request->method == CMQ_CART_REMOVE ||
        request->method == CMQ_CART_UPDATE) {
        rc |= cart_fields_pack_key (packer, "item_id");
        rc |= cart_fields_pack_str (packer, item->id.data, item->id.size);
    }
    if (request->method == CMQ_CART_UPDATE) {
        rc |= cart_fields_pack_key (packer, "quantity");
        rc |= msgpack_pack_int64 (packer, item->quantity);
    }
    if (request->has_request_id) {
        rc |= cart_fields_pack_key (packer, "request_id");
        rc |= cart_fields_pack_str (packer, request->request_id.data,
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
    return cart_fields_finish (&buffer, s_pack_request (&packer, request),
                               size_p);
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
