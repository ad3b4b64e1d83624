//  latency_pair.c - cartmq-latency-pair: window-1 latency of two MDP
//  endpoints, request by request in turn
//
//  Comparing two setups' latency with separate runs on a shared 2-core
//  machine measures the machine as much as the setups: one-second runs of
//  the same pair, alternated, still gave p50 ratios from 0.96 to 1.12 per
//  round. Here one client process keeps one request in flight and sends
//  it to A and B in turn, in the order A B B A (so neither always goes
//  first after the other), and keeps a histogram per side. Both sides see
//  the same moments of the machine, the same client and the same library
//  code path (cmq_client_send / cmq_client_recv), so their ratio is about
//  the setups alone.
//
//  Each request body is --size bytes starting with a sequence number; a
//  reply whose number is not the one awaited (a reply after its request
//  timed out) is counted as late and waited past.

#include "cartmq/client.h"
#include "cartmq/histogram.h"
#include "cartmq/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_PROGRAM "cartmq-latency-pair"
#define S_SIDES   2

//  As cartmq bench: nanoseconds, within 0.4% of each value.
#define S_HISTOGRAM_BITS     9
#define S_HISTOGRAM_MAX_BITS 43

typedef struct {
    const char *endpoint;
    cmq_client_t *client;
    cmq_histogram_t *latency;  //  nanoseconds
    uint64_t timeouts;
    uint64_t late;
} s_side_t;

typedef struct {
    char *endpoints[S_SIDES];
    char *service;
    int64_t size;
    int64_t duration_s;
    int64_t warmup_s;
    int64_t timeout_ms;
    bool json;
} s_settings_t;

//  Monotonic clock in nanoseconds.
static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

//  One request to a side and its reply. Returns the round trip in ns, or
//  -1 on timeout or interrupt.
static int64_t
s_round_trip (s_side_t *side, const s_settings_t *settings, byte *body,
              uint64_t sequence)
{
    memcpy (body, &sequence, sizeof (sequence));
    zmsg_t *request = zmsg_new ();
    zmsg_addmem (request, body, (size_t) settings->size);
    int64_t sent_ns = s_now_ns ();
    int64_t deadline_ns = sent_ns + settings->timeout_ms * 1000000LL;
    if (cmq_client_send (side->client, settings->service, &request)) {
        zmsg_destroy (&request);
        return -1;
    }
    while (!zsys_interrupted) {
        int64_t left_ms = (deadline_ns - s_now_ns ()) / 1000000;
        if (left_ms <= 0)
            break;
        zmsg_t *reply = cmq_client_recv (side->client, (int) left_ms, NULL);
        if (!reply)
            break;
        int64_t now_ns = s_now_ns ();
        zframe_t *frame = zmsg_first (reply);
        uint64_t echoed = 0;
        if (frame && zframe_size (frame) >= sizeof (echoed))
            memcpy (&echoed, zframe_data (frame), sizeof (echoed));
        zmsg_destroy (&reply);
        if (echoed == sequence)
            return now_ns - sent_ns;
        side->late++;
    }
    side->timeouts++;
    return -1;
}

static void
s_print_side (const char *name, const s_side_t *side, double elapsed_s,
              bool is_last)
{
    uint64_t count = cmq_histogram_count (side->latency);
    cmq_histogram_summary_t us = cmq_histogram_summary (side->latency, 1000);
    printf ("\"%s\": {\"endpoint\": \"%s\", \"requests\": %llu, "
            "\"rps\": %.1f, \"p50_us\": %.2f, \"p90_us\": %.2f, "
            "\"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, "
            "\"mean_us\": %.2f, \"timeouts\": %llu, \"late\": %llu}%s",
            name, side->endpoint, (unsigned long long) count,
            elapsed_s > 0 ? (double) count / (elapsed_s / S_SIDES) : 0.0,
            us.p50, us.p90, us.p99, us.p999, us.max, us.mean,
            (unsigned long long) side->timeouts,
            (unsigned long long) side->late, is_last ? "" : ", ");
}

static void
s_report (const s_side_t *sides, double elapsed_s, bool json)
{
    cmq_histogram_summary_t us[S_SIDES];
    for (int index = 0; index < S_SIDES; index++)
        us[index] = cmq_histogram_summary (sides[index].latency, 1000);
    double ratio = us[0].p50 > 0 ? us[1].p50 / us[0].p50 : 0.0;
    if (json) {
        printf ("{");
        s_print_side ("a", &sides[0], elapsed_s, false);
        s_print_side ("b", &sides[1], elapsed_s, false);
        printf ("\"elapsed_s\": %.3f, \"p50_ratio_b_to_a\": %.4f}\n", elapsed_s,
                ratio);
        return;
    }
    for (int index = 0; index < S_SIDES; index++)
        printf ("%s %s: %llu requests, p50 %.1f us, p99 %.1f us, max "
                "%.1f us, %llu timeouts, %llu late\n",
                index ? "B" : "A", sides[index].endpoint,
                (unsigned long long) cmq_histogram_count (sides[index].latency),
                us[index].p50, us[index].p99, us[index].max,
                (unsigned long long) sides[index].timeouts,
                (unsigned long long) sides[index].late);
    printf ("p50 B / A: %.3f\n", ratio);
}

//  Runs the pair for warmup, then for duration measured. 0, or 3 when a
//  side never answered.
static int
s_run (s_side_t *sides, const s_settings_t *settings)
{
    byte *body = (byte *) zmalloc ((size_t) settings->size);
    uint64_t sequence = 0;
    int64_t started_ns = s_now_ns ();
    int64_t measure_ns = started_ns + settings->warmup_s * 1000000000LL;
    int64_t stop_ns = measure_ns + settings->duration_s * 1000000000LL;
    bool is_measuring = settings->warmup_s == 0;
    for (uint64_t step = 0; !zsys_interrupted; step++) {
        int64_t now_ns = s_now_ns ();
        if (now_ns >= stop_ns)
            break;
        if (!is_measuring && now_ns >= measure_ns) {
            for (int index = 0; index < S_SIDES; index++) {
                cmq_histogram_reset (sides[index].latency);
                sides[index].timeouts = sides[index].late = 0;
            }
            is_measuring = true;
        }
        //  A B B A A B B A ...
        s_side_t *side = &sides[(step + step / 2) % 2];
        int64_t round_trip = s_round_trip (side, settings, body, ++sequence);
        if (round_trip >= 0)
            cmq_histogram_record (side->latency, (uint64_t) round_trip);
    }
    double elapsed_s = (double) (s_now_ns () - measure_ns) / 1e9;
    free (body);
    s_report (sides, elapsed_s, settings->json);
    for (int index = 0; index < S_SIDES; index++)
        if (cmq_histogram_count (sides[index].latency) == 0)
            return 3;
    return 0;
}

static int
s_parse (int argc, char **argv, s_settings_t *settings, cmq_option_t *table)
{
    cmq_options_spec_t spec = { S_PROGRAM,
                                "--a ENDPOINT --b ENDPOINT [--service S] "
                                "[--size BYTES] [--duration S] [--warmup S] "
                                "[--timeout-ms N] [--json]",
                                NULL, false };
    int positionals = 0, next_arg = argc;
    switch (cmq_options_parse (&spec, table, argc, argv, NULL, 0, &positionals,
                               &next_arg)) {
        case CMQ_OPTIONS_OK:
            break;
        case CMQ_OPTIONS_EXIT:
            return 0;  //  --help or --version
        default:
            return 2;
    }
    if (!settings->endpoints[0] || !settings->endpoints[1]) {
        fprintf (stderr, "%s: --a and --b are both required\n", S_PROGRAM);
        return 2;
    }
    return -1;
}

int
main (int argc, char **argv)
{
    s_settings_t settings = { { NULL, NULL }, NULL, 32, 8, 1, 5000, false };
    cmq_option_t table[] = {
        { "a", CMQ_OPT_STRING, "ENDPOINT", "first MDP endpoint", 0, 0,
          &settings.endpoints[0] },
        { "b", CMQ_OPT_STRING, "ENDPOINT", "second MDP endpoint", 0, 0,
          &settings.endpoints[1] },
        { "service", CMQ_OPT_STRING, "NAME",
          "service that echoes its request (default echo)", 0, 0,
          &settings.service },
        { "size", CMQ_OPT_INT, "BYTES", "request body size (default 32)", 8,
          1024 * 1024, &settings.size },
        { "duration", CMQ_OPT_INT, "S", "seconds measured (default 8)", 1,
          86400, &settings.duration_s },
        { "warmup", CMQ_OPT_INT, "S", "seconds before measuring (default 1)", 0,
          3600, &settings.warmup_s },
        { "timeout-ms", CMQ_OPT_INT, "N",
          "a reply later than this is a timeout (default 5000)", 1, 3600000,
          &settings.timeout_ms },
        { "json", CMQ_OPT_FLAG, NULL, "one JSON line instead of text", 0, 0,
          &settings.json },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    int rc = s_parse (argc, argv, &settings, table);
    if (rc == -1) {
        if (!settings.service)
            settings.service = strdup ("echo");
        s_side_t sides[S_SIDES];
        memset (sides, 0, sizeof (sides));
        rc = 0;
        for (int index = 0; index < S_SIDES && rc == 0; index++) {
            cmq_client_config_t config;
            cmq_client_config_defaults (&config);
            config.endpoint = settings.endpoints[index];
            sides[index].endpoint = settings.endpoints[index];
            sides[index].latency =
              cmq_histogram_new (S_HISTOGRAM_BITS, S_HISTOGRAM_MAX_BITS);
            char error[CMQ_ERRSTR_SIZE];
            sides[index].client =
              cmq_client_new (&config, error, sizeof (error));
            if (!sides[index].client) {
                fprintf (stderr, "%s: %s\n", S_PROGRAM, error);
                rc = 2;
            }
        }
        if (rc == 0)
            rc = s_run (sides, &settings);
        for (int index = 0; index < S_SIDES; index++) {
            cmq_client_destroy (&sides[index].client);
            cmq_histogram_destroy (&sides[index].latency);
        }
    }
    cmq_options_free (table);
    return rc;
}
