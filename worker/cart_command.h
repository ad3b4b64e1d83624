//  cart_command.h - the Redis command for one cart request
//
//  GET is one HGETALL of the cart key; each mutation one EVALSHA of
//  worker/cart.lua with the argument list the script reads (KEYS: the cart
//  key, then the request-id key when the call has one; ARGV: method,
//  item id, quantity, price, name, the two cart limits and the request-id
//  TTL). Pure and allocation-free: the argument bytes live in the command
//  itself or are borrowed from the request, for the worker's hot path.

#ifndef CART_COMMAND_H
#define CART_COMMAND_H

#include <stddef.h>

#include "cart_record.h"
#include "cartmq/cart_codec.h"

#define CART_COMMAND_MAX_ARGS  13
#define CART_COMMAND_SHA_BYTES 40  //  a script's SHA-1 in hex

//  One request's command as argv and sizes, ready for
//  redisAppendCommandArgv. Valid while the request and the command live.
typedef struct {
    const char *argv[CART_COMMAND_MAX_ARGS];
    size_t sizes[CART_COMMAND_MAX_ARGS];
    int argc;
    char cart_key[CART_RECORD_MAX_KEY_BYTES];
    char request_key[CART_RECORD_MAX_KEY_BYTES];
    char method[4];
    char quantity[24];
    char price[24];
    char max_quantity[24];
    char max_items[24];
    char ttl[24];
} cart_command_t;

//  Fills command for a valid request; sha names cart.lua in Redis
//  (CART_COMMAND_SHA_BYTES, borrowed).
void cart_command_build (cart_command_t *command,
                         const cmq_cart_request_t *request, const char *sha);

#endif
