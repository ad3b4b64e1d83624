//  cart_reply.c - Redis's answers and silences turned into cart replies

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cart_record.h"
#include "cart_reply.h"

//  Why the script refused a mutation; cart.lua's reason codes.
#define S_REASON_TOO_MANY_ITEMS 1
#define S_REASON_QUANTITY_LIMIT 2
#define S_REASON_NOT_IN_CART    3
#define S_REASON_BAD_METHOD     4

void
cart_reply_set_error (cmq_cart_reply_t *reply, int status, const char *format,
                      ...)
{
    reply->status = status;
    va_list args;
    va_start (args, format);
    vsnprintf (reply->error, sizeof (reply->error), format, args);
    va_end (args);
}

//  HGETALL's flat array of id, value pairs: the items sorted, the total
//  summed in 64 bits (each product is under 2^51, a cart of 1000 under
//  2^61, so it cannot overflow).
static void
s_parse_cart (const redisReply *result, cmq_cart_reply_t *reply)
{
    if (result->type != REDIS_REPLY_ARRAY || result->elements % 2) {
        cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE,
                              "storage: unexpected answer to HGETALL");
        return;
    }
    size_t count = result->elements / 2;
    if (count > CMQ_CART_MAX_ITEMS) {
        cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE,
                              "storage: cart holds more than %d items",
                              CMQ_CART_MAX_ITEMS);
        return;
    }
    cmq_cart_item_t *items = NULL;
    if (count) {
        items = (cmq_cart_item_t *) calloc (count, sizeof (cmq_cart_item_t));
        if (!items) {
            cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE, "out of memory");
            return;
        }
    }
    int64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const redisReply *id = result->element[2 * i];
        const redisReply *value = result->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || id->len < 1 ||
            id->len > CMQ_CART_MAX_ID_BYTES ||
            value->type != REDIS_REPLY_STRING ||
            cart_record_parse_item (value->str, value->len, &items[i])) {
            free (items);
            cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE,
                                  "storage: cart holds a malformed item");
            return;
        }
        memcpy (items[i].id.data, id->str, id->len);
        items[i].id.data[id->len] = 0;
        items[i].id.size = id->len;
        total += items[i].quantity * items[i].price;
    }
    cart_record_sort_items (items, count);
    reply->status = CMQ_CART_OK;
    reply->items = items;
    reply->item_count = count;
    reply->total = total;
}

static void
s_parse_mutation (const redisReply *result, cmq_cart_reply_t *reply,
                  bool *is_replayed)
{
    if (result->type != REDIS_REPLY_ARRAY || result->elements < 2 ||
        result->element[0]->type != REDIS_REPLY_INTEGER) {
        cart_reply_set_error (
          reply, CMQ_CART_UNAVAILABLE,
          "storage: unexpected answer from the cart script");
        return;
    }
    long long status = result->element[0]->integer;
    const redisReply *detail = result->element[1];
    if (status == CMQ_CART_OK) {
        if (result->elements != 3 || detail->type != REDIS_REPLY_STRING ||
            result->element[2]->type != REDIS_REPLY_INTEGER ||
            cart_record_parse_result (detail->str, detail->len, reply)) {
            cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE,
                                  "storage: malformed result record");
            return;
        }
        *is_replayed = result->element[2]->integer == 1;
        return;
    }
    long long reason =
      detail->type == REDIS_REPLY_INTEGER ? detail->integer : 0;
    if (status == CMQ_CART_CONFLICT && reason == S_REASON_TOO_MANY_ITEMS)
        cart_reply_set_error (reply, CMQ_CART_CONFLICT,
                              "cart would exceed %d distinct items",
                              CMQ_CART_MAX_ITEMS);
    else if (status == CMQ_CART_CONFLICT && reason == S_REASON_QUANTITY_LIMIT)
        cart_reply_set_error (reply, CMQ_CART_CONFLICT,
                              "item quantity in cart would exceed %d",
                              CMQ_CART_MAX_QUANTITY);
    else if (status == CMQ_CART_NOT_FOUND && reason == S_REASON_NOT_IN_CART)
        cart_reply_set_error (reply, CMQ_CART_NOT_FOUND, "item not in cart");
    else if (status == CMQ_CART_BAD_REQUEST && reason == S_REASON_BAD_METHOD)
        cart_reply_set_error (reply, CMQ_CART_BAD_REQUEST, "unknown method");
    else
        cart_reply_set_error (
          reply, CMQ_CART_UNAVAILABLE,
          "storage: unexpected status from the cart script");
}

void
cart_reply_from_redis (const cmq_cart_request_t *request,
                       const redisReply *result, cmq_cart_reply_t *reply,
                       bool *is_replayed)
{
    assert (request && result && reply && is_replayed);
    *is_replayed = false;
    reply->method = request->method;
    if (result->type == REDIS_REPLY_ERROR) {
        //  Redis's own words (OOM, BUSY, READONLY, a script error) help
        //  whoever reads the client's error.
        int size = result->len > 160 ? 160 : (int) result->len;
        cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE,
                              "storage error: %.*s", size, result->str);
    } else if (request->method == CMQ_CART_GET)
        s_parse_cart (result, reply);
    else
        s_parse_mutation (result, reply, is_replayed);
}

void
cart_reply_unavailable (cmq_cart_reply_t *reply, const char *reason)
{
    cart_reply_set_error (reply, CMQ_CART_UNAVAILABLE,
                          "storage unavailable: %s", reason);
}

int
cart_reply_unanswered_status (cmq_cart_method_t method, bool is_sent)
{
    //  A read changes nothing whatever happened to it; a mutation that
    //  never left us cannot have run. Only a mutation Redis may hold in
    //  its socket buffer, or may have run without our hearing the answer,
    //  is unknown.
    return is_sent && cmq_cart_method_is_mutation (method)
             ? CMQ_CART_OUTCOME_UNKNOWN
             : CMQ_CART_UNAVAILABLE;
}

void
cart_reply_unanswered (const cmq_cart_request_t *request, bool is_sent,
                       cmq_cart_reply_t *reply, const char *reason)
{
    reply->method = request->method;
    if (cart_reply_unanswered_status (request->method, is_sent) ==
        CMQ_CART_OUTCOME_UNKNOWN)
        cart_reply_set_error (
          reply, CMQ_CART_OUTCOME_UNKNOWN,
          "outcome unknown: sent to storage, %s; it may or may not "
          "be applied, retry with the same request_id",
          reason);
    else
        cart_reply_unavailable (reply, reason);
}
