//  test_cart_record.c - keys, stored item values and result records

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cart_record.h"

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
    char key[CART_RECORD_MAX_KEY_BYTES];
    cmq_cart_str_t user = s_str ("al\0ce", 5);
    size_t size = cart_record_cart_key (&user, key);
    assert_int_equal (size, 12);
    assert_memory_equal (key, "cart:{al\0ce}", 12);
}

static void
request_key_spells_the_request_id_in_hex (void **state)
{
    (void) state;
    char key[CART_RECORD_MAX_KEY_BYTES];
    cmq_cart_str_t user = s_str ("u", 1);
    cmq_cart_str_t request_id = s_str ("R}\xff", 3);
    size_t size = cart_record_request_key (&user, &request_id, key);
    assert_int_equal (size, 19);
    assert_memory_equal (key, "cart:{u}:rid:527dff", 19);
}

static void
longest_ids_fit_the_key_buffer (void **state)
{
    (void) state;
    char key[CART_RECORD_MAX_KEY_BYTES];
    char user_bytes[CMQ_CART_MAX_ID_BYTES];
    char request_bytes[CMQ_CART_MAX_REQUEST_ID_BYTES];
    memset (user_bytes, '}', sizeof (user_bytes));
    memset (request_bytes, 0xab, sizeof (request_bytes));
    cmq_cart_str_t user = s_str (user_bytes, sizeof (user_bytes));
    cmq_cart_str_t request_id = s_str (request_bytes, sizeof (request_bytes));
    assert_int_equal (cart_record_request_key (&user, &request_id, key),
                      CART_RECORD_MAX_KEY_BYTES);
}

static void
stored_item_value_is_parsed (void **state)
{
    (void) state;
    cmq_cart_item_t item;
    memset (&item, 0, sizeof (item));
    const char value[] = "1000000:2147483647:a:b\0c";
    assert_int_equal (cart_record_parse_item (value, sizeof (value) - 1, &item),
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
        if (cart_record_parse_item (values[i], strlen (values[i]), &item) != -1)
            print_error ("accepted: %s\n", values[i]);
        assert_int_equal (
          cart_record_parse_item (values[i], strlen (values[i]), &item), -1);
    }
    assert_int_equal (cart_record_parse_item (long_name, 4 + 257, &item), -1);
    assert_int_equal (cart_record_parse_item (long_name, 4 + 256, &item), 0);
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
    cart_record_sort_items (items, 6);
    assert_memory_equal (items[0].id.data, "B", 1);
    assert_int_equal (items[1].id.size, 1);
    assert_memory_equal (items[1].id.data, "a", 1);
    assert_int_equal (items[2].id.size, 2);
    assert_memory_equal (items[2].id.data, "a\0", 2);
    assert_memory_equal (items[3].id.data, "ab", 2);
    assert_memory_equal (items[4].id.data, "b", 1);
    assert_memory_equal (items[5].id.data, "\xc3\xa9", 2);
}

static void
result_records_parse_into_the_reply_of_their_method (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    assert_int_equal (cart_record_parse_result ("4:1000000:i\0d", 13, &reply),
                      0);
    assert_int_equal (reply.status, 200);
    assert_int_equal (reply.method, CMQ_CART_UPDATE);
    assert_int_equal (reply.quantity, 1000000);
    assert_int_equal (reply.item_id.size, 3);
    assert_memory_equal (reply.item_id.data, "i\0d", 3);

    memset (&reply, 0, sizeof (reply));
    assert_int_equal (cart_record_parse_result ("3:0:x", 5, &reply), 0);
    assert_int_equal (reply.method, CMQ_CART_REMOVE);
    assert_string_equal (reply.message, "Item removed");
    assert_int_equal (reply.item_id.size, 0);
}

static void
result_records_cart_lua_could_not_write_are_refused (void **state)
{
    (void) state;
    char long_id[4 + CMQ_CART_MAX_ID_BYTES + 1];
    memcpy (long_id, "2:1:", 4);
    memset (long_id + 4, 'i', sizeof (long_id) - 4);
    const char *records[] = {
        "",      "2:1",    "0:1:x", "1:1:x", "6:1:x",
        "2;1:x", "2:-1:x", "2:0:x", "4:1:",  "2:1000001:x"
    };
    cmq_cart_reply_t reply;
    for (size_t i = 0; i < sizeof (records) / sizeof (records[0]); i++) {
        memset (&reply, 0, sizeof (reply));
        if (cart_record_parse_result (records[i], strlen (records[i]),
                                      &reply) != -1)
            print_error ("accepted: %s\n", records[i]);
        assert_int_equal (
          cart_record_parse_result (records[i], strlen (records[i]), &reply),
          -1);
    }
    assert_int_equal (
      cart_record_parse_result (long_id, sizeof (long_id), &reply), -1);
    assert_int_equal (
      cart_record_parse_result (long_id, sizeof (long_id) - 1, &reply), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (cart_key_holds_the_user_id_as_hash_tag),
        cmocka_unit_test (request_key_spells_the_request_id_in_hex),
        cmocka_unit_test (longest_ids_fit_the_key_buffer),
        cmocka_unit_test (stored_item_value_is_parsed),
        cmocka_unit_test (malformed_item_values_are_refused),
        cmocka_unit_test (items_sort_by_unsigned_bytes_shorter_first),
        cmocka_unit_test (result_records_parse_into_the_reply_of_their_method),
        cmocka_unit_test (result_records_cart_lua_could_not_write_are_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
