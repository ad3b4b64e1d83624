#!/usr/bin/python3
"""scaling.py - how the broker's cost per request grows (issue 18).

Four curves, each a fresh broker per size, each point a curve of req/s,
the broker's CPU per request answered (utime + stime from /proc/PID/stat
around the measured runs) and the broker's RSS at the end:

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

Each point: a 1 s warmup run, then --rounds measured runs of --duration
seconds; the table gives the median req/s and CPU per request of the
rounds. Markdown to stdout, progress to stderr.

    /usr/bin/python3 bench/scaling.py [--build DIR] [--quick]
                                      [--rounds N] [--duration S]
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
from settings import ECHO_SIZE, REPO, last_json_line, log

TARGET_RATIO = 1.2
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


def user_system_ticks(pid):
    """(utime, stime) of /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def cpu_us_per_request(ticks, hz, requests):
    return ticks / hz / max(requests, 1) * 1e6


def ratio(points):
    """CPU per request at the largest size over that at the smallest, or
    None if a point is missing."""
    if len(points) < 2 or not points[0].get("us") or not points[-1].get("us"):
        return None
    return points[-1]["us"] / points[0]["us"]


def render_curve(title, unit, points, target=TARGET_RATIO):
    """One curve as a markdown table; points are dicts of size, rps, us
    (broker CPU microseconds per request) and rss (bytes), smallest size
    first."""
    lines = ["#### %s" % title, "",
             "| %s | req/s | broker µs CPU/request | of which system "
             "| broker RSS MiB |" % unit,
             "| ---: | ---: | ---: | ---: | ---: |"]
    for point in points:
        if point.get("rps") is None:
            lines.append("| %s | failed | | | |" % format(point["size"], ","))
            continue
        lines.append("| %s | %s | %.2f | %.2f | %.1f |" % (
            format(point["size"], ","), format(round(point["rps"]), ","),
            point["us"], point["sys_us"], point["rss"] / 1048576.0))
    value = ratio(points)
    lines.append("")
    if value is None:
        lines.append("CPU/request largest / smallest: n/a")
    else:
        lines.append("CPU/request largest / smallest: **%.2f×** (target ≤ "
                     "%.1f×: %s)" % (value, target,
                                     "met" if value <= target else "missed"))
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------
# Measuring


class Scaling:
    def __init__(self, args):
        self.args = args
        self.programs = Programs(args.build)
        self.work_dir = tempfile.mkdtemp(prefix="cartmq-scaling-")
        self.procs = Processes(self.work_dir)
        self.context = zmq.Context()
        self.context.max_sockets = 12000
        self.servers = Servers(self.programs, self.procs, self.context)
        self.hz = os.sysconf("SC_CLK_TCK")

    def bench(self, endpoint, service, clients, window, duration,
              extra=()):
        args = [self.programs.client, "bench", "--connect", endpoint,
                "--service", service, "--clients", str(clients),
                "--window", str(window), "--duration", str(duration),
                "--warmup", "0", "--timeout-ms", "10000", "--size",
                str(ECHO_SIZE), "--json"] + list(extra)
        done = subprocess.run(args, capture_output=True, text=True,
                              timeout=duration + 60)
        result = last_json_line(done.stdout)
        if result is None:
            log("  bench failed (exit %d): %s" % (done.returncode,
                                                   done.stderr.strip()))
        return result

    def point(self, size, broker, endpoint, service, clients, window,
              extra=()):
        """Warmup, then the measured rounds; the point's median figures."""
        self.bench(endpoint, service, clients, window, 1, extra)
        rounds = []
        for _ in range(self.args.rounds):
            user, system = user_system_ticks(broker.pid)
            result = self.bench(endpoint, service, clients, window,
                                self.args.duration, extra)
            user_after, system_after = user_system_ticks(broker.pid)
            if result and result["requests"]:
                requests = result["requests"]
                rounds.append((result["rps"], cpu_us_per_request(
                    user_after + system_after - user - system, self.hz,
                    requests), cpu_us_per_request(
                    system_after - system, self.hz, requests),
                    result["errors"] + result["timeouts"]))
        if not rounds:
            return {"size": size, "rps": None}
        point = {"size": size,
                 "rps": statistics.median(r[0] for r in rounds),
                 "us": statistics.median(r[1] for r in rounds),
                 "sys_us": statistics.median(r[2] for r in rounds),
                 "bad": sum(r[3] for r in rounds),
                 "rss": rss_bytes(broker.pid)}
        log("  %s: %.0f req/s, %.2f us/request (%.2f system), RSS %.1f "
            "MiB%s" % (format(size, ","), point["rps"], point["us"],
                       point["sys_us"],
            point["rss"] / 1048576.0,
            ", %d errors/timeouts" % point["bad"] if point["bad"] else ""))
        return point

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

    def run(self):
        sizes = QUICK_SIZES if self.args.quick else SIZES
        tables = []
        for title, unit, function, key in self.curves():
            log("curve: %s" % title)
            points = [function(size) for size in sizes[key]]
            tables.append(render_curve(title, unit, points))
            print(tables[-1], flush=True)
        return tables


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes, 1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--curves",
                        default="workers,services,clients,idle,queued")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2
    raise_fd_limit()
    scaling = Scaling(args)
    try:
        scaling.run()
    except KeyboardInterrupt:
        return 130
    finally:
        scaling.procs.stop_all()
    log("logs: %s" % scaling.work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
