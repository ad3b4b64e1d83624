#!/usr/bin/python3
"""rss_cycles.py - broker memory across 10,000 worker connect/READY/leave cycles.

Starts a cartmq-broker with short heartbeats, measures its RSS, then runs
CYCLES worker lifetimes through fresh DEALER sockets, about CONCURRENT
alive at once: each connects, says READY for one of a few service names
and leaves, half with DISCONNECT and half by closing silently (the broker
forgets those on expiry). Every tenth cycle a client also sends a request
that lands on a worker about to leave, so re-dispatch and its drop paths
run too. Then it waits for every worker to expire and every request to be
dropped, and measures RSS again.

Prints start, peak (VmHWM) and end RSS and the broker's counters; exits 1
if a worker did not register, if the end is more than --max-growth-mb above
the start, or if RSS grew more than --max-late-growth-mb over the second
half of the cycles (the first ones warm libzmq and malloc up).

Usage: scripts/rss_cycles.py [--build DIR] [--cycles N] [--concurrent N]
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

import zmq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#  The MMI client and the /proc reader are the bench's (bench/cartmq_mmi.py,
#  bench/processes.py): one of each for bench/ and scripts/.
sys.path.insert(0, os.path.join(REPO, "bench"))
import cartmq_mmi  # noqa: E402
from processes import free_port, status_kb  # noqa: E402


def proc_status_kb(pid, key):
    value = status_kb(pid, key)
    if value is None:
        raise RuntimeError("no %s for pid %d" % (key, pid))
    return value


def wait_for(predicate, seconds, interval=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def s_leave(sock, says_goodbye):
    if says_goodbye:
        sock.send_multipart([b"", b"MDPW01", b"\x05"])
        sock.close(linger=200)
    else:
        sock.close(linger=0)  #  vanishes, like a crashed process


def run_cycles(ctx, endpoint, client, args, broker_pid, samples):
    """Runs the worker lifetimes; returns counts by outcome.

    A worker leaves once the broker has shown it knows it (a HEARTBEAT or a
    REQUEST came), so every cycle really registers; one that hears nothing
    within 5 s is closed and counted as unheard (with short heartbeats on a
    busy machine the broker may expire a worker before its first heartbeat;
    the broker's log tells how many really registered).
    """
    alive = {}  #  socket -> (born, says_goodbye)
    poller = zmq.Poller()
    counts = collections.Counter()
    opened = 0
    while opened < args.cycles or alive:
        while len(alive) < args.concurrent and opened < args.cycles:
            sock = ctx.socket(zmq.DEALER)
            sock.connect(endpoint)
            service = b"cycle-%d" % (opened % args.services)
            sock.send_multipart([b"", b"MDPW01", b"\x01", service])
            alive[sock] = (time.monotonic(), opened % 2 == 0)
            poller.register(sock, zmq.POLLIN)
            if opened % 10 == 0:
                client.send_multipart([b"", b"MDPC01", service, b"r%d" % opened])
            if opened % 1000 == 0:
                samples.append(proc_status_kb(broker_pid, "VmRSS"))
            opened += 1
        now = time.monotonic()
        for sock, _event in poller.poll(50):
            frames = sock.recv_multipart()
            command = frames[2] if len(frames) > 2 else b""
            counts["got-request" if command == b"\x02" else "got-heartbeat"
                   if command == b"\x04" else "got-other"] += 1
            poller.unregister(sock)
            _born, says_goodbye = alive.pop(sock)
            counts["disconnect" if says_goodbye else "silent"] += 1
            s_leave(sock, says_goodbye)
        for sock, (born, says_goodbye) in list(alive.items()):
            if now - born > 5.0:
                poller.unregister(sock)
                del alive[sock]
                counts["unheard"] += 1
                sock.close(linger=0)
        while client.poll(0):
            client.recv_multipart()  #  none expected; keep the pipe empty
    return counts


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"),
                        help="build directory holding broker/cartmq-broker")
    parser.add_argument("--cycles", type=int, default=10000)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--heartbeat-ms", type=int, default=100)
    parser.add_argument("--max-growth-mb", type=float, default=8.0,
                        help="most RSS may end above its start (warm-up included)")
    parser.add_argument("--max-late-growth-mb", type=float, default=1.0,
                        help="most RSS may grow over the second half of the cycles")
    return parser.parse_args()


QUEUE_TIMEOUT_MS = 2000


def measure(ctx, endpoint, args, broker_pid):
    """Runs the cycles and waits for the broker to forget them all;
    returns what the report prints."""
    if not wait_for(lambda: cartmq_mmi.stats(ctx, endpoint, 200) is not None, 10):
        sys.exit("rss_cycles: broker did not answer on %s" % endpoint)
    run = {"start_kb": proc_status_kb(broker_pid, "VmRSS"), "samples": []}
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(endpoint)
    started = time.monotonic()
    run["cycles"] = run_cycles(ctx, endpoint, client, args, broker_pid, run["samples"])
    client.close(0)
    run["cycling_s"] = time.monotonic() - started

    def settled():
        snapshot = cartmq_mmi.stats(ctx, endpoint)
        if snapshot and snapshot["workers"] == 0 and not snapshot["services"]:
            return snapshot
        return None

    expiry_s = 3 * args.heartbeat_ms / 1000.0
    run["final"] = wait_for(settled, expiry_s + QUEUE_TIMEOUT_MS / 1000.0 + 30)
    if run["final"] is None:
        sys.exit("rss_cycles: workers or services never went away")
    time.sleep(1.0)
    run["end_kb"] = proc_status_kb(broker_pid, "VmRSS")
    run["peak_kb"] = proc_status_kb(broker_pid, "VmHWM")
    return run


def report(args, run, log_text, code):
    """Prints the figures; the exit status."""
    start_kb, end_kb, samples = run["start_kb"], run["end_kb"], run["samples"]
    final = run["final"]
    registered = len(re.findall(r"worker ready ", log_text))
    removed = collections.Counter(re.findall(r"worker removed .*reason=(\w+)", log_text))
    growth_mb = (end_kb - start_kb) / 1024.0
    print("rss_cycles: %d worker cycles (%d at once) in %.1fs: %s"
          % (args.cycles, args.concurrent, run["cycling_s"],
             dict(sorted(run["cycles"].items()))))
    print("rss_cycles: broker log: %d workers registered, removed by %s"
          % (registered, dict(removed)))
    warm_kb = samples[1] if len(samples) > 1 else start_kb
    print("rss_cycles: broker RSS start %.1f MB, after 1000 cycles %.1f MB, peak %.1f MB, "
          "end %.1f MB (end - start %+.1f MB; every 1000 cycles: %s MB)"
          % (start_kb / 1024.0, warm_kb / 1024.0, run["peak_kb"] / 1024.0, end_kb / 1024.0,
             growth_mb,
             " ".join("%.1f" % (kb / 1024.0) for kb in samples)))
    print("rss_cycles: broker counters: requests %d, redispatched %d, dropped %s, "
          "invalid %d; broker exit %s"
          % (final["requests"], final["redispatched"], final["dropped"],
             final["invalid"], code))
    #  The first cycles warm libzmq and malloc up; a cost per cycle would
    #  show as growth over the second half.
    late_growth_mb = (end_kb - samples[len(samples) // 2]) / 1024.0
    print("rss_cycles: growth over the second half of the cycles %+.1f MB" % late_growth_mb)
    if registered < args.cycles:
        print("rss_cycles: FAIL: only %d of %d workers registered" % (registered, args.cycles))
        return 1
    if growth_mb > args.max_growth_mb or late_growth_mb > args.max_late_growth_mb:
        print("rss_cycles: FAIL: RSS grew %.1f MB (limit %.1f), %.1f MB over the second "
              "half (limit %.1f)" % (growth_mb, args.max_growth_mb, late_growth_mb,
                                     args.max_late_growth_mb))
        return 1
    return 0 if code == 0 else 1


def main():
    args = parse_args()
    binary = os.path.join(args.build, "broker", "cartmq-broker")
    if not os.path.exists(binary):
        sys.exit("rss_cycles: %s missing; build first" % binary)
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    log = tempfile.TemporaryFile()
    broker = subprocess.Popen(
        [binary, "--bind", endpoint, "--heartbeat-ms", str(args.heartbeat_ms),
         "--liveness", "3", "--queue-timeout-ms", str(QUEUE_TIMEOUT_MS)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    ctx = zmq.Context()
    #  Closed sockets hold their slot until libzmq's reaper is done.
    ctx.set(zmq.MAX_SOCKETS, 4096)
    try:
        run = measure(ctx, endpoint, args, broker.pid)
    finally:
        broker.terminate()
        code = broker.wait(10)
        ctx.destroy(0)
    log.seek(0)
    return report(args, run, log.read().decode(errors="replace"), code)


if __name__ == "__main__":
    sys.exit(main())
