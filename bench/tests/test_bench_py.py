"""Tests of bench/'s Python: the report's format, the parsers, and the MMI
client against a real broker.

report_golden.md is what bench/run.py prints for the results made up
below: it was written before run.py was split into modules (issue 14) and
has changed since only by the rows issues 15 and 18 added (two brokers;
the cart's best-configuration candidates, Redis over its unix socket and
the issue-18 thresholds), so the
table's rows, columns and figures stay as they were.

    CARTMQ_BUILD_DIR=build /usr/bin/python3 -m pytest -q -p no:cacheprovider bench/tests
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)

import cartmq_mmi  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
from settings import last_json_line  # noqa: E402

MEMORY = {
    "queued-broker": {"queued": 100000, "rss_before": 7880704,
                      "rss_after": 27963392, "per_request": 200.82688,
                      "payload": 32},
    "idle-broker": {"workers": 1000, "rss_before": 7331840,
                    "rss_after": 36257792, "per_worker": 28925.952,
                    "still_registered": 998,
                    "cpu_percent": 2.0951555952700938},
    "queued-conformant": {"queued": 100000, "rss_before": 7421952,
                          "rss_after": 42504192, "per_request": 350.8224,
                          "payload": 32},
    "idle-conformant": {"workers": 1000, "rss_before": 6995968,
                        "rss_after": 18796544, "per_worker": 11800.576},
    "core": {"count": 10000, "bytes_per_idle_worker": 205.5,
             "bytes_per_queued_request_beyond_body": 160.2},
}


def plan(quick=False):
    """The rows' keys in order and their labels, from run.py's plan."""
    args = argparse.Namespace(rounds=3, duration=4, warmup=1, quick=quick)
    bench = run.Bench.__new__(run.Bench)
    bench.args = args
    bench.measure = argparse.Namespace(cart_window_one=None)
    order, labels = [], {}
    for keys, names, _ in bench.plan():
        if isinstance(keys, str):
            keys, names = (keys,), (names,)
        order += keys
        labels.update(zip(keys, names))
    return args, order, labels


def made_up_results(order):
    """Three rounds of every row but one that failed, one row measured in
    two rounds only, Redis rows without error counts."""
    results = {}
    for index, key in enumerate(order):
        if key == "cart-2-c1":
            continue
        rounds = (1, 2) if key == "echo-conformant" else (1, 2, 3)
        results[key] = [{"rps": 1000.0 * (index + 1) + 37.5 * number,
                         "p50_us": 100.0 + index + number / 3.0,
                         "p99_us": 900.0 + 7 * index + number,
                         "errors": index % 2, "timeouts": number % 2,
                         "round": number} for number in rounds]
        if key.startswith("redis"):
            for result in results[key]:
                del result["errors"], result["timeouts"]
    return results


def test_report_renders_as_before_the_split():
    args, order, labels = plan()
    table = report.Report(args, made_up_results(order), MEMORY, order,
                          labels, 77.3).render().split("\n")
    with open(os.path.join(HERE, "report_golden.md")) as golden:
        expected = golden.read().rstrip("\n").split("\n")
    assert re.fullmatch(r"Run of \d{4}-\d\d-\d\d \d\d:\d\d on \S+, \d+ CPU; "
                        r"3 rounds, 4 s per measurement after 1 s of "
                        r"warmup; 77 s in all\.", table[0])
    assert table[1:] == expected[1:]


def test_quick_plan_has_one_and_four_workers_only():
    _, order, _ = plan(quick=True)
    assert [key for key in order if key.startswith("cart-")] == [
        "cart-1-c1", "cart-4-c1", "cart-1-c16", "cart-4-c16",
        "cart-best-1-c128-local", "cart-best-2-c64-local",
        "cart-best-1-c128-tcp", "cart-2b-4-c16"]
    assert order[:3] == ["redis-p1", "redis-p16", "redis-p16-unix"]
    assert order[-1] == "lat-cart"


def test_report_says_not_measured_without_core_memory():
    args, order, labels = plan()
    memory = dict(MEMORY, core=None)
    table = report.Report(args, made_up_results(order), memory, order,
                          labels, 77.3).render()
    rows = [line for line in table.split("\n") if "cartmq-core-memory" in line]
    assert len(rows) == 2
    assert all("| not measured |" in line for line in rows)


def test_parse_redis_benchmark_csv():
    stdout = ('"test","rps","avg_latency_ms","min_latency_ms",'
              '"p50_latency_ms","p95_latency_ms","p99_latency_ms",'
              '"max_latency_ms"\n'
              '"EVALSHA","25052.19","1.9","0.2","1.055","3.0","5.087","9.9"\n')
    assert measure.parse_redis_benchmark(stdout) == {
        "rps": 25052.19, "p50_us": 1055.0, "p99_us": 5087.0}
    assert measure.parse_redis_benchmark('"test","rps"\n"x","fast"\n') is None
    assert measure.parse_redis_benchmark("") is None


def test_combine_sums_requests_and_takes_median_percentiles():
    def one(requests, p50, max_us):
        return {"requests": requests, "elapsed_s": 1.0, "p50_us": p50,
                "p90_us": p50, "p99_us": p50, "p999_us": p50,
                "max_us": max_us, "errors": 1, "timeouts": 0, "late": 2}
    combined = measure.combine([one(100, 10.0, 50), one(300, 30.0, 90),
                                one(200, 20.0, 70)])
    assert combined["rps"] == 200.0
    assert combined["runs"] == 3
    assert combined["p50_us"] == 20.0
    assert combined["max_us"] == 90
    assert (combined["errors"], combined["late"]) == (3, 6)
    assert measure.combine([]) is None


def test_last_json_line_and_latency_pair_results():
    assert last_json_line("progress\n{\"a\": 1}\n{\"a\": 2}\nbye\n") == {"a": 2}
    assert last_json_line("no json here\n") is None
    pair = {"a": {"rps": 1.0}, "b": {"rps": 2.0}, "elapsed_s": 8.0}
    assert measure.latency_pair_results(pair) == [
        {"rps": 1.0, "errors": 0, "elapsed_s": 8.0},
        {"rps": 2.0, "errors": 0, "elapsed_s": 8.0}]


# -------------------------------------------------------------------
# cartmq_mmi against a real broker


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker(tmp_path):
    build = os.environ.get("CARTMQ_BUILD_DIR",
                           os.path.join(os.path.dirname(BENCH), "build"))
    binary = os.path.join(build, "broker", "cartmq-broker")
    if not os.access(binary, os.X_OK):
        pytest.fail("%s missing: build first or set CARTMQ_BUILD_DIR" % binary)
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    with open(tmp_path / "broker.log", "wb") as output:
        process = subprocess.Popen([binary, "--bind", endpoint],
                                   stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    context = zmq.Context()
    try:
        yield context, endpoint
    finally:
        context.destroy(0)
        process.terminate()
        process.wait(10)


def answered(context, endpoint):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stats = cartmq_mmi.stats(context, endpoint, timeout_ms=200)
        if stats is not None:
            return stats
    pytest.fail("the broker did not answer mmi.stats")


def test_mmi_stats_passes_every_key_through(broker):
    context, endpoint = broker
    stats = answered(context, endpoint)
    #  Keys issue 13 added, which no caller of the helper names.
    for key in ("requests", "redispatched", "invalid", "workers", "queued",
                "in_flight", "services"):
        assert key in stats
    assert "output_full" in stats["dropped"]


def test_mmi_services_and_service_row(broker):
    context, endpoint = broker
    answered(context, endpoint)
    worker = context.socket(zmq.DEALER)
    worker.linger = 0
    worker.connect(endpoint)
    worker.send_multipart([b"", b"MDPW01", b"\x01", b"mmi-helper"])
    assert cartmq_mmi.wait_workers(context, endpoint, "mmi-helper", 1)
    row = cartmq_mmi.service_row(context, endpoint, "mmi-helper")
    assert (row["workers"], row["queued"]) == (1, 0)
    names = [entry["name"] for entry in cartmq_mmi.services(context, endpoint)]
    assert "mmi-helper" in names
    assert cartmq_mmi.service_row(context, endpoint, "nobody") == {
        "name": "nobody", "workers": 0, "idle": 0, "queued": 0}
    worker.close()


def test_mmi_call_is_none_when_nothing_answers():
    context = zmq.Context()
    silent = context.socket(zmq.ROUTER)
    silent.linger = 0
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        endpoint = "tcp://127.0.0.1:%d" % port
        assert cartmq_mmi.stats(context, endpoint, timeout_ms=100) is None
        assert not cartmq_mmi.wait_workers(context, endpoint, "x", 1,
                                           timeout_s=0.3)
    finally:
        context.destroy(0)
