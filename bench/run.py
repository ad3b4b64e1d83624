#!/usr/bin/python3
"""run.py - the cartmq benchmark: everything side by side, in one run.

Runs Redis alone (redis-benchmark on the cart's own Lua script), the cart
service through the broker with 1, 2, 4 and 8 workers (plain and with
credit), echo through the reference forwarder (both modes) and through the
broker, window-1 latency, and the broker's memory and idle CPU. Every
throughput configuration runs once per round and rounds are interleaved,
so slow spells of a noisy machine hit every configuration alike; the table
shows medians over the rounds, and the ratios are taken from those medians
in this one run.

Every process it starts listens on loopback only, on ports it picks, is
bounded in time and is stopped at the end (SIGTERM, then SIGKILL).

    /usr/bin/python3 bench/run.py [--build DIR] [--rounds N] [--quick]
                                  [--write-docs] [--perf]

The markdown goes to stdout; progress to stderr. --write-docs also puts it
into docs/benchmarks.md between the results markers.
"""

import argparse
import csv
import io
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import redis
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs", "benchmarks.md")
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"

#  Load every throughput run offers: clients x window requests in flight.
CLIENTS = 8
WINDOW = 16
CREDIT = 16
ECHO_WORKERS = 4
ECHO_SIZE = 32
#  Window-1 pairs: seconds of cartmq-latency-pair per round, requests
#  alternating between the two setups one by one. Alternating one-second
#  runs instead gave per-round p50 ratios from 0.96 to 1.12 for the same
#  pair; request by request they stay within about 2 %.
LATENCY_SECONDS = 8
USERS = 1000
QUEUED = 100000
IDLE_WORKERS = 1000
CPU_SECONDS = 10
HEARTBEAT_S = 2.5       # the broker's default heartbeat interval


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Processes:
    """Every process we start, so that all of them are stopped at the end."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.running = []
        self.serial = 0

    def start(self, name, args):
        self.serial += 1
        path = os.path.join(self.log_dir, "%03d-%s.log" % (self.serial, name))
        with open(path, "wb") as output:
            process = subprocess.Popen(
                args, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        process.log_path = path
        self.running.append(process)
        return process

    def stop(self, processes):
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process in self.running:
                self.running.remove(process)

    def stop_all(self):
        self.stop(list(self.running))


class Bench:
    """One run of the whole benchmark."""

    def __init__(self, args):
        self.args = args
        build = os.path.abspath(args.build)
        self.broker_bin = os.path.join(build, "broker", "cartmq-broker")
        self.worker_bin = os.path.join(build, "worker", "cartmq-worker")
        self.client_bin = os.path.join(build, "client", "cartmq")
        self.forwarder_bin = os.path.join(build, "bench", "cartmq-forwarder")
        self.core_memory_bin = os.path.join(build, "bench",
                                            "cartmq-core-memory")
        self.latency_pair_bin = os.path.join(build, "bench",
                                             "cartmq-latency-pair")
        for path in (self.broker_bin, self.worker_bin, self.client_bin,
                     self.forwarder_bin):
            if not os.access(path, os.X_OK):
                sys.exit("run.py: %s missing: build first "
                         "(cmake --build %s)" % (path, build))
        self.work_dir = tempfile.mkdtemp(prefix="cartmq-bench-")
        self.procs = Processes(self.work_dir)
        self.context = zmq.Context()
        self.context.max_sockets = IDLE_WORKERS + 100
        self.redis_port = None
        self.redis = None
        self.sha = None
        self.results = {}   # key -> list of per-round dicts

    # ---------------------------------------------------------------
    # Processes

    def start_redis(self):
        self.redis_port = free_port()
        process = self.procs.start("redis", [
            "redis-server", "--bind", "127.0.0.1", "--port",
            str(self.redis_port), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "yes"])
        self.redis = redis.Redis(host="127.0.0.1", port=self.redis_port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.redis.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    sys.exit("run.py: redis-server did not start")
                time.sleep(0.05)
        with open(os.path.join(REPO, "worker", "cart.lua"), "rb") as script:
            self.sha = self.redis.script_load(script.read())

    def start_broker(self, extra=()):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        process = self.procs.start("broker", [
            self.broker_bin, "--bind", endpoint] + list(extra))
        self.wait_listening(endpoint, process)
        return endpoint, process

    def start_forwarder(self, mode):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        process = self.procs.start("forwarder-" + mode, [
            self.forwarder_bin, "--bind", endpoint, "--mode", mode])
        self.wait_listening(endpoint, process)
        return endpoint, process

    def wait_listening(self, endpoint, process):
        port = int(endpoint.rsplit(":", 1)[1])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if process.poll() is not None:
                sys.exit("run.py: %s exited; see %s" % (
                    process.args[0], process.log_path))
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        sys.exit("run.py: nothing listens at %s" % endpoint)

    def start_workers(self, endpoint, count, service, credit, echo):
        workers = []
        for _ in range(count):
            args = [self.worker_bin, "--connect", endpoint,
                    "--service", service]
            if echo:
                args.append("--echo")
            else:
                args += ["--redis", "redis://127.0.0.1:%d/0" % self.redis_port]
            if credit > 1:
                args += ["--concurrency", str(credit)]
            workers.append(self.procs.start("worker", args))
        return workers

    # ---------------------------------------------------------------
    # Talking to the broker

    def mmi(self, endpoint, service, body=b"", timeout_ms=2000):
        dealer = self.context.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(endpoint)
        try:
            dealer.send_multipart([b"", b"MDPC01", service.encode(), body])
            if not dealer.poll(timeout_ms):
                return None
            frames = dealer.recv_multipart()
            return msgpack.unpackb(frames[3], raw=False)
        finally:
            dealer.close()

    def service_row(self, endpoint, name):
        services = self.mmi(endpoint, "mmi.services") or []
        for row in services:
            if row.get("name") == name:
                return row
        return {"name": name, "workers": 0, "idle": 0, "queued": 0}

    def wait_workers(self, endpoint, service, count, timeout_s=10):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.service_row(endpoint, service)["workers"] >= count:
                return True
            time.sleep(0.05)
        log("  warning: %d %s workers did not all register" % (count, service))
        return False

    # ---------------------------------------------------------------
    # Measurements

    def run_bench(self, endpoint, service, clients, window, extra=(),
                  duration=None, warmup=None):
        duration = self.args.duration if duration is None else duration
        warmup = self.args.warmup if warmup is None else warmup
        args = [self.client_bin, "bench", "--connect", endpoint,
                "--service", service, "--clients", str(clients),
                "--window", str(window), "--duration", str(duration),
                "--warmup", str(warmup), "--timeout-ms", "5000",
                "--json"] + list(extra)
        done = subprocess.run(args, capture_output=True, text=True,
                              timeout=duration + warmup + 30)
        lines = [line for line in done.stdout.splitlines()
                 if line.startswith("{")]
        if not lines:
            log("  bench failed (exit %d): %s" % (done.returncode,
                                                   done.stderr.strip()))
            return None
        return json.loads(lines[-1])

    def cart_through_broker(self, workers, credit):
        endpoint, broker = self.start_broker()
        started = self.start_workers(endpoint, workers, "cart", credit, False)
        try:
            self.wait_workers(endpoint, "cart", workers)
            self.redis.flushdb()
            return self.run_bench(endpoint, "cart", CLIENTS, WINDOW, [
                "--mix", "add=100", "--users", str(USERS)])
        finally:
            self.procs.stop(started + [broker])

    def echo_setup(self, target, workers, credit):
        """A broker or forwarder with its echo workers, ready for load."""
        if target == "broker":
            endpoint, server = self.start_broker()
        else:
            endpoint, server = self.start_forwarder(target)
        started = self.start_workers(endpoint, workers, "echo", credit, True)
        if target == "broker":
            self.wait_workers(endpoint, "echo", workers)
        return endpoint, server, started

    def echo_pair(self, setups, clients, window):
        """Two echo setups measured against each other: both run at once
        (the idle one costs nothing), and the load alternates between them
        in one-second runs, A B B A A B B A ..., so that a slow spell of
        the machine falls on both alike. Returns a result per setup: req/s
        over all its runs, and the median of its runs' percentiles."""
        running = []
        try:
            for target, workers, credit in setups:
                running.append(self.echo_setup(target, workers, credit))
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
            return [self.combine(side_runs) for side_runs in runs]
        finally:
            for endpoint, server, started in running:
                self.procs.stop(started + [server])

    def latency_pair(self, setups):
        """Window-1 latency of two echo setups, request by request in turn
        (cartmq-latency-pair, A B B A ...): both sides see the same moments
        of the machine. Returns a result per setup."""
        running = []
        try:
            for target, workers, credit in setups:
                running.append(self.echo_setup(target, workers, credit))
            seconds = max(LATENCY_SECONDS, self.args.duration)
            args = [self.latency_pair_bin, "--a", running[0][0],
                    "--b", running[1][0], "--service", "echo",
                    "--size", str(ECHO_SIZE), "--duration", str(seconds),
                    "--warmup", str(self.args.warmup), "--json"]
            done = subprocess.run(args, capture_output=True, text=True,
                                  timeout=seconds + self.args.warmup + 30)
            lines = [line for line in done.stdout.splitlines()
                     if line.startswith("{")]
            if not lines:
                log("  latency pair failed (exit %d): %s" % (
                    done.returncode, done.stderr.strip()))
                return [None, None]
            pair = json.loads(lines[-1])
            results = []
            for side in ("a", "b"):
                result = dict(pair[side])
                result["errors"] = 0
                result["elapsed_s"] = pair["elapsed_s"]
                results.append(result)
            return results
        finally:
            for endpoint, server, started in running:
                self.procs.stop(started + [server])

    @staticmethod
    def combine(runs):
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

    def profile(self):
        """Echo load on the broker with credit workers while perf records
        the broker; the report goes to the work directory, its head to
        stderr. Not part of the table: perf slows what it watches."""
        endpoint, server, started = self.echo_setup("broker", ECHO_WORKERS,
                                                    CREDIT)
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
            self.procs.stop(started + [server])
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

    def redis_ceiling(self, pipeline):
        requests = self.args.redis_requests * (4 if pipeline > 1 else 1)
        self.redis.flushdb()
        args = ["redis-benchmark", "-h", "127.0.0.1", "-p",
                str(self.redis_port), "-c", "50", "-n", str(requests),
                "-r", str(USERS), "-P", str(pipeline), "--csv",
                "EVALSHA", self.sha, "1", "cart:{__rand_int__}", "2", "s1",
                "1", "100", "bench item", "1000000", "1000", "86400"]
        done = subprocess.run(args, capture_output=True, text=True,
                              timeout=300)
        rows = list(csv.reader(io.StringIO(done.stdout)))
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
        log("  redis-benchmark printed nothing usable: %s" %
            done.stderr.strip())
        return None

    # ---------------------------------------------------------------
    # Memory and idle CPU

    @staticmethod
    def rss_bytes(pid):
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def cpu_ticks(pid):
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])   # utime + stime

    def start_server(self, target, extra=()):
        if target == "broker":
            return self.start_broker(extra)
        return self.start_forwarder(target)

    @staticmethod
    def settle(pid, timeout_s=20):
        """Waits until a process's RSS stops growing (the forwarder has no
        MMI to say it has read everything)."""
        last, deadline = -1, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = Bench.rss_bytes(pid)
            if now == last:
                return
            last = now

    def queued_memory(self, target):
        """RSS growth per request with QUEUED requests waiting for a
        service that has no worker."""
        endpoint, server = self.start_server(
            target, ["--queue-timeout-ms", "600000",
                     "--max-queued", str(QUEUED * 2)])
        senders = []
        try:
            for _ in range(10):
                dealer = self.context.socket(zmq.DEALER)
                dealer.linger = 0
                dealer.sndhwm = 0
                dealer.connect(endpoint)
                senders.append(dealer)
            time.sleep(0.5)     # connected before the baseline is taken
            before = self.rss_bytes(server.pid)
            body = b"q" * ECHO_SIZE
            for index in range(QUEUED):
                senders[index % len(senders)].send_multipart(
                    [b"", b"MDPC01", b"queued", body])
            queued = QUEUED
            if target == "broker":
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    queued = self.service_row(endpoint, "queued")["queued"]
                    if queued >= QUEUED:
                        break
                    time.sleep(0.1)
            else:
                self.settle(server.pid)
            after = self.rss_bytes(server.pid)
            return {"queued": queued, "rss_before": before,
                    "rss_after": after,
                    "per_request": (after - before) / max(queued, 1),
                    "payload": ECHO_SIZE}
        finally:
            for dealer in senders:
                dealer.close()
            self.procs.stop([server])

    def idle_workers(self, target):
        """RSS growth per idle connected worker and, for the broker, its
        CPU over CPU_SECONDS with IDLE_WORKERS of them heartbeating once
        per heartbeat interval, as MDP workers do."""
        endpoint, server = self.start_server(target)
        workers = []
        try:
            time.sleep(0.3)
            before = self.rss_bytes(server.pid)
            for _ in range(IDLE_WORKERS):
                dealer = self.context.socket(zmq.DEALER)
                dealer.linger = 0
                dealer.connect(endpoint)
                dealer.send_multipart([b"", b"MDPW01", b"\x01", b"idle"])
                workers.append(dealer)
            registered = IDLE_WORKERS
            if target == "broker":
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    self.heartbeat(workers, False)
                    registered = self.service_row(endpoint, "idle")["workers"]
                    if registered >= IDLE_WORKERS:
                        break
                    time.sleep(0.2)
                time.sleep(0.5)
            else:
                self.settle(server.pid)
            after = self.rss_bytes(server.pid)
            result = {"workers": registered, "rss_before": before,
                      "rss_after": after,
                      "per_worker": (after - before) / max(registered, 1)}
            if target != "broker":
                return result
            ticks_before = self.cpu_ticks(server.pid)
            started = time.monotonic()
            next_beat = started
            while time.monotonic() - started < CPU_SECONDS:
                if time.monotonic() >= next_beat:
                    self.heartbeat(workers, True)
                    next_beat += HEARTBEAT_S
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            ticks = self.cpu_ticks(server.pid) - ticks_before
            hz = os.sysconf("SC_CLK_TCK")
            result["still_registered"] = self.service_row(
                endpoint, "idle")["workers"]
            result["cpu_percent"] = 100.0 * ticks / hz / elapsed
            return result
        finally:
            for dealer in workers:
                dealer.close()
            self.procs.stop([server])

    def core_memory(self):
        """The broker's own heap per idle worker and per queued request,
        exactly: cartmq-core-memory drives the routing core without
        sockets and reads the allocator's count (no libzmq, no noise)."""
        done = subprocess.run([self.core_memory_bin, "10000"],
                              capture_output=True, text=True, timeout=120)
        lines = [line for line in done.stdout.splitlines()
                 if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    @staticmethod
    def heartbeat(workers, send):
        """Reads what the broker sent each idle worker and, when asked,
        sends each a HEARTBEAT (a worker must not look dead)."""
        for dealer in workers:
            while True:
                try:
                    dealer.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
            if send:
                dealer.send_multipart([b"", b"MDPW01", b"\x04"])

    # ---------------------------------------------------------------
    # The run

    def plan(self):
        """(key, label, function) of every throughput and latency row, in
        the order a round runs them."""
        counts = [1, 4] if self.args.quick else [1, 2, 4, 8]
        rows = [
            ("redis-p1", "Redis alone: redis-benchmark EVALSHA cart.lua, "
             "50 connections", lambda: self.redis_ceiling(1)),
            ("redis-p16", "Redis alone: the same, pipelined -P 16",
             lambda: self.redis_ceiling(16)),
        ]
        for credit in (1, CREDIT):
            for count in counts:
                label = "cart AddItemToCart via broker: %d worker%s%s" % (
                    count, "s" if count > 1 else "",
                    ", credit %d" % credit if credit > 1 else " (plain)")
                rows.append(("cart-%d-c%d" % (count, credit), label,
                             lambda c=count, k=credit:
                             self.cart_through_broker(c, k)))
        plain = ("conformant", ECHO_WORKERS, 1), ("broker", ECHO_WORKERS, 1)
        credit = (("pipelined", ECHO_WORKERS, CREDIT),
                  ("broker", ECHO_WORKERS, CREDIT))
        latency = ("conformant", 1, 1), ("broker", 1, 1)
        rows += [
            (("echo-conformant", "echo-broker-plain"),
             ("echo via forwarder --mode conformant: %d plain workers"
              % ECHO_WORKERS,
              "echo via broker: the same %d plain workers" % ECHO_WORKERS),
             lambda: self.echo_pair(plain, CLIENTS, WINDOW)),
            (("echo-pipelined", "echo-broker-credit"),
             ("echo via forwarder --mode pipelined: %d workers "
              "--concurrency %d" % (ECHO_WORKERS, CREDIT),
              "echo via broker: the same %d workers, credit %d"
              % (ECHO_WORKERS, CREDIT)),
             lambda: self.echo_pair(credit, CLIENTS, WINDOW)),
            (("lat-conformant", "lat-broker"),
             ("window 1: echo via forwarder --mode conformant, 1 worker",
              "window 1: echo via broker, 1 worker"),
             lambda: self.latency_pair(latency)),
            ("lat-cart", "window 1: cart AddItemToCart via broker, "
             "1 worker", lambda: self.cart_window_one()),
        ]
        return rows

    def cart_window_one(self):
        endpoint, broker = self.start_broker()
        started = self.start_workers(endpoint, 1, "cart", 1, False)
        try:
            self.wait_workers(endpoint, "cart", 1)
            return self.run_bench(endpoint, "cart", 1, 1, [
                "--mix", "add=100", "--users", str(USERS)])
        finally:
            self.procs.stop(started + [broker])

    def run(self):
        started = time.monotonic()
        self.start_redis()
        rows = self.plan()
        self.labels, self.order = {}, []
        for keys, labels, _ in rows:
            if isinstance(keys, str):
                keys, labels = (keys,), (labels,)
            self.order += keys
            self.labels.update(zip(keys, labels))
        for round_number in range(1, self.args.rounds + 1):
            for keys, labels, function in rows:
                log("round %d/%d: %s" % (
                    round_number, self.args.rounds,
                    labels if isinstance(labels, str)
                    else " | ".join(labels)))
                results = function()
                if isinstance(keys, str):
                    keys, results = (keys,), (results,)
                for key, result in zip(keys, results):
                    if not result:
                        continue
                    result["round"] = round_number
                    self.results.setdefault(key, []).append(result)
                    log("  %.0f req/s  p50 %s us  p99 %s us" % (
                        result["rps"], result.get("p50_us"),
                        result.get("p99_us")))
        self.memory = {}
        for target in ("broker", "conformant"):
            log("memory, %s: %d requests queued" % (target, QUEUED))
            self.memory["queued-" + target] = self.queued_memory(target)
            log("  %s" % self.memory["queued-" + target])
            log("memory%s, %s: %d idle workers" % (
                " and idle CPU" if target == "broker" else "", target,
                IDLE_WORKERS))
            self.memory["idle-" + target] = self.idle_workers(target)
            log("  %s" % self.memory["idle-" + target])
        self.memory["core"] = self.core_memory()
        log("  core: %s" % self.memory["core"])
        self.elapsed = time.monotonic() - started
        if self.args.perf:
            self.profile()

    # ---------------------------------------------------------------
    # Report

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

    def report(self):
        out = []
        rounds = self.args.rounds
        out.append("Run of %s on %s, %d CPU; %d round%s, %d s per "
                   "measurement after %d s of warmup; %.0f s in all." % (
                       time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename,
                       os.cpu_count(), rounds, "s" if rounds > 1 else "",
                       self.args.duration, self.args.warmup, self.elapsed))
        out.append("Load: %d clients x window %d (%d requests in flight); "
                   "cart runs use --mix add=100 over %d users; echo bodies "
                   "are %d bytes. Cart rows: one %d s run per round, medians "
                   "over the rounds. Echo rows come in pairs measured "
                   "together: both setups run at once and the load "
                   "alternates between them in 1 s runs (ABBA), %d s each "
                   "per round. Window-1 echo pairs alternate request by "
                   "request (cartmq-latency-pair, A B B A), %d s per "
                   "round." % (
                       CLIENTS, WINDOW, CLIENTS * WINDOW, USERS, ECHO_SIZE,
                       self.args.duration, self.args.duration,
                       max(LATENCY_SECONDS, self.args.duration)))
        out.append("")
        out.append("| configuration | req/s | p50 µs | p99 µs | "
                   "errors + timeouts | req/s per round |")
        out.append("| --- | ---: | ---: | ---: | ---: | --- |")
        for key in self.order:
            results = self.results.get(key, [])
            if not results:
                out.append("| %s | failed | | | | |" % self.labels[key])
                continue

            def cell(field, digits=0):
                value = self.median(key, field)
                return "-" if value is None else "%.*f" % (digits, value)
            failures = sum(result.get("errors", 0) + result.get("timeouts", 0)
                           for result in results)
            per_round = " ".join("%.0f" % result["rps"] for result in results)
            out.append("| %s | %s | %s | %s | %s | %s |" % (
                self.labels[key], cell("rps"), cell("p50_us", 1),
                cell("p99_us", 1),
                failures if key.startswith(("cart", "echo", "lat")) else "-",
                per_round))
        out.append("")
        memory = self.memory
        out.append("| memory and idle CPU | broker | conformant forwarder "
                   "(libzmq's floor) |")
        out.append("| --- | ---: | ---: |")

        def growth(result, per, count_key):
            return "%.0f bytes (%.1f → %.1f MiB, %d)" % (
                result[per], result["rss_before"] / 2**20,
                result["rss_after"] / 2**20, result[count_key])
        out.append("| RSS growth per queued request, %d requests of %d-byte "
                   "bodies (RSS before → after, requests) | %s | %s |" % (
                       QUEUED, ECHO_SIZE,
                       growth(memory["queued-broker"], "per_request",
                              "queued"),
                       growth(memory["queued-conformant"], "per_request",
                              "queued")))
        out.append("| RSS growth per idle connected worker, %d workers "
                   "(RSS before → after, workers) | %s | %s |" % (
                       IDLE_WORKERS,
                       growth(memory["idle-broker"], "per_worker", "workers"),
                       growth(memory["idle-conformant"], "per_worker",
                              "workers")))
        idle = memory["idle-broker"]
        out.append("| CPU over %d s with those workers heartbeating every "
                   "%.1f s | %.2f %% of a core (%d still registered) | - |" % (
                       CPU_SECONDS, HEARTBEAT_S, idle["cpu_percent"],
                       idle["still_registered"]))
        out.append("")
        out.append(self.targets())
        return "\n".join(out)

    def targets(self):
        cart_keys = [key for key in self.order if key.startswith("cart-")]
        best_cart = max(cart_keys, key=lambda key: self.median(key, "rps")
                        or 0)
        best_label = self.labels[best_cart].split(": ", 1)[1]
        queued = self.memory["queued-broker"]
        idle = self.memory["idle-broker"]
        rows = []

        def add(what, value, target, passed, fmt, rounds=None,
                of_medians=None):
            if value is None:
                rows.append("| %s | - | - | %s | not measured | |" % (
                    what, target))
                return
            rows.append("| %s | %s | %s | %s | %s | %s |" % (
                what, fmt % value,
                "-" if of_medians is None else fmt % of_medians, target,
                "" if passed is None else
                "met" if passed(value) else "**missed**",
                " ".join(fmt % ratio for ratio in rounds or [])))

        #  Both sides of a ratio are measured in the same round (the echo
        #  pairs even interleaved), so the ratio is taken within each round
        #  and the median of those is the figure; the ratio of the two
        #  medians pairs one round's numerator with another round's
        #  denominator and is shown for reference.
        def ratio(top, bottom, field, fmt, what, target, passed):
            rounds = self.round_ratios(top, bottom, field)
            add(what, statistics.median(rounds) if rounds else None, target,
                passed, fmt, rounds, self.ratio(top, bottom, field))
        ratio(best_cart, "redis-p1", "rps", "%.2f",
              "cart best (%s) / Redis alone, redis-benchmark -P 1"
              % best_label, "≥ 0.50", lambda v: v >= 0.5)
        ratio(best_cart, "redis-p16", "rps", "%.2f",
              "cart best / Redis alone pipelined (-P 16), for reference",
              "-", None)
        ratio("echo-broker-plain", "echo-conformant", "rps", "%.3f",
              "echo, plain workers: broker / conformant forwarder",
              "≥ 0.93", lambda v: v >= 0.93)
        ratio("echo-broker-credit", "echo-broker-plain", "rps", "%.2f",
              "echo: broker credit / broker plain", "≥ 4",
              lambda v: v >= 4)
        ratio("echo-broker-credit", "echo-pipelined", "rps", "%.3f",
              "echo: broker credit / pipelined forwarder", "≥ 0.40",
              lambda v: v >= 0.4)
        ratio("lat-broker", "lat-conformant", "p50_us", "%.3f",
              "window-1 p50: broker / conformant forwarder", "≤ 1.05",
              lambda v: v <= 1.05)
        floor_idle = self.memory["idle-conformant"]["per_worker"]
        floor_queued = self.memory["queued-conformant"]["per_request"]
        add("broker RSS per idle worker (bytes)", idle["per_worker"],
            "< 1024", lambda v: v < 1024, "%.0f")
        add("… of which above the forwarder's %.0f (libzmq's own per "
            "connection)" % floor_idle, idle["per_worker"] - floor_idle,
            "-", None, "%.0f")
        core = self.memory.get("core") or {}
        add("… the broker's own heap per idle worker (cartmq-core-memory, "
            "exact)", core.get("bytes_per_idle_worker"), "-", None, "%.0f")
        add("broker RSS per queued request minus its %d-byte body (bytes)"
            % queued["payload"], queued["per_request"] - queued["payload"],
            "< 512", lambda v: v < 512, "%.0f")
        add("… of which above the forwarder's %.0f per queued request"
            % floor_queued, queued["per_request"] - floor_queued, "-", None,
            "%.0f")
        add("… the broker's own heap per queued request beyond its body "
            "(cartmq-core-memory, exact)",
            core.get("bytes_per_queued_request_beyond_body"), "-", None,
            "%.0f")
        add("broker CPU, %d idle workers (%% of a core)" % IDLE_WORKERS,
            idle["cpu_percent"], "< 3", lambda v: v < 3, "%.2f")
        return "\n".join([
            "| target (issue 9) | this run: median of the per-round "
            "ratios | ratio of the medians | wanted | | per round |",
            "| --- | ---: | ---: | ---: | --- | --- |"] + rows)


def write_docs(table, command):
    block = "%s\n\nCommand: `%s`\n\n%s\n\n%s" % (BEGIN, command, table, END)
    text = open(DOCS).read() if os.path.exists(DOCS) else \
        "# Benchmarks\n\n%s\n" % block
    if BEGIN in text and END in text:
        head = text.split(BEGIN, 1)[0]
        tail = text.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(DOCS, "w") as output:
        output.write(text)
    log("wrote %s" % DOCS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"),
                        help="build directory (default: build/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4,
                        help="seconds measured per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--redis-requests", type=int, default=150000,
                        help="redis-benchmark -n (x4 when pipelined)")
    parser.add_argument("--quick", action="store_true",
                        help="one round, 2 s each, 1 and 4 workers only")
    parser.add_argument("--write-docs", action="store_true",
                        help="also write the results into docs/benchmarks.md")
    parser.add_argument("--perf", action="store_true",
                        help="perf record the broker during one echo run")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.redis_requests = 1, 2, 60000
    command = " ".join(["bench/run.py"] + sys.argv[1:])

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    raise_fd_limit()
    bench = Bench(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        log("run.py: interrupted")
        return 130
    finally:
        bench.procs.stop_all()
    table = bench.report()
    print(table)
    if args.write_docs:
        write_docs(table, command)
    with open(os.path.join(bench.work_dir, "results.json"), "w") as output:
        json.dump({"results": bench.results, "memory": bench.memory},
                  output, indent=1)
    log("logs and raw results: %s" % bench.work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
