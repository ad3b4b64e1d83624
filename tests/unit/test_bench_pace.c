//  test_bench_pace.c - cartmq bench --rate: the send schedule

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <czmq.h>

#include "bench_pace.h"

#define MS 1000000LL

static void
clients_are_staggered_over_one_interval (void **state)
{
    (void) state;
    //  4 clients, 1000 requests/s in all: each every 4 ms, 1 ms apart.
    bench_pace_t *pace = bench_pace_new (4, 1000, 8, 100 * MS);
    assert_int_equal (bench_pace_interval_ns (pace), 4 * MS);
    assert_int_equal (bench_pace_next_ns (pace), 100 * MS);
    assert_int_equal (bench_pace_pop_due (pace, 100 * MS), 0);
    assert_int_equal (bench_pace_pop_due (pace, 100 * MS), -1);
    assert_int_equal (bench_pace_next_ns (pace), 101 * MS);
    assert_int_equal (bench_pace_pop_due (pace, 103 * MS), 1);
    assert_int_equal (bench_pace_pop_due (pace, 103 * MS), 2);
    assert_int_equal (bench_pace_pop_due (pace, 103 * MS), 3);
    assert_int_equal (bench_pace_pop_due (pace, 103 * MS), -1);
    assert_false (bench_pace_is_waiting (pace, 2));
    assert_int_equal (bench_pace_next_ns (pace), INT64_MAX);
    bench_pace_destroy (&pace);
    assert_null (pace);
}

static void
each_send_advances_the_schedule_by_one_interval (void **state)
{
    (void) state;
    bench_pace_t *pace = bench_pace_new (2, 1000, 8, 0);
    uint64_t skipped = 0;
    assert_int_equal (bench_pace_pop_due (pace, 0), 0);
    assert_int_equal (bench_pace_take (pace, 0, 0, &skipped),
                      BENCH_PACE_ON_TIME);
    assert_int_equal (bench_pace_take (pace, 0, 0, &skipped),
                      BENCH_PACE_NOT_DUE);
    bench_pace_push (pace, 0);
    assert_true (bench_pace_is_waiting (pace, 0));
    //  Client 1 is due at 1 ms, client 0 next at 2 ms.
    assert_int_equal (bench_pace_pop_due (pace, 5 * MS), 1);
    assert_int_equal (bench_pace_pop_due (pace, 5 * MS), 0);
    //  Client 1 at 1 ms sending at 1.5 ms is on time; then 3 ms at 5 ms
    //  is late (over 1 ms behind).
    assert_int_equal (bench_pace_take (pace, 1, 3 * MS / 2, &skipped),
                      BENCH_PACE_ON_TIME);
    assert_int_equal (bench_pace_take (pace, 1, 5 * MS, &skipped),
                      BENCH_PACE_LATE);
    assert_int_equal (bench_pace_take (pace, 1, 5 * MS, &skipped),
                      BENCH_PACE_ON_TIME);  //  5 ms: exactly on time
    assert_int_equal (bench_pace_take (pace, 1, 5 * MS, &skipped),
                      BENCH_PACE_NOT_DUE);
    assert_int_equal (skipped, 0);
    bench_pace_destroy (&pace);
}

static void
a_client_far_behind_catches_up_one_window_only (void **state)
{
    (void) state;
    //  One client, 1000/s, backlog 4: at 100 ms, 101 sends are due.
    bench_pace_t *pace = bench_pace_new (1, 1000, 4, 0);
    assert_int_equal (bench_pace_pop_due (pace, 100 * MS), 0);
    uint64_t skipped = 0;
    int sent = 0;
    while (bench_pace_take (pace, 0, 100 * MS, &skipped) != BENCH_PACE_NOT_DUE)
        sent++;
    assert_int_equal (sent, 4);
    assert_int_equal (skipped, 97);
    bench_pace_push (pace, 0);
    assert_int_equal (bench_pace_next_ns (pace), 101 * MS);
    bench_pace_destroy (&pace);
}

static void
the_heap_gives_clients_in_time_order (void **state)
{
    (void) state;
    enum { CLIENTS = 50 };
    bench_pace_t *pace = bench_pace_new (CLIENTS, 1000, 4, 0);
    uint64_t skipped = 0;
    //  Everyone due by 100 ms; each takes a different number of sends,
    //  so their next times come back in a scrambled order.
    for (int64_t client = 0; client < CLIENTS; client++)
        assert_int_equal (bench_pace_pop_due (pace, 100 * MS), client);
    for (int64_t client = 0; client < CLIENTS; client++) {
        int64_t now_ns = 100 * MS + ((client * 37) % CLIENTS) * MS;
        while (bench_pace_take (pace, client, now_ns, &skipped) !=
               BENCH_PACE_NOT_DUE)
            ;
        bench_pace_push (pace, client);
    }
    int64_t last_ns = 0;
    int64_t client;
    int popped = 0;
    while (bench_pace_next_ns (pace) != INT64_MAX) {
        int64_t next_ns = bench_pace_next_ns (pace);
        assert_true (next_ns >= last_ns);
        client = bench_pace_pop_due (pace, next_ns);
        assert_true (client >= 0);
        last_ns = next_ns;
        popped++;
    }
    assert_int_equal (popped, CLIENTS);
    bench_pace_destroy (&pace);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (clients_are_staggered_over_one_interval),
        cmocka_unit_test (each_send_advances_the_schedule_by_one_interval),
        cmocka_unit_test (a_client_far_behind_catches_up_one_window_only),
        cmocka_unit_test (the_heap_gives_clients_in_time_order),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
