"""report.py - the markdown bench/run.py prints, and --write-docs.

Three tables from one run's results: throughput and latency (medians over
the rounds), memory and idle CPU, and the targets of issue 9 (ratios taken
within each round). Pure formatting: no process, no socket.
"""

import os
import statistics
import time

from settings import (CLIENTS, CPU_SECONDS, CREDIT, DOCS, ECHO_SIZE,
                      ECHO_WORKERS, HEARTBEAT_S,
                      IDLE_WORKERS, LATENCY_SECONDS, QUEUED, USERS, WINDOW,
                      log)

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
#  The curves of bench/scaling.py (and run.py --scaling), in the Scaling
#  section.
SCALING_MARKERS = ("<!-- scaling:begin -->", "<!-- scaling:end -->")


class Report:
    """The tables of one run.

    results: key -> list of per-round result dicts (each with "round");
    memory: the memory measurements by name; order and labels: the rows'
    keys in table order and their labels."""

    def __init__(self, args, results, memory, order, labels, elapsed):
        self.args = args
        self.results = results
        self.memory = memory
        self.order, self.labels = order, labels
        self.elapsed = elapsed

    def median(self, key, field):
        values = [result.get(field) for result in self.results.get(key, [])
                  if result.get(field) is not None]
        return statistics.median(values) if values else None

    def ratio(self, top, bottom, field="rps"):
        numerator, denominator = self.median(top, field), \
            self.median(bottom, field)
        if numerator is None or not denominator:
            return None
        return numerator / denominator

    def round_ratios(self, top, bottom, field):
        """top / bottom within each round, where both were measured."""
        lowers = {result["round"]: result
                  for result in self.results.get(bottom, [])}
        ratios = []
        for upper in self.results.get(top, []):
            lower = lowers.get(upper["round"], {})
            if upper.get(field) is not None and lower.get(field):
                ratios.append(upper[field] / lower[field])
        return ratios

    def render(self):
        return "\n".join(self.preamble() + [""] + self.throughput() +
                         [""] + self.memory_table() + [""] + [self.targets()])

    def preamble(self):
        rounds, duration = self.args.rounds, self.args.duration
        return [
            "Run of %s on %s, %d CPU; %d round%s, %d s per "
            "measurement after %d s of warmup; %.0f s in all." % (
                time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename,
                os.cpu_count(), rounds, "s" if rounds > 1 else "",
                duration, self.args.warmup, self.elapsed),
            "Load: %d clients x window %d (%d requests in flight); "
            "cart runs use --mix add=100 over %d users; echo bodies "
            "are %d bytes. Cart rows: one %d s run per round, medians "
            "over the rounds. Echo rows come in pairs measured "
            "together: both setups run at once and the load "
            "alternates between them in 1 s runs (ABBA), %d s each "
            "per round. Window-1 echo pairs alternate request by "
            "request (cartmq-latency-pair, A B B A), %d s per "
            "round." % (
                CLIENTS, WINDOW, CLIENTS * WINDOW, USERS, ECHO_SIZE,
                duration, duration, max(LATENCY_SECONDS, duration))]

    def throughput(self):
        out = ["| configuration | req/s | p50 µs | p99 µs | "
               "errors + timeouts | req/s per round |",
               "| --- | ---: | ---: | ---: | ---: | --- |"]
        for key in self.order:
            out.append(self.throughput_row(key))
        return out

    def throughput_row(self, key):
        results = self.results.get(key, [])
        if not results:
            return "| %s | failed | | | | |" % self.labels[key]

        def cell(field, digits=0):
            value = self.median(key, field)
            return "-" if value is None else "%.*f" % (digits, value)
        failures = sum(result.get("errors", 0) + result.get("timeouts", 0)
                       for result in results)
        per_round = " ".join("%.0f" % result["rps"] for result in results)
        return "| %s | %s | %s | %s | %s | %s |" % (
            self.labels[key], cell("rps"), cell("p50_us", 1),
            cell("p99_us", 1),
            failures if key.startswith(("cart", "echo", "lat")) else "-",
            per_round)

    def memory_table(self):
        memory = self.memory

        def growth(result, per, count_key):
            return "%.0f bytes (%.1f → %.1f MiB, %d)" % (
                result[per], result["rss_before"] / 2**20,
                result["rss_after"] / 2**20, result[count_key])
        idle = memory["idle-broker"]
        return [
            "| memory and idle CPU | broker | conformant forwarder "
            "(libzmq's floor) |",
            "| --- | ---: | ---: |",
            "| RSS growth per queued request, %d requests of %d-byte "
            "bodies (RSS before → after, requests) | %s | %s |" % (
                QUEUED, ECHO_SIZE,
                growth(memory["queued-broker"], "per_request", "queued"),
                growth(memory["queued-conformant"], "per_request",
                       "queued")),
            "| RSS growth per idle connected worker, %d workers "
            "(RSS before → after, workers) | %s | %s |" % (
                IDLE_WORKERS,
                growth(memory["idle-broker"], "per_worker", "workers"),
                growth(memory["idle-conformant"], "per_worker", "workers")),
            "| CPU over %d s with those workers heartbeating every "
            "%.1f s | %.2f %% of a core (%d still registered) | - |" % (
                CPU_SECONDS, HEARTBEAT_S, idle["cpu_percent"],
                idle["still_registered"])]

    def target_row(self, what, value, target, passed, fmt, rounds=None,
                   of_medians=None):
        if value is None:
            return "| %s | - | - | %s | not measured | |" % (what, target)
        return "| %s | %s | %s | %s | %s | %s |" % (
            what, fmt % value,
            "-" if of_medians is None else fmt % of_medians, target,
            "" if passed is None else
            "met" if passed(value) else "**missed**",
            " ".join(fmt % ratio for ratio in rounds or []))

    def ratio_row(self, top, bottom, field, fmt, what, target, passed):
        """Both sides of a ratio are measured in the same round (the echo
        pairs even interleaved), so the ratio is taken within each round
        and the median of those is the figure; the ratio of the two
        medians pairs one round's numerator with another round's
        denominator and is shown for reference."""
        rounds = self.round_ratios(top, bottom, field)
        return self.target_row(
            what, statistics.median(rounds) if rounds else None, target,
            passed, fmt, rounds, self.ratio(top, bottom, field))

    def targets(self):
        return "\n".join([
            "| target (issues 9, 18) | this run: median of the per-round "
            "ratios | ratio of the medians | wanted | | per round |",
            "| --- | ---: | ---: | ---: | --- | --- |"] +
            self.ratio_targets() + self.memory_targets())

    def ratio_targets(self):
        cart_keys = [key for key in self.order if key.startswith("cart-")]
        best_cart = max(cart_keys, key=lambda key: self.median(key, "rps")
                        or 0)
        best_label = self.labels[best_cart].split(": ", 1)[1]
        row = self.ratio_row
        return [
            row(best_cart, "redis-p1", "rps", "%.2f",
                "cart best (%s) / Redis alone, redis-benchmark -P 1"
                % best_label, "≥ 0.50", lambda v: v >= 0.5),
            row(best_cart, "redis-p16", "rps", "%.2f",
                "cart best / Redis alone pipelined (-P 16)", "≥ 0.30",
                lambda v: v >= 0.3),
            row(best_cart, "redis-p16-unix", "rps", "%.2f",
                "cart best / Redis alone pipelined (-P 16) over its unix "
                "socket (stricter, for reference)", "-", None),
            row("echo-broker-plain", "echo-conformant", "rps", "%.3f",
                "echo, plain workers: broker / conformant forwarder",
                "≥ 0.95", lambda v: v >= 0.95),
            row("echo-broker-credit", "echo-broker-plain", "rps", "%.2f",
                "echo: broker credit / broker plain", "≥ 4",
                lambda v: v >= 4),
            row("echo-broker-credit", "echo-pipelined", "rps", "%.3f",
                "echo: broker credit / pipelined forwarder", "≥ 0.90",
                lambda v: v >= 0.9),
            row("lat-broker", "lat-conformant", "p50_us", "%.3f",
                "window-1 p50: broker / conformant forwarder", "≤ 1.00",
                lambda v: v <= 1.0),
            #  Two brokers on the same 2 cores: what the extra sockets and
            #  the second broker's share of the CPU cost, not scaling.
            row("cart-2b-%d-c%d" % (ECHO_WORKERS, CREDIT),
                "cart-%d-c%d" % (ECHO_WORKERS, CREDIT), "rps", "%.2f",
                "cart, %d workers credit %d: 2 brokers / 1 broker "
                "(same host, for reference)" % (ECHO_WORKERS, CREDIT),
                "-", None),
            row("echo-2b-credit", "echo-1b-credit", "rps", "%.2f",
                "echo credit: 2 brokers / 1 broker, paired (same host, "
                "for reference)", "-", None)]

    def memory_targets(self):
        queued = self.memory["queued-broker"]
        idle = self.memory["idle-broker"]
        floor_idle = self.memory["idle-conformant"]["per_worker"]
        floor_queued = self.memory["queued-conformant"]["per_request"]
        core = self.memory.get("core") or {}
        row = self.target_row
        return [
            row("broker RSS per idle worker (bytes)", idle["per_worker"],
                "< 1024", lambda v: v < 1024, "%.0f"),
            row("… of which above the forwarder's %.0f (libzmq's own per "
                "connection)" % floor_idle, idle["per_worker"] - floor_idle,
                "-", None, "%.0f"),
            row("… the broker's own heap per idle worker (cartmq-core-memory,"
                " exact)", core.get("bytes_per_idle_worker"), "-", None,
                "%.0f"),
            row("broker RSS per queued request minus its %d-byte body "
                "(bytes)" % queued["payload"],
                queued["per_request"] - queued["payload"],
                "< 512", lambda v: v < 512, "%.0f"),
            row("… of which above the forwarder's %.0f per queued request"
                % floor_queued, queued["per_request"] - floor_queued, "-",
                None, "%.0f"),
            row("… the broker's own heap per queued request beyond its body "
                "(cartmq-core-memory, exact)",
                core.get("bytes_per_queued_request_beyond_body"), "-", None,
                "%.0f"),
            row("broker CPU, %d idle workers (%% of a core)" % IDLE_WORKERS,
                idle["cpu_percent"], "< 3", lambda v: v < 3, "%.2f")]


def write_docs(table, command, markers=(BEGIN, END)):
    """Puts table into docs/benchmarks.md between the markers (the
    results', unless others are given); appends the block if they are
    missing."""
    begin, end = markers
    block = "%s\n\nCommand: `%s`\n\n%s\n\n%s" % (begin, command, table, end)
    text = open(DOCS).read() if os.path.exists(DOCS) else \
        "# Benchmarks\n\n%s\n" % block
    if begin in text and end in text:
        head = text.split(begin, 1)[0]
        tail = text.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(DOCS, "w") as output:
        output.write(text)
    log("wrote %s" % DOCS)
