"""measure.py - the throughput and latency measurements of bench/run.py.

Each measurement starts what it needs (through processes.Servers), runs a
load generator (cartmq bench, cartmq-latency-pair or redis-benchmark),
parses what it prints and stops what it started. A result is a dict:
rps, p50_us, p90_us, p99_us, p999_us, max_us, errors, timeouts, late,
elapsed_s, as cartmq bench --json prints them.
"""

import csv
import io
import os
import statistics
import subprocess

from settings import (CLIENTS, CREDIT, ECHO_SIZE, ECHO_WORKERS,
                      LATENCY_SECONDS, USERS, WINDOW, last_json_line, log)


def combine(runs):
    """One result from several runs of the same setup: req/s over all of
    them, the median of their percentiles."""
    if not runs:
        return None
    elapsed = sum(run["elapsed_s"] for run in runs)
    combined = {"rps": sum(run["requests"] for run in runs) / elapsed,
                "runs": len(runs)}
    for field in ("p50_us", "p90_us", "p99_us", "p999_us"):
        combined[field] = statistics.median(run[field] for run in runs)
    combined["max_us"] = max(run["max_us"] for run in runs)
    for field in ("errors", "timeouts", "late"):
        combined[field] = sum(run[field] for run in runs)
    return combined


def parse_redis_benchmark(stdout):
    """req/s and, when printed, p50 and p99 from redis-benchmark --csv;
    None if there is no data row."""
    rows = list(csv.reader(io.StringIO(stdout)))
    for row in rows[1:]:
        if len(row) >= 2:
            try:
                result = {"rps": float(row[1])}
            except ValueError:
                continue
            if len(row) >= 6:
                result["p50_us"] = float(row[4]) * 1000
                result["p99_us"] = float(row[6]) * 1000 \
                    if len(row) > 6 else None
            return result
    return None


def latency_pair_results(pair):
    """cartmq-latency-pair's JSON as one result per side (a, b)."""
    results = []
    for side in ("a", "b"):
        result = dict(pair[side])
        result["errors"] = 0
        result["elapsed_s"] = pair["elapsed_s"]
        results.append(result)
    return results


class Measure:
    """The throughput and latency rows of one run."""

    def __init__(self, args, programs, servers, work_dir):
        self.args = args
        self.programs = programs
        self.servers = servers
        self.work_dir = work_dir

    def run_bench(self, endpoint, service, clients, window, extra=(),
                  duration=None, warmup=None):
        duration = self.args.duration if duration is None else duration
        warmup = self.args.warmup if warmup is None else warmup
        args = [self.programs.client, "bench", "--connect", endpoint,
                "--service", service, "--clients", str(clients),
                "--window", str(window), "--duration", str(duration),
                "--warmup", str(warmup), "--timeout-ms", "5000",
                "--json"] + list(extra)
        done = subprocess.run(args, capture_output=True, text=True,
                              timeout=duration + warmup + 30)
        result = last_json_line(done.stdout)
        if result is None:
            log("  bench failed (exit %d): %s" % (done.returncode,
                                                   done.stderr.strip()))
        return result

    def cart(self, workers, credit, clients, window, flush, brokers=1,
             local=False):
        """cartmq bench on the cart service through fresh brokers and
        workers (with several brokers, every worker serves all of them and
        the bench's clients are spread over them); flush empties Redis
        first. local: what a one-host deployment can use, the broker bound
        on ipc:// beside its tcp:// endpoint (workers and clients connect
        there) and Redis reached by its unix socket."""
        servers = self.servers
        extra, redis_url = (), None
        if local:
            ipc = "ipc://" + os.path.join(self.work_dir, "broker.ipc")
            extra = ("--bind", ipc)
            redis_url = "unix://%s?db=0" % servers.redis_socket
        endpoint, started = servers.start_brokers(brokers, extra)
        if local:
            endpoint = ipc
        started += servers.start_workers(endpoint, workers, "cart", credit,
                                         False, redis_url)
        try:
            servers.wait_workers(endpoint, "cart", workers)
            if flush:
                servers.redis.flushdb()
            return self.run_bench(endpoint, "cart", clients, window, [
                "--mix", "add=100", "--users", str(USERS)])
        finally:
            servers.stop(started)

    def cart_through_broker(self, workers, credit, brokers=1):
        return self.cart(workers, credit, CLIENTS, WINDOW, flush=True,
                         brokers=brokers)

    def cart_window_one(self):
        return self.cart(1, 1, 1, 1, flush=False)

    def echo_pair(self, setups, clients, window):
        """Two echo setups measured against each other: both run at once
        (the idle one costs nothing), and the load alternates between them
        in one-second runs, A B B A A B B A ..., so that a slow spell of
        the machine falls on both alike. Returns a result per setup: req/s
        over all its runs, and the median of its runs' percentiles."""
        running = []
        try:
            for target, workers, credit in setups:
                running.append(self.servers.echo_setup(target, workers,
                                                       credit))
            extra = ["--size", str(ECHO_SIZE)]
            for endpoint, _, _ in running:     # warmup, not counted
                self.run_bench(endpoint, "echo", clients, window, extra,
                               duration=1, warmup=0)
            runs = [[], []]
            for step in range(2 * self.args.duration):
                side = (step + step // 2) % 2    # 0 1 1 0 0 1 1 0 ...
                result = self.run_bench(running[side][0], "echo", clients,
                                        window, extra, duration=1, warmup=0)
                if result:
                    runs[side].append(result)
            return [combine(side_runs) for side_runs in runs]
        finally:
            for endpoint, server, started in running:
                self.servers.stop(started + [server])

    def latency_pair(self, setups):
        """Window-1 latency of two echo setups, request by request in turn
        (cartmq-latency-pair, A B B A ...): both sides see the same moments
        of the machine. Returns a result per setup."""
        running = []
        try:
            for target, workers, credit in setups:
                running.append(self.servers.echo_setup(target, workers,
                                                       credit))
            seconds = max(LATENCY_SECONDS, self.args.duration)
            args = [self.programs.latency_pair, "--a", running[0][0],
                    "--b", running[1][0], "--service", "echo",
                    "--size", str(ECHO_SIZE), "--duration", str(seconds),
                    "--warmup", str(self.args.warmup), "--json"]
            done = subprocess.run(args, capture_output=True, text=True,
                                  timeout=seconds + self.args.warmup + 30)
            pair = last_json_line(done.stdout)
            if pair is None:
                log("  latency pair failed (exit %d): %s" % (
                    done.returncode, done.stderr.strip()))
                return [None, None]
            return latency_pair_results(pair)
        finally:
            for endpoint, server, started in running:
                self.servers.stop(started + [server])

    def redis_ceiling(self, pipeline, unix=False):
        """unix: redis-benchmark over Redis's unix socket instead of TCP."""
        requests = self.args.redis_requests * (4 if pipeline > 1 else 1)
        self.servers.redis.flushdb()
        where = (["-s", self.servers.redis_socket] if unix else
                 ["-h", "127.0.0.1", "-p", str(self.servers.redis_port)])
        args = ["redis-benchmark"] + where + [
                "-c", "50", "-n", str(requests),
                "-r", str(USERS), "-P", str(pipeline), "--csv",
                "EVALSHA", self.servers.sha, "1", "cart:{__rand_int__}", "2",
                "s1", "1", "100", "bench item", "1000000", "1000", "86400"]
        done = subprocess.run(args, capture_output=True, text=True,
                              timeout=300)
        result = parse_redis_benchmark(done.stdout)
        if result is None:
            log("  redis-benchmark printed nothing usable: %s" %
                done.stderr.strip())
        return result

    def profile(self):
        """Echo load on the broker with credit workers while perf records
        the broker; the report goes to the work directory, its head to
        stderr. Not part of the table: perf slows what it watches."""
        endpoint, server, started = self.servers.echo_setup(
            "broker", ECHO_WORKERS, CREDIT)
        data = os.path.join(self.work_dir, "perf.data")
        seconds = self.args.duration + self.args.warmup
        try:
            perf = subprocess.Popen(
                ["perf", "record", "-F", "2000", "--call-graph",
                 "dwarf,16384", "-o", data, "-p", str(server.pid), "--",
                 "sleep", str(seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.run_bench(endpoint, "echo", CLIENTS, WINDOW,
                           ["--size", str(ECHO_SIZE)])
            try:
                perf.wait(seconds + 60)
            except subprocess.TimeoutExpired:
                perf.kill()
                perf.wait()
        finally:
            self.servers.stop(started + [server])
        self.perf_report(data)

    def perf_report(self, data):
        report = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--children",
             "--sort", "symbol", "-g", "none", "--percent-limit", "2"],
            capture_output=True, text=True, timeout=300)
        path = os.path.join(self.work_dir, "perf-report.txt")
        with open(path, "w") as output:
            output.write(report.stdout)
        log("perf, broker under echo load with credit workers "
            "(children view, top lines):")
        lines = [line for line in report.stdout.splitlines()
                 if line.strip() and not line.startswith("#")]
        for line in lines[:40]:
            log("    " + line.rstrip())
        log("full report: %s" % path)
