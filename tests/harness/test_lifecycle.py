"""Starting and stopping the programs (contract section 2): --help and
--version, bad flags, config files, clean exit on SIGINT and SIGTERM,
reconnecting workers and the --processes supervisor."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mdp import MdpClient, MdpWorker
from support import (BROKER_BIN, CLI_BIN, EXPIRY_S, HB_MS, RTT_S, SCALE, STOP_S, WORKER_BIN,
                     Proc, bound, free_port, listed_workers, port_open,
                     round_trip_ok, unlisted, wait_until, wait_workers)

PROGRAMS = {"broker": BROKER_BIN, "worker": WORKER_BIN}
SIGNALS = [signal.SIGTERM, signal.SIGINT]
RECOVERY_S = bound(EXPIRY_S + 1.0)


def run(argv, timeout=10):
    return subprocess.run([str(arg) for arg in argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout * SCALE)


def one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %r" % text
    return lines[0]


def started(procs, tmp_path, name, argv):
    proc = Proc(name, argv, tmp_path)
    procs.append(proc)
    return proc.start()


def child_pids(pid):
    """Direct children of pid, from /proc."""
    path = Path("/proc/%d/task/%d/children" % (pid, pid))
    try:
        return [int(value) for value in path.read_text().split()]
    except OSError:
        return []


def pid_alive(pid):
    try:
        status = Path("/proc/%d/status" % pid).read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


# --- command line ----------------------------------------------------------------


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_exit_0(program, flag):
    result = run([PROGRAMS[program], flag])
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stdout.strip(), "%s %s printed nothing on stdout" % (program, flag)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("args", [
    ["--bogus"], ["--heartbeat-ms", "abc"], ["--liveness", "-3"], ["--heartbeat-ms"],
    ["positional"],
], ids=["unknown-flag", "bad-number", "negative", "missing-value", "stray-argument"])
def test_bad_flag_exits_2_with_one_line_on_stderr(program, args):
    result = run([PROGRAMS[program]] + args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    one_line(result.stderr)


def test_broker_serves_on_every_bind_endpoint(start_broker, free_port):
    second = "tcp://127.0.0.1:%d" % free_port()
    broker = start_broker("--bind", second)
    assert wait_until(lambda: port_open(int(second.rsplit(":", 1)[1])), bound(2.0))
    for endpoint in (broker.endpoint, second):
        assert round_trip_ok(endpoint) == "", "no service on " + endpoint


# --- signals ------------------------------------------------------------------------


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda sig: sig.name)
def test_broker_stops_cleanly_on_signal(start_broker, sig):
    broker = start_broker()
    worker = MdpWorker(broker.endpoint, HB_MS)
    client = MdpClient(broker.endpoint)
    try:
        assert round_trip_ok(broker.endpoint) == ""
        worker.ready("busy")
        client.send("busy", b"in flight")
        client.send("nobody", b"queued")
        assert worker.recv(RTT_S) is not None
        code = broker.stop(sig, STOP_S)
    finally:
        worker.close()
        client.close()
    assert code == 0, "broker exit %s after %s" % (code, sig.name)
    assert broker.stop_seconds < STOP_S


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda sig: sig.name)
def test_worker_stops_cleanly_on_signal(cluster, sig):
    worker = cluster.workers[0]
    with cluster.cart() as cart:
        assert cart.add("sig", "a")["status"] == 200
    code = worker.stop(sig, STOP_S)
    assert code == 0, "worker exit %s after %s" % (code, sig.name)


@pytest.mark.parametrize("situation", ["redis-down", "broker-absent"])
def test_worker_stops_cleanly_when_its_peers_are_gone(redis_server, start_broker,
                                                      start_worker, situation):
    broker = start_broker()
    worker = start_worker(broker.endpoint, redis_server.url)
    if situation == "redis-down":
        redis_server.stop()
    else:
        broker.kill()
    time.sleep(2 * EXPIRY_S)
    assert worker.alive(), "worker exited when its %s went away" % situation.split("-")[0]
    code = worker.stop(signal.SIGTERM, STOP_S)
    assert code == 0, "worker exit %s" % code


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda sig: sig.name)
def test_cli_stats_watch_stops_cleanly_on_signal(start_broker, tmp_path, procs, sig):
    broker = start_broker()
    cli = started(procs, tmp_path, "cli", [CLI_BIN, "--connect", broker.endpoint,
                                           "stats", "--watch", "1"])
    time.sleep(1.5)
    assert cli.alive(), "stats --watch exited on its own"
    code = cli.stop(sig, STOP_S)
    assert code == 0, "cartmq exit %s after %s" % (code, sig.name)
    assert cli.stdout_path.read_text().strip(), "stats --watch printed nothing"


# --- reconnecting ----------------------------------------------------------------------


def test_worker_started_before_the_broker_registers_when_it_arrives(redis_server, start_broker,
                                                                     start_worker):
    broker = start_broker(start=False)
    worker = start_worker(broker.endpoint, redis_server.url, wait=False)
    time.sleep(2 * EXPIRY_S)
    assert worker.alive()
    broker.start()
    back = time.monotonic()
    assert wait_workers(broker.endpoint, "cart", 1, RECOVERY_S + 1.0)
    elapsed = time.monotonic() - back
    print("\n[worker] registered %.0f ms after the broker started" % (elapsed * 1000))
    assert elapsed <= RECOVERY_S


def test_worker_that_vanishes_is_forgotten_by_the_broker(cluster):
    worker = cluster.workers[0]
    worker.kill()
    assert wait_until(lambda: unlisted(cluster.endpoint, "cart"),
                      EXPIRY_S + bound(1.0)), "killed worker still listed"


# --- --processes supervisor --------------------------------------------------------------


def test_supervisor_runs_restarts_and_stops_its_workers(redis_server, start_broker, start_worker):
    broker = start_broker()
    supervisor = start_worker(broker.endpoint, redis_server.url, "--processes", "2")
    children = wait_until(lambda: len(child_pids(supervisor.pid)) == 2
                          and child_pids(supervisor.pid), RTT_S)
    assert children, "supervisor has %r children" % child_pids(supervisor.pid)
    victim = children[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: victim not in child_pids(supervisor.pid)
                      and len(child_pids(supervisor.pid)) == 2, bound(5.0)), \
        "dead child not replaced: %r" % child_pids(supervisor.pid)
    assert wait_workers(broker.endpoint, "cart", 2, RECOVERY_S + bound(3.0))
    assert wait_until(lambda: listed_workers(broker.endpoint) == 2, EXPIRY_S + bound(1.0))
    children = child_pids(supervisor.pid)
    code = supervisor.stop(signal.SIGTERM, STOP_S)
    assert code == 0, "supervisor exit %s" % code
    assert wait_until(lambda: not any(pid_alive(pid) for pid in children), 1.0), \
        "children outlived the supervisor"


# --- config files -------------------------------------------------------------------------


def write_config(tmp_path, text, name="cartmq.cfg"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_broker_reads_bind_and_heartbeat_from_the_config_file(tmp_path, procs):
    port = free_port()
    config = write_config(tmp_path, 'broker\n    bind = "tcp://127.0.0.1:%d"\n'
                          '    heartbeat-ms = %d\n    liveness = 3\n'
                          'worker\n    concurrency = 4\n' % (port, HB_MS))
    broker = started(procs, tmp_path, "broker", [BROKER_BIN, "--config", config])
    assert wait_until(lambda: port_open(port) or not broker.alive(), bound(5.0)) \
        and broker.alive(), "broker did not bind the configured endpoint"
    endpoint = "tcp://127.0.0.1:%d" % port
    worker = MdpWorker(endpoint, HB_MS)
    try:
        worker.ready("cfg")
        worker.pump(4 * HB_MS / 1000.0)
        assert worker.heartbeats_received >= 2, "heartbeat-ms from the file not applied"
    finally:
        worker.close()


def test_command_line_flags_override_the_config_file(tmp_path, procs):
    file_port, flag_port = free_port(), free_port()
    config = write_config(tmp_path, 'broker\n    bind = "tcp://127.0.0.1:%d"\n' % file_port)
    broker = started(procs, tmp_path, "broker",
                     [BROKER_BIN, "--config", config, "--bind", "tcp://127.0.0.1:%d" % flag_port])
    assert wait_until(lambda: port_open(flag_port) or not broker.alive(), bound(5.0)) \
        and broker.alive()
    assert not port_open(file_port), "the file's bind was used despite --bind"


def test_worker_reads_its_section_of_a_shared_config_file(tmp_path, redis_server,
                                                          start_broker, procs):
    broker = start_broker()
    config = write_config(tmp_path, 'broker\n    heartbeat-ms = %d\n'
                          'worker\n    connect = "%s"\n    redis = "%s"\n'
                          '    heartbeat-ms = %d\n    liveness = 3\n    concurrency = 4\n'
                          % (HB_MS, broker.endpoint, redis_server.url, HB_MS))
    started(procs, tmp_path, "worker", [WORKER_BIN, "--config", config])
    assert wait_workers(broker.endpoint, "cart", 1, bound(5.0))


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("case", ["unknown-key", "bad-value", "missing-file"])
def test_bad_config_exits_2_naming_the_key(tmp_path, program, case):
    if case == "unknown-key":
        path = write_config(tmp_path, "%s\n    colour = \"blue\"\n" % program)
        expect = "colour"
    elif case == "bad-value":
        path = write_config(tmp_path, "%s\n    heartbeat-ms = \"soon\"\n" % program)
        expect = "heartbeat-ms"
    else:
        path = tmp_path / "missing.cfg"
        expect = None
    result = run([PROGRAMS[program], "--config", path])
    assert result.returncode == 2, (result.returncode, result.stderr)
    line = one_line(result.stderr)
    if expect:
        assert expect in line, "error %r does not name %r" % (line, expect)
