//  test_broker_pick.c - which broker a client tries next, with made-up times

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cartmq/broker_pick.h"

#define MIN_MS 1000
#define MAX_MS 8000

static void
test_round_robin_over_all_up (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (3, MIN_MS, MAX_MS);
    assert_int_equal (cmq_pick_next (pick, 100), 0);
    assert_int_equal (cmq_pick_next (pick, 100), 1);
    assert_int_equal (cmq_pick_next (pick, 100), 2);
    assert_int_equal (cmq_pick_next (pick, 100), 0);
    cmq_pick_destroy (&pick);
    assert_null (pick);
    cmq_pick_destroy (&pick);
}

static void
test_one_broker_is_always_the_one (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (1, MIN_MS, MAX_MS);
    assert_int_equal (cmq_pick_next (pick, 0), 0);
    cmq_pick_failed (pick, 0, 10);
    assert_false (cmq_pick_is_up (pick, 0, 11));
    assert_int_equal (cmq_pick_retry (pick, 0, 11), 0);
    assert_int_equal (cmq_pick_next (pick, 12), 0);
    cmq_pick_destroy (&pick);
}

static void
test_down_broker_is_skipped_until_its_backoff_ends (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (3, MIN_MS, MAX_MS);
    cmq_pick_failed (pick, 1, 5000);
    assert_false (cmq_pick_is_up (pick, 1, 5000));
    assert_int_equal (cmq_pick_up_at (pick, 1), 5000 + MIN_MS);
    //  Round-robin over 0 and 2 only while 1 is down.
    assert_int_equal (cmq_pick_next (pick, 5100), 0);
    assert_int_equal (cmq_pick_next (pick, 5100), 2);
    assert_int_equal (cmq_pick_next (pick, 5100), 0);
    assert_int_equal (cmq_pick_next (pick, 5100), 2);
    //  Tried again later, not forgotten.
    assert_true (cmq_pick_is_up (pick, 1, 5000 + MIN_MS));
    assert_int_equal (cmq_pick_next (pick, 5000 + MIN_MS), 0);
    assert_int_equal (cmq_pick_next (pick, 5000 + MIN_MS), 1);
    cmq_pick_destroy (&pick);
}

static void
test_backoff_doubles_to_max_and_reply_resets_it (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (2, MIN_MS, MAX_MS);
    int64_t now = 0;
    int64_t expected[] = { 1000, 2000, 4000, 8000, 8000 };
    for (size_t step = 0; step < 5; step++) {
        cmq_pick_failed (pick, 0, now);
        assert_int_equal (cmq_pick_up_at (pick, 0) - now, expected[step]);
        now = cmq_pick_up_at (pick, 0);
        assert_true (cmq_pick_is_up (pick, 0, now));
    }
    cmq_pick_answered (pick, 0, now);
    assert_int_equal (cmq_pick_up_at (pick, 0), 0);
    assert_int_equal (cmq_pick_backoff_ms (pick, 0), MIN_MS);
    cmq_pick_failed (pick, 0, now);
    assert_int_equal (cmq_pick_up_at (pick, 0) - now, MIN_MS);
    cmq_pick_destroy (&pick);
}

static void
test_a_reply_brings_a_down_broker_up_at_once (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (2, MIN_MS, MAX_MS);
    cmq_pick_failed (pick, 1, 100);
    assert_false (cmq_pick_is_up (pick, 1, 200));
    cmq_pick_answered (pick, 1, 200);
    assert_true (cmq_pick_is_up (pick, 1, 200));
    cmq_pick_destroy (&pick);
}

static void
test_retry_goes_to_another_broker (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (3, MIN_MS, MAX_MS);
    assert_int_equal (cmq_pick_next (pick, 0), 0);
    cmq_pick_failed (pick, 0, 0);
    assert_int_equal (cmq_pick_retry (pick, 0, 0), 1);
    cmq_pick_failed (pick, 1, 0);
    assert_int_equal (cmq_pick_retry (pick, 1, 0), 2);
    //  The next call goes on after the broker that took the retry.
    assert_int_equal (cmq_pick_next (pick, 0), 2);
    cmq_pick_destroy (&pick);
}

static void
test_retry_skips_a_down_broker (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (3, MIN_MS, MAX_MS);
    cmq_pick_failed (pick, 1, 0);
    cmq_pick_failed (pick, 0, 10);
    assert_int_equal (cmq_pick_retry (pick, 0, 10), 2);
    cmq_pick_destroy (&pick);
}

static void
test_all_down_takes_the_earliest_backoff_end (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (3, MIN_MS, MAX_MS);
    cmq_pick_failed (pick, 0, 300);
    cmq_pick_failed (pick, 1, 100);
    cmq_pick_failed (pick, 2, 200);
    assert_int_equal (cmq_pick_next (pick, 400), 1);
    //  A retry never stays on the broker that just failed, even when its
    //  backoff would end first.
    assert_int_equal (cmq_pick_retry (pick, 1, 400), 2);
    cmq_pick_destroy (&pick);
}

static void
test_two_dead_brokers_alternate (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (2, MIN_MS, MAX_MS);
    size_t index = cmq_pick_next (pick, 0);
    for (int attempt = 0; attempt < 6; attempt++) {
        cmq_pick_failed (pick, index, attempt * 10);
        size_t next = cmq_pick_retry (pick, index, attempt * 10);
        assert_int_not_equal (next, index);
        index = next;
    }
    cmq_pick_destroy (&pick);
}

static void
test_async_silence_marks_down (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (2, MIN_MS, MAX_MS);
    cmq_pick_sent (pick, 0, 1000);
    cmq_pick_sent (pick, 0, 1500);
    cmq_pick_sent (pick, 1, 1000);
    cmq_pick_answered (pick, 1, 1200);
    assert_int_equal (cmq_pick_outstanding (pick, 0), 2);
    assert_int_equal (cmq_pick_outstanding (pick, 1), 0);
    //  Silence counts from the first outstanding request.
    assert_int_equal (cmq_pick_expire (pick, 3499, 2500), 0);
    assert_int_equal (cmq_pick_expire (pick, 3500, 2500), 1);
    assert_false (cmq_pick_is_up (pick, 0, 3500));
    assert_true (cmq_pick_is_up (pick, 1, 3500));
    assert_int_equal (cmq_pick_outstanding (pick, 0), 0);
    assert_int_equal (cmq_pick_next (pick, 3500), 1);
    assert_int_equal (cmq_pick_next (pick, 3500), 1);
    //  Marked once, not again while down.
    assert_int_equal (cmq_pick_expire (pick, 9000, 2500), 0);
    cmq_pick_destroy (&pick);
}

static void
test_async_idle_broker_is_not_silent (void **state)
{
    (void) state;
    cmq_pick_t *pick = cmq_pick_new (2, MIN_MS, MAX_MS);
    cmq_pick_sent (pick, 0, 0);
    cmq_pick_answered (pick, 0, 10);
    //  Nothing outstanding: a long quiet is no sign of death.
    assert_int_equal (cmq_pick_expire (pick, 100000, 2500), 0);
    //  A reply long ago does not count against a request sent now.
    cmq_pick_sent (pick, 0, 100000);
    assert_int_equal (cmq_pick_expire (pick, 101000, 2500), 0);
    //  Replies keep a busy broker up.
    cmq_pick_sent (pick, 0, 101000);
    cmq_pick_answered (pick, 0, 102000);
    assert_int_equal (cmq_pick_expire (pick, 104000, 2500), 0);
    assert_int_equal (cmq_pick_expire (pick, 104500, 2500), 1);
    cmq_pick_destroy (&pick);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_robin_over_all_up),
        cmocka_unit_test (test_one_broker_is_always_the_one),
        cmocka_unit_test (test_down_broker_is_skipped_until_its_backoff_ends),
        cmocka_unit_test (test_backoff_doubles_to_max_and_reply_resets_it),
        cmocka_unit_test (test_a_reply_brings_a_down_broker_up_at_once),
        cmocka_unit_test (test_retry_goes_to_another_broker),
        cmocka_unit_test (test_retry_skips_a_down_broker),
        cmocka_unit_test (test_all_down_takes_the_earliest_backoff_end),
        cmocka_unit_test (test_two_dead_brokers_alternate),
        cmocka_unit_test (test_async_silence_marks_down),
        cmocka_unit_test (test_async_idle_broker_is_not_silent),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
