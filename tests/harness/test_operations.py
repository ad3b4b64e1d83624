"""Operating cartmq (contract section 2 "Operations", section 3 mmi.stats):
config files, live statistics and `cartmq stats`, logs, the --processes
supervisor, the systemd units and the two-host example, all against the
real programs."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import zmq.auth

import mdp
from mdp import MdpClient, MdpWorker
from support import (BROKER_BIN, BUILD_DIR, CLI_BIN, CartClient, EXPIRY_S, HB_MS, LIVENESS, REPO_DIR,
                     RTT_S, SCALE, STOP_S, WORKER_BIN, Proc, bound, free_port, port_open,
                     stats, unpack, wait_until, wait_workers, worker_count)

PROGRAMS = {"broker": BROKER_BIN, "worker": WORKER_BIN}
CONFIG_DIR = REPO_DIR / "config"
#  A killed worker is forgotten after expiry; its replacement then
#  registers within a reconnect and a backoff.
RESTART_S = bound(EXPIRY_S + 3.0)


def run(argv, timeout=10, **kwargs):
    return subprocess.run([str(arg) for arg in argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout * SCALE, **kwargs)


def one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %r" % text
    return lines[0]


def started(procs, tmp_path, name, argv, cwd=None):
    proc = Proc(name, argv, tmp_path, cwd=cwd)
    procs.append(proc)
    return proc.start()


def endpoint_of(port):
    return "tcp://127.0.0.1:%d" % port


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def log_lines(proc):
    """The program's log lines, from stderr where they belong (the harness
    marks each start there) and from stdout, so that one test, not all of
    these, says which stream they went to."""
    try:
        out = proc.stdout_path.read_bytes().decode(errors="replace")
    except OSError:
        out = ""
    return [line for line in (proc.stderr_text() + "\n" + out).splitlines()
            if line.strip() and not line.startswith("--- start")]


def wait_log(proc, pattern, timeout=RTT_S):
    """The first stderr line matching pattern, waiting for it to appear."""
    regex = re.compile(pattern)
    return wait_until(lambda: next((line for line in log_lines(proc) if regex.search(line)),
                                   None), timeout)


def child_pids(pid):
    path = Path("/proc/%d/task/%d/children" % (pid, pid))
    try:
        return sorted(int(value) for value in path.read_text().split())
    except OSError:
        return []


def pids_running(marker):
    """Live processes whose command line holds marker (a unique endpoint),
    read from /proc so no ps is needed."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "status").read_text()
        except OSError:
            continue
        if marker in cmdline and "\nState:\tZ" not in state:
            found.append(int(entry.name))
    return sorted(found)


def is_integer(value):
    return type(value) is int  # bool is an int subclass, and not a count


# --- config files ------------------------------------------------------------------------

#  (file text with {section}, the key the error must name, its line or None)
BAD_CONFIGS = {
    "unknown-key": ("{section}\n    liveness = 3\n    colour = \"blue\"\n", "colour", 3),
    "not-a-number": ("{section}\n    heartbeat-ms = \"soon\"\n", "heartbeat-ms", 2),
    "out-of-range": ("# comment\n{section}\n    liveness = 0\n", "liveness", 3),
    "not-a-boolean": ("{section}\n    verbose = \"maybe\"\n", "verbose", 2),
    "empty-value": ("{section}\n    liveness = \"\"\n", "liveness", 2),
    "nested-key": ("{section}\n    heartbeat-ms\n        inner = 1\n", "heartbeat-ms", None),
    "config-in-config": ("{section}\n    config = \"other.cfg\"\n", "config", 2),
    "bad-indent": ("{section}\n  liveness = 3\n", None, 2),
    "unclosed-quote": ("{section}\n    liveness = \"3\n", None, 2),
}


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_file_exits_2_with_one_line_naming_file_line_and_key(tmp_path, program,
                                                                        case):
    text, key, line = BAD_CONFIGS[case]
    path = write(tmp_path / "bad.cfg", text.format(section=program))
    #  Flags that keep a program that wrongly starts away from real peers.
    port = free_port()
    extra = ["--bind", endpoint_of(port)] if program == "broker" \
        else ["--connect", endpoint_of(port), "--echo"]
    result = run([PROGRAMS[program], "--config", path] + extra, timeout=5)
    assert result.returncode == 2, (result.returncode, result.stderr)
    error = one_line(result.stderr)
    assert "bad.cfg" in error, "error %r does not name the file" % error
    if key:
        assert key in error, "error %r does not name key %r" % (error, key)
    if line:
        assert "bad.cfg:%d" % line in error, "error %r does not name line %d" % (error, line)
    assert not port_open(port)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("case", ["missing", "directory", "binary"])
def test_unreadable_config_file_exits_2_with_one_line(tmp_path, program, case):
    path = tmp_path / "cartmq.cfg"
    if case == "directory":
        path.mkdir()
    elif case == "binary":
        path.write_bytes(b"%s\n    liveness = 3\0\n" % program.encode())
    result = run([PROGRAMS[program], "--config", path], timeout=5)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "cartmq.cfg" in one_line(result.stderr)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_keys_of_the_other_programs_section_are_not_errors(tmp_path, program):
    """One file may hold both sections; each program reads only its own.
    A bad flag after the file shows the file was read and accepted: flags
    are applied after the file, so only the flag is refused."""
    other = "worker" if program == "broker" else "broker"
    path = write(tmp_path / "both.cfg", "%s\n    colour = 1\n    frob = \"x\"\n"
                 "%s\n    liveness = 3\n" % (other, program))
    result = run([PROGRAMS[program], "--config", path, "--liveness", "0"], timeout=5)
    #  The file is fine; the flag's value is what is refused.
    assert result.returncode == 2
    assert "--liveness" in one_line(result.stderr), result.stderr


def test_broker_applies_its_section_and_flags_override_it(tmp_path, procs):
    file_port = free_port()
    config = write(tmp_path / "cartmq.cfg",
                   "broker\n    bind = \"%s\"\n    heartbeat-ms = %d\n"
                   "    queue-timeout-ms = 300\n    max-queued = 1\n"
                   "worker\n    redis = \"redis://127.0.0.1:1/0\"\n"
                   % (endpoint_of(file_port), HB_MS))
    broker = started(procs, tmp_path, "broker-file", [BROKER_BIN, "--config", config])
    assert wait_until(lambda: port_open(file_port) or not broker.alive(), bound(5.0))
    assert broker.alive(), broker.log_tail()
    endpoint = endpoint_of(file_port)
    with MdpClient(endpoint) as first, MdpClient(endpoint) as second:
        first.send("absent", b"1")
        second.send("absent", b"2")  # past max-queued 1: dropped at once
        assert wait_until(lambda: (stats(endpoint) or {}).get("dropped", {})
                          .get("queue_full") == 1, RTT_S), stats(endpoint)
        #  queue-timeout-ms 300 from the file, not the default 10 s
        assert wait_until(lambda: stats(endpoint)["dropped"]["expired"] == 1,
                          bound(0.3 + 1.5)), stats(endpoint)

    flag_port = free_port()
    broker = started(procs, tmp_path, "broker-flags",
                     [BROKER_BIN, "--config", config, "--bind", endpoint_of(flag_port),
                      "--max-queued", "3", "--queue-timeout-ms", "10000"])
    assert wait_until(lambda: port_open(flag_port) or not broker.alive(), bound(5.0))
    assert broker.alive(), broker.log_tail()
    endpoint = endpoint_of(flag_port)
    clients = [MdpClient(endpoint) for _ in range(4)]
    try:
        for number, client in enumerate(clients):
            client.send("absent", b"%d" % number)
        assert wait_until(lambda: (stats(endpoint) or {}).get("dropped", {})
                          .get("queue_full") == 1, RTT_S), stats(endpoint)
        entry = {item["name"]: item for item in stats(endpoint)["services"]}.get("absent")
        assert entry and entry["queued"] == 3, stats(endpoint)
    finally:
        for client in clients:
            client.close()


def test_worker_applies_its_section_and_flags_override_it(tmp_path, start_broker, procs):
    broker = start_broker()
    config = write(tmp_path / "cartmq.cfg",
                   "broker\n    bind = \"tcp://127.0.0.1:1\"\n"
                   "worker\n    connect = \"%s\"\n    service = \"from-file\"\n"
                   "    concurrency = 4\n    echo = yes\n    heartbeat-ms = %d\n"
                   "    liveness = %d\n" % (broker.endpoint, HB_MS, LIVENESS))
    started(procs, tmp_path, "worker-file", [WORKER_BIN, "--config", config])
    assert wait_workers(broker.endpoint, "from-file", 1, bound(5.0))
    with MdpClient(broker.endpoint) as client:
        assert client.request("from-file", b"hello") == [b"hello"], "echo from the file ignored"
    assert wait_log(broker, r"worker ready .*service=from-file credit=4\b"), \
        "concurrency 4 from the file not sent:\n" + broker.log_tail()

    started(procs, tmp_path, "worker-flags",
            [WORKER_BIN, "--config", config, "--service", "from-flag", "--concurrency", "2"])
    assert wait_workers(broker.endpoint, "from-flag", 1, bound(5.0))
    assert wait_log(broker, r"worker ready .*service=from-flag credit=2\b"), broker.log_tail()
    assert worker_count(broker.endpoint, "from-file") == 1


def test_processes_key_in_the_file_starts_that_many_workers(tmp_path, start_broker, procs):
    broker = start_broker()
    config = write(tmp_path / "cartmq.cfg",
                   "worker\n    connect = \"%s\"\n    service = \"many\"\n    echo = 1\n"
                   "    processes = 3\n    heartbeat-ms = %d\n" % (broker.endpoint, HB_MS))
    supervisor = started(procs, tmp_path, "supervisor", [WORKER_BIN, "--config", config])
    assert wait_workers(broker.endpoint, "many", 3, bound(5.0)), broker.log_tail()
    assert len(child_pids(supervisor.pid)) == 3
    #  Each child took --processes 1 over the file's 3: no grandchildren.
    assert all(child_pids(pid) == [] for pid in child_pids(supervisor.pid))
    assert supervisor.stop(signal.SIGTERM, bound(3.0)) == 0


def test_example_config_is_accepted_by_both_programs(tmp_path, procs):
    example = CONFIG_DIR / "cartmq.cfg"
    port = free_port()
    endpoint = endpoint_of(port)
    broker = started(procs, tmp_path, "broker",
                     [BROKER_BIN, "--config", example, "--bind", endpoint])
    assert wait_until(lambda: port_open(port) or not broker.alive(), bound(5.0))
    assert broker.alive(), broker.log_tail()
    started(procs, tmp_path, "worker", [WORKER_BIN, "--config", example, "--connect", endpoint,
                                        "--echo", "--heartbeat-ms", HB_MS])
    assert wait_workers(endpoint, "cart", 1, bound(5.0))


# --- mmi.stats ------------------------------------------------------------------------

STATS_KEYS = {"uptime_s", "requests", "replies", "redispatched", "dropped", "invalid",
              "workers", "services"}
SERVICE_KEYS = {"name", "workers", "idle", "queued", "requests", "mean_us", "p99_us"}
QUEUE_TIMEOUT_MS = 300
#  The loaded broker's peers are pyzmq objects of this thread: they
#  heartbeat only while it waits in mdp. A longer interval keeps them alive
#  through a slow `cartmq` run on a busy machine.
LOADED_HB_MS = 1000


def run_cli_pumping(run_cli, endpoint, *args):
    """run_cli in a helper thread while this one keeps its pyzmq workers
    heartbeating, so they stay registered however long cartmq takes."""
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=run_cli(endpoint, *args)), daemon=True)
    thread.start()
    while thread.is_alive():
        mdp.idle(0.02)
    thread.join()
    assert "result" in outcome, "cartmq %s did not run" % (args,)
    return outcome["result"]


@pytest.fixture
def loaded_broker(start_broker):
    """A broker that has seen exactly: 5 echo requests served, 1 request
    queued for a service nobody serves and expired, 1 invalid message, and
    1 request re-dispatched after its worker said DISCONNECT, then served.
    Workers echo (1) and slow (1) stay connected."""
    broker = start_broker("--queue-timeout-ms", QUEUE_TIMEOUT_MS, heartbeat_ms=LOADED_HB_MS)
    endpoint = broker.endpoint
    made = []

    def worker():
        peer = MdpWorker(endpoint, LOADED_HB_MS)
        made.append(peer)
        return peer

    echo = worker()
    echo.ready("echo")
    assert wait_workers(endpoint, "echo", 1, RTT_S, pump=[echo])
    with MdpClient(endpoint) as client:
        for number in range(5):
            client.send("echo", b"%d" % number)
            address, body = echo.recv(RTT_S)
            echo.reply(address, *body)
            assert client.recv(RTT_S) == (b"echo", [b"%d" % number])

    with MdpClient(endpoint) as client:
        client.send("nobody", b"waits in vain")
        assert wait_until(lambda: (stats(endpoint) or {}).get("dropped", {})
                          .get("expired") == 1, bound(QUEUE_TIMEOUT_MS / 1000.0 + 1.5))

    bad = worker()
    bad.send_raw(b"", mdp.WORKER_HEADER, b"\x09")  # no such command
    assert bad.expect_disconnect(RTT_S)
    bad.close()

    first, second = worker(), worker()
    first.ready("slow")
    assert wait_workers(endpoint, "slow", 1, RTT_S, pump=[echo, first])
    with MdpClient(endpoint) as client:
        client.send("slow", b"once")
        assert first.recv(RTT_S) is not None
        second.ready("slow")  # idle, behind the busy first
        assert wait_workers(endpoint, "slow", 2, RTT_S, pump=[echo, first, second])
        first.disconnect()  # with the request in flight
        address, body = second.recv(RTT_S)
        assert body == [b"once"]
        second.reply(address, b"done")
        assert client.recv(RTT_S) == (b"slow", [b"done"])
    assert wait_workers(endpoint, "slow", 1, RTT_S, pump=[echo, second])
    yield broker
    for peer in made:
        peer.close()


def test_mmi_stats_counts_a_known_sequence_exactly(loaded_broker):
    snapshot = stats(loaded_broker.endpoint)
    assert snapshot is not None, "mmi.stats gave no msgpack map"
    assert STATS_KEYS <= set(snapshot), sorted(snapshot)
    for key in STATS_KEYS - {"dropped", "services"}:
        assert is_integer(snapshot[key]), (key, snapshot[key])
    assert snapshot["uptime_s"] >= 0
    #  MMI requests are the broker's own and are not counted.
    assert (snapshot["requests"], snapshot["replies"], snapshot["redispatched"],
            snapshot["invalid"], snapshot["workers"]) == (7, 6, 1, 1, 2), snapshot
    dropped = snapshot["dropped"]
    assert isinstance(dropped, dict)
    assert {"expired", "queue_full", "redispatch_limit"} <= set(dropped), dropped
    assert all(is_integer(value) for value in dropped.values()), dropped
    assert (dropped["expired"], dropped["queue_full"], dropped["redispatch_limit"]) \
        == (1, 0, 0), dropped

    services = snapshot["services"]
    assert isinstance(services, list)
    listed = {entry["name"]: entry for entry in services}
    #  "nobody" went when its only request expired, as in mmi.services.
    assert sorted(listed) == ["echo", "slow"], services
    for entry in services:
        assert SERVICE_KEYS <= set(entry), entry
        for key in SERVICE_KEYS - {"name"}:
            assert is_integer(entry[key]) and entry[key] >= 0, (key, entry)
        assert 0 < entry["mean_us"] < 10_000_000 and 0 < entry["p99_us"] < 10_000_000, entry
    assert [listed["echo"][key] for key in ("workers", "idle", "queued", "requests")] \
        == [1, 1, 0, 5], listed["echo"]
    assert [listed["slow"][key] for key in ("workers", "idle", "queued", "requests")] \
        == [1, 1, 0, 1], listed["slow"]


def test_mmi_stats_uptime_counts_seconds(start_broker):
    broker = start_broker()
    first = stats(broker.endpoint)["uptime_s"]
    time.sleep(1.2)
    assert 1 <= stats(broker.endpoint)["uptime_s"] - first <= 2 * SCALE


def test_cli_stats_json_prints_the_map_as_one_json_line(loaded_broker, run_cli):
    result = run_cli_pumping(run_cli, loaded_broker.endpoint, "stats", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    snapshot = json.loads(lines[0])
    reference = stats(loaded_broker.endpoint)
    assert STATS_KEYS <= set(snapshot)
    for key in ("requests", "replies", "redispatched", "invalid", "workers", "dropped"):
        assert snapshot[key] == reference[key], (key, snapshot, reference)
    assert [entry["name"] for entry in snapshot["services"]] == ["echo", "slow"]
    assert snapshot["services"][0]["requests"] == 5
    assert all(SERVICE_KEYS <= set(entry) for entry in snapshot["services"])


def test_cli_stats_prints_a_table(loaded_broker, run_cli):
    result = run_cli_pumping(run_cli, loaded_broker.endpoint, "stats")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    assert rows.get("requests") == ["7"] and rows.get("replies") == ["6"], result.stdout
    assert rows.get("redispatched") == ["1"] and rows.get("invalid") == ["1"], result.stdout
    assert "expired=1" in rows.get("dropped", []), result.stdout
    header = next((line.split() for line in lines if line.split()[:1] == ["NAME"]), None)
    assert header and [title.lower() for title in header][:7] == \
        ["name", "workers", "idle", "queued", "requests", "mean_us", "p99_us"], result.stdout
    assert rows.get("echo", [])[:4] == ["1", "1", "0", "5"], result.stdout
    assert rows.get("slow", [])[:4] == ["1", "1", "0", "1"], result.stdout


def test_cli_stats_json_watch_prints_one_line_per_refresh(start_broker, tmp_path, procs):
    broker = start_broker()
    watch = started(procs, tmp_path, "stats-watch",
                    [CLI_BIN, "--connect", broker.endpoint, "stats", "--json", "--watch", "1"])
    assert wait_until(lambda: len(watch.stdout_path.read_text().splitlines()) >= 2,
                      bound(3.5)), watch.stdout_path.read_text()
    assert watch.stop(signal.SIGINT, STOP_S) == 0
    lines = watch.stdout_path.read_text().splitlines()
    uptimes = [json.loads(line)["uptime_s"] for line in lines]
    assert uptimes == sorted(uptimes) and uptimes[-1] > uptimes[0], lines


def test_cli_stats_with_no_broker_exits_3(run_cli, free_port):
    result = run_cli(endpoint_of(free_port()), "--timeout-ms", "200", "--retries", "0", "stats")
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.strip()


# --- the --processes supervisor ---------------------------------------------------------


def test_supervisor_keeps_three_workers_and_stops_them_all(start_broker, start_worker):
    broker = start_broker()
    marker = "--connect " + broker.endpoint  # in this test's workers only
    supervisor = start_worker(broker.endpoint, None, "--processes", "3", "--echo",
                              "--service", "trio")
    children = wait_until(lambda: len(child_pids(supervisor.pid)) == 3
                          and child_pids(supervisor.pid), RTT_S)
    assert children, "supervisor has children %r" % child_pids(supervisor.pid)
    assert worker_count(broker.endpoint, "trio") == 3

    victim = children[1]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(child_pids(supervisor.pid)) == 3
                      and victim not in child_pids(supervisor.pid), bound(5.0)), \
        "killed child not replaced: %r" % child_pids(supervisor.pid)
    #  Once the dead one has expired, three live workers are listed.
    time.sleep(EXPIRY_S + 0.3)
    assert wait_until(lambda: worker_count(broker.endpoint, "trio") == 3, RESTART_S), \
        "trio has %r workers after a restart" % worker_count(broker.endpoint, "trio")
    assert wait_log(supervisor, r"child died .*pid=%d\b" % victim), supervisor.log_tail()
    with MdpClient(broker.endpoint) as client:
        for number in range(3):
            assert client.request("trio", b"%d" % number) == [b"%d" % number]

    everyone = child_pids(supervisor.pid)
    code = supervisor.stop(signal.SIGTERM, bound(3.0))
    assert code == 0, "supervisor exit %s" % code
    assert supervisor.stop_seconds < bound(3.0)
    assert wait_until(lambda: not pids_running(marker), 1.0), \
        "left running: %r (children were %r)" % (pids_running(marker), everyone)


def test_supervisor_killed_outright_takes_its_children_along(start_broker, start_worker):
    broker = start_broker()
    supervisor = start_worker(broker.endpoint, None, "--processes", "2", "--echo")
    assert len(child_pids(supervisor.pid)) == 2
    supervisor.kill()
    marker = "--connect " + broker.endpoint
    assert wait_until(lambda: not pids_running(marker), bound(3.0)), \
        "orphans: %r" % pids_running(marker)


# --- logs ------------------------------------------------------------------------------

LOG_LINE = re.compile(r"^([EWIND]): \((cartmq-broker|cartmq-worker)\) (\d\d-\d\d-\d\d \d\d:\d\d:\d\d) (.+)$")
FIELD = re.compile(r"^[a-z][a-z_]*=(\"[^\"]*\"|\S+)$")


def parsed_log(proc, component):
    """(level, time, message) of each stderr line, checking the format."""
    entries = []
    for line in log_lines(proc):
        match = LOG_LINE.match(line)
        assert match, "log line not 'L: (component) yy-mm-dd hh:mm:ss message': %r" % line
        level, who, stamp, message = match.groups()
        assert who == component, line
        datetime.strptime(stamp, "%y-%m-%d %H:%M:%S")
        entries.append((level, stamp, message))
    return entries


def fields(message):
    return dict(token.split("=", 1) for token in message.split() if FIELD.match(token))


def test_logs_go_to_stderr_and_stdout_stays_empty(start_broker, start_worker):
    broker = start_broker()
    worker = start_worker(broker.endpoint, None, "--echo", "--service", "streams")
    for proc in (broker, worker):
        assert proc.stop(signal.SIGTERM, STOP_S) == 0
        assert "listening" in proc.stderr_text() or "worker started" in proc.stderr_text(), \
            "%s logged nothing on stderr" % proc.name
        assert proc.stdout_path.read_text() == "", \
            "%s wrote on stdout: %r" % (proc.name, proc.stdout_path.read_text()[:300])


def test_log_lines_carry_level_component_time_and_fields(start_broker, start_worker):
    broker = start_broker()
    worker = start_worker(broker.endpoint, None, "--echo", "--service", "logged")
    with MdpClient(broker.endpoint) as client:
        assert client.request("logged", b"x") == [b"x"]
    assert wait_log(broker, r"worker ready")
    assert wait_log(worker, r"worker started")
    broker_log = parsed_log(broker, "cartmq-broker")
    worker_log = parsed_log(worker, "cartmq-worker")
    ready = [fields(message) for _, _, message in broker_log if "worker ready" in message]
    assert ready and ready[0].get("service") == "logged" and ready[0].get("worker"), broker_log
    listening = [fields(message) for _, _, message in broker_log if "listening" in message]
    assert listening and listening[0].get("endpoint") == broker.endpoint, broker_log
    begun = [fields(message) for _, _, message in worker_log if "worker started" in message]
    assert begun and begun[0].get("service") == "logged" \
        and begun[0].get("connect") == broker.endpoint \
        and begun[0].get("pid") == str(worker.pid), worker_log
    #  Nothing at debug level without --verbose.
    assert not [entry for entry in broker_log + worker_log if entry[0] == "D"]


def debug_lines(proc, component):
    return [entry for entry in parsed_log(proc, component) if entry[0] == "D"]


def test_broker_verbose_adds_debug_lines_per_message(start_broker, start_worker):
    broker = start_broker("--verbose")
    start_worker(broker.endpoint, None, "--echo", "--service", "traced")
    before = len(debug_lines(broker, "cartmq-broker"))
    with MdpClient(broker.endpoint) as client:
        for number in range(5):
            assert client.request("traced", b"%d" % number) == [b"%d" % number]
    assert wait_until(lambda: len(debug_lines(broker, "cartmq-broker")) - before >= 5, RTT_S), \
        "broker --verbose logged %d debug lines for 5 requests:\n%s" \
        % (len(debug_lines(broker, "cartmq-broker")) - before, broker.log_tail())


def test_worker_verbose_adds_a_debug_line_per_request(redis_server, start_broker,
                                                       start_worker):
    broker = start_broker()
    worker = start_worker(broker.endpoint, redis_server.url, "--verbose")
    before = len(debug_lines(worker, "cartmq-worker"))
    with CartClient(broker.endpoint) as cart:
        for number in range(5):
            assert cart.add("vera", "sku-%d" % number)["status"] == 200
    assert wait_until(lambda: len(debug_lines(worker, "cartmq-worker")) - before >= 5, RTT_S), \
        "worker --verbose logged %d debug lines for 5 requests:\n%s" \
        % (len(debug_lines(worker, "cartmq-worker")) - before, worker.log_tail())
    methods = [fields(message).get("method") for _, _, message in debug_lines(worker, "cartmq-worker")]
    assert methods.count("AddItemToCart") == 5, methods


def test_log_syslog_starts_serves_and_keeps_stderr_quiet(start_broker, start_worker):
    broker = start_broker("--log-syslog")
    worker = start_worker(broker.endpoint, None, "--echo", "--service", "quiet",
                          "--log-syslog", "--processes", "2")
    with MdpClient(broker.endpoint) as client:
        for number in range(4):
            assert client.request("quiet", b"%d" % number) == [b"%d" % number]
    assert broker.alive() and worker.alive()
    assert log_lines(broker) == [] and log_lines(worker) == [], \
        (log_lines(broker), log_lines(worker))
    assert worker.stop(signal.SIGTERM, bound(3.0)) == 0
    assert broker.stop(signal.SIGTERM, STOP_S) == 0


# --- systemd units and cmake --install ----------------------------------------------------


def unit_settings(path):
    """{key: [values]} of a unit file's assignments, comments skipped."""
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture
def installed(tmp_path):
    """`cmake --install` of the test's build into a fresh prefix."""
    if not shutil.which("cmake"):
        pytest.skip("cmake not on PATH")
    prefix = tmp_path / "prefix"
    result = run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return prefix


def test_sighup_leaves_the_broker_serving(start_broker, start_worker):
    """cartmq-broker.service reloads with SIGHUP (ExecReload), so SIGHUP
    must re-read, not stop: workers stay registered, requests flow."""
    broker = start_broker()
    start_worker(broker.endpoint, None, "--echo", "--service", "hup")
    for _ in range(2):
        broker.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert broker.alive(), "SIGHUP stopped the broker (exit %s)" % broker.returncode()
    with MdpClient(broker.endpoint) as client:
        assert client.request("hup", b"still here") == [b"still here"]
    assert worker_count(broker.endpoint, "hup") == 1


def test_cmake_install_places_units_naming_the_installed_files(installed):
    units = installed / "lib" / "systemd" / "system"
    broker = unit_settings(units / "cartmq-broker.service")
    worker = unit_settings(units / "cartmq-worker@.service")
    config = installed / "etc" / "cartmq" / "cartmq.cfg"
    assert config.read_text() == (CONFIG_DIR / "cartmq.cfg").read_text()
    assert broker["ExecStart"] == ["%s --config %s" % (installed / "bin" / "cartmq-broker",
                                                       config)]
    assert worker["ExecStart"] == ["%s --config %s" % (installed / "bin" / "cartmq-worker",
                                                       installed / "etc" / "cartmq" / "%i.cfg")]
    assert (installed / "bin" / "cartmq-broker").exists()
    assert broker["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for unit in (broker, worker):
        assert unit["Restart"] == ["on-failure"]
        assert unit.get("DynamicUser") == ["yes"] or unit.get("User")
        for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
            assert unit.get(key) == ["yes"], key
        assert unit.get("ProtectSystem") == ["strict"]
    assert worker["KillMode"] == ["mixed"]


def test_cmake_install_keeps_an_edited_config(installed):
    config = installed / "etc" / "cartmq" / "cartmq.cfg"
    config.write_text(config.read_text() + "#   edited here\n")
    result = run(["cmake", "--install", BUILD_DIR, "--prefix", installed], timeout=60)
    assert result.returncode == 0, result.stderr
    assert config.read_text().endswith("#   edited here\n")


def test_installed_units_pass_systemd_analyze_verify(installed, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    units = installed / "lib" / "systemd" / "system"
    #  A template is checked through an instance of it.
    instance = tmp_path / "cartmq-worker@cartmq.service"
    shutil.copy(units / "cartmq-worker@.service", instance)
    for unit in (units / "cartmq-broker.service", instance):
        result = run([analyze, "verify", unit], timeout=30)
        problems = [line for line in (result.stdout + result.stderr).splitlines()
                    if "cartmq" in line]
        assert result.returncode == 0 and not problems, \
            "%s:\n%s%s" % (unit.name, result.stdout, result.stderr)


# --- the two-host example -----------------------------------------------------------------


def curve_client(endpoint, certs, name, timeout=0.5):
    public, secret = zmq.auth.load_certificate(certs / (name + "_secret"))
    server, _ = zmq.auth.load_certificate(certs / "broker")
    return MdpClient(endpoint, timeout=timeout, curve=(public, secret, server))


def curve_workers(endpoint, certs):
    """cart workers listed to a CURVE client, or None without a reply."""
    with curve_client(endpoint, certs, "client") as client:
        reply = client.request("mmi.services", b"")
    if reply is None:
        return None
    return {entry["name"]: entry for entry in unpack(reply[0])}.get("cart", {}).get("workers", 0)


def test_two_host_example_configs_with_curve_and_reload(tmp_path, procs, redis_server, run_cli):
    """config/host-a.cfg and config/host-b.cfg as docs/operations.md
    deploys them, both hosts played on loopback: /etc/cartmq/ becomes a
    folder here, endpoints and Redis come from flags. Host B's
    certificate is allowed only after the broker is running, and a SIGHUP
    (systemctl reload) lets it in."""
    etc = tmp_path / "etc" / "cartmq"
    certs = etc  # docs/security.md keeps them all in /etc/cartmq
    clients = etc / "allowed"
    clients.mkdir(parents=True)
    for name in ("broker", "worker-a", "worker-b", "client"):
        result = run_cli(None, "keygen", name, cwd=certs)
        assert result.returncode == 0, result.stderr
    for name in ("worker-a", "client"):
        shutil.copy(certs / name, clients / name)
    configs = {}
    for host in ("host-a", "host-b"):
        text = (CONFIG_DIR / (host + ".cfg")).read_text().replace("/etc/cartmq/", "%s/" % etc)
        configs[host] = write(etc / (host + ".cfg"), text)

    port = free_port()
    endpoint = endpoint_of(port)
    fast = ["--heartbeat-ms", HB_MS, "--liveness", LIVENESS]
    broker = started(procs, tmp_path, "broker-a",
                     [BROKER_BIN, "--config", configs["host-a"], "--bind", endpoint] + fast)
    assert wait_until(lambda: port_open(port) or not broker.alive(), bound(5.0))
    assert broker.alive(), broker.log_tail()
    on_host = ["--connect", endpoint, "--redis", redis_server.url, "--processes", "2"] + fast
    started(procs, tmp_path, "workers-a", [WORKER_BIN, "--config", configs["host-a"]] + on_host)
    assert wait_until(lambda: curve_workers(endpoint, certs) == 2, bound(5.0)), \
        "host A's workers did not register over CURVE:\n" + broker.log_tail()

    started(procs, tmp_path, "workers-b", [WORKER_BIN, "--config", configs["host-b"]] + on_host)
    time.sleep(2 * EXPIRY_S)
    assert curve_workers(endpoint, certs) == 2, "host B served before its key was allowed"

    shutil.copy(certs / "worker-b", clients / "worker-b")
    broker.send_signal(signal.SIGHUP)
    assert wait_until(lambda: curve_workers(endpoint, certs) == 4, bound(EXPIRY_S + 5.0)), \
        "host B's workers not let in after SIGHUP:\n" + broker.log_tail()

    secure = ["--curve-server", certs / "broker", "--curve-cert", certs / "client_secret"]
    result = run_cli(endpoint, *secure, "add", "ann", "sku-1", "--name", "Mug",
                     "--quantity", "2", "--price", "800")
    assert result.returncode == 0, (result.stdout, result.stderr)
    result = run_cli(endpoint, *secure, "stats", "--json")
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    assert snapshot["workers"] == 4 and snapshot["replies"] >= 1, snapshot
