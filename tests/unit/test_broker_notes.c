//  test_broker_notes.c - drop and refusal lines, summarised (§3)

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_notes.h"
#include "cartmq/log.h"

static const char *s_expired = "expired";
static const char *s_full = "queue_full";

static void
one_line_per_kind_reason_and_name (void **state)
{
    (void) state;
    broker_notes_t *notes = broker_notes_new (0);
    for (int round = 0; round < 5; round++) {
        broker_notes_add (notes, BROKER_NOTE_DROPPED, s_expired, "echo", 4);
        broker_notes_add (notes, BROKER_NOTE_DROPPED, s_full, "echo", 4);
        broker_notes_add (notes, BROKER_NOTE_DROPPED, s_expired, "cart", 4);
        broker_notes_add (notes, BROKER_NOTE_REFUSED, s_expired, "cart", 4);
    }
    assert_int_equal (broker_notes_lines (notes), 4);
    assert_int_equal (broker_notes_unlisted (notes), 0);
    broker_notes_destroy (&notes);
    assert_null (notes);
}

static void
past_the_limit_only_a_count_is_kept (void **state)
{
    (void) state;
    broker_notes_t *notes = broker_notes_new (0);
    for (int index = 0; index < BROKER_NOTES_MAX + 10; index++) {
        byte name[2] = { (byte) index, 0xFF };
        broker_notes_add (notes, BROKER_NOTE_CLIENT_INVALID, s_full, name, 2);
    }
    assert_int_equal (broker_notes_lines (notes), BROKER_NOTES_MAX);
    assert_int_equal (broker_notes_unlisted (notes), 10);
    broker_notes_destroy (&notes);
}

static void
written_at_most_once_an_interval (void **state)
{
    (void) state;
    int64_t now_us = 5 * BROKER_NOTES_INTERVAL_US;
    broker_notes_t *notes = broker_notes_new (now_us);
    //  The first summary may be written at once.
    broker_notes_add (notes, BROKER_NOTE_DROPPED, s_expired, "echo", 4);
    broker_notes_write (notes, now_us);
    assert_int_equal (broker_notes_lines (notes), 0);
    //  The next waits for the interval to pass.
    broker_notes_add (notes, BROKER_NOTE_DROPPED, s_expired, "echo", 4);
    broker_notes_write (notes, now_us + BROKER_NOTES_INTERVAL_US - 1);
    assert_int_equal (broker_notes_lines (notes), 1);
    broker_notes_write (notes, now_us + BROKER_NOTES_INTERVAL_US);
    assert_int_equal (broker_notes_lines (notes), 0);
    broker_notes_destroy (&notes);
}

int
main (void)
{
    cmq_log_init ("test_broker_notes", CMQ_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (one_line_per_kind_reason_and_name),
        cmocka_unit_test (past_the_limit_only_a_count_is_kept),
        cmocka_unit_test (written_at_most_once_an_interval),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
