#!/usr/bin/python3
"""run.py - the cartmq benchmark: everything side by side, in one run.

Runs Redis alone (redis-benchmark on the cart's own Lua script), the cart
service through the broker with 1, 2, 4 and 8 workers (plain and with
credit) and through two brokers, echo through the reference forwarder
(both modes) and through one and two brokers, window-1 latency, and the
broker's memory and idle CPU. Every throughput configuration runs once
per round and rounds are interleaved, so slow spells of a noisy machine
hit every configuration alike; the table shows medians over the rounds,
and the ratios are taken from those medians in this one run.

Every process it starts listens on loopback only, on ports it picks, is
bounded in time and is stopped at the end (SIGTERM, then SIGKILL).

    /usr/bin/python3 bench/run.py [--build DIR] [--rounds N] [--quick]
                                  [--write-docs] [--perf] [--redis-modes]
                                  [--scaling [--scaling-rate R]]

The markdown goes to stdout; progress to stderr. --write-docs also puts it
into docs/benchmarks.md between the results markers. --scaling also runs
the curves of scaling.py (its quick sizes with --quick) after the other
rows, in the same run; --write-docs then puts them between the scaling
markers of the Scaling section.

This file holds the plan (which rows, in which order) and the rounds; the
rest lives beside it, one concern per module: processes.py (starting and
stopping redis-server, brokers, forwarders, workers; /proc), measure.py
(cartmq bench, cartmq-latency-pair, redis-benchmark and their output),
memory.py (RSS and idle CPU), report.py (the markdown, --write-docs),
cartmq_mmi.py (mmi.services and mmi.stats, shared with scripts/), and
settings.py (the loads).
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

import zmq

from measure import Measure
from memory import Memory
from processes import Processes, Programs, Servers, raise_fd_limit
from redis_modes import RedisModes
from report import SCALING_MARKERS, Report, write_docs
from scaling import DEFAULT_RATE, Scaling, options
from settings import (BEST_CART, BEST_WINDOW, CLIENTS, CREDIT, ECHO_WORKERS,
                      IDLE_WORKERS, QUEUED, REPO, WINDOW, log)


class Bench:
    """One run of the whole benchmark."""

    def __init__(self, args):
        self.args = args
        self.programs = Programs(args.build)
        self.work_dir = tempfile.mkdtemp(prefix="cartmq-bench-")
        self.procs = Processes(self.work_dir)
        self.context = zmq.Context()
        self.context.max_sockets = IDLE_WORKERS + 100
        self.servers = Servers(self.programs, self.procs, self.context)
        self.measure = Measure(args, self.programs, self.servers,
                               self.work_dir)
        self.memory_probe = Memory(self.programs, self.servers, self.context)
        self.redis_modes = RedisModes(self.programs, self.procs, self.servers,
                                      self.measure, self.work_dir)
        self.results = {}   # key -> list of per-round dicts
        self.memory = {}
        self.labels, self.order = {}, []
        self.elapsed = 0.0
        self.scaling = None    # the curves' markdown, with --scaling
        self.scaling_points = {}

    def plan(self):
        """(key, label, function) of every throughput and latency row, in
        the order a round runs them."""
        measure = self.measure
        counts = [1, 4] if self.args.quick else [1, 2, 4, 8]
        rows = [
            ("redis-p1", "Redis alone: redis-benchmark EVALSHA cart.lua, "
             "50 connections", lambda: measure.redis_ceiling(1)),
            ("redis-p16", "Redis alone: the same, pipelined -P 16",
             lambda: measure.redis_ceiling(16)),
            ("redis-p16-unix", "Redis alone: the same, pipelined -P 16, "
             "over its unix socket",
             lambda: measure.redis_ceiling(16, unix=True)),
        ]
        for credit in (1, CREDIT):
            for count in counts:
                label = "cart AddItemToCart via broker: %d worker%s%s" % (
                    count, "s" if count > 1 else "",
                    ", credit %d" % credit if credit > 1 else " (plain)")
                rows.append(("cart-%d-c%d" % (count, credit), label,
                             lambda c=count, k=credit:
                             measure.cart_through_broker(c, k)))
        rows += self.best_cart_rows()
        rows.append(("cart-2b-%d-c%d" % (ECHO_WORKERS, CREDIT),
                     "cart AddItemToCart via 2 brokers: %d workers, credit "
                     "%d, each worker and the clients on both"
                     % (ECHO_WORKERS, CREDIT),
                     lambda: measure.cart_through_broker(ECHO_WORKERS,
                                                         CREDIT, 2)))
        plain = ("conformant", ECHO_WORKERS, 1), ("broker", ECHO_WORKERS, 1)
        credit = (("pipelined", ECHO_WORKERS, CREDIT),
                  ("broker", ECHO_WORKERS, CREDIT))
        latency = ("conformant", 1, 1), ("broker", 1, 1)
        rows += [
            (("echo-conformant", "echo-broker-plain"),
             ("echo via forwarder --mode conformant: %d plain workers"
              % ECHO_WORKERS,
              "echo via broker: the same %d plain workers" % ECHO_WORKERS),
             lambda: measure.echo_pair(plain, CLIENTS, WINDOW)),
            (("echo-pipelined", "echo-broker-credit"),
             ("echo via forwarder --mode pipelined: %d workers "
              "--concurrency %d" % (ECHO_WORKERS, CREDIT),
              "echo via broker: the same %d workers, credit %d"
              % (ECHO_WORKERS, CREDIT)),
             lambda: measure.echo_pair(credit, CLIENTS, WINDOW)),
            (("echo-1b-credit", "echo-2b-credit"),
             ("echo via 1 broker: %d workers, credit %d (paired with the "
              "next row)" % (ECHO_WORKERS, CREDIT),
              "echo via 2 brokers: the same %d workers on both, credit %d, "
              "clients spread over both" % (ECHO_WORKERS, CREDIT)),
             lambda: measure.echo_pair((credit[1], ("brokers2",)
                                        + credit[1][1:]), CLIENTS, WINDOW)),
            (("lat-conformant", "lat-broker"),
             ("window 1: echo via forwarder --mode conformant, 1 worker",
              "window 1: echo via broker, 1 worker"),
             lambda: measure.latency_pair(latency)),
            ("lat-cart", "window 1: cart AddItemToCart via broker, "
             "1 worker", measure.cart_window_one),
        ]
        if getattr(self.args, "redis_modes", False):
            rows += self.redis_modes.rows()
        return rows

    def best_cart_rows(self):
        """The cart's candidates for its best configuration (issue 18's
        budget): few workers with much credit, a deeper client pipeline,
        and for one host ipc:// and Redis's unix socket. Each is a row of
        its own; the targets take the fastest."""
        measure, rows = self.measure, []
        for workers, credit, local in BEST_CART:
            label = ("cart AddItemToCart via broker: %d worker%s, credit %d, "
                     "%d x %d in flight%s" % (
                         workers, "s" if workers > 1 else "", credit,
                         CLIENTS, BEST_WINDOW,
                         ", ipc:// and Redis's unix socket" if local
                         else ", tcp"))
            key = "cart-best-%d-c%d-%s" % (workers, credit,
                                           "local" if local else "tcp")
            rows.append((key, label, lambda w=workers, c=credit, l=local:
                         measure.cart(w, c, CLIENTS, BEST_WINDOW, True,
                                      local=l)))
        return rows

    def run(self):
        started = time.monotonic()
        self.servers.start_redis(
            unixsocket=os.path.join(self.work_dir, "redis.sock"))
        if self.args.redis_modes:
            self.redis_modes.start()
        rows = self.plan()
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
                self.record(round_number, keys, results)
        self.run_memory()
        self.elapsed = time.monotonic() - started
        if self.args.perf:
            self.measure.profile()
        if self.args.scaling:
            self.run_scaling()

    def run_scaling(self):
        """scaling.py's curves, with this run's processes list (so they
        are stopped with everything else)."""
        scaling = Scaling(options(self.args.build, self.args.quick,
                                  self.args.scaling_rate), self.procs)
        try:
            self.scaling = scaling.run(show=False)
        finally:
            self.scaling_points = scaling.points
            scaling.context.destroy(0)

    def record(self, round_number, keys, results):
        for key, result in zip(keys, results):
            if not result:
                continue
            result["round"] = round_number
            self.results.setdefault(key, []).append(result)
            log("  %.0f req/s  p50 %s us  p99 %s us" % (
                result["rps"], result.get("p50_us"), result.get("p99_us")))

    def run_memory(self):
        probe = self.memory_probe
        for target in ("broker", "conformant"):
            log("memory, %s: %d requests queued" % (target, QUEUED))
            self.memory["queued-" + target] = probe.queued_memory(target)
            log("  %s" % self.memory["queued-" + target])
            log("memory%s, %s: %d idle workers" % (
                " and idle CPU" if target == "broker" else "", target,
                IDLE_WORKERS))
            self.memory["idle-" + target] = probe.idle_workers(target)
            log("  %s" % self.memory["idle-" + target])
        self.memory["core"] = probe.core_memory()
        log("  core: %s" % self.memory["core"])

    def report(self):
        return Report(self.args, self.results, self.memory, self.order,
                      self.labels, self.elapsed)


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
    parser.add_argument("--redis-modes", action="store_true",
                        help="also the cart through Sentinel (with and "
                        "without --redis-wait 1) and a 3-master Cluster")
    parser.add_argument("--perf", action="store_true",
                        help="perf record the broker during one echo run")
    parser.add_argument("--scaling", action="store_true",
                        help="also the scaling curves of scaling.py (its "
                        "quick sizes with --quick), after the other rows")
    parser.add_argument("--scaling-rate", type=int, default=DEFAULT_RATE,
                        help="the curves' fixed rate, req/s (default %d; "
                        "0: saturated runs only)" % DEFAULT_RATE)
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
    table = bench.report().render()
    print(table)
    if bench.scaling:
        print("\n" + bench.scaling)
    if args.write_docs:
        write_docs(table, command)
        if bench.scaling:
            write_docs(bench.scaling, command, SCALING_MARKERS)
    with open(os.path.join(bench.work_dir, "results.json"), "w") as output:
        json.dump({"results": bench.results, "memory": bench.memory,
                   "scaling": bench.scaling_points}, output, indent=1)
    log("logs and raw results: %s" % bench.work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
