//  bench_report.c - `cartmq bench` results: progress, JSON line, text

#include "bench_run.h"

#include <inttypes.h>
#include <stdio.h>

static double
s_us (uint64_t nanoseconds)
{
    return (double) nanoseconds / 1000.0;
}

double
bench_report_elapsed_s (const bench_t *self, int64_t now_ns)
{
    int64_t end_ns =
      self->last_reply_ns > self->measure_ns ? self->last_reply_ns : now_ns;
    double elapsed = (double) (end_ns - self->measure_ns) / 1e9;
    return elapsed > 0 ? elapsed : 0;
}

void
bench_report_progress (const bench_t *self, int64_t now_ns,
                       uint64_t *last_completed, int64_t *last_ns)
{
    double interval_s = (double) (now_ns - *last_ns) / 1e9;
    double rate =
      interval_s > 0
        ? (double) (self->counts.completed - *last_completed) / interval_s
        : 0;
    fprintf (stderr,
             "\r%s %6.1f s %10.0f req/s  p50 %.1f  p99 %.1f us  errors "
             "%" PRIu64 "  timeouts %" PRIu64 "\033[K",
             self->is_measuring ? "run   " : "warmup",
             (double) (now_ns - self->measure_ns) / 1e9, rate,
             s_us (cmq_histogram_percentile (self->latency, 50)),
             s_us (cmq_histogram_percentile (self->latency, 99)),
             self->counts.errors, self->counts.timeouts);
    fflush (stderr);
    *last_completed = self->counts.completed;
    *last_ns = now_ns;
}

void
bench_report_json (const bench_t *self, double elapsed_s)
{
    const bench_settings_t *settings = self->settings;
    const cmq_histogram_t *latency = self->latency;
    const bench_counts_t *counts = &self->counts;
    printf ("{\"service\":\"%s\",\"clients\":%" PRId64 ",\"window\":%" PRId64,
            settings->service, settings->clients, settings->window);
    if (self->is_cart)
        printf (",\"mix\":\"%s\",\"users\":%" PRId64, settings->mix,
                settings->users);
    else
        printf (",\"size\":%" PRId64, settings->size);
    printf (",\"elapsed_s\":%.3f,\"sent\":%" PRIu64 ",\"requests\":%" PRIu64
            ",\"rps\":%.1f",
            elapsed_s, counts->sent, counts->completed,
            elapsed_s > 0 ? (double) counts->completed / elapsed_s : 0.0);
    cmq_histogram_summary_t us = cmq_histogram_summary (latency, 1000);
    printf (",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f",
            us.p50, us.p90, us.p99, us.p999, us.max, us.mean);
    printf (",\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64
            ",\"bad_replies\":%" PRIu64 ",\"send_failures\":%" PRIu64
            ",\"abandoned\":%" PRIu64,
            counts->errors, counts->timeouts, counts->late, counts->bad,
            counts->send_fails, counts->abandoned);
    if (settings->rate > 0)
        printf (",\"rate\":%" PRId64 ",\"late_sends\":%" PRIu64
                ",\"skipped_sends\":%" PRIu64,
                settings->rate, counts->late_sends, counts->skipped_sends);
    if (self->is_cart) {
        printf (",\"statuses\":{");
        bool is_first = true;
        for (size_t kind = 0; kind < BENCH_STATUS_KINDS; kind++) {
            if (!counts->statuses[kind])
                continue;
            if (kind < BENCH_STATUS_KINDS - 1)
                printf ("%s\"%d\":%" PRIu64, is_first ? "" : ",",
                        bench_statuses[kind], counts->statuses[kind]);
            else
                printf ("%s\"other\":%" PRIu64, is_first ? "" : ",",
                        counts->statuses[kind]);
            is_first = false;
        }
        printf ("}");
    }
    bool is_exact = !self->is_cart || settings->window == 1 ||
                    (self->mix.weights[CMQ_CART_GET] == 0 &&
                     self->mix.weights[CMQ_CART_REMOVE] == 0 &&
                     self->mix.weights[CMQ_CART_CLEAR] == 0);
    printf (",\"latency_exact\":%s}\n", is_exact ? "true" : "false");
}

void
bench_report_text (const bench_t *self, double elapsed_s)
{
    const bench_settings_t *settings = self->settings;
    const cmq_histogram_t *latency = self->latency;
    const bench_counts_t *counts = &self->counts;
    printf ("service     %s", settings->service);
    if (self->is_cart)
        printf (" (mix %s, %" PRId64 " users)\n", settings->mix,
                settings->users);
    else
        printf (" (%" PRId64 " byte bodies)\n", settings->size);
    printf ("load        %" PRId64 " client%s x window %" PRId64 "\n",
            settings->clients, settings->clients == 1 ? "" : "s",
            settings->window);
    printf ("requests    %" PRIu64 " in %.2f s: %.0f requests/s\n",
            counts->completed, elapsed_s,
            elapsed_s > 0 ? (double) counts->completed / elapsed_s : 0.0);
    if (settings->rate > 0)
        printf ("paced       %" PRId64 " requests/s offered: %" PRIu64
                " sends late (over %lld ms), %" PRIu64
                " skipped (a window behind)\n",
                settings->rate, counts->late_sends,
                BENCH_PACE_LATE_NS / 1000000LL, counts->skipped_sends);
    cmq_histogram_summary_t us = cmq_histogram_summary (latency, 1000);
    printf ("latency us  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f"
            "  mean %.1f\n",
            us.p50, us.p90, us.p99, us.p999, us.max, us.mean);
    printf ("errors      %" PRIu64, counts->errors);
    if (self->is_cart) {
        for (size_t kind = 0; kind < BENCH_STATUS_KINDS; kind++) {
            if (!counts->statuses[kind])
                continue;
            if (kind < BENCH_STATUS_KINDS - 1)
                printf ("  [%d: %" PRIu64 "]", bench_statuses[kind],
                        counts->statuses[kind]);
            else
                printf ("  [other: %" PRIu64 "]", counts->statuses[kind]);
        }
    }
    printf ("\ntimeouts    %" PRIu64 " (over %" PRId64 " ms)", counts->timeouts,
            settings->timeout_ms);
    if (counts->late || counts->bad || counts->send_fails)
        printf ("  late replies %" PRIu64 "  unreadable %" PRIu64
                "  refused sends %" PRIu64,
                counts->late, counts->bad, counts->send_fails);
    if (counts->abandoned)
        printf ("  abandoned with their socket %" PRIu64, counts->abandoned);
    printf ("\n");
    fflush (stdout);
}
