//  test_cart_store.c - the store's I/O part where no Redis answers: every
//  call is refused honestly, 503 and nothing applied. The pure parts have
//  their own tests (test_redis_url.c, test_cart_record.c,
//  test_cart_command.c, test_cart_reply.c); Redis itself is the harness's.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cart_store.h"

//  A store for a socket path nobody listens on: connect fails at once.
static cart_store_t *
s_store_without_redis (void)
{
    redis_url_t url;
    char error[200];
    assert_int_equal (redis_url_parse ("unix:///nonexistent/cartmq-test.sock",
                                       &url, error, sizeof (error)),
                      0);
    return cart_store_new (&url, 100);
}

//  Runs one GET and one ADD through store; both must be 503 with an error
//  holding what.
static void
s_assert_503_naming (cart_store_t *store, const char *what)
{
    cmq_cart_request_t requests[2];
    memset (requests, 0, sizeof (requests));
    requests[0].method = CMQ_CART_GET;
    requests[1].method = CMQ_CART_ADD;
    for (size_t i = 0; i < 2; i++)
        requests[i].user_id = cmq_cart_str ("u");
    const cmq_cart_request_t *valid[2] = { &requests[0], &requests[1] };
    cmq_cart_reply_t replies[2];
    memset (replies, 0, sizeof (replies));
    cart_store_execute (store, valid, replies, 2);
    for (size_t i = 0; i < 2; i++) {
        if (!strstr (replies[i].error, what))
            print_error ("error: %s\n", replies[i].error);
        assert_int_equal (replies[i].status, CMQ_CART_UNAVAILABLE);
        assert_non_null (strstr (replies[i].error, what));
        assert_null (replies[i].items);
    }
}

static void
store_without_redis_answers_every_call_503 (void **state)
{
    (void) state;
    cart_store_t *store = s_store_without_redis ();
    assert_int_equal (cart_store_connect (store), -1);
    //  The ADD was never sent: 503, not 504.
    s_assert_503_naming (store, "storage unavailable");
    cart_store_destroy (&store);
    assert_null (store);
    cart_store_destroy (&store);  //  safe twice
}

static void
empty_batch_touches_nothing (void **state)
{
    (void) state;
    cart_store_t *store = s_store_without_redis ();
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    cart_store_execute (store, NULL, &reply, 0);
    assert_int_equal (reply.status, 0);
    cart_store_destroy (&store);
}

static void
sentinel_store_without_sentinels_answers_503_naming_them (void **state)
{
    (void) state;
    redis_url_t url;
    char error[200];
    //  Port 1 on loopback: nothing listens there, connect is refused.
    assert_int_equal (redis_url_parse ("redis-sentinel://127.0.0.1:1/0#shop",
                                       &url, error, sizeof (error)),
                      0);
    cart_store_t *store = cart_store_new (&url, 100);
    cart_store_set_wait (store, 1);
    assert_int_equal (cart_store_connect (store), -1);
    assert_false (cart_store_is_connected (store));
    assert_non_null (strstr (cart_store_reason (store), "'shop'"));
    s_assert_503_naming (store, "no sentinel answered for master 'shop'");
    cart_store_destroy (&store);
}

static void
cluster_store_without_seeds_answers_503_naming_them (void **state)
{
    (void) state;
    redis_url_t url;
    char error[200];
    assert_int_equal (redis_url_parse ("redis-cluster://127.0.0.1:1", &url,
                                       error, sizeof (error)),
                      0);
    cart_store_t *store = cart_store_new (&url, 100);
    assert_int_equal (cart_store_connect (store), -1);
    s_assert_503_naming (store, "127.0.0.1:1");
    cart_store_destroy (&store);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (store_without_redis_answers_every_call_503),
        cmocka_unit_test (empty_batch_touches_nothing),
        cmocka_unit_test (
          sentinel_store_without_sentinels_answers_503_naming_them),
        cmocka_unit_test (cluster_store_without_seeds_answers_503_naming_them),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
