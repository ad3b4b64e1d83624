//  test_mdp.c - the MDP parser: READY credit frames and client messages

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>

#include "cartmq/mdp.h"

//  The credit READY carries in a frame of these bytes, or -1 when the
//  parser refuses the frame as a credit.
static int
credit_of_bytes (const void *data, size_t size)
{
    zmsg_t *msg = cmq_mdp_worker_ready ("echo", 1);
    zmsg_addmem (msg, data, size);
    cmq_mdp_message_t parsed;
    cmq_mdp_status_t status = cmq_mdp_parse (msg, &parsed);
    zmsg_destroy (&msg);
    if (status == CMQ_MDP_BAD_CREDIT)
        return -1;
    assert_int_equal (status, CMQ_MDP_OK);
    return parsed.credit;
}

static int
credit_of (const char *text)
{
    return credit_of_bytes (text, strlen (text));
}

//  1 to 10 ASCII digits, leading zeros allowed, value 1..1000 (§3).
static void
credit_takes_one_to_ten_digits_with_leading_zeros (void **state)
{
    (void) state;
    assert_int_equal (credit_of ("1"), 1);
    assert_int_equal (credit_of ("16"), 16);
    assert_int_equal (credit_of ("0016"), 16);
    assert_int_equal (credit_of ("00016"), 16);
    assert_int_equal (credit_of ("0000000016"), 16);
    assert_int_equal (credit_of ("1000"), 1000);
    assert_int_equal (credit_of ("0000001000"), 1000);
}

static void
credit_refuses_everything_else (void **state)
{
    (void) state;
    const char *bad[] = { "",     "0",          "0000000000", "00000000016",
                          "1001", "9999999999", "4294967312", "+5",
                          " 5",   "5 ",         "-1",         "1.5",
                          "abc",  "1e3",        "0x10" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad[0]); index++) {
        if (credit_of (bad[index]) != -1)
            fail_msg ("credit %s was accepted", bad[index]);
    }
    assert_int_equal (credit_of_bytes ("1\0", 2), -1);
}

static zmsg_t *
ready (const char *credit, const char *extra)
{
    zmsg_t *msg = cmq_mdp_worker_ready ("echo", 1);
    zmsg_addstr (msg, credit);
    if (extra)
        zmsg_addstr (msg, extra);
    return msg;
}

static void
ready_parses_its_credit_frame (void **state)
{
    (void) state;
    cmq_mdp_message_t parsed;
    zmsg_t *msg = ready ("00016", NULL);
    assert_int_equal (cmq_mdp_parse (msg, &parsed), CMQ_MDP_OK);
    assert_int_equal (parsed.credit, 16);
    zmsg_destroy (&msg);
    msg = ready ("00000000016", NULL);
    assert_int_equal (cmq_mdp_parse (msg, &parsed), CMQ_MDP_BAD_CREDIT);
    zmsg_destroy (&msg);
    msg = ready ("16", "extra");
    assert_int_equal (cmq_mdp_parse (msg, &parsed), CMQ_MDP_EXTRA_FRAMES);
    zmsg_destroy (&msg);
    msg = cmq_mdp_worker_ready ("echo", 1);
    assert_int_equal (cmq_mdp_parse (msg, &parsed), CMQ_MDP_OK);
    assert_int_equal (parsed.credit, 1);
    zmsg_destroy (&msg);
}

//  The parser says a message is a client's even when it is invalid, so
//  the broker never answers it with a worker command.
static void
invalid_client_message_is_still_a_clients (void **state)
{
    (void) state;
    cmq_mdp_message_t parsed;
    zmsg_t *msg = cmq_mdp_client_request ("echo", NULL);
    assert_int_equal (cmq_mdp_parse (msg, &parsed), CMQ_MDP_NO_BODY);
    assert_int_equal (parsed.kind, CMQ_MDP_FROM_CLIENT);
    zmsg_destroy (&msg);
    msg = zmsg_new ();
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    assert_int_equal (cmq_mdp_parse (msg, &parsed), CMQ_MDP_NO_SERVICE);
    assert_int_equal (parsed.kind, CMQ_MDP_FROM_CLIENT);
    zmsg_destroy (&msg);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (credit_takes_one_to_ten_digits_with_leading_zeros),
        cmocka_unit_test (credit_refuses_everything_else),
        cmocka_unit_test (ready_parses_its_credit_frame),
        cmocka_unit_test (invalid_client_message_is_still_a_clients),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
