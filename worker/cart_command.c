//  cart_command.c - the Redis command for one cart request

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cart_command.h"

static void
s_push (cart_command_t *command, const char *bytes, size_t size)
{
    assert (command->argc < CART_COMMAND_MAX_ARGS);
    command->argv[command->argc] = bytes;
    command->sizes[command->argc] = size;
    command->argc++;
}

static void
s_push_string (cart_command_t *command, const char *string)
{
    s_push (command, string, strlen (string));
}

void
cart_command_build (cart_command_t *command, const cmq_cart_request_t *request,
                    const char *sha)
{
    assert (command && request && sha);
    command->argc = 0;
    size_t cart_key_size =
      cart_record_cart_key (&request->user_id, command->cart_key);
    if (request->method == CMQ_CART_GET) {
        s_push_string (command, "HGETALL");
        s_push (command, command->cart_key, cart_key_size);
        return;
    }
    s_push_string (command, "EVALSHA");
    s_push (command, sha, CART_COMMAND_SHA_BYTES);
    s_push_string (command, request->has_request_id ? "2" : "1");
    s_push (command, command->cart_key, cart_key_size);
    if (request->has_request_id)
        s_push (command, command->request_key,
                cart_record_request_key (&request->user_id,
                                         &request->request_id,
                                         command->request_key));
    bool has_item = request->method != CMQ_CART_CLEAR;
    bool has_price = request->method == CMQ_CART_ADD;
    snprintf (command->method, sizeof (command->method), "%d",
              (int) request->method);
    snprintf (command->quantity, sizeof (command->quantity), "%" PRId64,
              request->method == CMQ_CART_ADD ||
                  request->method == CMQ_CART_UPDATE
                ? request->item.quantity
                : 0);
    snprintf (command->price, sizeof (command->price), "%" PRId64,
              has_price ? request->item.price : 0);
    snprintf (command->max_quantity, sizeof (command->max_quantity), "%d",
              CMQ_CART_MAX_QUANTITY);
    snprintf (command->max_items, sizeof (command->max_items), "%d",
              CMQ_CART_MAX_ITEMS);
    snprintf (command->ttl, sizeof (command->ttl), "%d",
              CART_RECORD_REQUEST_ID_TTL_S);
    s_push_string (command, command->method);
    s_push (command, request->item.id.data,
            has_item ? request->item.id.size : 0);
    s_push_string (command, command->quantity);
    s_push_string (command, command->price);
    s_push (command, request->item.name.data,
            has_price ? request->item.name.size : 0);
    s_push_string (command, command->max_quantity);
    s_push_string (command, command->max_items);
    s_push_string (command, command->ttl);
}
