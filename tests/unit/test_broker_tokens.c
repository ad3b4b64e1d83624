//  test_broker_tokens.c - the token table that names requests (§3)

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_tokens.h"

//  A request with a one-frame body, as the core makes them.
static broker_request_t *
s_request (void)
{
    zmq_msg_t client, body;
    zmq_msg_init_size (&client, 1);
    memcpy (zmq_msg_data (&client), "C", 1);
    zmq_msg_init_size (&body, 4);
    memcpy (zmq_msg_data (&body), "body", 4);
    broker_request_t *request = broker_request_new (&client, &body, 1, NULL, 0);
    zmq_msg_close (&client);
    zmq_msg_close (&body);
    return request;
}

static void
an_assigned_token_finds_its_request (void **state)
{
    (void) state;
    broker_tokens_t *tokens = broker_tokens_new ();
    broker_request_t *request = s_request ();
    assert_int_equal (request->token_size, 0);
    broker_tokens_assign (tokens, request);
    assert_int_equal (request->token_size, BROKER_REQUEST_TOKEN_BYTES);
    byte token[BROKER_REQUEST_TOKEN_BYTES];
    memcpy (token, request->token, sizeof (token));
    //  Assigning again keeps the token: a re-dispatch writes the same bytes.
    broker_tokens_assign (tokens, request);
    assert_memory_equal (request->token, token, sizeof (token));
    assert_ptr_equal (broker_tokens_find (tokens, token, sizeof (token)),
                      request);
    //  The wrong size names nothing.
    assert_null (broker_tokens_find (tokens, token, sizeof (token) - 1));
    broker_tokens_release (tokens, request);
    broker_request_unref (&request);
    broker_tokens_destroy (&tokens);
    assert_null (tokens);
}

static void
a_released_token_never_matches_again (void **state)
{
    (void) state;
    broker_tokens_t *tokens = broker_tokens_new ();
    broker_request_t *first = s_request ();
    broker_tokens_assign (tokens, first);
    byte stale[BROKER_REQUEST_TOKEN_BYTES];
    memcpy (stale, first->token, sizeof (stale));
    broker_tokens_release (tokens, first);
    assert_null (broker_tokens_find (tokens, stale, sizeof (stale)));

    //  The slot is reused with a new generation: the old token still
    //  names nothing, the new one names the new request.
    broker_request_t *second = s_request ();
    broker_tokens_assign (tokens, second);
    assert_memory_equal (second->token, stale, 4);  //  same slot index
    assert_memory_not_equal (second->token, stale, sizeof (stale));
    assert_null (broker_tokens_find (tokens, stale, sizeof (stale)));
    assert_ptr_equal (
      broker_tokens_find (tokens, second->token, sizeof (stale)), second);
    broker_tokens_release (tokens, second);
    broker_request_unref (&first);
    broker_request_unref (&second);
    broker_tokens_destroy (&tokens);
}

static void
forged_tokens_name_nothing (void **state)
{
    (void) state;
    broker_tokens_t *tokens = broker_tokens_new ();
    broker_request_t *request = s_request ();
    broker_tokens_assign (tokens, request);
    byte forged[BROKER_REQUEST_TOKEN_BYTES];
    //  A slot never made.
    memcpy (forged, request->token, sizeof (forged));
    uint32_t index = 7;
    memcpy (forged, &index, sizeof (index));
    assert_null (broker_tokens_find (tokens, forged, sizeof (forged)));
    //  The right slot, an even (free) generation.
    memcpy (forged, request->token, sizeof (forged));
    uint64_t generation = 2;
    memcpy (forged + 4, &generation, sizeof (generation));
    assert_null (broker_tokens_find (tokens, forged, sizeof (forged)));
    broker_tokens_release (tokens, request);
    broker_request_unref (&request);
    broker_tokens_destroy (&tokens);
}

static void
the_table_grows_past_its_first_block (void **state)
{
    (void) state;
    broker_tokens_t *tokens = broker_tokens_new ();
    broker_request_t *requests[200];
    for (size_t index = 0; index < 200; index++) {
        requests[index] = s_request ();
        broker_tokens_assign (tokens, requests[index]);
    }
    for (size_t index = 0; index < 200; index++) {
        assert_ptr_equal (broker_tokens_find (tokens, requests[index]->token,
                                              BROKER_REQUEST_TOKEN_BYTES),
                          requests[index]);
        broker_tokens_release (tokens, requests[index]);
        broker_request_unref (&requests[index]);
    }
    broker_tokens_destroy (&tokens);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (an_assigned_token_finds_its_request),
        cmocka_unit_test (a_released_token_never_matches_again),
        cmocka_unit_test (forged_tokens_name_nothing),
        cmocka_unit_test (the_table_grows_past_its_first_block),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
