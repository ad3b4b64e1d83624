//  test_endpoint_list.c - which brokers a worker or client config names

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <string.h>

#include "cartmq/endpoint_list.h"
#include "cartmq/worker.h"

//  The endpoints config names, joined by '|', or "ERROR: reason".
static char *
s_brokers (const cmq_worker_config_t *config)
{
    static char text[2048];
    char error[CMQ_ERRSTR_SIZE] = "";
    zlist_t *list =
      cmq_endpoint_list_new (config->endpoint, config->endpoints,
                             config->endpoint_count, error, sizeof (error));
    if (!list) {
        snprintf (text, sizeof (text), "ERROR: %s", error);
        return text;
    }
    text[0] = 0;
    for (const char *endpoint = (const char *) zlist_first (list); endpoint;
         endpoint = (const char *) zlist_next (list)) {
        if (text[0])
            strcat (text, "|");
        strcat (text, endpoint);
    }
    zlist_destroy (&list);
    return text;
}

static void
no_endpoint_means_the_default_broker (void **state)
{
    (void) state;
    cmq_worker_config_t config;
    memset (&config, 0, sizeof (config));
    assert_string_equal (s_brokers (&config), CMQ_DEFAULT_ENDPOINT);
    cmq_worker_config_defaults (&config);
    assert_string_equal (s_brokers (&config), CMQ_DEFAULT_ENDPOINT);
}

static void
a_comma_list_in_endpoint_is_split_in_order (void **state)
{
    (void) state;
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoint = " tcp://b:2, tcp://a:1,ipc:///tmp/x ";
    assert_string_equal (s_brokers (&config),
                         "tcp://b:2|tcp://a:1|ipc:///tmp/x");
}

static void
endpoints_win_over_endpoint_and_each_is_split_too (void **state)
{
    (void) state;
    const char *values[] = { "tcp://a:1", "tcp://b:2,tcp://c:3", NULL };
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoint = "tcp://ignored:9";
    config.endpoints = values;
    config.endpoint_count = 3;  //  a NULL entry is skipped
    assert_string_equal (s_brokers (&config), "tcp://a:1|tcp://b:2|tcp://c:3");
}

static void
the_same_endpoint_twice_is_refused_naming_it (void **state)
{
    (void) state;
    const char *values[] = { "tcp://a:1", "tcp://b:2", "tcp://a:1" };
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoints = values;
    config.endpoint_count = 3;
    assert_string_equal (s_brokers (&config),
                         "ERROR: duplicate endpoint tcp://a:1: one "
                         "connection per broker");
    config.endpoint_count = 0;
    config.endpoint = "tcp://b:2,tcp://b:2";
    assert_non_null (
      strstr (s_brokers (&config), "duplicate endpoint tcp://b:2"));
}

static void
odd_bytes_in_a_refused_endpoint_are_escaped (void **state)
{
    (void) state;
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoint = "tcp://\x1b[2J:1,tcp://\x1b[2J:1";
    assert_non_null (
      strstr (s_brokers (&config), "duplicate endpoint tcp://\\x1b[2J:1"));
}

static void
an_empty_list_is_refused (void **state)
{
    (void) state;
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoint = " , ";
    assert_string_equal (s_brokers (&config), "ERROR: empty endpoint list");
    config.endpoint = "";
    assert_string_equal (s_brokers (&config), "ERROR: empty endpoint list");
}

static void
more_brokers_than_the_limit_are_refused (void **state)
{
    (void) state;
    char names[CMQ_MAX_BROKERS + 1][32];
    const char *values[CMQ_MAX_BROKERS + 1];
    for (int index = 0; index <= CMQ_MAX_BROKERS; index++) {
        snprintf (names[index], sizeof (names[index]), "tcp://h:%d", index + 1);
        values[index] = names[index];
    }
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    config.endpoints = values;
    config.endpoint_count = CMQ_MAX_BROKERS;
    assert_null (strstr (s_brokers (&config), "ERROR"));
    config.endpoint_count = CMQ_MAX_BROKERS + 1;
    assert_non_null (strstr (s_brokers (&config), "ERROR: more than"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (no_endpoint_means_the_default_broker),
        cmocka_unit_test (a_comma_list_in_endpoint_is_split_in_order),
        cmocka_unit_test (endpoints_win_over_endpoint_and_each_is_split_too),
        cmocka_unit_test (the_same_endpoint_twice_is_refused_naming_it),
        cmocka_unit_test (odd_bytes_in_a_refused_endpoint_are_escaped),
        cmocka_unit_test (an_empty_list_is_refused),
        cmocka_unit_test (more_brokers_than_the_limit_are_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
