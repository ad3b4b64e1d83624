//  test_worker_brokers.c - one worker, several brokers (§7)
//
//  Real sockets on 127.0.0.1; the test plays two brokers with ROUTERs.
//  Each broker hears READY with the full credit, a reply goes back to the
//  broker its request came from, one broker's backlog does not starve the
//  other, and a stale ticket of one broker is dropped without harming the
//  other's.

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
#define BACKLOG     10

//  A ROUTER on an ephemeral port standing in for a broker, and the
//  routing id the worker's socket has there once it said READY.
typedef struct {
    fake_broker_t fake;
    zframe_t *worker_id;
} broker_t;

typedef struct {
    broker_t brokers[2];
    cmq_worker_t *worker;
} fixture_t;

//  Two brokers, a worker with credit 4 serving both; each broker has had
//  its READY (checked: credit frame "4") and knows the worker's id.
static int
setup (void **state)
{
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    const char *endpoints[2];
    for (int index = 0; index < 2; index++) {
        broker_t *broker = &fx->brokers[index];
        fake_broker_open (&broker->fake);
        endpoints[index] = broker->fake.endpoint;
    }
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoints = endpoints;
    config.endpoint_count = 2;
    config.service = "echo";
    config.credit = 4;
    fx->worker = cmq_worker_new (&config, NULL, 0);
    assert_non_null (fx->worker);
    for (int index = 0; index < 2; index++) {
        zmsg_t *ready = fake_broker_recv (&fx->brokers[index].fake, fx->worker);
        fx->brokers[index].worker_id = zmsg_pop (ready);
        //  "" MDPW01 READY echo 4
        assert_int_equal (zmsg_size (ready), 5);
        assert_true (zframe_streq (zmsg_last (ready), "4"));
        zmsg_destroy (&ready);
    }
    *state = fx;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fx = *state;
    cmq_worker_destroy (&fx->worker);
    for (int index = 0; index < 2; index++) {
        zframe_destroy (&fx->brokers[index].worker_id);
        zsock_destroy (&fx->brokers[index].fake.router);
    }
    free (fx);
    return 0;
}

//  The broker sends the worker REQUEST for client, body.
static void
s_request (broker_t *broker, const char *client, const char *body)
{
    fake_broker_send (&broker->fake, broker->worker_id, client, body);
}

//  The next request the worker takes, its body checked; fills ticket.
static void
s_take (fixture_t *fx, cmq_worker_ticket_t *ticket, const char *body)
{
    zmsg_t *got = cmq_worker_recv (fx->worker, DEADLINE_MS, ticket);
    assert_non_null (got);
    assert_true (zframe_streq (zmsg_first (got), body));
    zmsg_destroy (&got);
}

//  Replies "done" to ticket; the broker it names must get that REPLY for
//  client, and the other broker nothing.
static void
s_reply_reaches (fixture_t *fx, cmq_worker_ticket_t *ticket, const char *client)
{
    size_t index = ticket->broker;
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "done");
    assert_int_equal (cmq_worker_reply (fx->worker, ticket, &body), 0);
    zmsg_t *reply = fake_broker_recv (&fx->brokers[index].fake, fx->worker);
    //  id "" MDPW01 REPLY client "" done
    assert_int_equal (zmsg_size (reply), 7);
    zframe_t *frame = zmsg_first (reply);
    for (int skip = 0; skip < 4; skip++)
        frame = zmsg_next (reply);
    assert_true (zframe_streq (frame, client));
    zmsg_destroy (&reply);
    assert_false (zsock_events (fx->brokers[1 - index].fake.router) &
                  ZMQ_POLLIN);
}

static void
each_broker_is_numbered_in_config_order (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (cmq_worker_brokers (fx->worker), 2);
    for (size_t index = 0; index < 2; index++) {
        assert_string_equal (cmq_worker_broker_endpoint (fx->worker, index),
                             fx->brokers[index].fake.endpoint);
        assert_non_null (cmq_worker_broker_socket (fx->worker, index));
        assert_int_equal (cmq_worker_generation (fx->worker, index), 1);
    }
}

static void
a_reply_goes_to_the_broker_its_request_came_from (void **state)
{
    fixture_t *fx = *state;
    cmq_worker_ticket_t ticket;
    s_request (&fx->brokers[1], "client-b", "from-b");
    s_take (fx, &ticket, "from-b");
    assert_int_equal (ticket.broker, 1);
    s_reply_reaches (fx, &ticket, "client-b");
    s_request (&fx->brokers[0], "client-a", "from-a");
    s_take (fx, &ticket, "from-a");
    assert_int_equal (ticket.broker, 0);
    s_reply_reaches (fx, &ticket, "client-a");
}

//  True once the worker's socket to broker index has a message waiting.
static bool
s_waiting (fixture_t *fx, size_t index)
{
    return zsock_events (cmq_worker_broker_socket (fx->worker, index)) &
           ZMQ_POLLIN;
}

static void
a_backlog_on_one_broker_does_not_starve_the_other (void **state)
{
    fixture_t *fx = *state;
    char body[32];
    for (int number = 0; number < BACKLOG; number++) {
        snprintf (body, sizeof (body), "a-%d", number);
        s_request (&fx->brokers[0], "client-a", body);
    }
    s_request (&fx->brokers[1], "client-b", "b-0");
    int64_t deadline = zclock_mono () + DEADLINE_MS;
    while (!(s_waiting (fx, 0) && s_waiting (fx, 1)))
        assert_true (zclock_mono () < deadline);
    //  Both brokers have work waiting: they take turns, so B's one
    //  request is among the first two taken, whatever A has queued.
    cmq_worker_ticket_t tickets[BACKLOG + 1];
    size_t taken_from_b_at = BACKLOG + 1;
    int next_a = 0;
    for (size_t taken = 0; taken < BACKLOG + 1; taken++) {
        zmsg_t *got =
          cmq_worker_recv (fx->worker, DEADLINE_MS, &tickets[taken]);
        assert_non_null (got);
        if (tickets[taken].broker == 1) {
            assert_true (zframe_streq (zmsg_first (got), "b-0"));
            taken_from_b_at = taken;
        } else {
            snprintf (body, sizeof (body), "a-%d", next_a++);
            assert_true (zframe_streq (zmsg_first (got), body));
        }
        zmsg_destroy (&got);
    }
    assert_true (taken_from_b_at < 2);
    for (size_t taken = 0; taken < BACKLOG + 1; taken++)
        zframe_destroy (&tickets[taken].address);
}

static void
a_stale_ticket_of_one_broker_leaves_the_other_serving (void **state)
{
    fixture_t *fx = *state;
    cmq_worker_ticket_t from_a, from_b;
    s_request (&fx->brokers[0], "client-a", "a");
    s_take (fx, &from_a, "a");
    s_request (&fx->brokers[1], "client-b", "b");
    s_take (fx, &from_b, "b");
    //  Broker A forgets the worker: it reconnects to A alone.
    zmsg_t *bye = cmq_mdp_worker_signal (CMQ_MDPW_DISCONNECT);
    zmsg_push (bye, zframe_dup (fx->brokers[0].worker_id));
    assert_int_equal (zmsg_send (&bye, fx->brokers[0].fake.router), 0);
    zmsg_t *ready = fake_broker_recv (&fx->brokers[0].fake, fx->worker);
    zmsg_destroy (&ready);
    assert_int_equal (cmq_worker_generation (fx->worker, 0), 2);
    assert_int_equal (cmq_worker_generation (fx->worker, 1), 1);
    zmsg_t *late = zmsg_new ();
    assert_int_equal (cmq_worker_reply (fx->worker, &from_a, &late), -1);
    assert_null (from_a.address);
    assert_non_null (strstr (cmq_worker_errstr (fx->worker), "stale"));
    s_reply_reaches (fx, &from_b, "client-b");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (
          each_broker_is_numbered_in_config_order, setup, teardown),
        cmocka_unit_test_setup_teardown (
          a_reply_goes_to_the_broker_its_request_came_from, setup, teardown),
        cmocka_unit_test_setup_teardown (
          a_backlog_on_one_broker_does_not_starve_the_other, setup, teardown),
        cmocka_unit_test_setup_teardown (
          a_stale_ticket_of_one_broker_leaves_the_other_serving, setup,
          teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
