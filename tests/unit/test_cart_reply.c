//  test_cart_reply.c - Redis answers, and their absence, into cart replies

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cart_reply.h"

//  -------------------------------------------------------------------------
//  Redis answers -> replies

typedef struct {
    redisReply reply;
    redisReply *children[8];
    redisReply child_storage[8];
} s_answer_t;

static void
s_string (redisReply *reply, const char *data, size_t size)
{
    memset (reply, 0, sizeof (*reply));
    reply->type = REDIS_REPLY_STRING;
    reply->str = (char *) data;
    reply->len = size;
}

static void
s_integer (redisReply *reply, long long value)
{
    memset (reply, 0, sizeof (*reply));
    reply->type = REDIS_REPLY_INTEGER;
    reply->integer = value;
}

static void
s_array (s_answer_t *answer, size_t count)
{
    memset (&answer->reply, 0, sizeof (answer->reply));
    answer->reply.type = REDIS_REPLY_ARRAY;
    answer->reply.elements = count;
    answer->reply.element = answer->children;
    for (size_t i = 0; i < 8; i++)
        answer->children[i] = &answer->child_storage[i];
}

static cmq_cart_request_t
s_request (cmq_cart_method_t method)
{
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = method;
    request.user_id = cmq_cart_str ("u");
    return request;
}

static void
cart_answer_becomes_sorted_items_and_64_bit_total (void **state)
{
    (void) state;
    s_answer_t answer;
    s_array (&answer, 6);
    s_string (answer.children[0], "b", 1);
    s_string (answer.children[1], "1000000:2147483647:Bee", 22);
    s_string (answer.children[2], "a", 1);
    s_string (answer.children[3], "2:5:A", 5);
    s_string (answer.children[4], "c", 1);
    s_string (answer.children[5], "1000000:2147483647:C", 20);
    cmq_cart_request_t request = s_request (CMQ_CART_GET);
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    bool is_replayed = true;
    cart_reply_from_redis (&request, &answer.reply, &reply, &is_replayed);
    assert_int_equal (reply.status, 200);
    assert_false (is_replayed);
    assert_int_equal (reply.method, CMQ_CART_GET);
    assert_int_equal (reply.item_count, 3);
    assert_string_equal (reply.items[0].id.data, "a");
    assert_string_equal (reply.items[0].name.data, "A");
    assert_int_equal (reply.items[0].quantity, 2);
    assert_int_equal (reply.items[0].price, 5);
    assert_string_equal (reply.items[1].id.data, "b");
    assert_string_equal (reply.items[2].id.data, "c");
    assert_true (reply.total == 10 + 2 * 1000000LL * 2147483647LL);
    cmq_cart_reply_reset (&reply);
}

static void
empty_cart_answer_is_an_empty_list (void **state)
{
    (void) state;
    s_answer_t answer;
    s_array (&answer, 0);
    cmq_cart_request_t request = s_request (CMQ_CART_GET);
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    bool is_replayed;
    cart_reply_from_redis (&request, &answer.reply, &reply, &is_replayed);
    assert_int_equal (reply.status, 200);
    assert_int_equal (reply.item_count, 0);
    assert_int_equal (reply.total, 0);
}

static void
broken_cart_answers_are_503 (void **state)
{
    (void) state;
    cmq_cart_request_t request = s_request (CMQ_CART_GET);
    s_answer_t answer;
    bool is_replayed;
    cmq_cart_reply_t reply;
    for (int variant = 0; variant < 4; variant++) {
        s_array (&answer, 2);
        s_string (answer.children[0], "a", 1);
        s_string (answer.children[1], "1:1:n", 5);
        if (variant == 0)
            answer.reply.elements = 1;  //  odd
        if (variant == 1)
            s_string (answer.children[1], "garbage", 7);  //  bad value
        if (variant == 2)
            s_integer (answer.children[0], 7);  //  bad id
        if (variant == 3)
            s_string (answer.children[0], "", 0);  //  empty id
        memset (&reply, 0, sizeof (reply));
        cart_reply_from_redis (&request, &answer.reply, &reply, &is_replayed);
        assert_int_equal (reply.status, 503);
        assert_true (strlen (reply.error) > 0);
        assert_null (reply.items);
    }
    s_string (&answer.reply, "OK", 2);
    memset (&reply, 0, sizeof (reply));
    cart_reply_from_redis (&request, &answer.reply, &reply, &is_replayed);
    assert_int_equal (reply.status, 503);
}

//  Runs the script's answer {200, record, replayed} for a request of method
//  through cart_reply_from_redis; returns is_replayed.
static bool
s_script_answer (cmq_cart_method_t method, const char *record, size_t size,
                 long long replayed, cmq_cart_reply_t *reply)
{
    s_answer_t answer;
    s_array (&answer, 3);
    s_integer (answer.children[0], 200);
    s_string (answer.children[1], record, size);
    s_integer (answer.children[2], replayed);
    cmq_cart_request_t request = s_request (method);
    memset (reply, 0, sizeof (*reply));
    bool is_replayed = !replayed;
    cart_reply_from_redis (&request, &answer.reply, reply, &is_replayed);
    return is_replayed;
}

static void
script_record_becomes_the_add_reply (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    bool is_replayed =
      s_script_answer (CMQ_CART_ADD, "2:7:it\0em", 9, 0, &reply);
    assert_int_equal (reply.status, 200);
    assert_false (is_replayed);
    assert_int_equal (reply.method, CMQ_CART_ADD);
    assert_int_equal (reply.item_id.size, 5);
    assert_memory_equal (reply.item_id.data, "it\0em", 5);
    assert_int_equal (reply.quantity, 7);
}

static void
replayed_record_answers_as_the_first_method_did (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    bool is_replayed = s_script_answer (CMQ_CART_CLEAR, "4:0:x", 5, 1, &reply);
    assert_int_equal (reply.status, 200);
    assert_true (is_replayed);
    assert_int_equal (reply.method, CMQ_CART_UPDATE);
    assert_string_equal (reply.item_id.data, "x");
    assert_int_equal (reply.quantity, 0);

    assert_true (s_script_answer (CMQ_CART_CLEAR, "5:0:", 4, 1, &reply));
    assert_int_equal (reply.method, CMQ_CART_CLEAR);
    assert_string_equal (reply.message, "Cart cleared");

    assert_true (s_script_answer (CMQ_CART_CLEAR, "3:0:x", 5, 1, &reply));
    assert_int_equal (reply.method, CMQ_CART_REMOVE);
    assert_string_equal (reply.message, "Item removed");
}

static void
malformed_records_are_503 (void **state)
{
    (void) state;
    const char *records[] = { "",      "2",           "2:",    "2:1",   "1:1:x",
                              "6:1:x", "2:x:y",       "2::y",  "2:0:y", "2:1:",
                              "4:1:",  "2:1000001:y", "22:1:x" };
    cmq_cart_request_t request = s_request (CMQ_CART_ADD);
    for (size_t i = 0; i < sizeof (records) / sizeof (records[0]); i++) {
        s_answer_t answer;
        s_array (&answer, 3);
        s_integer (answer.children[0], 200);
        s_string (answer.children[1], records[i], strlen (records[i]));
        s_integer (answer.children[2], 0);
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        bool is_replayed;
        cart_reply_from_redis (&request, &answer.reply, &reply, &is_replayed);
        if (reply.status != 503)
            print_error ("accepted: %s\n", records[i]);
        assert_int_equal (reply.status, 503);
    }
}

static void
script_refusals_become_404_and_409_with_errors (void **state)
{
    (void) state;
    struct {
        long long status, reason;
        int expected;
        const char *words;
    } cases[] = {
        { 404, 3, 404, "not in cart" }, { 409, 1, 409, "1000 distinct items" },
        { 409, 2, 409, "1000000" },     { 409, 3, 503, "storage" },
        { 500, 1, 503, "storage" },
    };
    cmq_cart_request_t request = s_request (CMQ_CART_UPDATE);
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        s_answer_t answer;
        s_array (&answer, 2);
        s_integer (answer.children[0], cases[i].status);
        s_integer (answer.children[1], cases[i].reason);
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        bool is_replayed;
        cart_reply_from_redis (&request, &answer.reply, &reply, &is_replayed);
        assert_int_equal (reply.status, cases[i].expected);
        assert_non_null (strstr (reply.error, cases[i].words));
    }
}

static void
redis_error_answer_is_503_with_its_text (void **state)
{
    (void) state;
    redisReply answer;
    const char text[] = "OOM command not allowed when used memory > "
                        "'maxmemory'.";
    memset (&answer, 0, sizeof (answer));
    answer.type = REDIS_REPLY_ERROR;
    answer.str = (char *) text;
    answer.len = sizeof (text) - 1;
    cmq_cart_request_t request = s_request (CMQ_CART_REMOVE);
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    bool is_replayed;
    cart_reply_from_redis (&request, &answer, &reply, &is_replayed);
    assert_int_equal (reply.status, 503);
    assert_non_null (strstr (reply.error, "OOM command not allowed"));
}

//  -------------------------------------------------------------------------
//  Calls whose answer did not come (§4: 503 only where nothing applied)

static void
unanswered_mutation_that_was_sent_is_504_outcome_unknown (void **state)
{
    (void) state;
    const cmq_cart_method_t mutations[] = { CMQ_CART_ADD, CMQ_CART_REMOVE,
                                            CMQ_CART_UPDATE, CMQ_CART_CLEAR };
    for (size_t i = 0; i < sizeof (mutations) / sizeof (mutations[0]); i++)
        assert_int_equal (cart_reply_unanswered_status (mutations[i], true),
                          CMQ_CART_OUTCOME_UNKNOWN);
}

static void
unanswered_mutation_never_sent_is_503 (void **state)
{
    (void) state;
    assert_int_equal (cart_reply_unanswered_status (CMQ_CART_ADD, false),
                      CMQ_CART_UNAVAILABLE);
    assert_int_equal (cart_reply_unanswered_status (CMQ_CART_CLEAR, false),
                      CMQ_CART_UNAVAILABLE);
}

static void
unanswered_read_is_503_sent_or_not (void **state)
{
    (void) state;
    assert_int_equal (cart_reply_unanswered_status (CMQ_CART_GET, true),
                      CMQ_CART_UNAVAILABLE);
    assert_int_equal (cart_reply_unanswered_status (CMQ_CART_GET, false),
                      CMQ_CART_UNAVAILABLE);
}
int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (cart_answer_becomes_sorted_items_and_64_bit_total),
        cmocka_unit_test (empty_cart_answer_is_an_empty_list),
        cmocka_unit_test (broken_cart_answers_are_503),
        cmocka_unit_test (script_record_becomes_the_add_reply),
        cmocka_unit_test (replayed_record_answers_as_the_first_method_did),
        cmocka_unit_test (malformed_records_are_503),
        cmocka_unit_test (script_refusals_become_404_and_409_with_errors),
        cmocka_unit_test (redis_error_answer_is_503_with_its_text),
        cmocka_unit_test (
          unanswered_mutation_that_was_sent_is_504_outcome_unknown),
        cmocka_unit_test (unanswered_mutation_never_sent_is_503),
        cmocka_unit_test (unanswered_read_is_503_sent_or_not),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
