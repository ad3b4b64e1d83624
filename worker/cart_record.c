//  cart_record.c - how a cart is spelled in Redis: keys and stored values

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cart_record.h"
#include "decimal.h"

size_t
cart_record_cart_key (const cmq_cart_str_t *user_id, char *key)
{
    assert (user_id && user_id->size <= CMQ_CART_MAX_ID_BYTES);
    memcpy (key, "cart:{", 6);
    memcpy (key + 6, user_id->data, user_id->size);
    key[6 + user_id->size] = '}';
    return 6 + user_id->size + 1;
}

//  The request id goes in as hex: the key's bytes after the user id then
//  hold no '}', so no (user, request id) pair can spell another's key.
size_t
cart_record_request_key (const cmq_cart_str_t *user_id,
                         const cmq_cart_str_t *request_id, char *key)
{
    assert (request_id && request_id->size <= CMQ_CART_MAX_REQUEST_ID_BYTES);
    static const char digits[] = "0123456789abcdef";
    size_t size = cart_record_cart_key (user_id, key);
    memcpy (key + size, ":rid:", 5);
    size += 5;
    for (size_t i = 0; i < request_id->size; i++) {
        unsigned char byte = (unsigned char) request_id->data[i];
        key[size++] = digits[byte >> 4];
        key[size++] = digits[byte & 15];
    }
    return size;
}

int
cart_record_parse_item (const char *value, size_t size, cmq_cart_item_t *item)
{
    assert (item);
    const char *first = memchr (value, ':', size);
    if (!first)
        return -1;
    size_t rest = size - (size_t) (first + 1 - value);
    const char *second = memchr (first + 1, ':', rest);
    if (!second)
        return -1;
    int64_t quantity, price;
    if (decimal_parse (value, (size_t) (first - value), CMQ_CART_MAX_QUANTITY,
                       &quantity) ||
        quantity < 1 ||
        decimal_parse (first + 1, (size_t) (second - first - 1),
                       CMQ_CART_MAX_PRICE, &price))
        return -1;
    size_t name_size = size - (size_t) (second + 1 - value);
    if (name_size < 1 || name_size > CMQ_CART_MAX_NAME_BYTES)
        return -1;
    item->quantity = quantity;
    item->price = price;
    memcpy (item->name.data, second + 1, name_size);
    item->name.data[name_size] = 0;
    item->name.size = name_size;
    return 0;
}

//  "METHOD:QUANTITY:ITEM_ID" as cart.lua writes it; the reply built from
//  it is the same whether it was just made or replayed.
int
cart_record_parse_result (const char *record, size_t size,
                          cmq_cart_reply_t *reply)
{
    assert (reply);
    if (size < 4 || record[0] < '2' || record[0] > '5' || record[1] != ':')
        return -1;
    const char *colon = memchr (record + 2, ':', size - 2);
    if (!colon)
        return -1;
    int64_t quantity;
    if (decimal_parse (record + 2, (size_t) (colon - record - 2),
                       CMQ_CART_MAX_QUANTITY, &quantity))
        return -1;
    size_t id_size = size - (size_t) (colon + 1 - record);
    if (id_size > CMQ_CART_MAX_ID_BYTES)
        return -1;
    cmq_cart_method_t method = (cmq_cart_method_t) (record[0] - '0');
    reply->method = method;
    if (method == CMQ_CART_ADD || method == CMQ_CART_UPDATE) {
        if (id_size == 0 || (method == CMQ_CART_ADD && quantity == 0))
            return -1;
        memcpy (reply->item_id.data, colon + 1, id_size);
        reply->item_id.data[id_size] = 0;
        reply->item_id.size = id_size;
        reply->quantity = quantity;
    } else
        snprintf (reply->message, sizeof (reply->message), "%s",
                  method == CMQ_CART_REMOVE ? "Item removed" : "Cart cleared");
    reply->status = CMQ_CART_OK;
    return 0;
}

static int
s_compare_items (const void *a, const void *b)
{
    const cmq_cart_item_t *left = (const cmq_cart_item_t *) a;
    const cmq_cart_item_t *right = (const cmq_cart_item_t *) b;
    size_t common =
      left->id.size < right->id.size ? left->id.size : right->id.size;
    int order = memcmp (left->id.data, right->id.data, common);
    if (order)
        return order;
    return (left->id.size > right->id.size) - (left->id.size < right->id.size);
}

void
cart_record_sort_items (cmq_cart_item_t *items, size_t count)
{
    if (count > 1)
        qsort (items, count, sizeof (cmq_cart_item_t), s_compare_items);
}
