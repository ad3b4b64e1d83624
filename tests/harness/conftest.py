"""Fixtures that run the real cartmq programs against a real redis-server.

    free_port                        free_port() -> a free loopback TCP port
    redis_server                     a fresh redis-server for the test
    start_broker(*args, ...)         cartmq-broker on a free port
    start_worker(endpoint, redis_url, *args, ...)
    run_cli(endpoint, *args, timeout=...)
    cluster                          redis + broker + one cart worker

Every process a test starts is stopped at teardown (SIGTERM, then SIGKILL);
its stderr is kept under tmp_path and attached to the report of a failing
test.  A sanitizer report in any of them fails the test at teardown.  A
watchdog ends the whole run with tracebacks if one test runs far too long,
so the suite can never hang.
"""

import faulthandler
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import support
from support import (CLI_BIN, HB_MS, LIVENESS, START_S, Broker, RedisServer,
                     Worker, wait_workers)

#  Per test, setup and teardown included; far above any test's own bounds.
WATCHDOG_S = 150 * support.SCALE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in getattr(item, "_cmq_procs", []):
            report.sections.append(("%s stderr (%s)" % (proc.name, report.when),
                                    proc.log_tail()))


@pytest.fixture
def free_port():
    """free_port() -> a TCP port on 127.0.0.1 that nothing listens on."""
    return support.free_port


@pytest.fixture
def procs(request, tmp_path):
    """Every process the test starts; stops them all at teardown."""
    started = []
    request.node._cmq_procs = started
    yield started
    alive = [proc for proc in started if proc.alive()]
    for proc in sorted(alive, key=lambda p: p.RANK):
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + support.STOP_S
    for proc in alive:
        if proc.wait(max(0.0, deadline - time.monotonic())) is None:
            proc.kill()
    reports = ["%s: %s" % (proc.name, proc.sanitizer_report())
               for proc in started if proc.sanitizer_report()]
    if reports:
        pytest.fail("sanitizer reports: " + "; ".join(reports))


@pytest.fixture
def short_tmp():
    """A short directory for unix sockets (sun_path holds 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="cmq") as path:
        yield Path(path)


@pytest.fixture
def redis_server(procs, tmp_path, short_tmp):
    server = RedisServer(tmp_path, short_tmp)
    procs.append(server)
    return server.start()


@pytest.fixture
def start_broker(procs, tmp_path):
    """start_broker(*args, heartbeat_ms=HB_MS, liveness=LIVENESS, port=None,
    start=True): a running broker (heartbeat_ms/liveness None: flag left
    out, so the program's default applies)."""
    count = [0]

    def start(*args, heartbeat_ms=HB_MS, liveness=LIVENESS, port=None, start=True):
        count[0] += 1
        broker = Broker(tmp_path, args, heartbeat_ms, liveness, port,
                        name="broker-%d" % count[0])
        procs.append(broker)
        return broker.start() if start else broker

    return start


@pytest.fixture
def start_worker(procs, tmp_path):
    """start_worker(endpoint, redis_url, *args, heartbeat_ms=HB_MS,
    liveness=LIVENESS, wait=True): a running cartmq-worker.  With wait, it
    returns once mmi.services lists one more worker (or --processes more)
    for its service than before."""
    count = [0]

    def start(endpoint, redis_url, *args, heartbeat_ms=HB_MS, liveness=LIVENESS,
              wait=True):
        count[0] += 1
        worker = Worker(tmp_path, endpoint, redis_url, args, heartbeat_ms, liveness,
                        name="worker-%d" % count[0])
        procs.append(worker)
        before = support.worker_count(endpoint, worker.service) if wait else None
        worker.start()
        if wait:
            want = (before or 0) + worker.processes
            if not wait_workers(endpoint, worker.service, want, START_S) or not worker.alive():
                raise RuntimeError("%s did not register %d x %r with %s within %.1fs "
                                   "(exit %s):\n%s"
                                   % (worker.name, worker.processes, worker.service,
                                      endpoint, START_S, worker.returncode(),
                                      worker.log_tail()))
        return worker

    return start


@pytest.fixture
def run_cli(tmp_path):
    """run_cli(endpoint, *args, timeout=15, cwd=None) -> CompletedProcess
    (text) of `cartmq --connect endpoint args...` (no --connect if endpoint
    is None)."""

    def run(endpoint, *args, timeout=15, cwd=None):
        if not CLI_BIN.exists():
            raise RuntimeError("cartmq is not built: %s missing" % CLI_BIN)
        argv = [str(CLI_BIN)]
        if endpoint is not None:
            argv += ["--connect", endpoint]
        argv += [str(arg) for arg in args]
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, cwd=cwd or tmp_path,
                                timeout=timeout * support.SCALE)
        with open(tmp_path / "cli.log", "a") as log:
            log.write("$ %s\n[exit %d]\nstdout: %s\nstderr: %s\n"
                      % (" ".join(argv), result.returncode, result.stdout, result.stderr))
        for mark in support.SANITIZER_MARKS:
            assert mark.decode() not in result.stderr, \
                "sanitizer report from cartmq %s:\n%s" % (args, result.stderr)
        return result

    return run


class Cluster:
    """redis + broker + cart workers, with short heartbeats."""

    def __init__(self, redis_server, broker, start_worker):
        self.redis = redis_server
        self.broker = broker
        self.endpoint = broker.endpoint
        self._start_worker = start_worker
        self.workers = []

    def add_worker(self, *args, **kwargs):
        worker = self._start_worker(self.endpoint, self.redis.url, *args, **kwargs)
        self.workers.append(worker)
        return worker

    def cart(self, timeout=None):
        return support.CartClient(self.endpoint, timeout=timeout or support.RTT_S)


@pytest.fixture
def cluster(redis_server, start_broker, start_worker):
    """redis-server, a broker and one cart worker, all with HB_MS
    heartbeats and LIVENESS; add workers with cluster.add_worker()."""
    broker = start_broker()
    result = Cluster(redis_server, broker, start_worker)
    result.add_worker()
    return result


def pytest_report_header(config):
    return ("cartmq harness: build dir %s, sanitize=%s (time bounds x%d), "
            "heartbeat %d ms x liveness %d"
            % (support.BUILD_DIR, support.SANITIZE, support.SCALE, HB_MS, LIVENESS))


@pytest.fixture
def run_sh(tmp_path):
    """run_sh(*args) -> (Popen, log path) of scripts/run.sh with its state
    under tmp_path, this build's programs, free ports; everything it
    started is SIGKILLed at teardown if still there."""
    started = []

    def run(*args, first_port, redis_port):
        log = tmp_path / "run.sh.log"
        env = dict(os.environ, CARTMQ_BUILD_DIR=str(support.BUILD_DIR),
                   CARTMQ_STATE_DIR=str(tmp_path / "var"), CARTMQ_REDIS_PORT=str(redis_port),
                   CARTMQ_BROKER_PORT=str(first_port))
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", str(support.REPO_DIR / "scripts" / "run.sh"), *args],
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, cwd=support.REPO_DIR,
                                    start_new_session=True)
        started.append(proc)
        return proc, log

    yield run
    for proc in started:
        for pid in support.session_pids(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(timeout=10)
