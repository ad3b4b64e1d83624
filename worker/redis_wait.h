//  redis_wait.h - what --redis-wait makes of Redis WAIT's answer
//
//  Pure: the store ends a batch holding a mutation with WAIT N T; here is
//  how its answer is judged and what a shortfall does to the batch's
//  replies (contract §7): a mutation that succeeded on the master but
//  reached fewer than N replicas is 504, outcome unknown, since losing the
//  master could lose it; a retry with the same request_id is safe.

#ifndef REDIS_WAIT_H
#define REDIS_WAIT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "cartmq/cart_codec.h"

//  NULL when WAIT's answer counts at least wanted replicas, else why not
//  (written into why).
const char *redis_wait_verdict (const redisReply *answer, int wanted, char *why,
                                size_t why_size);

//  Turns each reply among replies[pending[0..count-1]] that is a 200 to a
//  mutation into a 504 saying reason; other replies stay.
void redis_wait_unconfirm (const cmq_cart_request_t *const *requests,
                           cmq_cart_reply_t *replies, const size_t *pending,
                           size_t count, const char *reason);

#endif
