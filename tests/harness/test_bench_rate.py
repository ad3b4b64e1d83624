"""`cartmq bench --rate R`: R requests/s in all, on a schedule, against a
real broker and echo worker; a send behind its time is sent at once and
counted late, one over a window behind is skipped, not made up."""

import json
import signal
import subprocess
import time

import pytest

import support
from support import CLI_BIN, SANITIZER_MARKS, wait_until


@pytest.fixture
def echo(start_broker, start_worker):
    """A broker with one echo worker (credit 16): its endpoint."""
    broker = start_broker()
    start_worker(broker.endpoint, None, "--service", "echo", "--echo",
                 "--concurrency", "16")
    return broker.endpoint


def bench_argv(endpoint, *args):
    return [str(CLI_BIN), "--connect", endpoint, "bench", "--service", "echo",
            "--json"] + [str(arg) for arg in args]


def report(stdout, stderr):
    for mark in SANITIZER_MARKS:
        assert mark.decode() not in stderr, stderr
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, (stdout, stderr)
    return json.loads(lines[-1])


def test_rate_500_for_2_seconds_sends_about_1000_requests(echo):
    done = subprocess.run(
        bench_argv(echo, "--rate", 500, "--duration", 2, "--clients", 2,
                   "--window", 64),
        capture_output=True, text=True, timeout=30 * support.SCALE)
    assert done.returncode == 0, (done.stdout, done.stderr)
    result = report(done.stdout, done.stderr)
    assert result["rate"] == 500
    #  Unpaced, this pair answers thousands of requests per second.
    assert 800 <= result["requests"] <= 1100, result
    assert result["errors"] == 0 and result["timeouts"] == 0, result
    assert result["late_sends"] <= result["sent"], result
    assert result["skipped_sends"] >= 0, result


def test_a_stalled_bench_sends_late_and_skips_what_is_over_a_window_behind(
        echo):
    """The bench is stopped for 0.6 s at 200 req/s (120 sends due): on
    waking it sends its window's worth at once, late, and drops the rest
    of what it fell behind, so the total stays at the schedule's."""
    bench = subprocess.Popen(
        bench_argv(echo, "--rate", 200, "--duration", 4, "--clients", 1,
                   "--window", 4),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = wait_until(
            lambda: (support.stats(echo) or {}).get("requests", 0) >= 20,
            3 * support.SCALE)
        assert started, "the bench sent nothing within 3 s"
        bench.send_signal(signal.SIGSTOP)
        time.sleep(0.6)  # the stall itself, not a wait for something
        bench.send_signal(signal.SIGCONT)
        stdout, stderr = bench.communicate(timeout=30 * support.SCALE)
    finally:
        if bench.poll() is None:
            bench.send_signal(signal.SIGCONT)
            bench.kill()
            bench.wait()
    assert bench.returncode == 0, (stdout, stderr)
    result = report(stdout, stderr)
    assert 1 <= result["late_sends"], result
    assert result["skipped_sends"] >= 100, result
    #  What it skipped is not made up later: the schedule has 800 sends.
    assert result["sent"] + result["skipped_sends"] <= 820, result
    assert result["sent"] <= 700, result
