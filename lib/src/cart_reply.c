//  cart_reply.c - the cart service's replies: packed by the worker, read by
//  clients (§4)

#include "cart_fields.h"

#include "cartmq/msgpack_scan.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    rc |= cart_fields_pack_key (&packer, "status");
    rc |= msgpack_pack_int (&packer, status);
    rc |= cart_fields_pack_key (&packer, "error");
    rc |= msgpack_pack_str_with_body (&packer, text, length);
    return cart_fields_finish (&buffer, rc, size_p);
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
    return cart_fields_pack_item (packer, item->id.data, item->id.size,
                                  item->name.data, item->name.size, numbers);
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
    rc |= cart_fields_pack_key (&packer, "status");
    rc |= msgpack_pack_int (&packer, reply->status);
    if (is_get) {
        rc |= cart_fields_pack_key (&packer, "items");
        rc |= msgpack_pack_array (&packer, reply->item_count);
        for (size_t index = 0; index < reply->item_count; index++)
            rc |= s_pack_reply_item (&packer, &reply->items[index]);
        rc |= cart_fields_pack_key (&packer, "total");
        rc |= msgpack_pack_int64 (&packer, reply->total);
    }
    if (has_item) {
        rc |= cart_fields_pack_key (&packer, "item_id");
        rc |= cart_fields_pack_str (&packer, reply->item_id.data,
                                    reply->item_id.size);
        rc |= cart_fields_pack_key (&packer, "quantity");
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
        rc |= cart_fields_pack_key (&packer, "message");
        rc |= msgpack_pack_str_with_body (&packer, message, length);
    }
    return cart_fields_finish (&buffer, rc, size_p);
}

static int
s_reply_item (const msgpack_object *value, cmq_cart_item_t *item,
              cart_fields_error_t *error)
{
    if (value->type != MSGPACK_OBJECT_MAP)
        return cart_fields_wrong_type (value, "items[]", "a map", error);
    const msgpack_object *fields = value;
    if (cart_fields_check_keys (fields, "items[]", error) ||
        cart_fields_take_text (fields, "id", "items[].id",
                               CMQ_CART_MAX_ID_BYTES, &item->id, error) ||
        cart_fields_take_text (fields, "name", "items[].name",
                               CMQ_CART_MAX_NAME_BYTES, &item->name, error) ||
        cart_fields_take_int (fields, "quantity", "items[].quantity", 0,
                              INT64_MAX, &item->quantity, error) ||
        cart_fields_take_int (fields, "price", "items[].price", 0, INT64_MAX,
                              &item->price, error))
        return -1;
    return 0;
}

static int
s_reply_items (const msgpack_object *map, cmq_cart_reply_t *reply,
               cart_fields_error_t *error)
{
    const msgpack_object *value = cmq_msgpack_map_get (map, "items");
    if (!value)
        return cart_fields_fail (error, "missing field: items");
    if (value->type != MSGPACK_OBJECT_ARRAY)
        return cart_fields_wrong_type (value, "items", "an array", error);
    const msgpack_object_array *array = &value->via.array;
    //  No cart holds more, and the bound keeps the allocation small.
    if (array->size > CMQ_CART_MAX_ITEMS)
        return cart_fields_fail (error, "items: %" PRIu32 " is over %d",
                                 array->size, CMQ_CART_MAX_ITEMS);
    if (array->size == 0)
        return 0;
    reply->items =
      (cmq_cart_item_t *) calloc (array->size, sizeof (cmq_cart_item_t));
    if (!reply->items)
        return cart_fields_fail (error, "out of memory decoding items");
    reply->item_count = array->size;
    for (uint32_t index = 0; index < array->size; index++)
        if (s_reply_item (&array->ptr[index], &reply->items[index], error))
            return -1;
    return 0;
}

static int
s_reply_fields (const msgpack_object *map, cmq_cart_reply_t *reply,
                cart_fields_error_t *error)
{
    cmq_cart_str_t message;
    switch (reply->method) {
        case CMQ_CART_GET:
            return s_reply_items (map, reply, error) ||
                   cart_fields_take_int (map, "total", "total", 0, INT64_MAX,
                                         &reply->total, error);
        case CMQ_CART_ADD:
        case CMQ_CART_UPDATE:
            return cart_fields_take_text (map, "item_id", "item_id",
                                          CMQ_CART_MAX_ID_BYTES,
                                          &reply->item_id, error) ||
                   cart_fields_take_int (map, "quantity", "quantity", 0,
                                         INT64_MAX, &reply->quantity, error);
        case CMQ_CART_REMOVE:
        case CMQ_CART_CLEAR:
            if (cart_fields_take_str (map, "message", "message",
                                      sizeof (reply->message) - 1, &message,
                                      error))
                return -1;
            memcpy (reply->message, message.data, message.size);
            reply->message[message.size] = '\0';
            return 0;
    }
    return cart_fields_fail (error, "unknown method %d", (int) reply->method);
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
    cart_fields_error_t reason = { reason_text, sizeof (reason_text) };

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = cart_fields_unpack_map (data, size, &unpacked, &reason);
    const msgpack_object *map = &unpacked.data;
    int64_t status = 0;
    if (rc == 0)
        rc = cart_fields_take_int (map, "status", "status", 100, 599, &status,
                                   &reason);
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
