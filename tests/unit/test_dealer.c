//  test_dealer.c - what the client and worker libraries share: one DEALER
//  set-up, one error model, one rule for defaults (cartmq/common.h)
//
//  Real sockets on 127.0.0.1; the test plays the broker with a ROUTER.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <string.h>

#include "cartmq/client.h"
#include "cartmq/mdp.h"
#include "cartmq/worker.h"
#include "fake_broker.h"

//  Generous: only a broken library waits this long.
#define DEADLINE_MS 5000

static void
client_takes_null_config_as_defaults (void **state)
{
    (void) state;
    char error[CMQ_ERRSTR_SIZE] = "";
    cmq_client_t *client = cmq_client_new (NULL, error, sizeof (error));
    assert_non_null (client);
    assert_string_equal (error, "");
    assert_string_equal (cmq_client_errstr (client), "no error");
    cmq_client_destroy (&client);
}

static void
constructors_say_why_in_the_callers_buffer (void **state)
{
    (void) state;
    char error[CMQ_ERRSTR_SIZE] = "";
    cmq_client_config_t client_config;
    cmq_client_config_defaults (&client_config);
    client_config.endpoint = "nowhere";
    assert_null (cmq_client_new (&client_config, error, sizeof (error)));
    assert_non_null (strstr (error, "cannot connect to 'nowhere'"));
    //  No buffer: the caller does not ask why.
    assert_null (cmq_client_new (&client_config, NULL, 0));

    cmq_worker_config_t worker_config;
    cmq_worker_config_defaults (&worker_config);
    worker_config.service = "echo";
    worker_config.endpoint = "nowhere";
    error[0] = 0;
    assert_null (cmq_worker_new (&worker_config, error, sizeof (error)));
    //  The same set-up, so the same words.
    assert_non_null (strstr (error, "cannot connect to 'nowhere'"));
    worker_config.endpoint = NULL;
    worker_config.curve_server = "broker.cert";
    assert_null (cmq_worker_new (&worker_config, error, sizeof (error)));
    assert_non_null (strstr (error, "go together"));
}

static void
worker_takes_null_config_as_defaults_which_name_no_service (void **state)
{
    (void) state;
    char error[CMQ_ERRSTR_SIZE] = "";
    assert_null (cmq_worker_new (NULL, error, sizeof (error)));
    assert_string_equal (error, "a service name is required");
}

static void
client_keeps_the_reason_a_call_failed (void **state)
{
    (void) state;
    fake_broker_t broker;
    fake_broker_open (&broker);  //  never answers
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = broker.endpoint;
    config.timeout_ms = 50;
    config.retries = 0;
    cmq_client_t *client = cmq_client_new (&config, NULL, 0);
    assert_non_null (client);
    void *reply = NULL;
    size_t reply_size = 0;
    assert_int_equal (
      cmq_client_call_bytes (client, "echo", "x", 1, &reply, &reply_size), -1);
    assert_non_null (
      strstr (cmq_client_errstr (client), "no reply from 'echo'"));
    assert_int_equal (
      cmq_client_call_bytes (client, "", "x", 1, &reply, &reply_size), -1);
    assert_non_null (strstr (cmq_client_errstr (client), "service name empty"));
    assert_null (reply);
    cmq_client_destroy (&client);
    zsock_destroy (&broker.router);
}

//  What the notify hook heard, in order.
typedef struct {
    cmq_worker_notice_t levels[16];
    char texts[16][CMQ_ERRSTR_SIZE];
    size_t count;
} notices_t;

static void
s_record (void *arg, cmq_worker_notice_t level, const char *text)
{
    notices_t *notices = (notices_t *) arg;
    if (notices->count < 16) {
        notices->levels[notices->count] = level;
        snprintf (notices->texts[notices->count], CMQ_ERRSTR_SIZE, "%s", text);
        notices->count++;
    }
}

static const char *
s_heard (notices_t *notices, cmq_worker_notice_t level, const char *part)
{
    for (size_t index = 0; index < notices->count; index++)
        if (notices->levels[index] == level &&
            strstr (notices->texts[index], part))
            return notices->texts[index];
    return NULL;
}

static void
worker_takes_zero_and_negative_as_defaults (void **state)
{
    (void) state;
    fake_broker_t broker;
    fake_broker_open (&broker);
    cmq_worker_config_t config;
    memset (&config, 0, sizeof (config));
    config.endpoint = broker.endpoint;
    config.service = "echo";
    config.heartbeat_ms = -1;
    config.liveness = -1;
    config.credit = -1;
    config.reconnect_min_ms = -1;
    config.reconnect_max_ms = 0;
    char error[CMQ_ERRSTR_SIZE] = "";
    cmq_worker_t *worker = cmq_worker_new (&config, error, sizeof (error));
    assert_non_null (worker);
    //  READY with the default credit 1: no credit frame.
    zmsg_t *ready = fake_broker_recv (&broker, worker);
    assert_int_equal (zmsg_size (ready), 5);  //  id "" MDPW01 READY echo
    zframe_t *service = zmsg_last (ready);
    assert_true (zframe_streq (service, "echo"));
    zmsg_destroy (&ready);
    cmq_worker_destroy (&worker);
    zsock_destroy (&broker.router);
}

static void
worker_tells_its_notices_and_keeps_reply_errors (void **state)
{
    (void) state;
    fake_broker_t broker;
    fake_broker_open (&broker);
    notices_t notices;
    memset (&notices, 0, sizeof (notices));
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoint = broker.endpoint;
    config.service = "echo";
    config.notify = s_record;
    config.notify_arg = &notices;
    cmq_worker_t *worker = cmq_worker_new (&config, NULL, 0);
    assert_non_null (worker);
    zmsg_t *ready = fake_broker_recv (&broker, worker);
    zframe_t *identity = zmsg_pop (ready);
    zmsg_destroy (&ready);
    assert_non_null (s_heard (&notices, CMQ_WORKER_NOTICE_DEBUG, "READY sent"));

    //  A command no worker takes: dropped, and the caller told.
    zmsg_t *bad = zmsg_new ();
    zmsg_append (bad, &identity);
    zmsg_addstr (bad, "");
    zmsg_addstr (bad, CMQ_MDPW_HEADER);
    zmsg_addmem (bad, "\x09", 1);
    assert_int_equal (zmsg_send (&bad, broker.router), 0);
    int64_t deadline = zclock_mono () + DEADLINE_MS;
    while (!s_heard (&notices, CMQ_WORKER_NOTICE_WARNING, "dropped message") &&
           zclock_mono () < deadline) {
        cmq_worker_ticket_t ticket;
        assert_null (cmq_worker_recv (worker, 10, &ticket));
    }
    assert_non_null (s_heard (&notices, CMQ_WORKER_NOTICE_WARNING,
                              "dropped message from broker=tcp://127.0.0.1:"));

    //  A reply with a ticket from an older socket: -1, reason kept.
    cmq_worker_ticket_t stale = { zframe_new ("client", 6), 0, 0 };
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "late");
    assert_int_equal (cmq_worker_reply (worker, &stale, &body), -1);
    assert_null (body);
    assert_null (stale.address);
    assert_non_null (
      strstr (cmq_worker_errstr (worker), "dropped stale reply broker="));
    cmq_worker_destroy (&worker);
    zsock_destroy (&broker.router);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (client_takes_null_config_as_defaults),
        cmocka_unit_test (constructors_say_why_in_the_callers_buffer),
        cmocka_unit_test (
          worker_takes_null_config_as_defaults_which_name_no_service),
        cmocka_unit_test (client_keeps_the_reason_a_call_failed),
        cmocka_unit_test (worker_takes_zero_and_negative_as_defaults),
        cmocka_unit_test (worker_tells_its_notices_and_keeps_reply_errors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
