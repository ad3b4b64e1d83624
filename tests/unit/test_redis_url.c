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
      redis_url_parse ("redis-sentinal://h:1#m", &url, error, sizeof (error)),
      -1);
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

//  -------------------------------------------------------------------------
//  Sentinel and Cluster

static void
sentinel_url_lists_sentinels_db_and_master (void **state)
{
    (void) state;
    redis_url_t url;
    s_parse_ok ("redis-sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380,"
                "sentinel-3:5000/2#mymaster",
                &url);
    assert_int_equal (url.kind, REDIS_URL_SENTINEL);
    assert_int_equal (url.node_count, 3);
    assert_string_equal (url.nodes[0].host, "10.0.0.1");
    assert_int_equal (url.nodes[0].port, 26379);
    assert_string_equal (url.nodes[1].host, "::1");
    assert_int_equal (url.nodes[1].port, 26380);
    assert_string_equal (url.nodes[2].host, "sentinel-3");
    assert_int_equal (url.nodes[2].port, 5000);
    assert_int_equal (url.db, 2);
    assert_string_equal (url.master, "mymaster");
    assert_true (url.has_password);
    assert_string_equal (url.password, "s@cret");

    s_parse_ok ("redis-sentinel://h:1#m", &url);  //  DB may be left out
    assert_int_equal (url.db, 0);
    assert_int_equal (url.node_count, 1);
    assert_false (url.has_password);
    //  A password may hold '/' before the '@'.
    s_parse_ok ("redis-sentinel://:a/b@h:1/3#m", &url);
    assert_string_equal (url.password, "a/b");
    assert_int_equal (url.db, 3);
}

static void
cluster_url_lists_seed_nodes (void **state)
{
    (void) state;
    redis_url_t url;
    s_parse_ok ("redis-cluster://127.0.0.1:7000,127.0.0.1:7001", &url);
    assert_int_equal (url.kind, REDIS_URL_CLUSTER);
    assert_int_equal (url.node_count, 2);
    assert_string_equal (url.nodes[1].host, "127.0.0.1");
    assert_int_equal (url.nodes[1].port, 7001);
    assert_int_equal (url.db, 0);
    s_parse_ok ("redis-cluster://app:pw@h:7000/", &url);
    assert_string_equal (url.user, "app");
    assert_string_equal (url.password, "pw");
}

static void
bad_sentinel_and_cluster_urls_name_the_problem (void **state)
{
    (void) state;
    char many[400] = "redis-cluster://";
    for (int i = 0; i <= REDIS_URL_MAX_NODES; i++)
        strcat (many, i ? ",h:1" : "h:1");
    char long_name[300] = "redis-sentinel://h:1#";
    memset (long_name + strlen (long_name), 'm', REDIS_URL_MAX_NAME_BYTES + 1);
    const struct {
        const char *text;
        const char *reason;
    } cases[] = {
        { "redis-sentinel://#m", "no hosts" },
        { "redis-sentinel:///0#m", "no hosts" },
        { "redis-sentinel://:pw@/0#m", "no hosts" },
        { "redis-sentinel://h:1/0", "master name" },
        { "redis-sentinel://h:1/0#", "master name" },
        { "redis-sentinel://h:1/0#a b", "master name" },
        { long_name, "master name" },
        { "redis-sentinel://h:0/0#m", "port" },
        { "redis-sentinel://h:99999/0#m", "port" },
        { "redis-sentinel://h/0#m", "HOST:PORT" },
        { "redis-sentinel://:5/0#m", "HOST:PORT" },
        { "redis-sentinel://h:1,,h:2/0#m", "empty host" },
        { "redis-sentinel://h:1,/0#m", "empty host" },
        { "redis-sentinel://h:1/x#m", "database" },
        { "redis-sentinel://h:1?x=1#m", "query" },
        { "redis-cluster://", "no hosts" },
        { "redis-cluster://h:1,h:x", "port" },
        { "redis-cluster://h:1/0", "no database" },
        { "redis-cluster://h:1#m", "fragment" },
        { "redis-cluster://h:1?db=1", "query" },
        { "redis-cluster://h%:1", "bad character" },
        { many, "too many hosts" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        redis_url_t url;
        char error[200] = "";
        int rc = redis_url_parse (cases[i].text, &url, error, sizeof (error));
        if (rc != -1 || !strstr (error, cases[i].reason))
            print_error ("%s: rc %d, error \"%s\"\n", cases[i].text, rc, error);
        assert_int_equal (rc, -1);
        assert_non_null (strstr (error, cases[i].reason));
        assert_null (strchr (error, '\n'));
        assert_int_equal (url.node_count, 0);
    }
}

static void
described_list_url_masks_the_password (void **state)
{
    (void) state;
    redis_url_t url;
    char text[400];
    s_parse_ok ("redis-sentinel://:hunter2@a:1,[::1]:2/3#m", &url);
    redis_url_describe (&url, text, sizeof (text));
    assert_string_equal (text, "redis-sentinel://:***@a:1,[::1]:2/3#m");
    s_parse_ok ("redis-cluster://a:1,b:2", &url);
    redis_url_describe (&url, text, sizeof (text));
    assert_string_equal (text, "redis-cluster://a:1,b:2");
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
        cmocka_unit_test (sentinel_url_lists_sentinels_db_and_master),
        cmocka_unit_test (cluster_url_lists_seed_nodes),
        cmocka_unit_test (bad_sentinel_and_cluster_urls_name_the_problem),
        cmocka_unit_test (described_list_url_masks_the_password),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
