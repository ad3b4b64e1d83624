//  test_client_brokers.c - one client, several brokers (client.h, §7)
//
//  Real sockets on 127.0.0.1: plain ROUTERs stand in for brokers, read
//  and answered by the test itself, or by an echo actor when the client
//  is blocked in a sync call.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <string.h>

#include "cartmq/client.h"
#include "cartmq/mdp.h"

//  A broker stand-in: where it listens, and its socket.
typedef struct {
    char endpoint[64];
    zsock_t *router;
    bool is_bodiless;  //  the echo actor answers with no body frame
} stand_in_t;

//  A ROUTER bound to an ephemeral port: a broker that reads nothing
//  unless the test does.
static void
stand_in_open (stand_in_t *broker)
{
    broker->router = zsock_new_router ("@tcp://127.0.0.1:*");
    assert_non_null (broker->router);
    const char *bound = zsock_endpoint (broker->router);
    assert_non_null (bound);
    snprintf (broker->endpoint, sizeof (broker->endpoint), "%s", bound);
}

//  Async: count one-frame requests to the echo service.
static void
send_many (cmq_client_t *client, int count)
{
    for (int index = 0; index < count; index++) {
        zmsg_t *body = zmsg_new ();
        zmsg_addstr (body, "x");
        assert_int_equal (cmq_client_send (client, "echo", &body), 0);
    }
}

//  Requests waiting at broker within wait_ms; answers each when is_answer.
static int
stand_in_take (stand_in_t *broker, int wait_ms, bool is_answer)
{
    int count = 0;
    zsock_set_rcvtimeo (broker->router, wait_ms);
    zmsg_t *msg;
    while ((msg = zmsg_recv (broker->router))) {
        count++;
        //  identity, "", MDPC01, service, body: the reply has that shape.
        if (is_answer)
            zmsg_send (&msg, broker->router);
        zmsg_destroy (&msg);
        zsock_set_rcvtimeo (broker->router, 50);
    }
    return count;
}

//  An echo broker on its own thread, for sync calls.
static void
s_echo_actor (zsock_t *pipe, void *args)
{
    stand_in_t *broker = (stand_in_t *) args;
    stand_in_open (broker);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, broker->router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != broker->router)
            break;
        zmsg_t *msg = zmsg_recv (broker->router);
        //  identity, "", MDPC01, service, body...: drop the body
        while (broker->is_bodiless && zmsg_size (msg) > 4) {
            zframe_t *last = zmsg_last (msg);
            zmsg_remove (msg, last);
            zframe_destroy (&last);
        }
        zmsg_send (&msg, broker->router);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&broker->router);
}

static cmq_client_t *
client_new (const char *const *endpoints, size_t count, int timeout_ms,
            int retries)
{
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoints = endpoints;
    config.endpoint_count = count;
    config.timeout_ms = timeout_ms;
    config.retries = retries;
    char error[CMQ_ERRSTR_SIZE] = "";
    cmq_client_t *client = cmq_client_new (&config, error, sizeof (error));
    assert_non_null (client);
    return client;
}

static void
endpoints_from_a_list_or_a_comma_string (void **state)
{
    (void) state;
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = "tcp://127.0.0.1:9, tcp://127.0.0.1:10";
    cmq_client_t *client = cmq_client_new (&config, NULL, 0);
    assert_non_null (client);
    assert_int_equal (cmq_client_endpoint_count (client), 2);
    assert_string_equal (cmq_client_endpoint (client, 1), "tcp://127.0.0.1:10");
    //  Several sockets: none is "the" socket.
    assert_null (cmq_client_socket (client));
    cmq_client_destroy (&client);

    const char *list[] = { "tcp://127.0.0.1:9", "tcp://127.0.0.1:10,ipc://x" };
    client = client_new (list, 2, 100, 0);
    assert_int_equal (cmq_client_endpoint_count (client), 3);
    assert_string_equal (cmq_client_endpoint (client, 2), "ipc://x");
    cmq_client_destroy (&client);

    client = client_new (list, 1, 100, 0);
    assert_non_null (cmq_client_socket (client));
    cmq_client_destroy (&client);
}

static void
an_endpoint_given_twice_is_refused (void **state)
{
    (void) state;
    char error[CMQ_ERRSTR_SIZE] = "";
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = "tcp://127.0.0.1:9,tcp://127.0.0.1:9";
    assert_null (cmq_client_new (&config, error, sizeof (error)));
    assert_string_equal (
      error, "duplicate endpoint tcp://127.0.0.1:9: one connection per broker");
    const char *list[] = { "", " , ", "tcp://127.0.0.1:9",
                           "tcp://127.0.0.1:10,tcp://127.0.0.1:9" };
    config.endpoints = list;
    config.endpoint_count = 2;
    assert_null (cmq_client_new (&config, error, sizeof (error)));
    assert_string_equal (error, "empty endpoint list");
    config.endpoint_count = 4;
    assert_null (cmq_client_new (&config, error, sizeof (error)));
    assert_non_null (strstr (error, "duplicate endpoint tcp://127.0.0.1:9"));
}

static void
sync_call_moves_to_the_other_broker (void **state)
{
    (void) state;
    stand_in_t silent = { 0 }, echo = { 0 };
    stand_in_open (&silent);
    zactor_t *actor = zactor_new (s_echo_actor, &echo);
    const char *list[] = { silent.endpoint, echo.endpoint };
    cmq_client_t *client = client_new (list, 2, 200, 2);
    void *reply = NULL;
    size_t size = 0;
    assert_int_equal (
      cmq_client_call_bytes (client, "echo", "hi", 2, &reply, &size), 0);
    assert_int_equal (size, 2);
    free (reply);
    size_t brokers[4];
    assert_int_equal (cmq_client_last_call (client, brokers, 4), 2);
    assert_int_equal (brokers[0], 0);
    assert_int_equal (brokers[1], 1);
    //  The silent broker is down now: the next call skips it.
    assert_int_equal (
      cmq_client_call_bytes (client, "echo", "hi", 2, &reply, &size), 0);
    free (reply);
    assert_int_equal (cmq_client_last_call (client, brokers, 4), 1);
    assert_int_equal (brokers[0], 1);
    cmq_client_counters_t counters;
    cmq_client_counters (client, &counters);
    assert_int_equal (counters.calls, 2);
    assert_int_equal (counters.attempts, 3);
    assert_int_equal (counters.switches, 1);
    assert_int_equal (counters.timeouts, 1);
    assert_int_equal (counters.replies, 2);
    //  The same bytes reached the silent one.
    assert_int_equal (stand_in_take (&silent, 100, false), 1);
    cmq_client_destroy (&client);
    zactor_destroy (&actor);
    zsock_destroy (&silent.router);
}

static void
no_reply_names_attempts_and_brokers (void **state)
{
    (void) state;
    stand_in_t first = { 0 }, second = { 0 };
    stand_in_open (&first);
    stand_in_open (&second);
    const char *list[] = { first.endpoint, second.endpoint };
    cmq_client_t *client = client_new (list, 2, 50, 2);
    void *reply = NULL;
    size_t size = 0;
    assert_int_equal (
      cmq_client_call_bytes (client, "echo", "x", 1, &reply, &size), -1);
    char expected[CMQ_ERRSTR_SIZE];
    snprintf (expected, sizeof (expected),
              "no reply from 'echo' after 3 attempts of 50 ms at %s, %s",
              first.endpoint, second.endpoint);
    assert_string_equal (cmq_client_errstr (client), expected);
    size_t brokers[4];
    assert_int_equal (cmq_client_last_call (client, brokers, 4), 3);
    assert_int_equal (brokers[0], 0);
    assert_int_equal (brokers[1], 1);
    assert_int_equal (brokers[2], 0);
    cmq_client_destroy (&client);
    zsock_destroy (&first.router);
    zsock_destroy (&second.router);
}

static void
async_spreads_and_avoids_a_silent_broker (void **state)
{
    (void) state;
    stand_in_t live = { 0 }, silent = { 0 };
    stand_in_open (&live);
    stand_in_open (&silent);
    const char *list[] = { live.endpoint, silent.endpoint };
    cmq_client_t *client = client_new (list, 2, 100, 0);
    send_many (client, 4);
    assert_int_equal (stand_in_take (&live, 1000, true), 2);
    assert_int_equal (stand_in_take (&silent, 1000, false), 2);
    for (int index = 0; index < 2; index++) {
        zmsg_t *reply = cmq_client_recv (client, 1000, NULL);
        assert_non_null (reply);
        zmsg_destroy (&reply);
    }
    assert_null (cmq_client_recv (client, 0, NULL));
    //  Past the timeout with two requests unanswered: down.
    zclock_sleep (150);
    send_many (client, 4);
    assert_int_equal (stand_in_take (&live, 1000, false), 4);
    assert_int_equal (stand_in_take (&silent, 100, false), 0);
    cmq_client_counters_t counters;
    cmq_client_counters (client, &counters);
    assert_int_equal (counters.sends, 8);
    assert_int_equal (counters.timeouts, 1);
    assert_int_equal (counters.replies, 2);
    cmq_client_destroy (&client);
    zsock_destroy (&live.router);
    zsock_destroy (&silent.router);
}

//  Another MDP broker may pass on a reply with no body frame: the client
//  drops it as malformed (cmq_mdp_parse wants a body), so the call ends
//  as "no reply", never in a crash.
static void
reply_without_a_body_is_dropped_not_a_crash (void **state)
{
    (void) state;
    stand_in_t echo = { .is_bodiless = true };
    zactor_t *actor = zactor_new (s_echo_actor, &echo);
    const char *list[] = { echo.endpoint };
    cmq_client_t *client = client_new (list, 1, 300, 0);
    void *reply = NULL;
    size_t size = 99;
    assert_int_equal (
      cmq_client_call_bytes (client, "echo", "x", 1, &reply, &size), -1);
    assert_null (reply);
    assert_non_null (strstr (cmq_client_errstr (client), "no reply"));
    cmq_client_destroy (&client);
    zactor_destroy (&actor);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (endpoints_from_a_list_or_a_comma_string),
        cmocka_unit_test (an_endpoint_given_twice_is_refused),
        cmocka_unit_test (sync_call_moves_to_the_other_broker),
        cmocka_unit_test (no_reply_names_attempts_and_brokers),
        cmocka_unit_test (async_spreads_and_avoids_a_silent_broker),
        cmocka_unit_test (reply_without_a_body_is_dropped_not_a_crash),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
