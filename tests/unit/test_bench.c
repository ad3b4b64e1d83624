//  test_bench.c - cartmq bench: method mix, reply matching

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

//  ---------------------------------------------------------------------
//  Method mix

static void
mix_reads_names_and_weights (void **state)
{
    (void) state;
    bench_mix_t mix;
    char error[128] = "";
    assert_int_equal (
      bench_mix_parse ("add=60,get=30,remove=10", &mix, error, sizeof (error)),
      0);
    assert_int_equal (mix.weights[CMQ_CART_ADD], 60);
    assert_int_equal (mix.weights[CMQ_CART_GET], 30);
    assert_int_equal (mix.weights[CMQ_CART_REMOVE], 10);
    assert_int_equal (mix.weights[CMQ_CART_UPDATE], 0);
    assert_int_equal (mix.total, 100);
    assert_int_equal (
      bench_mix_parse ("clear=1,update=0", &mix, error, sizeof (error)), 0);
    assert_int_equal (mix.weights[CMQ_CART_CLEAR], 1);
}

static void
mix_refuses_what_it_cannot_read (void **state)
{
    (void) state;
    bench_mix_t mix;
    char error[128];
    const char *bad[] = { "",
                          "add",
                          "add=",
                          "add=x",
                          "buy=10",
                          "add=1,add=2",
                          "add=0",
                          "add=1000001",
                          "add=1,",
                          "add=-1",
                          "=5",
                          "add=10,,get=1",
                          "add=99999999" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad[0]); index++) {
        error[0] = 0;
        assert_int_equal (
          bench_mix_parse (bad[index], &mix, error, sizeof (error)), -1);
        assert_true (strncmp (error, "--mix: ", 7) == 0);
    }
}

static void
mix_pick_follows_the_weights (void **state)
{
    (void) state;
    bench_mix_t mix;
    char error[128];
    assert_int_equal (
      bench_mix_parse ("get=1,add=2,remove=1", &mix, error, sizeof (error)), 0);
    //  Methods are laid out in enum order: get, add, remove.
    assert_int_equal (bench_mix_pick (&mix, 0), CMQ_CART_GET);
    assert_int_equal (bench_mix_pick (&mix, 1), CMQ_CART_ADD);
    assert_int_equal (bench_mix_pick (&mix, 2), CMQ_CART_ADD);
    assert_int_equal (bench_mix_pick (&mix, 3), CMQ_CART_REMOVE);
    assert_int_equal (bench_mix_pick (&mix, 4), CMQ_CART_GET);
    assert_int_equal (bench_mix_pick (&mix, UINT32_MAX), CMQ_CART_REMOVE);
}

//  ---------------------------------------------------------------------
//  Whole runs against a fake service

//  A peer that answers each MDP client request at once: echo bodies are
//  sent back unchanged; cart requests get the reply shape of their
//  method, add and update naming their item as the real service does.
//  The fake echoes opaque bodies and answers the cart service from the
//  request. With args set ("reorder") it answers every remove with 404 at
//  once but holds each add's reply until after the next reply (or 20 ms of
//  quiet), so replies come out of order, as they do from several workers.
static void
s_fake_service (zsock_t *pipe, void *args)
{
    bool is_reordering = args && streq ((const char *) args, "reorder");
    //  "hold-removes": removes succeed but their replies are held as adds'
    //  are above; updates get 404 at once.
    bool is_holding_removes =
      args && streq ((const char *) args, "hold-removes");
    zmsg_t *held = NULL;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert_non_null (router);
    zsock_signal (pipe, 0);  //  zactor_new waits for this
    zstr_sendf (pipe, "%s", zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        //  A held reply goes out when nothing else comes for 20 ms, so the
        //  last one is never held for good.
        void *which = zpoller_wait (poller, held ? 20 : -1);
        if (!which && zpoller_expired (poller)) {
            zmsg_send (&held, router);
            continue;
        }
        if (which != router)
            break;  //  $TERM or interrupted
        zmsg_t *msg = zmsg_recv (router);
        zmsg_first (msg);  //  routing id
        zmsg_next (msg);   //  ""
        zmsg_next (msg);   //  MDPC01
        zframe_t *service = zmsg_next (msg);
        zframe_t *body = zmsg_next (msg);
        if (zframe_streq (service, "cart")) {
            cmq_cart_request_t request;
            char error[128];
            cmq_cart_reply_t reply;
            memset (&reply, 0, sizeof (reply));
            reply.status =
              cmq_cart_request_decode (zframe_data (body), zframe_size (body),
                                       &request, error, sizeof (error));
            reply.method = request.method;
            cmq_cart_text_set (&reply.item_id, request.item.id.data,
                               CMQ_CART_MAX_NAME_BYTES);
            reply.quantity = 1;
            snprintf (reply.message, sizeof (reply.message), "%s",
                      request.method == CMQ_CART_REMOVE ? "Item removed"
                                                        : "Cart cleared");
            if ((is_reordering && request.method == CMQ_CART_REMOVE) ||
                (is_holding_removes && request.method == CMQ_CART_UPDATE)) {
                reply.status = CMQ_CART_NOT_FOUND;
                snprintf (error, sizeof (error), "item not in cart");
            }
            if (reply.status != 200)
                snprintf (reply.error, sizeof (reply.error), "%s", error);
            size_t size = 0;
            void *encoded = cmq_cart_reply_encode (&reply, &size);
            zframe_reset (body, encoded, size);
            free (encoded);
            if ((is_reordering && request.method == CMQ_CART_ADD) ||
                (is_holding_removes && request.method == CMQ_CART_REMOVE)) {
                zmsg_t *previous = held;
                held = msg;
                if (previous)
                    zmsg_send (&previous, router);
                continue;
            }
        }
        zmsg_send (&msg, router);
        if (held)
            zmsg_send (&held, router);
    }
    zmsg_destroy (&held);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  Runs bench_main with stdout captured; returns its exit code and
//  the last line it printed.
static int
s_run_captured (char **argv, int argc, char *output, size_t output_size)
{
    fflush (stdout);
    FILE *capture = tmpfile ();
    assert_non_null (capture);
    int saved = dup (STDOUT_FILENO);
    dup2 (fileno (capture), STDOUT_FILENO);
    bench_globals_t globals = { NULL, NULL, NULL, 2500 };
    int rc = bench_main (&globals, argc, argv);
    fflush (stdout);
    dup2 (saved, STDOUT_FILENO);
    close (saved);
    rewind (capture);
    output[0] = 0;
    char line[2048];
    while (fgets (line, sizeof (line), capture))
        snprintf (output, output_size, "%s", line);
    fclose (capture);
    return rc;
}

static void
echo_run_matches_every_reply_to_its_request (void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_fake_service, NULL);
    char *endpoint = zstr_recv (fake);
    char *argv[] = { "bench", "--connect",  endpoint, "--service",
                     "echo",  "--clients",  "3",      "--window",
                     "5",     "--requests", "600",    "--size",
                     "40",    "--json" };
    char output[2048];
    int rc = s_run_captured (argv, 14, output, sizeof (output));
    assert_int_equal (rc, 0);
    assert_non_null (strstr (output, "\"requests\":600,"));
    assert_non_null (strstr (output, "\"sent\":600,"));
    assert_non_null (strstr (output, "\"errors\":0,"));
    assert_non_null (strstr (output, "\"late\":0,"));
    assert_non_null (strstr (output, "\"latency_exact\":true"));
    zstr_free (&endpoint);
    zactor_destroy (&fake);
}

static void
cart_run_matches_every_method_of_the_mix (void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_fake_service, NULL);
    char *endpoint = zstr_recv (fake);
    char *argv[] = { "bench",
                     "--connect",
                     endpoint,
                     "--clients",
                     "2",
                     "--window",
                     "4",
                     "--requests",
                     "400",
                     "--mix",
                     "add=40,get=20,remove=20,update=10,clear=10",
                     "--request-ids",
                     "--json" };
    char output[2048];
    int rc = s_run_captured (argv, 13, output, sizeof (output));
    assert_int_equal (rc, 0);
    assert_non_null (strstr (output, "\"requests\":400,"));
    assert_non_null (strstr (output, "\"errors\":0,"));
    assert_non_null (strstr (output, "\"late\":0,"));
    assert_non_null (strstr (output, "\"bad_replies\":0,"));
    assert_non_null (strstr (output, "\"statuses\":{\"200\":400}"));
    assert_non_null (strstr (output, "\"latency_exact\":false"));
    zstr_free (&endpoint);
    zactor_destroy (&fake);
}

static void
error_replies_out_of_order_are_charged_to_a_method_that_can_fail (void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_fake_service, "reorder");
    char *endpoint = zstr_recv (fake);
    char *argv[] = { "bench",
                     "--connect",
                     endpoint,
                     "--clients",
                     "1",
                     "--window",
                     "4",
                     "--requests",
                     "200",
                     "--mix",
                     "add=50,remove=50",
                     "--timeout-ms",
                     "1000",
                     "--json" };
    char output[2048];
    int rc = s_run_captured (argv, 14, output, sizeof (output));
    assert_int_equal (rc, 0);
    assert_non_null (strstr (output, "\"requests\":200,"));
    assert_non_null (strstr (output, "\"timeouts\":0,"));
    assert_non_null (strstr (output, "\"late\":0,"));
    zstr_free (&endpoint);
    zactor_destroy (&fake);
}

//  A cart service that answers the first request only once the second
//  has come, just before the second's own answer: the late reply is sent
//  to the socket the first request came from.
static void
s_late_service (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert_non_null (router);
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%s", zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zmsg_t *held = NULL;
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *body = zmsg_last (msg);
        cmq_cart_request_t request;
        char error[128];
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.status =
          cmq_cart_request_decode (zframe_data (body), zframe_size (body),
                                   &request, error, sizeof (error));
        reply.method = request.method;
        cmq_cart_text_set (&reply.item_id, request.item.id.data,
                           CMQ_CART_MAX_NAME_BYTES);
        reply.quantity = 1;
        size_t size = 0;
        void *encoded = cmq_cart_reply_encode (&reply, &size);
        zframe_reset (body, encoded, size);
        free (encoded);
        if (!held) {
            held = msg;
            continue;
        }
        zmsg_send (&held, router);
        zmsg_send (&msg, router);
    }
    zmsg_destroy (&held);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
reply_to_a_request_given_up_on_is_never_taken_for_a_later_one (void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_late_service, NULL);
    char *endpoint = zstr_recv (fake);
    //  Window 1: the second add reuses the first one's slot and item id,
    //  so only the socket can tell the late reply from the right one.
    char *argv[] = { "bench", "--connect", endpoint, "--clients",
                     "1",     "--window",  "1",      "--requests",
                     "2",     "--mix",     "add=1",  "--timeout-ms",
                     "150",   "--json" };
    char output[2048];
    int rc = s_run_captured (argv, 14, output, sizeof (output));
    assert_int_equal (rc, 0);
    if (!strstr (output, "\"requests\":1,") ||
        !strstr (output, "\"timeouts\":1,") || !strstr (output, "\"late\":0,"))
        fail_msg ("late reply taken for the next request: %s", output);
    zstr_free (&endpoint);
    zactor_destroy (&fake);
}

//  A 404 can come from a remove or an update. Charged by guess to a
//  remove whose success then comes, it must not leave the update waiting
//  for a reply that already came (a false timeout) nor count the remove's
//  reply as late.
static void
a_wrong_guess_is_corrected_when_the_guessed_slot_gets_its_own_reply (
  void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_fake_service, "hold-removes");
    char *endpoint = zstr_recv (fake);
    char *argv[] = { "bench",
                     "--connect",
                     endpoint,
                     "--clients",
                     "1",
                     "--window",
                     "2",
                     "--requests",
                     "300",
                     "--mix",
                     "remove=50,update=50",
                     "--timeout-ms",
                     "400",
                     "--json" };
    char output[2048];
    int rc = s_run_captured (argv, 14, output, sizeof (output));
    assert_int_equal (rc, 0);
    if (!strstr (output, "\"requests\":300,") ||
        !strstr (output, "\"timeouts\":0,") || !strstr (output, "\"late\":0,"))
        fail_msg ("a wrongly charged 404 was not set right: %s", output);
    zstr_free (&endpoint);
    zactor_destroy (&fake);
}

static void
silent_service_counts_timeouts_and_exits_3 (void **state)
{
    (void) state;
    //  A bound ROUTER that never answers.
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    char *argv[] = { "bench",
                     "--connect",
                     (char *) zsock_endpoint (router),
                     "--service",
                     "echo",
                     "--requests",
                     "3",
                     "--window",
                     "3",
                     "--timeout-ms",
                     "100",
                     "--json" };
    char output[2048];
    int rc = s_run_captured (argv, 12, output, sizeof (output));
    assert_int_equal (rc, 3);
    assert_non_null (strstr (output, "\"timeouts\":3,"));
    assert_non_null (strstr (output, "\"requests\":0,"));
    zsock_destroy (&router);
}

//  --services N: round-robin over S0..S<N-1>; 1 keeps S itself.
static void
services_go_round_robin_and_one_keeps_the_name (void **state)
{
    (void) state;
    char buffer[BENCH_SERVICE_NAME_MAX + 1];
    assert_string_equal (
      bench_service_name ("echo", 1, 7, buffer, sizeof (buffer)), "echo");
    assert_string_equal (
      bench_service_name ("echo", 3, 0, buffer, sizeof (buffer)), "echo0");
    assert_string_equal (
      bench_service_name ("echo", 3, 4, buffer, sizeof (buffer)), "echo1");
    assert_string_equal (
      bench_service_name ("svc", 1000, 1999, buffer, sizeof (buffer)),
      "svc999");
    //  Too long for the buffer, or over 255 bytes: NULL.
    assert_null (bench_service_name ("echo", 100, 99, buffer, 6));
    char longest[300];
    memset (longest, 'a', 255);
    longest[255] = 0;
    assert_null (bench_service_name (longest, 10, 0, buffer, sizeof (buffer)));
    assert_non_null (
      bench_service_name (longest, 1, 0, buffer, sizeof (buffer)));
    char *too_long[] = { "bench", "--service", longest, "--services", "10" };
    char output[2048];
    assert_int_equal (s_run_captured (too_long, 5, output, sizeof (output)), 2);
}

static void
bad_flags_exit_2_before_connecting (void **state)
{
    (void) state;
    char *bad_mix[] = { "bench", "--mix", "buy=1" };
    char *bad_window[] = { "bench", "--window", "1001" };
    char *bad_size[] = { "bench", "--service", "echo", "--size", "4" };
    char *positional[] = { "bench", "extra" };
    char output[2048];
    assert_int_equal (s_run_captured (bad_mix, 3, output, sizeof (output)), 2);
    assert_int_equal (s_run_captured (bad_window, 3, output, sizeof (output)),
                      2);
    assert_int_equal (s_run_captured (bad_size, 5, output, sizeof (output)), 2);
    assert_int_equal (s_run_captured (positional, 2, output, sizeof (output)),
                      2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (mix_reads_names_and_weights),
        cmocka_unit_test (mix_refuses_what_it_cannot_read),
        cmocka_unit_test (mix_pick_follows_the_weights),
        cmocka_unit_test (echo_run_matches_every_reply_to_its_request),
        cmocka_unit_test (cart_run_matches_every_method_of_the_mix),
        cmocka_unit_test (
          error_replies_out_of_order_are_charged_to_a_method_that_can_fail),
        cmocka_unit_test (
          reply_to_a_request_given_up_on_is_never_taken_for_a_later_one),
        cmocka_unit_test (
          a_wrong_guess_is_corrected_when_the_guessed_slot_gets_its_own_reply),
        cmocka_unit_test (silent_service_counts_timeouts_and_exits_3),
        cmocka_unit_test (services_go_round_robin_and_one_keeps_the_name),
        cmocka_unit_test (bad_flags_exit_2_before_connecting),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
