#!/usr/bin/python3
"""cart_budget.py - where the cart path's CPU goes, process by process.

For each variant (how workers and clients reach the broker, workers x
credit, clients x window, how workers reach Redis) it starts a private
redis-server, measures Redis alone (redis-benchmark -P 16 on the worker's
own EVALSHA, the ratio's denominator, in the same run), then a fresh
broker and workers, a 1 s warmup `cartmq bench`, and a measured one
(--mix add=100). Around the measured run it reads, for every process:
utime and stime (/proc/PID/stat, all threads; the client's from wait4),
voluntary and involuntary context switches (/proc/PID/task/*/status;
the client's from wait4), and the machine's idle share (/proc/stat), and
prints one JSON line per variant: req/s, cart / Redis -P16, and per kind
(client, broker, worker (summed, each one under "each"), redis) user and
system µs and context switches per request answered. A markdown budget
table follows. See docs/benchmarks.md, "The cart path's CPU budget".

    /usr/bin/python3 bench/cart_budget.py [--variants V,V,...] [--matrix]
        [--duration S] [--rounds N] [--redis-requests N] [--build DIR]
    /usr/bin/python3 bench/cart_budget.py --strace worker,broker
        [--variants V] [--requests N]

A variant is TRANSPORT/WORKERSxCREDIT/CLIENTSxWINDOW[/REDIS], e.g.
tcp/4x16/8x16 (tcp loopback, 4 workers with credit 16, 8 clients x
window 16: round 1's best) or ipc/2x64/8x32/unix (broker bound on tcp and
ipc, workers and clients on ipc; workers reach Redis by its unix socket).

--strace KINDS runs, for the first variant only, `strace -f -c` on all
processes of each kind named (worker, broker, redis, client) in turn,
each during a `--requests N` run, and prints system calls per request.
strace slows what it traces: these runs count calls, they time nothing.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import zmq

import budget_table
import procstat
from cpu_per_request import redis_pid
from measure import Measure
from processes import Processes, Programs, Servers, raise_fd_limit
from settings import REPO, USERS, last_json_line, log


class Setup:
    """One variant's broker and workers, running."""

    def __init__(self, budget, variant):
        self.budget = budget
        servers = budget.servers
        extra = []
        if variant["transport"] == "ipc":
            #  The broker binds both: tcp for remote peers, ipc for ours.
            self.endpoint = "ipc://" + os.path.join(budget.work_dir,
                                                    "broker.ipc")
            extra = ["--bind", self.endpoint]
        tcp_endpoint, self.broker = servers.start_broker(extra)
        if not extra:
            self.endpoint = tcp_endpoint
        redis_url = ("unix://%s?db=0" % budget.redis_socket
                     if variant["redis"] == "unix" else None)
        self.workers = servers.start_workers(
            self.endpoint, variant["workers"], "cart", variant["credit"],
            False, redis_url)
        self.pids = {"broker": [self.broker.pid],
                     "worker": [worker.pid for worker in self.workers],
                     "redis": [budget.redis_pid]}
        servers.wait_workers(self.endpoint, "cart", variant["workers"])

    def stop(self):
        self.budget.servers.stop(self.workers + [self.broker])


class Budget:
    def __init__(self, args):
        self.args = args
        self.work_dir = tempfile.mkdtemp(prefix="cartmq-budget-")
        self.servers = Servers(Programs(args.build),
                               Processes(self.work_dir), zmq.Context())
        self.programs, self.procs = self.servers.programs, self.servers.procs
        self.measure = Measure(args, self.programs, self.servers,
                               self.work_dir)
        self.redis_socket = os.path.join(self.work_dir, "redis.sock")
        self.redis_pid = None

    def start(self):
        self.servers.start_redis(unixsocket=self.redis_socket)
        self.redis_pid = redis_pid(self.servers.redis_port)

    # ---------------------------------------------------------------
    # The load

    def client_args(self, endpoint, variant, duration=None, requests=None):
        args = [self.programs.client, "bench", "--connect", endpoint,
                "--service", "cart", "--clients", str(variant["clients"]),
                "--window", str(variant["window"]), "--mix", "add=100",
                "--users", str(USERS), "--warmup", "0", "--timeout-ms",
                "5000", "--json"]
        if requests:
            return args + ["--requests", str(requests)]
        return args + ["--duration", str(duration)]

    def run_client(self, args, limit_s):
        """Runs the client to its end: its JSON result and its own use
        (wait4: every thread it had), or (None, None)."""
        output_path = os.path.join(self.work_dir, "client.out")
        with open(output_path, "wb") as output:
            process = subprocess.Popen(args, stdout=output,
                                       stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        timer = threading.Timer(limit_s, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        result = last_json_line(procstat.read(output_path))
        if result is None:
            log("  client failed (exit %d): %s" % (
                process.returncode, procstat.read(output_path)[-500:]))
            return None, None
        return result, procstat.sample_rusage(usage)

    def redis_alone(self):
        """redis-benchmark -P 16 on the worker's EVALSHA: its req/s and
        redis-server's CPU per call."""
        before = procstat.sample_process(self.redis_pid)
        result = self.measure.redis_ceiling(16)
        after = procstat.sample_process(self.redis_pid)
        if not result:
            return None, None
        used = budget_table.difference(before, after)
        calls = self.args.redis_requests * 4    # what redis_ceiling sends
        return result["rps"], (used["user"] + used["sys"]) / calls * 1e6

    # ---------------------------------------------------------------
    # A budget row

    def measure_row(self, variant):
        log("variant %s" % variant["variant"])
        redis_rps, redis_us = self.redis_alone()
        setup = Setup(self, variant)
        try:
            self.servers.redis.flushdb()
            self.run_client(self.client_args(setup.endpoint, variant,
                                             duration=1), 60)
            machine = procstat.sample_machine()
            before = {kind: [procstat.sample_process(pid) for pid in pids]
                      for kind, pids in setup.pids.items()}
            result, client_use = self.run_client(
                self.client_args(setup.endpoint, variant,
                                 duration=self.args.duration),
                self.args.duration + 60)
            after = {kind: [procstat.sample_process(pid) for pid in pids]
                     for kind, pids in setup.pids.items()}
            idle, steal = procstat.machine_shares(machine,
                                                  procstat.sample_machine())
        finally:
            setup.stop()
        row = dict(variant, rps=None, redis_p16_rps=redis_rps,
                   redis_alone_us=redis_us)
        if not result:
            return row
        used = {"client": [client_use]}
        for kind in setup.pids:
            used[kind] = [budget_table.difference(b, a)
                          for b, a in zip(before[kind], after[kind])]
        kinds = budget_table.kind_figures(used, result["requests"])
        row.update(rps=result["rps"], requests=result["requests"],
                   errors=result["errors"] + result["timeouts"],
                   p50_us=result["p50_us"], p99_us=result["p99_us"],
                   ratio=budget_table.ratio(result["rps"], redis_rps),
                   idle_pct=idle * 100, steal_pct=steal * 100, kinds=kinds,
                   total_us=budget_table.total_us(kinds))
        log("  %.0f req/s, %.3f of Redis -P16 (%s), %.1f us CPU/request in "
            "all, idle %.0f %%" % (row["rps"], row["ratio"] or 0,
                                   redis_rps, row["total_us"], idle * 100))
        return row

    def budget(self, variants):
        """Every variant once per round, rounds interleaved; per variant
        one row of the rounds (budget_table.combine_rounds)."""
        rows = {spec["variant"]: [] for spec in variants}
        for round_number in range(1, self.args.rounds + 1):
            for variant in variants:
                row = self.measure_row(variant)
                row["round"] = round_number
                print(json.dumps(budget_table.rounded(row, 3)), flush=True)
                rows[variant["variant"]].append(row)
        return [budget_table.combine_rounds(rows[spec["variant"]])
                for spec in variants]

    # ---------------------------------------------------------------
    # System calls

    def traced_run(self, kind, setup, variant, requests):
        """{syscall: calls} of every process of kind during one run of
        `requests` requests, and the requests answered."""
        output = os.path.join(self.work_dir, "strace-%s.txt" % kind)
        args = self.client_args(setup.endpoint, variant, requests=requests)
        strace = ["strace", "-f", "-c", "-o", output]
        if kind == "client":
            result, _ = self.run_client(strace + args, 600)
            return procstat.parse_strace_summary(procstat.read(output)), \
                result
        pids = setup.pids[kind]
        errors = os.path.join(self.work_dir, "strace-%s.err" % kind)
        with open(errors, "wb") as stderr:
            tracer = subprocess.Popen(
                strace + sum((["-p", str(pid)] for pid in pids), []),
                stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_attached(errors, len(pids))
            result, _ = self.run_client(args, 600)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        return procstat.parse_strace_summary(procstat.read(output)), result

    def syscalls(self, variant, kinds, requests):
        setup = Setup(self, variant)
        per_kind = {}
        try:
            self.servers.redis.flushdb()
            self.run_client(self.client_args(setup.endpoint, variant,
                                             duration=1), 60)
            for kind in kinds:
                log("strace %s, %s, %d requests" % (
                    kind, variant["variant"], requests))
                calls, result = self.traced_run(kind, setup, variant,
                                                requests)
                if not result:
                    continue
                per_kind[kind] = budget_table.syscalls_per_request(
                    calls, result["requests"])
                print(json.dumps({"variant": variant["variant"],
                                  "strace": kind,
                                  "requests": result["requests"],
                                  "per_request": budget_table.rounded(
                                      per_kind[kind], 3)}), flush=True)
        finally:
            setup.stop()
        return per_kind


def wait_attached(errors_path, processes, timeout_s=10):
    """Waits until strace says it attached to every process: one line
    each, "Process N attached with T threads" (-f takes every thread)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if procstat.read(errors_path).count(" attached") >= processes:
            return
        time.sleep(0.05)
    log("  warning: strace attached to fewer than %d processes" % processes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--variants", default=budget_table.MATRIX[0],
                        help="comma list of TRANSPORT/WxC/CxW[/REDIS] "
                        "(default %(default)s)")
    parser.add_argument("--matrix", action="store_true",
                        help="run every variant of budget_table.MATRIX")
    parser.add_argument("--duration", type=int, default=4,
                        help="seconds of each measured run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--redis-requests", type=int, default=75000,
                        help="redis-benchmark -n / 4 (default %(default)s)")
    parser.add_argument("--strace", metavar="KINDS",
                        help="instead: system calls per request of these "
                        "kinds (worker,broker,redis,client), first variant")
    parser.add_argument("--requests", type=int, default=20000,
                        help="requests of each --strace run")
    args = parser.parse_args(argv)
    try:
        args.variant_list = budget_table.parse_variants(
            ",".join(budget_table.MATRIX) if args.matrix else args.variants)
        args.kinds = [kind for kind in (args.strace or "").split(",")
                      if kind]
        unknown = set(args.kinds) - set(budget_table.KINDS)
        if unknown:
            raise ValueError("--strace: unknown kind %s" % ",".join(unknown))
    except ValueError as error:
        parser.error(str(error))
    return args


def run(budget, args):
    """The markdown of what args ask for (the JSON lines go out as each
    row is measured)."""
    budget.start()
    if args.kinds:
        return "system calls per request answered", \
            budget_table.render_syscalls(budget.syscalls(
                args.variant_list[0], args.kinds, args.requests))
    return "µs of CPU and context switches per request answered", \
        budget_table.render_budget(budget.budget(args.variant_list))


def main():
    args = parse_args()
    raise_fd_limit()
    budget = Budget(args)
    try:
        what, table = run(budget, args)
    except KeyboardInterrupt:
        return 130
    finally:
        budget.procs.stop_all()
        log("logs: %s" % budget.work_dir)
    print("\nCommand: `%s`; %s; machine idle %% over each measured run "
          "(both cores, whatever else runs)\n\n%s" % (
              " ".join(["bench/cart_budget.py"] + sys.argv[1:]), what, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
