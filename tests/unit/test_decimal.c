//  test_decimal.c - the one strict decimal parser of the worker's formats

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "decimal.h"

static void
digits_up_to_the_limit_are_parsed (void **state)
{
    (void) state;
    int64_t value = -1;
    assert_int_equal (decimal_parse ("0", 1, 0, &value), 0);
    assert_int_equal (value, 0);
    assert_int_equal (decimal_parse ("0065535", 7, 65535, &value), 0);
    assert_int_equal (value, 65535);
    assert_int_equal (decimal_parse ("9999999999", 10, INT64_MAX, &value), 0);
    assert_true (value == 9999999999LL);
    //  Only size bytes count: what follows is the caller's separator.
    assert_int_equal (decimal_parse ("12:34", 2, 100, &value), 0);
    assert_int_equal (value, 12);
}

static void
anything_but_plain_digits_within_the_limit_is_refused (void **state)
{
    (void) state;
    const char *texts[] = { "", "+1", "-1", " 1", "1 ", "1a", "0x1", "1.0" };
    for (size_t i = 0; i < sizeof (texts) / sizeof (texts[0]); i++) {
        int64_t value = 42;
        assert_int_equal (
          decimal_parse (texts[i], strlen (texts[i]), INT64_MAX, &value), -1);
        assert_int_equal (value, 42);  //  left alone
    }
    int64_t value = 42;
    assert_int_equal (decimal_parse ("65536", 5, 65535, &value), -1);
    assert_int_equal (decimal_parse ("00000000001", 11, INT64_MAX, &value),
                      -1);  //  more than ten digits, even if small
    assert_int_equal (value, 42);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (digits_up_to_the_limit_are_parsed),
        cmocka_unit_test (
          anything_but_plain_digits_within_the_limit_is_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
