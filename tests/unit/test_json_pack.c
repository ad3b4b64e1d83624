//  test_json_pack.c - JSON text to msgpack for `cartmq call`

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "json_pack.h"
#include "json_print.h"

//  Packs text, then prints it back as JSON with the CLI's printer: a
//  round trip both ways. NULL when packing refused it (reason in error).
static char *
s_round_trip (const char *text, char *error, size_t error_size)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    char *json = NULL;
    if (json_pack_text (text, strlen (text), &buffer, error, error_size) == 0) {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        assert_int_equal (
          json_print_unpack (buffer.data, buffer.size, &unpacked), 0);
        json = json_print_object (&unpacked.data, NULL);
        msgpack_unpacked_destroy (&unpacked);
    }
    msgpack_sbuffer_destroy (&buffer);
    return json;
}

static void
every_json_type_round_trips (void **state)
{
    (void) state;
    const char *cases[][2] = {
        { "{\"user_id\":\"alice\",\"quantity\":2,\"ok\":true,\"none\":null}",
          "{\"user_id\":\"alice\",\"quantity\":2,\"ok\":true,\"none\":null}" },
        { " [1, -1, 1.5, \"\\u00e9\", []] ", "[1,-1,1.5,\"\xc3\xa9\",[]]" },
        { "18446744073709551615", "18446744073709551615" },
        { "-9223372036854775808", "-9223372036854775808" },
        { "9007199254740993", "9007199254740993" },  //  2^53 + 1, exact
        { "\"\"", "\"\"" },
        { NULL, NULL }
    };
    char error[256];
    for (size_t index = 0; cases[index][0]; index++) {
        char *json = s_round_trip (cases[index][0], error, sizeof (error));
        if (!json)
            fail_msg ("%s refused: %s", cases[index][0], error);
        assert_string_equal (json, cases[index][1]);
        free (json);
    }
}

static void
bad_json_is_refused_with_a_reason (void **state)
{
    (void) state;
    const char *cases[][2] = { { "", "not JSON" },
                               { "{\"a\":1} x", "not JSON" },
                               { "[1,2", "not JSON" },
                               { "{'a':1}", "not JSON" },
                               { "\"\xff\"", "not JSON" },
                               { "18446744073709551616", "64-bit range" },
                               { "[-9223372036854775809]", "64-bit range" },
                               { "{\"n\":123456789012345678901234567890}",
                                 "64-bit range" },
                               { "1.5e400", "too large" },
                               { NULL, NULL } };
    char error[256];
    for (size_t index = 0; cases[index][0]; index++) {
        error[0] = '\0';
        char *json = s_round_trip (cases[index][0], error, sizeof (error));
        if (json)
            fail_msg ("%s accepted as %s", cases[index][0], json);
        if (!strstr (error, cases[index][1]))
            fail_msg ("%s: reason '%s' lacks '%s'", cases[index][0], error,
                      cases[index][1]);
    }
    //  A big number inside a string is just text; a fraction is a double
    char *json = s_round_trip ("[\"18446744073709551616\", 1e3, 2.5e-3]", error,
                               sizeof (error));
    assert_non_null (json);
    assert_string_equal (json, "[\"18446744073709551616\",1e+03,0.0025]");
    free (json);
}

static void
nesting_past_the_limit_is_refused (void **state)
{
    (void) state;
    char text[2 * (JSON_PACK_MAX_DEPTH + 2) + 1];
    size_t depth = JSON_PACK_MAX_DEPTH + 1;
    memset (text, '[', depth);
    memset (text + depth, ']', depth);
    text[2 * depth] = '\0';
    char error[256];
    assert_null (s_round_trip (text, error, sizeof (error)));
    assert_non_null (strstr (error, "not JSON"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (every_json_type_round_trips),
        cmocka_unit_test (bad_json_is_refused_with_a_reason),
        cmocka_unit_test (nesting_past_the_limit_is_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
