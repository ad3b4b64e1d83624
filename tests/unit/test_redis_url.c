//  test_redis_url.c - parsing and describing the worker's --redis URL

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis_url.h"

//  -------------------------------------------------------------------------
//  URLs

static void
s_parse_ok (const char *text, redis_url_t *url)
{
    char error[200] = "";
    int rc = redis_url_parse (text, url, error, sizeof (error));
    if (rc != 0)
        print_error ("%s: %s\n", text, error);
    assert_int_equal (rc, 0);
}

static void
tcp_url_with_everything_is_parsed (void **state)
{
    (void) state;
    redis_url_t url;
    s_parse_ok ("redis://redis.example-1.net:7000/12", &url);
    assert_int_equal (url.kind, REDIS_URL_TCP);
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
        redis_url_t url;
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
    redis_url_t url;
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
    redis_url_t url;
    s_parse_ok ("redis://[::1]:7001/3", &url);
    assert_string_equal (url.host, "::1");
    assert_int_equal (url.port, 7001);
    assert_int_equal (url.db, 3);
}

static void
unix_url_takes_db_and_password (void **state)
{
    (void) state;
    redis_url_t url;
    s_parse_ok ("unix:///var/run/redis/redis.sock", &url);
    assert_int_equal (url.kind, REDIS_URL_UNIX);
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
        redis_url_t url;
        char error[200] = "";
        int rc = redis_url_parse (texts[i], &url, error, sizeof (error));
        if (rc != -1)
            print_error ("accepted: %s\n", texts[i]);
        assert_int_equal (rc, -1);
        assert_true (strlen (error) > 0);
        assert_null (strchr (error, '\n'));
    }
    redis_url_t url;
    char error[200] = "";
    assert_int_equal (redis_url_parse (NULL, &url, error, sizeof (error)), -1);
}

static void
refused_url_leaves_no_password_behind (void **state)
{
    (void) state;
    redis_url_t url;
    char error[200];
    assert_int_equal (
      redis_url_parse ("redis://:hunter2@h:0", &url, error, sizeof (error)),
      -1);
    assert_false (url.has_password);
    assert_string_equal (url.password, "");
}

static void
password_longer_than_the_limit_is_refused (void **state)
{
    (void) state;
    char text[600] = "redis://:";
    memset (text + 9, 'x', REDIS_URL_MAX_SECRET_BYTES + 1);
    strcat (text, "@h");
    redis_url_t url;
    char error[200];
    assert_int_equal (redis_url_parse (text, &url, error, sizeof (error)), -1);
    text[9 + REDIS_URL_MAX_SECRET_BYTES] = '@';
    text[9 + REDIS_URL_MAX_SECRET_BYTES + 1] = 'h';
    text[9 + REDIS_URL_MAX_SECRET_BYTES + 2] = 0;
    s_parse_ok (text, &url);
    assert_int_equal (strlen (url.password), REDIS_URL_MAX_SECRET_BYTES);
}

static void
described_url_masks_the_password (void **state)
{
    (void) state;
    redis_url_t url;
    char text[400];
    s_parse_ok ("redis://app:hunter2@h:7/3", &url);
    redis_url_describe (&url, text, sizeof (text));
    assert_string_equal (text, "redis://app:***@h:7/3");
    s_parse_ok ("redis://[::1]", &url);
    redis_url_describe (&url, text, sizeof (text));
    assert_string_equal (text, "redis://[::1]:6379/0");
    s_parse_ok ("unix:///s?password=hunter2", &url);
    redis_url_describe (&url, text, sizeof (text));
    assert_null (strstr (text, "hunter2"));
}

static void
refusal_says_which_form_was_wrong (void **state)
{
    (void) state;
    redis_url_t url;
    char error[200];
    assert_int_equal (
      redis_url_parse ("rediss://h", &url, error, sizeof (error)), -1);
    assert_non_null (strstr (error, "TLS"));
    assert_int_equal (
      redis_url_parse ("redis-sentinel://h", &url, error, sizeof (error)), -1);
    assert_non_null (strstr (error, "must be redis://"));
    assert_int_equal (redis_url_parse ("unix://p", &url, error, sizeof (error)),
                      -1);
    assert_non_null (strstr (error, "absolute path"));
    //  A success leaves the caller's error buffer alone.
    strcpy (error, "untouched");
    s_parse_ok ("unix:///p", &url);
    assert_int_equal (
      redis_url_parse ("unix:///p", &url, error, sizeof (error)), 0);
    assert_string_equal (error, "untouched");
    assert_int_equal (url.kind, REDIS_URL_UNIX);
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
        cmocka_unit_test (refusal_says_which_form_was_wrong),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
