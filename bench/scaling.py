#!/usr/bin/python3
"""scaling.py - how the broker's cost per request grows (issue 18).

Five curves, a fresh broker per size. Each point is measured twice:
saturated (every bench window kept full: the rate is what the system
answers) and at one fixed rate for every point of every curve
(`cartmq bench --rate`, default DEFAULT_RATE req/s), so that every point
has the same messages per broker wake-up. Per point and mode: req/s, the
broker's CPU per request answered (all its threads' schedstat ns around
the run), the same above its idle CPU (everything connected, no load,
measured over --duration s just before each round: heartbeats of 1,000
workers cost per second, not per request), the system part, and the
broker's RSS at the end:

  workers   1, 4, 16, 64, 256 echo workers of one service (one
            `cartmq-worker --echo --processes N` supervisor), credit 1 and
            credit 16; load 8 clients x window 16;
  services  1, 10, 100, 1,000 services echo0..echoN-1, one echo worker
            each; `cartmq bench --services N` sends request k to service
            echo<k mod N>, so the load is spread evenly;
  clients   8, 100, 1,000, 5,000 connected clients, 128 requests in flight
            in all (split_clients: the active ones keep the window, the
            rest are connected pyzmq DEALERs that sent one request each
            and then stay idle);
  idle      the same sizes, but always 8 active clients x window 16 and
            the rest idle: what connections alone cost;
  queued    0 and 10,000 requests queued for a service with no worker
            (pyzmq DEALERs, broker --queue-timeout-ms 600000) while the
            echo service (4 workers, credit 16, 8 x 16) is measured.

Each point: a 1 s warmup run, then --rounds rounds of idle, saturated
and fixed-rate runs of --duration seconds each (each run after its own
WARMUP_S s of warmup, which its CPU leaves out); the table gives the
medians of the rounds. Markdown to stdout, progress to stderr. run.py
--scaling runs the same after its own rows.

    /usr/bin/python3 bench/scaling.py [--build DIR] [--quick]
                                      [--rounds N] [--duration S]
                                      [--rate R] [--write-docs]
                                      [--curves workers,services,...]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

import cartmq_mmi
from processes import Processes, Programs, Servers, raise_fd_limit, rss_bytes
from procstat import parse_stat_times
from report import SCALING_MARKERS, write_docs
from scaling_report import MODES, preamble, render_curve, suggestion
from settings import ECHO_SIZE, REPO, last_json_line, log

#  Fixed rate of each point's second run: on a quiet 2-core VM the
#  slowest saturated point (1,000 services, one worker process each) ran
#  at 1,628 req/s, so 1,000 keeps every point below its ceiling.
DEFAULT_RATE = 1000
ALL_CURVES = "workers,services,clients,idle,queued"
#  cartmq bench --warmup of each measured run, left out of its CPU: the
#  broker's listen backlog is 32 (broker_guard.h), so of 128 clients
#  connecting at once some wait for the kernel's SYN retry, 1 s later; at
#  a fixed rate their sends would be skipped meanwhile.
WARMUP_S = 2
IN_FLIGHT = 128         # total window of the clients curve
LOAD_CLIENTS, LOAD_WINDOW = 8, 16
QUEUED_SIDE = 10000

SIZES = {
    "workers": [1, 4, 16, 64, 256],
    "services": [1, 10, 100, 1000],
    "clients": [8, 100, 1000, 5000],
    "queued": [0, QUEUED_SIDE],
}
QUICK_SIZES = {
    "workers": [1, 16, 64],
    "services": [1, 100],
    "clients": [8, 1000],
    "queued": [0, QUEUED_SIDE],
}


# -------------------------------------------------------------------
# Pure functions (bench/tests/test_scaling.py)


def split_clients(clients, in_flight=IN_FLIGHT):
    """(active, window, idle) for `clients` connected clients keeping
    in_flight requests in flight in all: active is the largest divisor
    of in_flight not above clients, each with window in_flight / active;
    the other clients stay connected and idle."""
    active = max(d for d in range(1, min(clients, in_flight) + 1)
                 if in_flight % d == 0)
    return active, in_flight // active, clients - active


def parse_schedstat(text):
    """Nanoseconds on the CPU from the text of a task's schedstat."""
    return int(text.split()[0])


def per_request(busy, idle, requests):
    """The broker's CPU per request of one run: busy and idle are
    cpu_sample differences over their wall time (dicts of ns, user,
    system, wall_s). us: all of busy; above_us: busy less the idle CPU
    per second times busy's wall time (heartbeats and the like cost per
    second, not per request); sys_us: us times the system share of the
    ticks."""
    requests = max(requests, 1)
    us = busy["ns"] / 1e3 / requests
    idle_ns = idle["ns"] / idle["wall_s"] * busy["wall_s"] \
        if idle and idle["wall_s"] > 0 else 0.0
    ticks = busy["user"] + busy["system"]
    return {"us": us, "above_us": (busy["ns"] - idle_ns) / 1e3 / requests,
            "sys_us": us * busy["system"] / ticks if ticks else 0.0}


def median_run(runs):
    """The median of each figure over the rounds' runs (None ones left
    out), or None if no run answered."""
    runs = [run for run in runs if run]
    if not runs:
        return None
    merged = {key: statistics.median(run[key] for run in runs)
              for key in ("rps", "us", "above_us", "sys_us")}
    merged["bad"] = sum(run["bad"] for run in runs)
    merged["late"] = sum(run.get("late", 0) for run in runs)
    merged["skipped"] = sum(run.get("skipped", 0) for run in runs)
    return merged


# -------------------------------------------------------------------
# Measuring


def cpu_sample(pid):
    """The broker's CPU so far: ns on the CPU of all its threads (their
    schedstat: nanoseconds, where /proc/PID/stat counts 10 ms ticks, too
    coarse for a few thousand requests), user and system ticks, and the
    monotonic time."""
    with open("/proc/%d/stat" % pid) as stat:
        user, system = parse_stat_times(stat.read())
    ns = 0
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as sched:
                ns += parse_schedstat(sched.read())
    except FileNotFoundError:   # no schedstat (or a thread just ended)
        ns = (user + system) * 1e9 / os.sysconf("SC_CLK_TCK")
    return {"ns": ns, "user": user, "system": system,
            "wall_s": time.monotonic()}


def cpu_delta(before, after):
    return {key: after[key] - before[key] for key in before}


class Scaling:
    def __init__(self, args, procs=None):
        """procs: run.py's Processes, so that its stop_all stops ours."""
        self.args = args
        self.programs = Programs(args.build)
        self.work_dir = procs.log_dir if procs else \
            tempfile.mkdtemp(prefix="cartmq-scaling-")
        self.procs = procs or Processes(self.work_dir)
        self.context = zmq.Context()
        self.context.max_sockets = 12000
        self.servers = Servers(self.programs, self.procs, self.context)
        self.points = {}    # curve title -> points, for results.json

    def bench_args(self, endpoint, service, clients, window, duration,
                   warmup, extra):
        return [self.programs.client, "bench", "--connect", endpoint,
                "--service", service, "--clients", str(clients),
                "--window", str(window), "--duration", str(duration),
                "--warmup", str(warmup), "--timeout-ms", "10000", "--size",
                str(ECHO_SIZE), "--json"] + list(extra)

    def bench_result(self, process, timeout_s):
        stdout, stderr = process.communicate(timeout=timeout_s)
        result = last_json_line(stdout)
        if result is None:
            log("  bench failed (exit %d): %s" % (process.returncode,
                                                   stderr.strip()))
        return result

    def bench(self, endpoint, service, clients, window, duration,
              extra=()):
        process = subprocess.Popen(
            self.bench_args(endpoint, service, clients, window, duration, 0,
                            extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self.bench_result(process, duration + 60)

    def idle_cpu(self, broker):
        """The broker's CPU over --duration s with everything connected
        and no load."""
        before = cpu_sample(broker.pid)
        time.sleep(self.args.duration)
        return cpu_delta(before, cpu_sample(broker.pid))

    def measured_run(self, broker, idle, endpoint, service, clients,
                     window, extra):
        """One bench run; the broker's CPU from the end of the bench's
        warmup to its exit, so that its connecting is left out."""
        process = subprocess.Popen(
            self.bench_args(endpoint, service, clients, window,
                            self.args.duration, WARMUP_S, extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(WARMUP_S)
        before = cpu_sample(broker.pid)
        result = self.bench_result(process, WARMUP_S + self.args.duration
                                   + 60)
        busy = cpu_delta(before, cpu_sample(broker.pid))
        if not result or not result["requests"]:
            return None
        run = per_request(busy, idle, result["requests"])
        run.update(rps=result["rps"],
                   bad=result["errors"] + result["timeouts"],
                   late=result.get("late_sends", 0),
                   skipped=result.get("skipped_sends", 0))
        return run

    def point(self, size, broker, endpoint, service, clients, window,
              extra=()):
        """Warmup, then per round: the idle CPU, a saturated run and (with
        --rate) a run at the fixed rate; the medians of the rounds."""
        self.bench(endpoint, service, clients, window, 1, extra)
        runs = {mode: [] for mode in MODES}
        idles = []
        rate = self.args.rate
        for _ in range(self.args.rounds):
            idle = self.idle_cpu(broker)
            idles.append(idle["ns"] / 1e9 / idle["wall_s"] * 100)
            runs["saturated"].append(self.measured_run(
                broker, idle, endpoint, service, clients, window, extra))
            if rate:
                runs["fixed"].append(self.measured_run(
                    broker, idle, endpoint, service, clients, window,
                    list(extra) + ["--rate", str(rate)]))
        point = {"size": size, "idle_pct": statistics.median(idles),
                 "rss": rss_bytes(broker.pid)}
        for mode in MODES:
            point[mode] = median_run(runs[mode])
        self.log_point(point)
        return point

    def log_point(self, point):
        parts = []
        for mode in MODES:
            run = point[mode]
            if run:
                parts.append("%s %.0f req/s %.2f us/request (%.2f above "
                             "idle, %.2f system)%s" % (
                                 mode, run["rps"], run["us"],
                                 run["above_us"], run["sys_us"],
                                 ", %d errors/timeouts" % run["bad"]
                                 if run["bad"] else ""))
        if point["fixed"]:
            parts.append("%d sends late, %d skipped" % (
                point["fixed"]["late"], point["fixed"]["skipped"]))
        log("  %s: %s; idle %.2f %%, RSS %.1f MiB" % (
            format(point["size"], ","), "; ".join(parts) or "failed",
            point["idle_pct"], point["rss"] / 1048576.0))

    def broker(self, extra=()):
        return self.servers.start_broker(extra)

    def echo_supervisor(self, endpoint, service, processes, credit):
        args = [self.programs.worker, "--connect", endpoint, "--service",
                service, "--echo", "--concurrency", str(credit)]
        if processes > 1:
            args += ["--processes", str(processes)]
        return self.procs.start("worker", args)

    def workers_point(self, size, credit):
        endpoint, broker = self.broker()
        started = [broker]
        try:
            started.append(self.echo_supervisor(endpoint, "echo", size,
                                                credit))
            if not cartmq_mmi.wait_workers(self.context, endpoint, "echo",
                                           size, timeout_s=60):
                log("  warning: not all %d workers registered" % size)
            return self.point(size, broker, endpoint, "echo", LOAD_CLIENTS,
                              LOAD_WINDOW)
        finally:
            self.servers.stop(started[::-1])

    def wait_services(self, endpoint, count, timeout_s=120):
        deadline = time.monotonic() + timeout_s
        ready = 0
        while time.monotonic() < deadline:
            rows = cartmq_mmi.services(self.context, endpoint,
                                       timeout_ms=10000) or []
            ready = sum(1 for row in rows
                        if str(row.get("name", "")).startswith("echo")
                        and row.get("workers", 0) >= 1)
            if ready >= count:
                return
            time.sleep(0.2)
        log("  warning: %d of %d services have a worker" % (ready, count))

    def services_point(self, size):
        endpoint, broker = self.broker()
        started = [broker]
        try:
            for index in range(size):
                #  What cartmq bench --services size sends to.
                name = "echo" if size == 1 else "echo%d" % index
                started.append(self.echo_supervisor(endpoint, name, 1, 16))
            self.wait_services(endpoint, size)
            return self.point(size, broker, endpoint, "echo", LOAD_CLIENTS,
                              LOAD_WINDOW, ["--services", str(size)])
        finally:
            self.servers.stop(started[::-1])

    def idle_clients(self, endpoint, count):
        """count connected DEALERs, each having sent one echo request and
        had its reply: live client connections the broker has served."""
        dealers = []
        for _ in range(count):
            dealer = self.context.socket(zmq.DEALER)
            dealer.linger = 0
            dealer.connect(endpoint)
            dealer.send_multipart([b"", b"MDPC01", b"echo", b"i" * ECHO_SIZE])
            dealers.append(dealer)
        poller = zmq.Poller()
        for dealer in dealers:
            poller.register(dealer, zmq.POLLIN)
        waiting, deadline = set(dealers), time.monotonic() + 60
        while waiting and time.monotonic() < deadline:
            for dealer, _ in poller.poll(500):
                dealer.recv_multipart()
                if dealer in waiting:
                    waiting.discard(dealer)
                    poller.unregister(dealer)
        if waiting:
            log("  warning: %d idle clients had no reply" % len(waiting))
        return dealers

    def clients_point(self, size, fixed_active=False):
        """fixed_active: 8 clients x window 16 whatever the size, the rest
        idle (what connections alone cost); else split_clients."""
        if fixed_active:
            active, window = LOAD_CLIENTS, LOAD_WINDOW
            idle = size - active
        else:
            active, window, idle = split_clients(size)
        endpoint, broker = self.broker()
        started, dealers = [broker], []
        try:
            started.append(self.echo_supervisor(endpoint, "echo", 4, 16))
            cartmq_mmi.wait_workers(self.context, endpoint, "echo", 4)
            dealers = self.idle_clients(endpoint, idle)
            log("  %d clients: %d active x window %d, %d idle" % (
                size, active, window, idle))
            return self.point(size, broker, endpoint, "echo", active, window)
        finally:
            for dealer in dealers:
                dealer.close()
            self.servers.stop(started[::-1])

    def queued_point(self, size):
        endpoint, broker = self.broker([
            "--queue-timeout-ms", "600000", "--max-queued",
            str(QUEUED_SIDE * 2)])
        started, senders = [broker], []
        try:
            started.append(self.echo_supervisor(endpoint, "echo", 4, 16))
            cartmq_mmi.wait_workers(self.context, endpoint, "echo", 4)
            for _ in range(10):
                dealer = self.context.socket(zmq.DEALER)
                dealer.linger = 0
                dealer.sndhwm = 0
                dealer.connect(endpoint)
                senders.append(dealer)
            for index in range(size):
                senders[index % 10].send_multipart(
                    [b"", b"MDPC01", b"queued", b"q" * ECHO_SIZE])
            deadline = time.monotonic() + 60
            while size and time.monotonic() < deadline:
                if cartmq_mmi.service_row(self.context, endpoint,
                                          "queued")["queued"] >= size:
                    break
                time.sleep(0.1)
            point = self.point(size, broker, endpoint, "echo", LOAD_CLIENTS,
                               LOAD_WINDOW)
            still = cartmq_mmi.service_row(self.context, endpoint,
                                           "queued")["queued"]
            log("  still queued after the runs: %d" % still)
            return point
        finally:
            for dealer in senders:
                dealer.close()
            self.servers.stop(started[::-1])

    def curves(self):
        """(title, unit, function of size) for every curve asked for."""
        chosen = self.args.curves.split(",")
        found = []
        if "workers" in chosen:
            for credit in (1, 16):
                found.append((
                    "workers of one echo service, credit %d (8 clients x "
                    "window 16)" % credit, "workers",
                    lambda size, c=credit: self.workers_point(size, c),
                    "workers"))
        if "services" in chosen:
            found.append(("services, one echo worker (credit 16) each, "
                          "load spread round-robin (8 x 16)", "services",
                          self.services_point, "services"))
        if "clients" in chosen:
            found.append(("connected clients, 128 requests in flight in all "
                          "(4 echo workers, credit 16)", "clients",
                          self.clients_point, "clients"))
        if "idle" in chosen:
            found.append(("connected clients, the same 8 active x window 16, "
                          "the rest idle (4 echo workers, credit 16)",
                          "clients", lambda size: self.clients_point(
                              size, fixed_active=True), "clients"))
        if "queued" in chosen:
            found.append(("requests queued for a service with no worker, "
                          "echo measured beside (4 workers, credit 16, "
                          "8 x 16)", "queued", self.queued_point, "queued"))
        return found

    def run(self, show=True):
        """Every curve asked for; the markdown of them all (and each
        table on stdout as it is done, if show)."""
        started = time.monotonic()
        sizes = QUICK_SIZES if self.args.quick else SIZES
        tables = []
        for title, unit, function, key in self.curves():
            log("curve: %s" % title)
            points = [function(size) for size in sizes[key]]
            self.points[title] = points
            tables.append(render_curve(title, unit, points, self.args.rate))
            if show:
                print(tables[-1], flush=True)
        closing = suggestion(list(self.points.values()), self.args.rate)
        if show:
            print(closing, flush=True)
        return "\n".join(
            [preamble(self.args.rounds, self.args.duration, self.args.rate,
                      time.monotonic() - started, WARMUP_S)]
            + tables + [closing]).rstrip("\n")


def options(build, quick=False, rate=DEFAULT_RATE):
    """scaling.py's settings, for run.py --scaling."""
    args = argparse.Namespace(build=build, quick=quick, rounds=3, duration=3,
                              curves=ALL_CURVES, rate=rate)
    if quick:
        args.rounds, args.duration = 1, 2
    return args


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes, 1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--curves", default=ALL_CURVES)
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE,
                        help="fixed rate of the second run of each point, "
                        "req/s (default %d; 0: saturated runs only)"
                        % DEFAULT_RATE)
    parser.add_argument("--write-docs", action="store_true",
                        help="also put the curves into docs/benchmarks.md "
                        "between the scaling markers")
    args = parser.parse_args()
    args.command = " ".join(["bench/scaling.py"] + sys.argv[1:])
    if args.quick:
        args.rounds, args.duration = 1, 2
    raise_fd_limit()
    scaling = Scaling(args)
    try:
        text = scaling.run()
    except KeyboardInterrupt:
        return 130
    finally:
        scaling.procs.stop_all()
    if args.write_docs:
        write_docs(text, args.command, SCALING_MARKERS)
    log("logs: %s" % scaling.work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
