//  test_redis_wait.c - WAIT's answer judged, and a shortfall's 504s

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis_wait.h"

static void
enough_replicas_is_no_shortfall (void **state)
{
    (void) state;
    char why[80] = "";
    redisReply answer;
    memset (&answer, 0, sizeof (answer));
    answer.type = REDIS_REPLY_INTEGER;
    answer.integer = 2;
    assert_null (redis_wait_verdict (&answer, 2, why, sizeof (why)));
    assert_null (redis_wait_verdict (&answer, 1, why, sizeof (why)));
    answer.integer = 0;
    assert_string_equal (redis_wait_verdict (&answer, 1, why, sizeof (why)),
                         "0 of 1 replicas confirmed it");
    answer.type = REDIS_REPLY_ERROR;  //  say, WAIT refused on a replica
    assert_non_null (strstr (redis_wait_verdict (&answer, 1, why, sizeof (why)),
                             "no replica count"));
}

static void
shortfall_makes_successful_mutations_504 (void **state)
{
    (void) state;
    cmq_cart_request_t requests[4];
    memset (requests, 0, sizeof (requests));
    requests[0].method = CMQ_CART_ADD;
    requests[1].method = CMQ_CART_GET;
    requests[2].method = CMQ_CART_REMOVE;
    requests[3].method = CMQ_CART_CLEAR;
    const cmq_cart_request_t *valid[4] = { &requests[0], &requests[1],
                                           &requests[2], &requests[3] };
    cmq_cart_reply_t replies[4];
    memset (replies, 0, sizeof (replies));
    replies[0].status = CMQ_CART_OK;
    replies[1].status = CMQ_CART_OK;         //  a read: nothing to lose
    replies[2].status = CMQ_CART_NOT_FOUND;  //  refused: nothing applied
    replies[3].status = CMQ_CART_OK;         //  not in pending: untouched
    size_t pending[3] = { 0, 1, 2 };
    redis_wait_unconfirm (valid, replies, pending, 3, "0 of 1 replicas");
    assert_int_equal (replies[0].status, CMQ_CART_OUTCOME_UNKNOWN);
    assert_non_null (strstr (replies[0].error, "0 of 1 replicas"));
    assert_non_null (strstr (replies[0].error, "same request_id"));
    assert_int_equal (replies[1].status, CMQ_CART_OK);
    assert_int_equal (replies[2].status, CMQ_CART_NOT_FOUND);
    assert_int_equal (replies[3].status, CMQ_CART_OK);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (enough_replicas_is_no_shortfall),
        cmocka_unit_test (shortfall_makes_successful_mutations_504),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
