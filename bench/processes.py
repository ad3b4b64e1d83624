"""processes.py - the processes bench/run.py starts, and what /proc says
of them.

Every process listens on loopback only, on a port picked here, and is
stopped at the end (SIGTERM, then SIGKILL): Processes keeps the list.
Servers starts the programs under test (redis-server, cartmq-broker,
cartmq-forwarder, cartmq-worker) and waits until they are ready.
"""

import os
import resource
import signal
import socket
import subprocess
import sys
import time

import redis

import cartmq_mmi
from settings import REPO, log


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -------------------------------------------------------------------
# /proc


def status_kb(pid, key):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM...), or None."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def rss_bytes(pid):
    return (status_kb(pid, "VmRSS") or 0) * 1024


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def settle(pid, timeout_s=20):
    """Waits until a process's RSS stops growing (the forwarder has no
    MMI to say it has read everything)."""
    last, deadline = -1, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_bytes(pid)
        if now == last:
            return
        last = now


# -------------------------------------------------------------------
# Starting and stopping


class Programs:
    """Where the built programs are; exits if one the run needs is
    missing."""

    def __init__(self, build):
        build = os.path.abspath(build)
        self.broker = os.path.join(build, "broker", "cartmq-broker")
        self.worker = os.path.join(build, "worker", "cartmq-worker")
        self.client = os.path.join(build, "client", "cartmq")
        self.forwarder = os.path.join(build, "bench", "cartmq-forwarder")
        self.core_memory = os.path.join(build, "bench", "cartmq-core-memory")
        self.latency_pair = os.path.join(build, "bench",
                                         "cartmq-latency-pair")
        for path in (self.broker, self.worker, self.client, self.forwarder):
            if not os.access(path, os.X_OK):
                sys.exit("run.py: %s missing: build first "
                         "(cmake --build %s)" % (path, build))


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


def wait_listening(endpoint, process):
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


class Servers:
    """Starts the programs under test: one private redis-server for the
    whole run, and fresh brokers, forwarders and workers per
    configuration."""

    def __init__(self, programs, procs, context):
        self.programs = programs
        self.procs = procs
        self.context = context
        #  Set by start_redis: its port, a redis-py client, cart.lua's sha
        #  and its unix socket's path (None: TCP only).
        self.redis_port = self.redis = self.sha = self.redis_socket = None

    def start_redis(self, unixsocket=None):
        """unixsocket: a path where it also listens (workers reach it at
        unix://PATH)."""
        self.redis_port = free_port()
        self.redis_socket = unixsocket
        extra = (["--unixsocket", unixsocket, "--unixsocketperm", "700"]
                 if unixsocket else [])
        process = self.procs.start("redis", [
            "redis-server", "--bind", "127.0.0.1", "--port",
            str(self.redis_port), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "yes"] + extra)
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
            self.programs.broker, "--bind", endpoint] + list(extra))
        wait_listening(endpoint, process)
        return endpoint, process

    def start_brokers(self, count, extra=()):
        """count brokers sharing nothing: their endpoints as one comma
        list (what workers' and clients' --connect take) and the
        processes."""
        started = [self.start_broker(extra) for _ in range(count)]
        return (",".join(endpoint for endpoint, _ in started),
                [process for _, process in started])

    def start_forwarder(self, mode):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        process = self.procs.start("forwarder-" + mode, [
            self.programs.forwarder, "--bind", endpoint, "--mode", mode])
        wait_listening(endpoint, process)
        return endpoint, process

    def start_server(self, target, extra=()):
        """A broker, two brokers ("brokers2": the endpoint is their comma
        list, the process the first; the second is in extra_processes), or
        a forwarder in mode target (which takes no extra arguments).
        Returns (endpoint, process, extra_processes)."""
        if target == "broker":
            return self.start_broker(extra) + ([],)
        if target == "brokers2":
            endpoint, processes = self.start_brokers(2, extra)
            return endpoint, processes[0], processes[1:]
        return self.start_forwarder(target) + ([],)

    def start_workers(self, endpoint, count, service, credit, echo,
                      redis_url=None):
        """redis_url: where the workers reach Redis (default the TCP
        port of start_redis)."""
        redis_url = redis_url or "redis://127.0.0.1:%d/0" % self.redis_port
        workers = []
        for _ in range(count):
            args = [self.programs.worker, "--connect", endpoint,
                    "--service", service]
            if echo:
                args.append("--echo")
            else:
                args += ["--redis", redis_url]
            if credit > 1:
                args += ["--concurrency", str(credit)]
            workers.append(self.procs.start("worker", args))
        return workers

    def wait_workers(self, endpoints, service, count):
        """Waits until every broker of the comma list lists count
        workers of service (a worker of several brokers is in each)."""
        for endpoint in endpoints.split(","):
            if not cartmq_mmi.wait_workers(self.context, endpoint, service,
                                           count):
                log("  warning: %d %s workers did not all register at %s"
                    % (count, service, endpoint))

    def service_row(self, endpoint, name):
        return cartmq_mmi.service_row(self.context, endpoint, name)

    def echo_setup(self, target, workers, credit):
        """A broker or forwarder with its echo workers, ready for load."""
        endpoint, server, others = self.start_server(target)
        started = self.start_workers(endpoint, workers, "echo", credit, True)
        if target.startswith("broker"):
            self.wait_workers(endpoint, "echo", workers)
        return endpoint, server, started + others

    def stop(self, processes):
        self.procs.stop(processes)
