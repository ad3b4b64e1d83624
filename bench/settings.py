"""settings.py - the loads and sizes every part of bench/run.py shares."""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs", "benchmarks.md")

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
#  The cart's best-configuration candidates (workers, credit, one host:
#  ipc:// and Redis's unix socket), from bench/cart_budget.py's matrix: few
#  workers with much credit, each at BEST_WINDOW requests per client
#  (redis-benchmark -P 16 -c 50 keeps 800 in flight; these 256).
BEST_CART = ((1, 128, True), (2, 64, True), (1, 128, False))
BEST_WINDOW = 32
HEARTBEAT_S = 2.5       # the broker's default heartbeat interval


def log(message):
    print(message, file=sys.stderr, flush=True)


def last_json_line(stdout):
    """The last line of a program's output that is a JSON object, decoded,
    or None: cartmq bench, cartmq-latency-pair and cartmq-core-memory all
    end with one."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None
