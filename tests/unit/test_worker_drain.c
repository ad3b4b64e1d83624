//  test_worker_drain.c - how a worker with one broker takes its input
//
//  Real sockets on 127.0.0.1; the test plays the broker with a ROUTER.
//  The worker reads a socket that may hold input without polling it first
//  and ends a drain on the first read that finds nothing (issue 18): none
//  of that may lose, reorder or hide a request, let a HEARTBEAT end a
//  batch, or block a reply when the broker stops reading.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <string.h>

#include "cartmq/mdp.h"
#include "cartmq/worker.h"
#include "fake_broker.h"

#define DEADLINE_MS FAKE_BROKER_DEADLINE_MS

typedef struct {
    fake_broker_t broker;
    zframe_t *worker_id;  //  the worker's routing id at the broker
    cmq_worker_t *worker;
} fixture_t;

//  One broker, a worker with credit 8 that has said READY.
static int
setup (void **state)
{
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    fake_broker_open (&fx->broker);
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoint = fx->broker.endpoint;
    config.service = "echo";
    config.credit = 8;
    fx->worker = cmq_worker_new (&config, NULL, 0);
    assert_non_null (fx->worker);
    zmsg_t *ready = fake_broker_recv (&fx->broker, fx->worker);
    fx->worker_id = zmsg_pop (ready);
    zmsg_destroy (&ready);
    *state = fx;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fx = *state;
    cmq_worker_destroy (&fx->worker);
    zframe_destroy (&fx->worker_id);
    zsock_destroy (&fx->broker.router);
    free (fx);
    return 0;
}

//  Calls recv with timeout_ms until a request comes (within the deadline)
//  and checks its body.
static void
s_take (fixture_t *fx, int timeout_ms, const char *body)
{
    int64_t deadline = zclock_mono () + DEADLINE_MS;
    while (zclock_mono () < deadline) {
        cmq_worker_ticket_t ticket;
        zmsg_t *got = cmq_worker_recv (fx->worker, timeout_ms, &ticket);
        if (!got)
            continue;
        assert_true (zframe_streq (zmsg_first (got), body));
        zmsg_destroy (&got);
        zframe_destroy (&ticket.address);
        return;
    }
    fail_msg ("no request \"%s\" within %d ms", body, DEADLINE_MS);
}

static void
a_zero_timeout_recv_on_an_idle_socket_returns_at_once (void **state)
{
    fixture_t *fx = *state;
    int64_t start = zclock_mono ();
    for (int call = 0; call < 100; call++) {
        cmq_worker_ticket_t ticket;
        assert_null (cmq_worker_recv (fx->worker, 0, &ticket));
    }
    //  Generous: a recv that waited even 10 ms each would take a second.
    assert_true (zclock_mono () - start < 1000);
}

static void
a_request_after_an_empty_zero_timeout_recv_is_seen_by_the_next (void **state)
{
    fixture_t *fx = *state;
    cmq_worker_ticket_t ticket;
    //  Reads the socket dry, twice over.
    assert_null (cmq_worker_recv (fx->worker, 0, &ticket));
    assert_null (cmq_worker_recv (fx->worker, 0, &ticket));
    fake_broker_send (&fx->broker, fx->worker_id, "client-a", "late");
    //  Only zero-timeout calls: each must look again, not trust the last.
    s_take (fx, 0, "late");
}

static void
a_queued_batch_is_taken_whole_and_in_order (void **state)
{
    fixture_t *fx = *state;
    const char *bodies[] = { "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8" };
    for (size_t index = 0; index < 8; index++)
        fake_broker_send (&fx->broker, fx->worker_id, "client-a",
                          bodies[index]);
    s_take (fx, DEADLINE_MS, bodies[0]);
    for (size_t index = 1; index < 8; index++)
        s_take (fx, 0, bodies[index]);
    cmq_worker_ticket_t ticket;
    assert_null (cmq_worker_recv (fx->worker, 0, &ticket));
}

static void
a_heartbeat_between_requests_does_not_end_the_drain (void **state)
{
    fixture_t *fx = *state;
    fake_broker_send (&fx->broker, fx->worker_id, "client-a", "before");
    fake_broker_send (&fx->broker, fx->worker_id, NULL, NULL);
    fake_broker_send (&fx->broker, fx->worker_id, NULL, NULL);
    fake_broker_send (&fx->broker, fx->worker_id, "client-b", "after");
    s_take (fx, DEADLINE_MS, "before");
    s_take (fx, 0, "after");
}

//  A broker that stops reading: replies fill the pipe and the socket
//  buffers, then each is dropped at once with the reason, never waited on.
static void
a_reply_to_a_broker_that_stops_reading_fails_and_never_blocks (void **state)
{
    fixture_t *fx = *state;
    char payload[4096];
    memset (payload, 'x', sizeof (payload));
    uint64_t generation = cmq_worker_generation (fx->worker, 0);
    int failed = 0;
    int64_t start = zclock_mono ();
    for (int sent = 0; sent < 100000 && !failed; sent++) {
        cmq_worker_ticket_t ticket = { zframe_new ("client-a", 8), generation,
                                       0 };
        zmsg_t *body = zmsg_new ();
        zmsg_addmem (body, payload, sizeof (payload));
        if (cmq_worker_reply (fx->worker, &ticket, &body) != 0)
            failed = 1;
        assert_null (body);
        assert_null (ticket.address);
    }
    assert_true (failed);
    assert_non_null (strstr (cmq_worker_errstr (fx->worker), "not reading"));
    assert_true (zclock_mono () - start < DEADLINE_MS);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (
          a_zero_timeout_recv_on_an_idle_socket_returns_at_once, setup,
          teardown),
        cmocka_unit_test_setup_teardown (
          a_request_after_an_empty_zero_timeout_recv_is_seen_by_the_next, setup,
          teardown),
        cmocka_unit_test_setup_teardown (
          a_queued_batch_is_taken_whole_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown (
          a_heartbeat_between_requests_does_not_end_the_drain, setup, teardown),
        cmocka_unit_test_setup_teardown (
          a_reply_to_a_broker_that_stops_reading_fails_and_never_blocks, setup,
          teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
