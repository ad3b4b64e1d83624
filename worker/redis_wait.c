//  redis_wait.c - what --redis-wait makes of Redis WAIT's answer

#include <assert.h>
#include <stdio.h>

#include "cart_reply.h"
#include "redis_wait.h"

const char *
redis_wait_verdict (const redisReply *answer, int wanted, char *why,
                    size_t why_size)
{
    assert (answer && why && why_size > 0);
    long long replicas =
      answer->type == REDIS_REPLY_INTEGER ? answer->integer : -1;
    if (replicas >= wanted)
        return NULL;
    if (replicas < 0)
        snprintf (why, why_size, "WAIT gave no replica count");
    else
        snprintf (why, why_size, "%lld of %d replicas confirmed it", replicas,
                  wanted);
    return why;
}

void
redis_wait_unconfirm (const cmq_cart_request_t *const *requests,
                      cmq_cart_reply_t *replies, const size_t *pending,
                      size_t count, const char *reason)
{
    for (size_t done = 0; done < count; done++) {
        cmq_cart_reply_t *reply = &replies[pending[done]];
        if (reply->status == CMQ_CART_OK &&
            cmq_cart_method_is_mutation (requests[pending[done]]->method))
            cart_reply_set_error (
              reply, CMQ_CART_OUTCOME_UNKNOWN,
              "outcome unknown: applied on the master but %s; retry with "
              "the same request_id",
              reason);
    }
}
