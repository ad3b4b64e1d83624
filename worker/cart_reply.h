//  cart_reply.h - Redis's answers and silences turned into cart replies
//
//  Pure: what the store read from Redis (or the lack of it) in, a
//  cmq_cart_reply_t out. No sockets, no logging. The status rules (§4):
//  200 with the call's fields, 404 and 409 from cart.lua's refusals, 503
//  when nothing was applied (Redis unreachable, refused the command or
//  answered nonsense), 504 "outcome unknown" for a mutation that reached
//  Redis' socket without an answer coming back.

#ifndef CART_REPLY_H
#define CART_REPLY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "cartmq/cart_codec.h"

//  Sets reply's status and its error text from format.
void cart_reply_set_error (cmq_cart_reply_t *reply, int status,
                           const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

//  Turns Redis's answer to a request into its reply: for GET an HGETALL
//  array, for mutations the script's {200, record, replayed} or
//  {status, reason}. Anything else is a 503 (reason in reply->error).
//  Sets *is_replayed for a mutation answered from its request_id. A GET
//  reply owns its items (calloc); the caller resets it.
void cart_reply_from_redis (const cmq_cart_request_t *request,
                            const redisReply *result, cmq_cart_reply_t *reply,
                            bool *is_replayed);

//  The status of a call whose answer did not come (timeout, closed or
//  broken connection): 504 if it is a mutation and any byte of it was
//  written to Redis (it may or may not run), else 503 (nothing applied).
int cart_reply_unanswered_status (cmq_cart_method_t method, bool is_sent);

//  Fills reply for a call whose answer did not come, by the rule above,
//  reason saying what happened.
void cart_reply_unanswered (const cmq_cart_request_t *request, bool is_sent,
                            cmq_cart_reply_t *reply, const char *reason);

//  Fills reply as a 503: the store could not run the call at all.
void cart_reply_unavailable (cmq_cart_reply_t *reply, const char *reason);

#endif
