//  test_cart_store.c - the Redis store's pure parts: URLs, keys, values,
//  sorting and turning Redis answers into replies. No Redis needed.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cart_store.h"

//  -------------------------------------------------------------------------
//  URLs

static void
s_parse_ok (const char *text, cart_store_url_t *url)
{
    char error[200] = "";
    int rc = cart_store_url_parse (text, url, error, sizeof (error));
    if (rc != 0)
        print_error ("%s: %s\n", text, error);
    assert_int_equal (rc, 0);
}

static void
tcp_url_with_everything_is_parsed (void **state)
{
    (void) state;
    cart_store_url_t url;
    s_parse_ok ("redis://redis.example-1.net:7000/12", &url);
    assert_false (url.is_unix);
    assert_string_equal (url.host, "redis.example-1.net");
    assert_int_equal (url.port, 7000);
    assert_int_equal (url.db, 12);
    assert_false (url.has_password);
}

static void
missing_parts_take_the_defaults (void **state)
{
    (void) state;
    const char *texts[] = { "redis://", "redis:///", "redis://127.0.0.1",
                            "redis://:6379", "redis://127.0.0.1:6379/0" };
    for (size_t i = 0; i < sizeof (texts) / sizeof (texts[0]); i++) {
        cart_store_url_t url;
        s_parse_ok (texts[i], &url);
        assert_string_equal (url.host, "127.0.0.1");
        assert_int_equal (url.port, 6379);
        assert_int_equal (url.db, 0);
        assert_false (url.has_password);
    }
}

static void
password_and_acl_user_are_decoded (void **state)
{
    (void) state;
    cart_store_url_t url;
    s_parse_ok ("redis://:s3cret@localhost:6380/1", &url);
    assert_true (url.has_password);
    assert_string_equal (url.user, "");
    assert_string_equal (url.password, "s3cret");
    assert_string_equal (url.host, "localhost");
    assert_int_equal (url.port, 6380);

    s_parse_ok ("redis://app:p%40ss%3Aw@h/2", &url);
    assert_string_equal (url.user, "app");
    assert_string_equal (url.password, "p@ss:w");
    assert_string_equal (url.host, "h");

    //  An unescaped '@' belongs to the password: the host follows the last.
    s_parse_ok ("redis://:a@b@h", &url);
    assert_string_equal (url.password, "a@b");
    assert_string_equal (url.host, "h");
}

static void
bracketed_ipv6_host_is_parsed (void **state)
{
    (void) state;
    cart_store_url_t url;
    s_parse_ok ("redis://[::1]:7001/3", &url);
    assert_string_equal (url.host, "::1");
    assert_int_equal (url.port, 7001);
    assert_int_equal (url.db, 3);
}

static void
unix_url_takes_db_and_password (void **state)
{
    (void) state;
    cart_store_url_t url;
    s_parse_ok ("unix:///var/run/redis/redis.sock", &url);
    assert_true (url.is_unix);
    assert_string_equal (url.path, "/var/run/redis/redis.sock");
    assert_int_equal (url.db, 0);
    assert_false (url.has_password);

    s_parse_ok ("unix:///tmp/r.sock?db=4&password=x%20y", &url);
    assert_string_equal (url.path, "/tmp/r.sock");
    assert_int_equal (url.db, 4);
    assert_true (url.has_password);
    assert_string_equal (url.password, "x y");
}

static void
bad_urls_are_refused_with_a_reason (void **state)
{
    (void) state;
    char long_path[200] = "unix:///";
    memset (long_path + 8, 'p', 150);
    const char *texts[] = {
        "",
        "http://127.0.0.1:6379",
        "rediss://127.0.0.1:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:",
        "redis://h:12a",
        "redis://h:-1",
        "redis://h/x",
        "redis://h/-1",
        "redis://h/1/2",
        "redis://h/99999999999",
        "redis://h/0?db=1",
        "redis://h#x",
        "redis://pass@h",
        "redis://::1:6379",
        "redis://[::1",
        "redis://[]:1",
        "redis://ho st",
        "redis://h;x",
        "redis://:%zz@h",
        "redis://:%4@h",
        "redis://:%00@h",
        "unix://",
        "unix://relative.sock",
        "unix:///",
        "unix:///p?",
        "unix:///p?db=x",
        "unix:///p?db=",
        "unix:///p?foo=1",
        "unix:///p?db=1&",
        long_path,
    };
    for (size_t i = 0; i < sizeof (texts) / sizeof (texts[0]); i++) {
        cart_store_url_t url;
        char error[200] = "";
        int rc = cart_store_url_parse (texts[i], &url, error, sizeof (error));
        if (rc != -1)
            print_error ("accepted: %s\n", texts[i]);
        assert_int_equal (rc, -1);
        assert_true (strlen (error) > 0);
        assert_null (strchr (error, '\n'));
    }
    cart_store_url_t url;
    char error[200] = "";
    assert_int_equal (cart_store_url_parse (NULL, &url, error, sizeof (error)),
                      -1);
}

static void
refused_url_leaves_no_password_behind (void **state)
{
    (void) state;
    cart_store_url_t url;
    char error[200];
    assert_int_equal (cart_store_url_parse ("redis://:hunter2@h:0", &url, error,
                                            sizeof (error)),
                      -1);
    assert_false (url.has_password);
    assert_string_equal (url.password, "");
}

static void
password_longer_than_the_limit_is_refused (void **state)
{
    (void) state;
    char text[600] = "redis://:";
    memset (text + 9, 'x', CART_STORE_MAX_SECRET_BYTES + 1);
    strcat (text, "@h");
    cart_store_url_t url;
    char error[200];
    assert_int_equal (cart_store_url_parse (text, &url, error, sizeof (error)),
                      -1);
    text[9 + CART_STORE_MAX_SECRET_BYTES] = '@';
    text[9 + CART_STORE_MAX_SECRET_BYTES + 1] = 'h';
    text[9 + CART_STORE_MAX_SECRET_BYTES + 2] = 0;
    s_parse_ok (text, &url);
    assert_int_equal (strlen (url.password), CART_STORE_MAX_SECRET_BYTES);
}

static void
described_url_masks_the_password (void **state)
{
    (void) state;
    cart_store_url_t url;
    char text[400];
    s_parse_ok ("redis://app:hunter2@h:7/3", &url);
    cart_store_url_describe (&url, text, sizeof (text));
    assert_string_equal (text, "redis://app:***@h:7/3");
    s_parse_ok ("redis://[::1]", &url);
    cart_store_url_describe (&url, text, sizeof (text));
    assert_string_equal (text, "redis://[::1]:6379/0");
    s_parse_ok ("unix:///s?password=hunter2", &url);
    cart_store_url_describe (&url, text, sizeof (text));
    assert_null (strstr (text, "hunter2"));
}

//  -------------------------------------------------------------------------
//  Keys and values

static cmq_cart_str_t
s_str (const char *data, size_t size)
{
    cmq_cart_str_t str = { data, size };  //  a view: data outlives it
    return str;
}

static cmq_cart_text_t
s_text (const char *data, size_t size)
{
    cmq_cart_text_t text;
    memset (&text, 0, sizeof (text));
    memcpy (text.data, data, size);
    text.size = size;
    return text;
}

static void
cart_key_holds_the_user_id_as_hash_tag (void **state)
{
    (void) state;
    char key[CART_STORE_MAX_KEY_BYTES];
    cmq_cart_str_t user = s_str ("al\0ce", 5);
    size_t size = cart_store_cart_key (&user, key);
    assert_int_equal (size, 12);
    assert_memory_equal (key, "cart:{al\0ce}", 12);
}

static void
request_key_spells_the_request_id_in_hex (void **state)
{
    (void) state;
    char key[CART_STORE_MAX_KEY_BYTES];
    cmq_cart_str_t user = s_str ("u", 1);
    cmq_cart_str_t request_id = s_str ("R}\xff", 3);
    size_t size = cart_store_request_key (&user, &request_id, key);
    assert_int_equal (size, 19);
    assert_memory_equal (key, "cart:{u}:rid:527dff", 19);
}

static void
longest_ids_fit_the_key_buffer (void **state)
{
    (void) state;
    char key[CART_STORE_MAX_KEY_BYTES];
    char user_bytes[CMQ_CART_MAX_ID_BYTES];
    char request_bytes[CMQ_CART_MAX_REQUEST_ID_BYTES];
    memset (user_bytes, '}', sizeof (user_bytes));
    memset (request_bytes, 0xab, sizeof (request_bytes));
    cmq_cart_str_t user = s_str (user_bytes, sizeof (user_bytes));
    cmq_cart_str_t request_id = s_str (request_bytes, sizeof (request_bytes));
    assert_int_equal (cart_store_request_key (&user, &request_id, key),
                      CART_STORE_MAX_KEY_BYTES);
}

static void
stored_item_value_is_parsed (void **state)
{
    (void) state;
    cmq_cart_item_t item;
    memset (&item, 0, sizeof (item));
    const char value[] = "1000000:2147483647:a:b\0c";
    assert_int_equal (cart_store_parse_item (value, sizeof (value) - 1, &item),
                      0);
    assert_int_equal (item.quantity, 1000000);
    assert_int_equal (item.price, 2147483647LL);
    assert_int_equal (item.name.size, 5);
    assert_memory_equal (item.name.data, "a:b\0c", 5);
}

static void
malformed_item_values_are_refused (void **state)
{
    (void) state;
    char long_name[400];
    memset (long_name, 'n', sizeof (long_name));
    memcpy (long_name, "1:1:", 4);
    const char *values[] = { "",
                             "1",
                             "1:2",
                             "1:2:",
                             "0:2:n",
                             "1000001:2:n",
                             "1:2147483648:n",
                             "x:2:n",
                             "1:-2:n",
                             ":2:n",
                             "1::n",
                             "+1:2:n" };
    cmq_cart_item_t item;
    for (size_t i = 0; i < sizeof (values) / sizeof (values[0]); i++) {
        if (cart_store_parse_item (values[i], strlen (values[i]), &item) != -1)
            print_error ("accepted: %s\n", values[i]);
        assert_int_equal (
          cart_store_parse_item (values[i], strlen (values[i]), &item), -1);
    }
    assert_int_equal (cart_store_parse_item (long_name, 4 + 257, &item), -1);
    assert_int_equal (cart_store_parse_item (long_name, 4 + 256, &item), 0);
}

static void
items_sort_by_unsigned_bytes_shorter_first (void **state)
{
    (void) state;
    cmq_cart_item_t items[6];
    memset (items, 0, sizeof (items));
    items[0].id = s_text ("b", 1);
    items[1].id = s_text ("\xc3\xa9", 2);
    items[2].id = s_text ("a\0", 2);
    items[3].id = s_text ("a", 1);
    items[4].id = s_text ("B", 1);
    items[5].id = s_text ("ab", 2);
    cart_store_sort_items (items, 6);
    assert_memory_equal (items[0].id.data, "B", 1);
    assert_int_equal (items[1].id.size, 1);
    assert_memory_equal (items[1].id.data, "a", 1);
    assert_int_equal (items[2].id.size, 2);
    assert_memory_equal (items[2].id.data, "a\0", 2);
    assert_memory_equal (items[3].id.data, "ab", 2);
    assert_memory_equal (items[4].id.data, "b", 1);
    assert_memory_equal (items[5].id.data, "\xc3\xa9", 2);
}

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
    request.user_id = s_str ("u", 1);
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
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
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
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
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
        cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
        assert_int_equal (reply.status, 503);
        assert_true (strlen (reply.error) > 0);
        assert_null (reply.items);
    }
    s_string (&answer.reply, "OK", 2);
    memset (&reply, 0, sizeof (reply));
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
    assert_int_equal (reply.status, 503);
}

static void
script_record_becomes_the_add_reply (void **state)
{
    (void) state;
    s_answer_t answer;
    s_array (&answer, 3);
    s_integer (answer.children[0], 200);
    s_string (answer.children[1], "2:7:it\0em", 9);
    s_integer (answer.children[2], 0);
    cmq_cart_request_t request = s_request (CMQ_CART_ADD);
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    bool is_replayed = true;
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
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
    s_answer_t answer;
    s_array (&answer, 3);
    s_integer (answer.children[0], 200);
    s_string (answer.children[1], "4:0:x", 5);
    s_integer (answer.children[2], 1);
    cmq_cart_request_t request = s_request (CMQ_CART_CLEAR);
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    bool is_replayed = false;
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
    assert_int_equal (reply.status, 200);
    assert_true (is_replayed);
    assert_int_equal (reply.method, CMQ_CART_UPDATE);
    assert_string_equal (reply.item_id.data, "x");
    assert_int_equal (reply.quantity, 0);

    s_string (answer.children[1], "5:0:", 4);
    memset (&reply, 0, sizeof (reply));
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
    assert_int_equal (reply.method, CMQ_CART_CLEAR);
    assert_string_equal (reply.message, "Cart cleared");

    s_string (answer.children[1], "3:0:x", 5);
    memset (&reply, 0, sizeof (reply));
    cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
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
        cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
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
        cart_store_parse_result (&request, &answer.reply, &reply, &is_replayed);
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
    cart_store_parse_result (&request, &answer, &reply, &is_replayed);
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
        assert_int_equal (cart_store_unanswered_status (mutations[i], true),
                          CMQ_CART_OUTCOME_UNKNOWN);
}

static void
unanswered_mutation_never_sent_is_503 (void **state)
{
    (void) state;
    assert_int_equal (cart_store_unanswered_status (CMQ_CART_ADD, false),
                      CMQ_CART_UNAVAILABLE);
    assert_int_equal (cart_store_unanswered_status (CMQ_CART_CLEAR, false),
                      CMQ_CART_UNAVAILABLE);
}

static void
unanswered_read_is_503_sent_or_not (void **state)
{
    (void) state;
    assert_int_equal (cart_store_unanswered_status (CMQ_CART_GET, true),
                      CMQ_CART_UNAVAILABLE);
    assert_int_equal (cart_store_unanswered_status (CMQ_CART_GET, false),
                      CMQ_CART_UNAVAILABLE);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (tcp_url_with_everything_is_parsed),
        cmocka_unit_test (missing_parts_take_the_defaults),
        cmocka_unit_test (password_and_acl_user_are_decoded),
        cmocka_unit_test (bracketed_ipv6_host_is_parsed),
        cmocka_unit_test (unix_url_takes_db_and_password),
        cmocka_unit_test (bad_urls_are_refused_with_a_reason),
        cmocka_unit_test (refused_url_leaves_no_password_behind),
        cmocka_unit_test (password_longer_than_the_limit_is_refused),
        cmocka_unit_test (described_url_masks_the_password),
        cmocka_unit_test (cart_key_holds_the_user_id_as_hash_tag),
        cmocka_unit_test (request_key_spells_the_request_id_in_hex),
        cmocka_unit_test (longest_ids_fit_the_key_buffer),
        cmocka_unit_test (stored_item_value_is_parsed),
        cmocka_unit_test (malformed_item_values_are_refused),
        cmocka_unit_test (items_sort_by_unsigned_bytes_shorter_first),
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
