//  test_prometheus.c - mmi.stats maps to the Prometheus text format

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prometheus.h"

//  A stats map as a broker sends it, with one service named name.
static void
s_pack_stats (msgpack_sbuffer *buffer, const char *name, size_t name_size,
              uint64_t requests)
{
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 5);
    msgpack_pack_str_with_body (&packer, "requests", 8);
    msgpack_pack_uint64 (&packer, requests);
    msgpack_pack_str_with_body (&packer, "uptime_s", 8);
    msgpack_pack_uint64 (&packer, 12);
    msgpack_pack_str_with_body (&packer, "dropped", 7);
    msgpack_pack_map (&packer, 2);
    msgpack_pack_str_with_body (&packer, "expired", 7);
    msgpack_pack_uint64 (&packer, 3);
    msgpack_pack_str_with_body (&packer, "queue_full", 10);
    msgpack_pack_uint64 (&packer, 0);
    msgpack_pack_str_with_body (&packer, "workers", 7);
    msgpack_pack_str_with_body (&packer, "not a number", 12);
    msgpack_pack_str_with_body (&packer, "services", 8);
    msgpack_pack_array (&packer, 1);
    msgpack_pack_map (&packer, 3);
    msgpack_pack_str_with_body (&packer, "name", 4);
    msgpack_pack_str_with_body (&packer, name, name_size);
    msgpack_pack_str_with_body (&packer, "requests", 8);
    msgpack_pack_uint64 (&packer, requests);
    msgpack_pack_str_with_body (&packer, "p99_us", 6);
    msgpack_pack_uint64 (&packer, 1849);
}

//  The page for the sources, as a heap string.
static char *
s_render (const prometheus_source_t *sources, size_t count)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    assert_int_equal (prometheus_write (out, sources, count), 0);
    fclose (out);
    return text;
}

static void
families_come_once_with_a_sample_per_broker (void **state)
{
    (void) state;
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init (&first);
    msgpack_sbuffer_init (&second);
    s_pack_stats (&first, "cart", 4, 21006);
    s_pack_stats (&second, "cart", 4, 7);
    msgpack_unpacked a, b;
    msgpack_unpacked_init (&a);
    msgpack_unpacked_init (&b);
    msgpack_unpack_next (&a, first.data, first.size, NULL);
    msgpack_unpack_next (&b, second.data, second.size, NULL);
    prometheus_source_t sources[] = { { "tcp://127.0.0.1:5555", &a.data },
                                      { "tcp://127.0.0.1:5556", &b.data },
                                      { "tcp://127.0.0.1:5557", NULL } };
    char *text = s_render (sources, 3);
    const char *expected[] = {
        "# TYPE cartmq_requests_total counter\n"
        "cartmq_requests_total{broker=\"tcp://127.0.0.1:5555\"} 21006\n"
        "cartmq_requests_total{broker=\"tcp://127.0.0.1:5556\"} 7\n",
        "cartmq_up{broker=\"tcp://127.0.0.1:5555\"} 1\n"
        "cartmq_up{broker=\"tcp://127.0.0.1:5556\"} 1\n"
        "cartmq_up{broker=\"tcp://127.0.0.1:5557\"} 0\n",
        "cartmq_dropped_total{broker=\"tcp://127.0.0.1:5555\","
        "reason=\"expired\"} 3\n",
        "cartmq_dropped_total{broker=\"tcp://127.0.0.1:5555\","
        "reason=\"queue_full\"} 0\n",
        "cartmq_service_requests_total{broker=\"tcp://127.0.0.1:5556\","
        "service=\"cart\"} 7\n",
        "cartmq_service_time_p99_seconds{broker=\"tcp://127.0.0.1:5555\","
        "service=\"cart\"} 0.001849\n",
        NULL
    };
    for (size_t index = 0; expected[index]; index++)
        if (!strstr (text, expected[index]))
            fail_msg ("missing:\n%s\nin:\n%s", expected[index], text);
    //  One TYPE line per family, whatever the number of brokers
    const char *scan = text;
    int types = 0;
    while ((scan = strstr (scan, "# TYPE cartmq_requests_total ")))
        types++, scan++;
    assert_int_equal (types, 1);
    //  A value that is not a number is left out, not written as 0
    assert_null (strstr (text, "cartmq_workers{"));
    //  The broker that did not answer has cartmq_up only
    int mentions = 0;
    for (scan = text; (scan = strstr (scan, ":5557\"")); scan++)
        mentions++;
    assert_int_equal (mentions, 1);
    free (text);
    msgpack_unpacked_destroy (&a);
    msgpack_unpacked_destroy (&b);
    msgpack_sbuffer_destroy (&first);
    msgpack_sbuffer_destroy (&second);
}

static void
service_names_cannot_break_a_line_or_a_label (void **state)
{
    (void) state;
    const char hostile[] = "a\"b\\c\nd\xff}";
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    s_pack_stats (&buffer, hostile, sizeof (hostile) - 1, 1);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    msgpack_unpack_next (&unpacked, buffer.data, buffer.size, NULL);
    prometheus_source_t source = { "tcp://h:1", &unpacked.data };
    char *text = s_render (&source, 1);
    assert_non_null (
      strstr (text, "cartmq_service_requests_total{broker=\"tcp://h:1\","
                    "service=\"a\\\"b\\\\c\\\\x0ad\\\\xff}\"} 1\n"));
    //  Every line is a comment, a sample, or empty: none starts with "d"
    for (const char *line = text; *line; line = strchr (line, '\n') + 1)
        assert_true (*line == '#' || strncmp (line, "cartmq_", 7) == 0);
    free (text);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (families_come_once_with_a_sample_per_broker),
        cmocka_unit_test (service_names_cannot_break_a_line_or_a_label),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
