//  test_json_print.c - msgpack to one-line JSON conversion

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"

#include "cartmq/cart_codec.h"

//  Packed msgpack, built by each test with the packer below.
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
} fixture_t;

static int
setup (void **state)
{
    fixture_t *fx = (fixture_t *) calloc (1, sizeof (fixture_t));
    msgpack_sbuffer_init (&fx->buffer);
    msgpack_packer_init (&fx->packer, &fx->buffer, msgpack_sbuffer_write);
    *state = fx;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    msgpack_sbuffer_destroy (&fx->buffer);
    free (fx);
    return 0;
}

static void
pack_str (fixture_t *fx, const char *data, size_t size)
{
    msgpack_pack_str (&fx->packer, size);
    msgpack_pack_str_body (&fx->packer, data, size);
}

static void
pack_cstr (fixture_t *fx, const char *string)
{
    pack_str (fx, string, strlen (string));
}

//  Unpacks what the test packed and checks its JSON.
static void
assert_json (fixture_t *fx, const char *expected)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert_int_equal (msgpack_unpack_next (&unpacked, fx->buffer.data,
                                           fx->buffer.size, &offset),
                      MSGPACK_UNPACK_SUCCESS);
    size_t length = 0;
    char *json = json_print_object (&unpacked.data, &length);
    assert_non_null (json);
    assert_string_equal (json, expected);
    assert_int_equal (length, strlen (expected));
    free (json);
    msgpack_unpacked_destroy (&unpacked);
}

static void
nested_maps_and_arrays_keep_their_key_order (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_map (&fx->packer, 3);
    pack_cstr (fx, "status");
    msgpack_pack_int (&fx->packer, 200);
    pack_cstr (fx, "items");
    msgpack_pack_array (&fx->packer, 2);
    msgpack_pack_map (&fx->packer, 2);
    pack_cstr (fx, "id");
    pack_cstr (fx, "b");
    pack_cstr (fx, "quantity");
    msgpack_pack_int (&fx->packer, 2);
    msgpack_pack_array (&fx->packer, 1);
    msgpack_pack_array (&fx->packer, 0);
    pack_cstr (fx, "a_last");
    msgpack_pack_int (&fx->packer, 1);
    assert_json (fx, "{\"status\":200,\"items\":[{\"id\":\"b\",\"quantity\":2},"
                     "[[]]],\"a_last\":1}");
}

static void
quotes_and_backslashes_are_escaped (void **state)
{
    fixture_t *fx = *state;
    pack_cstr (fx, "say \"hi\" \\ bye /");
    assert_json (fx, "\"say \\\"hi\\\" \\\\ bye /\"");
}

static void
control_characters_use_short_escapes_where_json_has_them (void **state)
{
    fixture_t *fx = *state;
    pack_str (fx, "\b\f\n\r\t\x01\x1f\x7f", 8);
    assert_json (fx, "\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"");
}

static void
nul_bytes_inside_strings_are_kept_as_escapes (void **state)
{
    fixture_t *fx = *state;
    pack_str (fx, "a\0b", 3);
    assert_json (fx, "\"a\\u0000b\"");
}

static void
valid_multibyte_utf8_passes_through_unchanged (void **state)
{
    fixture_t *fx = *state;
    //  é (2 bytes), € (3 bytes), U+1F600 (4 bytes), U+10FFFF (the last)
    pack_cstr (fx,
               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
    assert_json (
      fx, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
}

static void
invalid_utf8_bytes_become_u00xx_escapes (void **state)
{
    fixture_t *fx = *state;
    //  a stray 0xff, a lone continuation byte, an overlong '/', a UTF-16
    //  surrogate, a code point past U+10FFFF and a sequence cut short
    pack_str (fx, "\xff\x80\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82", 13);
    assert_json (fx, "\"\\u00ff\\u0080\\u00c0\\u00af\\u00ed\\u00a0\\u0080"
                     "\\u00f4\\u0090\\u0080\\u0080\\u00e2\\u0082\"");
}

static void
an_invalid_byte_does_not_swallow_the_valid_text_after_it (void **state)
{
    fixture_t *fx = *state;
    pack_str (fx, "\xe2x\xc3\xa9", 4);
    assert_json (fx, "\"\\u00e2x\xc3\xa9\"");
}

static void
c1_controls_are_escaped_so_no_terminal_acts_on_them (void **state)
{
    fixture_t *fx = *state;
    //  U+0080, U+009B (CSI), U+009F; U+00A0 is the first that passes
    pack_cstr (fx, "a\xc2\x80\xc2\x9b[2J\xc2\x9f\xc2\xa0z");
    assert_json (fx, "\"a\\u0080\\u009b[2J\\u009f\xc2\xa0z\"");
}

//  Strict UTF-8 and JSON string check of what json_print wrote: every
//  byte below 0x20 escaped, every multibyte sequence valid.
static void
assert_valid_json_string (const char *json, size_t length)
{
    assert_true (length >= 2);
    assert_int_equal (json[0], '"');
    assert_int_equal (json[length - 1], '"');
    assert_true (cmq_cart_utf8_is_valid (json, length, NULL));
    for (size_t index = 1; index + 1 < length; index++) {
        unsigned char byte = (unsigned char) json[index];
        assert_true (byte >= 0x20);
        if (byte == '"')
            fail_msg ("unescaped quote at %zu in %s", index, json);
        if (byte == '\\')
            index++;  //  the escaped character, or u of \uXXXX
    }
}

static void
random_bytes_always_print_as_a_valid_json_string (void **state)
{
    fixture_t *fx = *state;
    uint32_t seed = 2463534242u;
    char data[64];
    for (int round = 0; round < 5000; round++) {
        size_t size = (size_t) (round % (int) sizeof (data));
        for (size_t index = 0; index < size; index++) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            data[index] = (char) (seed >> 24);
        }
        msgpack_sbuffer_clear (&fx->buffer);
        pack_str (fx, data, size);
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        size_t offset = 0;
        assert_int_equal (msgpack_unpack_next (&unpacked, fx->buffer.data,
                                               fx->buffer.size, &offset),
                          MSGPACK_UNPACK_SUCCESS);
        size_t length = 0;
        char *json = json_print_object (&unpacked.data, &length);
        assert_non_null (json);
        assert_valid_json_string (json, length);
        free (json);
        msgpack_unpacked_destroy (&unpacked);
    }
}

static void
bin_is_printed_as_an_escaped_string (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_bin (&fx->packer, 4);
    msgpack_pack_bin_body (&fx->packer, "\xff\x00ok", 4);
    assert_json (fx, "\"\\u00ff\\u0000ok\"");
}

static void
negative_and_large_integers_are_exact (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_array (&fx->packer, 6);
    msgpack_pack_int64 (&fx->packer, -1);
    msgpack_pack_int64 (&fx->packer, INT64_MIN);
    msgpack_pack_int64 (&fx->packer, INT64_MAX);
    msgpack_pack_uint64 (&fx->packer, UINT64_MAX);
    msgpack_pack_int64 (&fx->packer, 0);
    msgpack_pack_int64 (&fx->packer, -129);
    assert_json (fx, "[-1,-9223372036854775808,9223372036854775807,"
                     "18446744073709551615,0,-129]");
}

static void
nil_and_booleans_are_json_literals (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_array (&fx->packer, 3);
    msgpack_pack_nil (&fx->packer);
    msgpack_pack_true (&fx->packer);
    msgpack_pack_false (&fx->packer);
    assert_json (fx, "[null,true,false]");
}

static void
empty_map_and_array_and_string_print_as_empty_json (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_array (&fx->packer, 3);
    msgpack_pack_map (&fx->packer, 0);
    msgpack_pack_array (&fx->packer, 0);
    pack_cstr (fx, "");
    assert_json (fx, "[{},[],\"\"]");
}

static void
floats_print_shortest_and_stay_floats (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_array (&fx->packer, 5);
    msgpack_pack_double (&fx->packer, 1.5);
    msgpack_pack_double (&fx->packer, 1.0);
    msgpack_pack_double (&fx->packer, 0.1);
    msgpack_pack_float (&fx->packer, 0.1f);
    msgpack_pack_double (&fx->packer, -2.5e-300);
    assert_json (fx, "[1.5,1.0,0.1,0.1,-2.5e-300]");
}

static void
nan_and_infinity_become_null (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_array (&fx->packer, 3);
    msgpack_pack_double (&fx->packer, NAN);
    msgpack_pack_double (&fx->packer, INFINITY);
    msgpack_pack_float (&fx->packer, -INFINITY);
    assert_json (fx, "[null,null,null]");
}

static void
non_string_keys_become_strings_of_their_json (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_map (&fx->packer, 4);
    msgpack_pack_int (&fx->packer, 1);
    pack_cstr (fx, "one");
    msgpack_pack_nil (&fx->packer);
    msgpack_pack_int (&fx->packer, 0);
    msgpack_pack_array (&fx->packer, 1);
    pack_cstr (fx, "k");
    msgpack_pack_true (&fx->packer);
    msgpack_pack_bin (&fx->packer, 1);
    msgpack_pack_bin_body (&fx->packer, "\n", 1);
    msgpack_pack_int (&fx->packer, 2);
    assert_json (fx,
                 "{\"1\":\"one\",\"null\":0,\"[\\\"k\\\"]\":true,\"\\n\":2}");
}

//  Builds objects directly: the unpacker itself stops at 32 levels, but
//  the converter must not trust its caller to.
static void
nesting_deeper_than_the_limit_is_refused (void **state)
{
    (void) state;
    int levels = JSON_PRINT_MAX_DEPTH + 2;
    msgpack_object *objects =
      (msgpack_object *) calloc ((size_t) levels, sizeof (msgpack_object));
    for (int index = 0; index < levels; index++) {
        objects[index].type = MSGPACK_OBJECT_ARRAY;
        objects[index].via.array.size = index + 1 < levels ? 1 : 0;
        objects[index].via.array.ptr =
          index + 1 < levels ? &objects[index + 1] : NULL;
    }
    assert_null (json_print_object (&objects[0], NULL));
    //  Exactly at the limit is still fine.
    char *json =
      json_print_object (&objects[levels - JSON_PRINT_MAX_DEPTH - 1], NULL);
    assert_non_null (json);
    assert_int_equal (strlen (json), 2 * (JSON_PRINT_MAX_DEPTH + 1));
    free (json);
    free (objects);
}

static void
a_null_object_gives_null (void **state)
{
    (void) state;
    assert_null (json_print_object (NULL, NULL));
}

static void
long_strings_grow_the_buffer_intact (void **state)
{
    fixture_t *fx = *state;
    size_t size = 100000;
    char *text = (char *) malloc (size + 1);
    memset (text, 'x', size);
    text[size] = 0;
    pack_str (fx, text, size);
    char *expected = (char *) malloc (size + 3);
    expected[0] = '"';
    memcpy (expected + 1, text, size);
    strcpy (expected + 1 + size, "\"");
    assert_json (fx, expected);
    free (expected);
    free (text);
}

//  Returns json_print_unpack's answer for raw bytes.
static int
unpack_bytes (const char *data, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = json_print_unpack (data, size, &unpacked);
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

static void
unpack_accepts_one_whole_object (void **state)
{
    fixture_t *fx = *state;
    msgpack_pack_map (&fx->packer, 2);
    pack_cstr (fx, "status");
    msgpack_pack_int (&fx->packer, 404);
    pack_cstr (fx, "error");
    pack_cstr (fx, "item not in cart");
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (
      json_print_unpack (fx->buffer.data, fx->buffer.size, &unpacked), 0);
    char *json = json_print_object (&unpacked.data, NULL);
    assert_string_equal (json,
                         "{\"status\":404,\"error\":\"item not in cart\"}");
    free (json);
    msgpack_unpacked_destroy (&unpacked);
}

static void
unpack_refuses_containers_claiming_more_elements_than_bytes (void **state)
{
    (void) state;
    //  Each would make msgpack-c allocate gigabytes before failing.
    assert_int_equal (unpack_bytes ("\xdd\xff\xff\xff\xff", 5), -1);
    assert_int_equal (unpack_bytes ("\xdf\xff\xff\xff\xff", 5), -1);
    assert_int_equal (unpack_bytes ("\x91\xdd\x00\x01\x00\x00\x01", 7), -1);
    //  Two map entries need four objects: three bytes are not enough.
    assert_int_equal (unpack_bytes ("\x82\x01\x02\x03", 4), -1);
}

static void
unpack_refuses_truncated_strings_and_numbers (void **state)
{
    (void) state;
    assert_int_equal (unpack_bytes ("\xa5"
                                    "abc",
                                    4),
                      -1);
    assert_int_equal (unpack_bytes ("\xdb\xff\xff\xff\xff\x61", 6), -1);
    assert_int_equal (unpack_bytes ("\xcf\x00\x00", 3), -1);
    assert_int_equal (unpack_bytes ("\xc4", 1), -1);
    assert_int_equal (unpack_bytes ("\xd8\x01\x02", 3), -1);
}

static void
unpack_refuses_trailing_bytes_empty_input_and_0xc1 (void **state)
{
    (void) state;
    assert_int_equal (unpack_bytes ("\x80\x00", 2), -1);
    assert_int_equal (unpack_bytes ("501", 3), -1);
    assert_int_equal (unpack_bytes ("", 0), -1);
    assert_int_equal (unpack_bytes ("\xc1", 1), -1);
    assert_int_equal (unpack_bytes ("\x80", 1), 0);
}

static void
unpack_allows_32_levels_and_refuses_33 (void **state)
{
    (void) state;
    char data[40];
    memset (data, 0x91, sizeof (data));  //  [[[...
    data[31] = (char) 0x90;              //  32 arrays, the last empty
    assert_int_equal (unpack_bytes (data, 32), 0);
    data[31] = (char) 0x91;
    data[32] = (char) 0x90;  //  33 arrays
    assert_int_equal (unpack_bytes (data, 33), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
        T (nested_maps_and_arrays_keep_their_key_order),
        T (quotes_and_backslashes_are_escaped),
        T (control_characters_use_short_escapes_where_json_has_them),
        T (nul_bytes_inside_strings_are_kept_as_escapes),
        T (valid_multibyte_utf8_passes_through_unchanged),
        T (invalid_utf8_bytes_become_u00xx_escapes),
        T (an_invalid_byte_does_not_swallow_the_valid_text_after_it),
        T (c1_controls_are_escaped_so_no_terminal_acts_on_them),
        T (random_bytes_always_print_as_a_valid_json_string),
        T (bin_is_printed_as_an_escaped_string),
        T (negative_and_large_integers_are_exact),
        T (nil_and_booleans_are_json_literals),
        T (empty_map_and_array_and_string_print_as_empty_json),
        T (floats_print_shortest_and_stay_floats),
        T (nan_and_infinity_become_null),
        T (non_string_keys_become_strings_of_their_json),
        T (nesting_deeper_than_the_limit_is_refused),
        T (a_null_object_gives_null),
        T (long_strings_grow_the_buffer_intact),
        T (unpack_accepts_one_whole_object),
        T (unpack_refuses_containers_claiming_more_elements_than_bytes),
        T (unpack_refuses_truncated_strings_and_numbers),
        T (unpack_refuses_trailing_bytes_empty_input_and_0xc1),
        T (unpack_allows_32_levels_and_refuses_33),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
