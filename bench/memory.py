"""memory.py - the memory and idle CPU measurements of bench/run.py.

RSS growth of the broker and of the conformant forwarder (libzmq's floor)
per queued request and per idle connected worker, read from /proc; the
broker's CPU with those workers heartbeating; and the broker's own heap
from cartmq-core-memory.
"""

import os
import subprocess
import time

import zmq

from processes import cpu_ticks, rss_bytes, settle
from settings import (CPU_SECONDS, ECHO_SIZE, HEARTBEAT_S, IDLE_WORKERS,
                      QUEUED, last_json_line)


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


def growth(before, after, count, count_key, per_key):
    return {count_key: count, "rss_before": before, "rss_after": after,
            per_key: (after - before) / max(count, 1)}


class Memory:
    """The memory rows of one run."""

    def __init__(self, programs, servers, context):
        self.programs = programs
        self.servers = servers
        self.context = context

    def dealers(self, endpoint, count, sndhwm=None):
        sockets = []
        for _ in range(count):
            dealer = self.context.socket(zmq.DEALER)
            dealer.linger = 0
            if sndhwm is not None:
                dealer.sndhwm = sndhwm
            dealer.connect(endpoint)
            sockets.append(dealer)
        return sockets

    def wait_queued(self, endpoint):
        """How many requests the broker holds for "queued", once it holds
        them all (or after 60 s)."""
        queued = QUEUED
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            queued = self.servers.service_row(endpoint, "queued")["queued"]
            if queued >= QUEUED:
                break
            time.sleep(0.1)
        return queued

    def queued_memory(self, target):
        """RSS growth per request with QUEUED requests waiting for a
        service that has no worker."""
        endpoint, server, _ = self.servers.start_server(
            target, ["--queue-timeout-ms", "600000",
                     "--max-queued", str(QUEUED * 2)])
        senders = []
        try:
            senders = self.dealers(endpoint, 10, sndhwm=0)
            time.sleep(0.5)     # connected before the baseline is taken
            before = rss_bytes(server.pid)
            body = b"q" * ECHO_SIZE
            for index in range(QUEUED):
                senders[index % len(senders)].send_multipart(
                    [b"", b"MDPC01", b"queued", body])
            queued = QUEUED
            if target == "broker":
                queued = self.wait_queued(endpoint)
            else:
                settle(server.pid)
            result = growth(before, rss_bytes(server.pid), queued, "queued",
                            "per_request")
            result["payload"] = ECHO_SIZE
            return result
        finally:
            for dealer in senders:
                dealer.close()
            self.servers.stop([server])

    def wait_registered(self, endpoint, workers):
        """How many idle workers the broker has registered, once it has
        them all (or after 30 s); reads their mailboxes meanwhile."""
        registered = IDLE_WORKERS
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            heartbeat(workers, False)
            registered = self.servers.service_row(endpoint, "idle")["workers"]
            if registered >= IDLE_WORKERS:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        return registered

    def idle_cpu(self, endpoint, server, workers, result):
        """The broker's CPU over CPU_SECONDS with the workers heartbeating
        once per heartbeat interval, as MDP workers do."""
        ticks_before = cpu_ticks(server.pid)
        started = time.monotonic()
        next_beat = started
        while time.monotonic() - started < CPU_SECONDS:
            if time.monotonic() >= next_beat:
                heartbeat(workers, True)
                next_beat += HEARTBEAT_S
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        ticks = cpu_ticks(server.pid) - ticks_before
        hz = os.sysconf("SC_CLK_TCK")
        result["still_registered"] = self.servers.service_row(
            endpoint, "idle")["workers"]
        result["cpu_percent"] = 100.0 * ticks / hz / elapsed

    def idle_workers(self, target):
        """RSS growth per idle connected worker and, for the broker, its
        CPU over CPU_SECONDS with IDLE_WORKERS of them heartbeating."""
        endpoint, server, _ = self.servers.start_server(target)
        workers = []
        try:
            time.sleep(0.3)
            before = rss_bytes(server.pid)
            for _ in range(IDLE_WORKERS):
                dealer = self.dealers(endpoint, 1)[0]
                dealer.send_multipart([b"", b"MDPW01", b"\x01", b"idle"])
                workers.append(dealer)
            registered = IDLE_WORKERS
            if target == "broker":
                registered = self.wait_registered(endpoint, workers)
            else:
                settle(server.pid)
            result = growth(before, rss_bytes(server.pid), registered,
                            "workers", "per_worker")
            if target == "broker":
                self.idle_cpu(endpoint, server, workers, result)
            return result
        finally:
            for dealer in workers:
                dealer.close()
            self.servers.stop([server])

    def core_memory(self):
        """The broker's own heap per idle worker and per queued request,
        exactly: cartmq-core-memory drives the routing core without
        sockets and reads the allocator's count (no libzmq, no noise)."""
        done = subprocess.run([self.programs.core_memory, "10000"],
                              capture_output=True, text=True, timeout=120)
        return last_json_line(done.stdout)
