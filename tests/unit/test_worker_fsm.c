//  test_worker_fsm.c - worker heartbeat and reconnect timing, made-up times

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cartmq/worker_fsm.h"

//  Every test: heartbeat 1000 ms, liveness 3 (expiry 3000 ms), backoff
//  100 ms doubling to 1000 ms, connected at time 0.
#define HEARTBEAT_MS 1000
#define EXPIRY_MS    3000

static int
setup (void **state)
{
    cmq_worker_fsm_t *fsm = cmq_worker_fsm_new (HEARTBEAT_MS, 3, 100, 1000);
    cmq_worker_fsm_on_connect (fsm, 0);
    *state = fsm;
    return 0;
}

static int
teardown (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_destroy (&fsm);
    assert_null (fsm);
    return 0;
}

//  The broker says DISCONNECT at now_ms; returns when on_tick first says
//  RECONNECT, checking it says nothing the millisecond before.
static int64_t
s_disconnect_and_find_reconnect (cmq_worker_fsm_t *fsm, int64_t now_ms)
{
    cmq_worker_fsm_on_receive (fsm, now_ms, CMQ_WORKER_HEARD_DISCONNECT);
    int64_t wait_ms = cmq_worker_fsm_wait_ms (fsm, now_ms);
    int64_t due_ms = now_ms + wait_ms;
    if (wait_ms > 0)
        assert_int_equal (cmq_worker_fsm_on_tick (fsm, due_ms - 1),
                          CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, due_ms),
                      CMQ_WORKER_DO_RECONNECT);
    return due_ms;
}

static void
heartbeat_is_due_exactly_one_interval_after_connect (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 0), CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 999), CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1000),
                      CMQ_WORKER_DO_HEARTBEAT);
}

static void
heartbeat_stays_due_until_something_is_sent (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1000),
                      CMQ_WORKER_DO_HEARTBEAT);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1200),
                      CMQ_WORKER_DO_HEARTBEAT);
    cmq_worker_fsm_on_send (fsm, 1200);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1200),
                      CMQ_WORKER_DO_NOTHING);
}

static void
sending_anything_restarts_the_heartbeat_interval (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_on_send (fsm, 600);  //  a REPLY
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1000),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1599),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1600),
                      CMQ_WORKER_DO_HEARTBEAT);
}

static void
hearing_from_the_broker_does_not_restart_the_heartbeat_interval (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_on_receive (fsm, 900, CMQ_WORKER_HEARD_WORK);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1000),
                      CMQ_WORKER_DO_HEARTBEAT);
}

static void
silent_broker_means_reconnect_exactly_at_liveness_intervals (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_on_send (fsm, 1000);
    cmq_worker_fsm_on_send (fsm, 2000);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2999),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
reconnect_beats_a_due_heartbeat (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    //  Nothing sent since connect: a heartbeat is long overdue too.
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
reconnect_stays_due_until_connected_again (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS + 5),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_on_connect (fsm, EXPIRY_MS + 5);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS + 5),
                      CMQ_WORKER_DO_NOTHING);
}

static void
hearing_anything_postpones_expiry (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    //  Neither work nor DISCONNECT (say, a message we cannot parse): the
    //  broker is still alive.
    cmq_worker_fsm_on_receive (fsm, 2500, CMQ_WORKER_HEARD_OTHER);
    cmq_worker_fsm_on_send (fsm, 2500);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_NOTHING);
    cmq_worker_fsm_on_send (fsm, 3500);
    cmq_worker_fsm_on_send (fsm, 4500);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2500 + EXPIRY_MS - 1),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2500 + EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
reconnect_gives_the_broker_a_full_liveness_window (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_on_connect (fsm, 3010);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 3010 + 999),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 3010 + 1000),
                      CMQ_WORKER_DO_HEARTBEAT);
}

static void
first_disconnect_reconnects_at_once (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_on_receive (fsm, 500, CMQ_WORKER_HEARD_DISCONNECT);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 500), 0);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 500),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
repeated_disconnects_back_off_doubling_up_to_the_cap (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    const int64_t expected_ms[] = { 0, 100, 200, 400, 800, 1000, 1000 };
    int64_t now_ms = 500;
    for (size_t index = 0; index < sizeof (expected_ms) / sizeof (int64_t);
         index++) {
        int64_t due_ms = s_disconnect_and_find_reconnect (fsm, now_ms);
        assert_int_equal (due_ms - now_ms, expected_ms[index]);
        cmq_worker_fsm_on_connect (fsm, due_ms);
        now_ms = due_ms + 10;
    }
}

static void
repeated_expiries_back_off_from_the_moment_of_expiry (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_on_connect (fsm, EXPIRY_MS);
    //  Ticked late, well after the second expiry at 6000: still due at
    //  6000 + 100, not 100 after the tick.
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2 * EXPIRY_MS + 50),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2 * EXPIRY_MS + 99),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2 * EXPIRY_MS + 100),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
request_from_the_broker_resets_the_backoff (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    int64_t now_ms = s_disconnect_and_find_reconnect (fsm, 100);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    now_ms = s_disconnect_and_find_reconnect (fsm, now_ms);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    cmq_worker_fsm_on_receive (fsm, now_ms + 1, CMQ_WORKER_HEARD_WORK);
    assert_int_equal (s_disconnect_and_find_reconnect (fsm, now_ms + 2),
                      now_ms + 2);
}

static void
heartbeat_from_the_broker_resets_the_backoff (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_on_connect (fsm, EXPIRY_MS);
    cmq_worker_fsm_on_receive (fsm, 3200, CMQ_WORKER_HEARD_WORK);
    //  Backoff 0 again: the next expiry reconnects at once.
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 3200 + EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
other_messages_do_not_reset_the_backoff (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    int64_t now_ms = s_disconnect_and_find_reconnect (fsm, 100);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    cmq_worker_fsm_on_receive (fsm, now_ms + 1, CMQ_WORKER_HEARD_OTHER);
    assert_int_equal (s_disconnect_and_find_reconnect (fsm, now_ms + 2),
                      now_ms + 2 + 100);
}

static void
no_heartbeat_while_waiting_out_a_backoff (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    int64_t now_ms = s_disconnect_and_find_reconnect (fsm, 100);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    cmq_worker_fsm_on_receive (fsm, 2000, CMQ_WORKER_HEARD_DISCONNECT);
    //  Heartbeat overdue since 1100, reconnect due at 2100.
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2050),
                      CMQ_WORKER_DO_NOTHING);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2100),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
second_disconnect_does_not_delay_a_pending_reconnect (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    int64_t now_ms = s_disconnect_and_find_reconnect (fsm, 100);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    cmq_worker_fsm_on_receive (fsm, 1000,
                               CMQ_WORKER_HEARD_DISCONNECT);  //  due 1100
    cmq_worker_fsm_on_receive (fsm, 1050, CMQ_WORKER_HEARD_DISCONNECT);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1100),
                      CMQ_WORKER_DO_RECONNECT);
    //  And the backoff advanced once, not twice: next is 200.
    cmq_worker_fsm_on_connect (fsm, 1100);
    assert_int_equal (s_disconnect_and_find_reconnect (fsm, 1200), 1400);
}

static void
wait_ms_counts_down_to_the_next_heartbeat (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 0), 1000);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 600), 400);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 1000), 0);
    cmq_worker_fsm_on_send (fsm, 1000);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 1000), 1000);
}

static void
wait_ms_stops_at_expiry_when_it_comes_first (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_on_send (fsm, 2500);  //  heartbeat due 3500
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 2600), 400);
}

static void
wait_ms_covers_the_backoff_and_is_never_negative (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    int64_t now_ms = s_disconnect_and_find_reconnect (fsm, 100);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, now_ms), 0);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    cmq_worker_fsm_on_receive (fsm, 500,
                               CMQ_WORKER_HEARD_DISCONNECT);  //  due 600
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 500), 100);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 570), 30);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 10000), 0);
}

static void
wait_ms_after_unticked_expiry_includes_the_backoff (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_on_connect (fsm, EXPIRY_MS);
    //  Second expiry at 6000, reconnect at 6100.
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 6000), 100);
    assert_int_equal (cmq_worker_fsm_wait_ms (fsm, 6040), 60);
}

static void
socket_closes_at_expiry_not_when_the_backoff_ends (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, EXPIRY_MS),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_on_connect (fsm, EXPIRY_MS);
    assert_false (cmq_worker_fsm_is_waiting (fsm));
    //  Second expiry at 6000: the reconnect waits 100 ms, the socket does
    //  not (a READY it holds would register if the broker came back).
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2 * EXPIRY_MS - 1),
                      CMQ_WORKER_DO_HEARTBEAT);
    assert_false (cmq_worker_fsm_is_waiting (fsm));
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2 * EXPIRY_MS),
                      CMQ_WORKER_DO_NOTHING);
    assert_true (cmq_worker_fsm_is_waiting (fsm));
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 2 * EXPIRY_MS + 100),
                      CMQ_WORKER_DO_RECONNECT);
}

static void
socket_closes_on_disconnect_before_the_backoff (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    int64_t now_ms = s_disconnect_and_find_reconnect (fsm, 100);
    cmq_worker_fsm_on_connect (fsm, now_ms);
    assert_false (cmq_worker_fsm_is_waiting (fsm));
    cmq_worker_fsm_on_receive (fsm, 1000,
                               CMQ_WORKER_HEARD_DISCONNECT);  //  due 1100
    assert_true (cmq_worker_fsm_is_waiting (fsm));
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 1000),
                      CMQ_WORKER_DO_NOTHING);
}

static void
waiting_ends_only_with_a_new_connection (void **state)
{
    cmq_worker_fsm_t *fsm = *state;
    cmq_worker_fsm_on_receive (fsm, 500, CMQ_WORKER_HEARD_DISCONNECT);
    //  Hearing from the broker meanwhile (a late message) changes nothing:
    //  the socket it came on is being dropped.
    cmq_worker_fsm_on_receive (fsm, 500, CMQ_WORKER_HEARD_WORK);
    assert_true (cmq_worker_fsm_is_waiting (fsm));
    cmq_worker_fsm_on_connect (fsm, 500);
    assert_false (cmq_worker_fsm_is_waiting (fsm));
}

static void
large_intervals_do_not_overflow (void **state)
{
    (void) state;
    cmq_worker_fsm_t *fsm = cmq_worker_fsm_new (2000000000, 3, 100, 1000);
    cmq_worker_fsm_on_connect (fsm, 0);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 5999999999LL),
                      CMQ_WORKER_DO_HEARTBEAT);
    assert_int_equal (cmq_worker_fsm_on_tick (fsm, 6000000000LL),
                      CMQ_WORKER_DO_RECONNECT);
    cmq_worker_fsm_destroy (&fsm);
}

int
main (void)
{
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T (heartbeat_is_due_exactly_one_interval_after_connect),
        T (heartbeat_stays_due_until_something_is_sent),
        T (sending_anything_restarts_the_heartbeat_interval),
        T (hearing_from_the_broker_does_not_restart_the_heartbeat_interval),
        T (silent_broker_means_reconnect_exactly_at_liveness_intervals),
        T (reconnect_beats_a_due_heartbeat),
        T (reconnect_stays_due_until_connected_again),
        T (hearing_anything_postpones_expiry),
        T (reconnect_gives_the_broker_a_full_liveness_window),
        T (first_disconnect_reconnects_at_once),
        T (repeated_disconnects_back_off_doubling_up_to_the_cap),
        T (repeated_expiries_back_off_from_the_moment_of_expiry),
        T (request_from_the_broker_resets_the_backoff),
        T (heartbeat_from_the_broker_resets_the_backoff),
        T (other_messages_do_not_reset_the_backoff),
        T (no_heartbeat_while_waiting_out_a_backoff),
        T (second_disconnect_does_not_delay_a_pending_reconnect),
        T (wait_ms_counts_down_to_the_next_heartbeat),
        T (wait_ms_stops_at_expiry_when_it_comes_first),
        T (wait_ms_covers_the_backoff_and_is_never_negative),
        T (wait_ms_after_unticked_expiry_includes_the_backoff),
        T (socket_closes_at_expiry_not_when_the_backoff_ends),
        T (socket_closes_on_disconnect_before_the_backoff),
        T (waiting_ends_only_with_a_new_connection),
        cmocka_unit_test (large_intervals_do_not_overflow),
    };
#undef T
    return cmocka_run_group_tests (tests, NULL, NULL);
}
