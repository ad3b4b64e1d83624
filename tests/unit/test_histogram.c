//  test_histogram.c - the one log-linear histogram (cartmq bench, broker)

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cartmq/histogram.h"

//  ---------------------------------------------------------------------
//  What cartmq bench keeps: nanoseconds at 9 bits (moved from test_bench.c)

static void
small_values_are_reported_exactly (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    for (uint64_t value = 1; value <= 100; value++)
        cmq_histogram_record (histogram, value);
    assert_int_equal (cmq_histogram_count (histogram), 100);
    assert_int_equal (cmq_histogram_percentile (histogram, 50), 50);
    assert_int_equal (cmq_histogram_percentile (histogram, 99), 99);
    assert_int_equal (cmq_histogram_percentile (histogram, 100), 100);
    assert_int_equal (cmq_histogram_max (histogram), 100);
    assert_true (cmq_histogram_mean (histogram) == 50.5);
    cmq_histogram_destroy (&histogram);
    assert_null (histogram);
}

static void
large_values_are_within_one_in_256 (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    uint64_t values[] = {
        513,       1000,        123457,        9999999,
        987654321, 60000000000, 1000000000000, 8000000000000
    };
    for (size_t index = 0; index < sizeof (values) / sizeof (values[0]);
         index++) {
        cmq_histogram_reset (histogram);
        cmq_histogram_record (histogram, values[index]);
        //  A value above the maximum would be capped: record a larger one.
        cmq_histogram_record (histogram, values[index] * 4);
        uint64_t reported = cmq_histogram_percentile (histogram, 50);
        double error = (double) reported - (double) values[index];
        if (error < 0)
            error = -error;
        assert_true (error <= (double) values[index] / 256.0);
    }
    cmq_histogram_destroy (&histogram);
}

static void
percentiles_pick_the_right_rank (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    //  990 fast values and 10 slow ones: p99 is fast, p99.9 is slow.
    for (int index = 0; index < 990; index++)
        cmq_histogram_record (histogram, 10);
    for (int index = 0; index < 10; index++)
        cmq_histogram_record (histogram, 100);
    assert_int_equal (cmq_histogram_percentile (histogram, 99), 10);
    assert_int_equal (cmq_histogram_percentile (histogram, 99.1), 100);
    assert_int_equal (cmq_histogram_percentile (histogram, 0), 10);
    cmq_histogram_destroy (&histogram);
}

static void
percentile_never_exceeds_the_exact_maximum (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    cmq_histogram_record (histogram, 1026);  //  bucket 1026..1027
    assert_int_equal (cmq_histogram_percentile (histogram, 100), 1026);
    assert_int_equal (cmq_histogram_max (histogram), 1026);
    cmq_histogram_destroy (&histogram);
}

static void
empty_histogram_reports_zero (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    assert_int_equal (cmq_histogram_percentile (histogram, 50), 0);
    assert_int_equal (cmq_histogram_max (histogram), 0);
    assert_true (cmq_histogram_mean (histogram) == 0);
    cmq_histogram_record (histogram, 5);
    cmq_histogram_reset (histogram);
    assert_int_equal (cmq_histogram_count (histogram), 0);
    cmq_histogram_destroy (&histogram);
    cmq_histogram_destroy (&histogram);  //  safe twice
}

static void
huge_values_are_clamped_not_lost (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    cmq_histogram_record (histogram, UINT64_MAX);
    assert_int_equal (cmq_histogram_count (histogram), 1);
    assert_true (cmq_histogram_percentile (histogram, 50) > 1000000000000);
    cmq_histogram_destroy (&histogram);
}

//  ---------------------------------------------------------------------
//  What the broker keeps per service: microseconds at 4 bits

static void
coarse_histogram_has_eight_steps_per_power_of_two (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (4, 42);
    //  250 falls in 240..255: the top errs on the slow side, the middle
    //  stays within the step, neither is below the bucket.
    cmq_histogram_record (histogram, 250);
    assert_int_equal (cmq_histogram_percentile_top (histogram, 99), 255);
    assert_int_equal (cmq_histogram_percentile (histogram, 99), 248);
    //  Values below 16 are exact.
    cmq_histogram_reset (histogram);
    cmq_histogram_record (histogram, 13);
    assert_int_equal (cmq_histogram_percentile_top (histogram, 99), 13);
    cmq_histogram_destroy (&histogram);
}

static void
coarse_histogram_clamps_at_its_range (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (4, 42);
    cmq_histogram_record (histogram, UINT64_MAX);
    uint64_t top = (UINT64_C (1) << 42) - 1;
    assert_int_equal (cmq_histogram_max (histogram), top);
    assert_int_equal (cmq_histogram_sum (histogram), top);
    assert_int_equal (cmq_histogram_percentile_top (histogram, 50), top);
    cmq_histogram_destroy (&histogram);
}

static void
merge_adds_counts_sums_and_keeps_the_larger_max (void **state)
{
    (void) state;
    cmq_histogram_t *left = cmq_histogram_new (4, 42);
    cmq_histogram_t *right = cmq_histogram_new (4, 42);
    for (int index = 0; index < 99; index++)
        cmq_histogram_record (left, 10);
    cmq_histogram_record (right, 1000);
    cmq_histogram_record (right, 3);
    cmq_histogram_merge (left, right);
    assert_int_equal (cmq_histogram_count (left), 101);
    assert_int_equal (cmq_histogram_sum (left), 99 * 10 + 1000 + 3);
    assert_int_equal (cmq_histogram_max (left), 1000);
    //  Rank 100 of 101 is the last 10; rank 101 is 1000's bucket.
    assert_int_equal (cmq_histogram_percentile_top (left, 99), 10);
    assert_int_equal (cmq_histogram_percentile_top (left, 100), 1023);
    assert_int_equal (cmq_histogram_percentile (left, 100), 992);
    cmq_histogram_destroy (&left);
    cmq_histogram_destroy (&right);
}

static void
summary_divides_by_the_unit (void **state)
{
    (void) state;
    cmq_histogram_t *histogram = cmq_histogram_new (9, 43);
    cmq_histogram_record (histogram, 200000);
    cmq_histogram_record (histogram, 400000);
    cmq_histogram_summary_t us = cmq_histogram_summary (histogram, 1000);
    assert_true (us.max == 400.0);
    assert_true (us.mean == 300.0);
    assert_true (us.p50 > 199.0 && us.p50 < 201.0);
    assert_true (us.p999 > 399.0 && us.p999 <= 400.0);
    cmq_histogram_destroy (&histogram);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (small_values_are_reported_exactly),
        cmocka_unit_test (large_values_are_within_one_in_256),
        cmocka_unit_test (percentiles_pick_the_right_rank),
        cmocka_unit_test (percentile_never_exceeds_the_exact_maximum),
        cmocka_unit_test (empty_histogram_reports_zero),
        cmocka_unit_test (huge_values_are_clamped_not_lost),
        cmocka_unit_test (coarse_histogram_has_eight_steps_per_power_of_two),
        cmocka_unit_test (coarse_histogram_clamps_at_its_range),
        cmocka_unit_test (merge_adds_counts_sums_and_keeps_the_larger_max),
        cmocka_unit_test (summary_divides_by_the_unit),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
