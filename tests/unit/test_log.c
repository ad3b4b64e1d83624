//  test_log.c - peer bytes escaped for log lines

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "cartmq/log.h"

static void
printable_ascii_is_kept_as_it_is (void **state)
{
    (void) state;
    char buffer[64];
    const char *text = "cart.v2 user-1 {x}";
    assert_string_equal (
      cmq_log_escape (text, strlen (text), buffer, sizeof (buffer)), text);
}

static void
newline_quote_backslash_and_high_bytes_become_hex (void **state)
{
    (void) state;
    char buffer[CMQ_LOG_ESCAPED_BYTES (8)];
    const char text[] = "a\nE: \"\\\xff";
    cmq_log_escape (text, sizeof (text) - 1, buffer, sizeof (buffer));
    assert_string_equal (buffer, "a\\x0aE: \\x22\\x5c\\xff");
    assert_null (strchr (buffer, '\n'));
}

static void
nul_bytes_are_escaped_not_ending_the_value (void **state)
{
    (void) state;
    char buffer[32];
    cmq_log_escape ("cart\0x", 6, buffer, sizeof (buffer));
    assert_string_equal (buffer, "cart\\x00x");
}

static void
a_value_too_long_is_cut_at_a_whole_escape_with_dots (void **state)
{
    (void) state;
    char buffer[10];
    cmq_log_escape ("abcdefghijkl", 12, buffer, sizeof (buffer));
    assert_string_equal (buffer, "abcdef...");
    cmq_log_escape ("ab\n\n\n", 5, buffer, sizeof (buffer));
    assert_string_equal (buffer, "ab\\x0a...");
    //  Exactly full: no dots needed.
    cmq_log_escape ("abcdefghi", 9, buffer, sizeof (buffer));
    assert_string_equal (buffer, "abcdefghi");
}

static void
the_worst_case_fits_its_documented_size (void **state)
{
    (void) state;
    unsigned char bytes[255];
    memset (bytes, 0x01, sizeof (bytes));
    char buffer[CMQ_LOG_ESCAPED_BYTES (255)];
    cmq_log_escape (bytes, sizeof (bytes), buffer, sizeof (buffer));
    assert_int_equal (strlen (buffer), 4 * 255);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (printable_ascii_is_kept_as_it_is),
        cmocka_unit_test (newline_quote_backslash_and_high_bytes_become_hex),
        cmocka_unit_test (nul_bytes_are_escaped_not_ending_the_value),
        cmocka_unit_test (a_value_too_long_is_cut_at_a_whole_escape_with_dots),
        cmocka_unit_test (the_worst_case_fits_its_documented_size),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
