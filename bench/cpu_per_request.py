#!/usr/bin/python3
"""cpu_per_request.py - CPU each kind of process spends per request.

For the capacity model in docs/benchmarks.md: starts a private
redis-server, then for each setup one or two brokers, 4 workers with credit
16 (connected to every broker) and a `cartmq bench` run of 8 clients x
window 16 spread over the brokers; reads utime + stime of every broker,
worker and (for the cart) redis-server from /proc/PID/stat before and after
the run and prints, per setup, one JSON line: req/s and CPU microseconds
per request answered for each kind of process (summed over its processes).

    /usr/bin/python3 bench/cpu_per_request.py [--build DIR] [--seconds S]
"""

import argparse
import json
import os
import subprocess
import tempfile

import zmq

from processes import Processes, Programs, Servers, cpu_ticks, raise_fd_limit
from settings import CLIENTS, CREDIT, ECHO_SIZE, ECHO_WORKERS, REPO, USERS, \
    WINDOW, last_json_line

SETUPS = (("echo", 1), ("echo", 2), ("cart", 1), ("cart", 2))


def redis_pid(port):
    found = subprocess.run(["pgrep", "-f", "redis-server.*:%d" % port],
                           capture_output=True, text=True).stdout.split()
    return int(found[0])


def measure(programs, servers, service, brokers, seconds):
    endpoint, started = servers.start_brokers(brokers)
    workers = servers.start_workers(endpoint, ECHO_WORKERS, service, CREDIT,
                                    service == "echo")
    try:
        servers.wait_workers(endpoint, service, ECHO_WORKERS)
        pids = {"broker": [p.pid for p in started],
                "worker": [w.pid for w in workers]}
        if service == "cart":
            servers.redis.flushdb()
            pids["redis"] = [redis_pid(servers.redis_port)]
        before = {kind: sum(map(cpu_ticks, group))
                  for kind, group in pids.items()}
        args = [programs.client, "bench", "--connect", endpoint, "--service",
                service, "--clients", str(CLIENTS), "--window", str(WINDOW),
                "--duration", str(seconds), "--warmup", "0", "--json"]
        args += (["--mix", "add=100", "--users", str(USERS)]
                 if service == "cart" else ["--size", str(ECHO_SIZE)])
        done = subprocess.run(args, capture_output=True, text=True,
                              timeout=seconds + 60)
        result = last_json_line(done.stdout)
        after = {kind: sum(map(cpu_ticks, group))
                 for kind, group in pids.items()}
    finally:
        servers.stop(workers + started)
    hz = os.sysconf("SC_CLK_TCK")
    return {"service": service, "brokers": brokers,
            "rps": round(result["rps"]), "requests": result["requests"],
            "us_cpu_per_request": {
                kind: round((after[kind] - before[kind]) / hz
                            / result["requests"] * 1e6, 1)
                for kind in pids}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    raise_fd_limit()
    programs = Programs(args.build)
    procs = Processes(tempfile.mkdtemp(prefix="cartmq-cpu-"))
    servers = Servers(programs, procs, zmq.Context())
    try:
        servers.start_redis()
        for service, brokers in SETUPS:
            print(json.dumps(measure(programs, servers, service, brokers,
                                     args.seconds)), flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
