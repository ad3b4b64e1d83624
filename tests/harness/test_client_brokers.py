"""Issue 15, client side: one client, several brokers (contract section 7).

Two real brokers, one cart worker on each, one Redis. The CLI given both
endpoints spreads its calls, moves an unanswered attempt to the other
broker (same request_id, so a mutation applies once), tries a broker
that stopped answering again later, and shows services and stats per
broker. The processes are shared by the module; every test leaves both
brokers running and serving."""

import json
import select
import signal
import subprocess
import time

import pytest

from support import (CLI_BIN, HB_MS, LIVENESS, RTT_S, SANITIZER_MARKS, STOP_S,
                     Broker, RedisServer, Worker, bound, stats, wait_until,
                     wait_workers)

#  Per attempt: short, so a failover costs little; long enough for a
#  sanitized build's round trip.
ATTEMPT_MS = 800 * (3 if RTT_S > 2.0 else 1)


class Pair:
    """Redis, brokers A and B, and a cart worker on each."""

    def __init__(self, logdir, sockdir):
        self.procs = []
        self.redis = self._start(RedisServer(logdir, sockdir))
        self.a = self._start(Broker(logdir, [], HB_MS, LIVENESS, name="broker-a"))
        self.b = self._start(Broker(logdir, [], HB_MS, LIVENESS, name="broker-b"))
        self.both = "%s,%s" % (self.a.endpoint, self.b.endpoint)
        for name, broker in (("worker-a", self.a), ("worker-b", self.b)):
            self._start(Worker(logdir, broker.endpoint, self.redis.url, [], HB_MS,
                               LIVENESS, name))
            assert wait_workers(broker.endpoint, "cart", 1), name
        self.logdir = logdir

    def _start(self, proc):
        self.procs.append(proc)
        return proc.start()

    def serving(self, broker):
        """Waits until broker runs and lists its worker again."""
        assert wait_workers(broker.endpoint, "cart", 1, timeout=bound(10)), broker.name

    def close(self):
        for proc in sorted(self.procs, key=lambda p: p.RANK):
            proc.send_signal(signal.SIGCONT)
            proc.stop()
        return ["%s: %s" % (proc.name, proc.sanitizer_report())
                for proc in self.procs if proc.sanitizer_report()]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    import tempfile
    from pathlib import Path

    logdir = tmp_path_factory.mktemp("brokers")
    with tempfile.TemporaryDirectory(prefix="cmq") as sockdir:
        made = Pair(logdir, Path(sockdir))
        yield made
        reports = made.close()
    assert not reports, "sanitizer reports: %s" % "; ".join(reports)


def cli(*args, timeout=30):
    argv = [str(CLI_BIN)] + [str(arg) for arg in args]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=bound(timeout))
    for mark in SANITIZER_MARKS:
        assert mark.decode() not in result.stderr, result.stderr
    return result


def calls(stderr):
    """The --verbose lines: [(attempts, [endpoint...], ms)]."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("cartmq: call attempts="):
            words = dict(word.split("=", 1) for word in line.split()[2:])
            found.append((int(words["attempts"]), words["brokers"].split(","),
                          int(words["ms"])))
    return found


def cart_requests(endpoint):
    """Requests broker endpoint has taken for the cart service."""
    value = stats(endpoint)
    assert value is not None, "no stats from %s" % endpoint
    for entry in value.get("services", []):
        if entry.get("name") == "cart":
            return entry.get("requests", 0)
    return 0


class Batch:
    """A running `cartmq batch`: write a line, read its JSON line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [str(CLI_BIN)] + [str(arg) for arg in args] + ["batch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1)

    def run(self, line, timeout=None):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [],
                                    timeout or bound(3 * ATTEMPT_MS / 1000 + 5))
        assert ready, "no output for %r" % line
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        code = self.proc.wait(bound(10))
        err = self.proc.stderr.read()
        for mark in SANITIZER_MARKS:
            assert mark.decode() not in err, err
        return code, err


def test_duplicate_endpoint_is_usage_error():
    endpoint = "tcp://127.0.0.1:9"
    for args in (["--connect", endpoint, "--connect", endpoint],
                 ["--connect", "%s,%s" % (endpoint, endpoint)]):
        result = cli(*args, "get", "u")
        assert result.returncode == 2, result
        assert "duplicate endpoint" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_cli_fails_over_from_a_dead_or_hung_broker(pair, sig):
    user = "failover-%d" % sig
    if sig == signal.SIGKILL:
        pair.a.kill()
    else:
        pair.a.send_signal(sig)
    try:
        started = time.monotonic()
        result = cli("--connect", pair.both, "--timeout-ms", ATTEMPT_MS,
                     "--verbose", "add", user, "i1", "--name", "n",
                     "--quantity", 1, "--price", 7)
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result
        assert json.loads(result.stdout)["quantity"] == 1
        #  One attempt at A, the next at B: about one attempt's timeout.
        assert [c[:2] for c in calls(result.stderr)] == [
            (2, [pair.a.endpoint, pair.b.endpoint])], result.stderr
        assert ATTEMPT_MS / 1000 <= elapsed < ATTEMPT_MS / 1000 + bound(2), elapsed
        #  Calls that start at B need no retry.
        second = cli("--connect", "%s,%s" % (pair.b.endpoint, pair.a.endpoint),
                     "--timeout-ms", ATTEMPT_MS, "--verbose", "get", user)
        assert second.returncode == 0, second
        assert [c[:2] for c in calls(second.stderr)] == [(1, [pair.b.endpoint])]
    finally:
        if sig == signal.SIGKILL:
            pair.a.start()
        else:
            pair.a.send_signal(signal.SIGCONT)
        pair.serving(pair.a)
    #  Whatever A saw late, the add applied once.
    final = cli("--connect", pair.b.endpoint, "get", user)
    assert json.loads(final.stdout)["items"][0]["quantity"] == 1


def test_batch_spreads_survives_a_kill_and_comes_back(pair):
    before = {b.endpoint: cart_requests(b.endpoint) for b in (pair.a, pair.b)}
    batch = Batch("--connect", pair.a.endpoint, "--connect", pair.b.endpoint,
                  "--timeout-ms", ATTEMPT_MS, "--verbose")
    try:
        for _ in range(6):
            assert batch.run("get spread")["status"] == 200
        for broker in (pair.a, pair.b):
            assert cart_requests(broker.endpoint) >= before[broker.endpoint] + 3, \
                "calls did not spread to %s" % broker.name
        pair.a.kill()
        for index in range(4):
            reply = batch.run("add spread i%d --name n --quantity 1 --price 1" % index)
            assert reply["status"] == 200, reply
        pair.a.start()
        pair.serving(pair.a)
        restarted = cart_requests(pair.a.endpoint)
        #  Tried again after its backoff, not forgotten.

        def back():
            assert batch.run("get spread")["status"] == 200
            return cart_requests(pair.a.endpoint) > restarted

        assert wait_until(back, bound(15), interval=0.1), "A never tried again"
        reply = batch.run("get spread")
        assert [item["quantity"] for item in reply["items"]] == [1, 1, 1, 1]
    finally:
        code, err = batch.close()
    assert code == 0, err
    assert any(c[0] == 2 for c in calls(err)), "no failover seen:\n" + err


def test_batch_bad_lines_and_exit_status(pair):
    batch = Batch("--connect", pair.both)
    assert "error" in batch.run("bogus words here")
    assert "error" in batch.run("get")
    assert batch.run("remove nobody nothing")["status"] == 404
    batch.proc.stdin.write("# a comment\n\n")
    assert batch.run("get fine")["status"] == 200
    code, _ = batch.close()
    assert code == 2


def test_add_queued_at_hung_broker_applies_once(pair):
    batch = Batch("--connect", pair.both, "--timeout-ms", ATTEMPT_MS, "--verbose")
    late = None
    try:
        #  A fresh client starts at A: A, then B; the add goes to A next,
        #  on a connection already made, so it is queued at A.
        assert batch.run("clear once")["status"] == 200
        assert batch.run("get once")["status"] == 200
        before = stats(pair.a.endpoint)["replies"]
        pair.a.send_signal(signal.SIGSTOP)
        try:
            reply = batch.run("add once i --name n --quantity 2 --price 3 "
                              "--request-id late-one")
            assert reply == {"status": 200, "item_id": "i", "quantity": 2}
        finally:
            pair.a.send_signal(signal.SIGCONT)
        #  A now hands the late copy to its worker, which finds the id.
        late = wait_until(lambda: (stats(pair.a.endpoint) or {}).get("replies", 0)
                          > before, bound(10))
        assert late, "the late copy was never served at A"
        assert batch.run("get once")["items"][0]["quantity"] == 2
    finally:
        code, err = batch.close()
    assert code == 0, err
    tried = [c[:2] for c in calls(err)]
    assert (2, [pair.a.endpoint, pair.b.endpoint]) in tried, err
    pair.serving(pair.a)


def _json(result):
    assert result.stdout.count("\n") == 1, result.stdout
    return json.loads(result.stdout)


def test_services_and_stats_per_broker(pair):
    for command in ("services", "stats"):
        listed = cli("--connect", pair.both, command)
        repeated = cli("--connect", pair.a.endpoint, "--connect", pair.b.endpoint,
                       command)
        assert listed.returncode == repeated.returncode == 0, listed
        assert "broker %s\n" % pair.a.endpoint in listed.stdout
        assert "broker %s\n" % pair.b.endpoint in listed.stdout
        assert listed.stdout.count("NAME") == 2
        as_json = _json(cli("--connect", pair.both, command, "--json"))
        assert list(as_json) == [pair.a.endpoint, pair.b.endpoint]
    assert _json(cli("--connect", pair.both, "services", "--json"))[
        pair.b.endpoint][0]["name"] == "cart"
    assert "requests" in _json(cli("--connect", pair.both, "stats", "--json"))[
        pair.a.endpoint]

    pair.b.send_signal(signal.SIGSTOP)
    try:
        quick = ["--connect", pair.both, "--timeout-ms", 300, "--retries", 0]
        table = cli(*quick, "services")
        assert table.returncode == 3
        assert "broker %s\n(no reply" % pair.b.endpoint in table.stdout
        assert table.stdout.count("NAME") == 1
        shown = _json(cli(*quick, "stats", "--json"))
        assert "requests" in shown[pair.a.endpoint]
        assert "no reply" in shown[pair.b.endpoint]["error"]
        assert cli(*quick, "stats", "--json").returncode == 3
    finally:
        pair.b.send_signal(signal.SIGCONT)
    pair.serving(pair.b)


def test_stats_watch_shows_each_broker(pair):
    proc = subprocess.Popen([str(CLI_BIN), "--connect", pair.both, "stats",
                             "--json", "--watch", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):
            ready, _, _ = select.select([proc.stdout], [], [], bound(5))
            assert ready
            assert list(json.loads(proc.stdout.readline())) == [pair.a.endpoint,
                                                                 pair.b.endpoint]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(STOP_S)
    assert code == 0


def test_bench_spreads_its_clients_over_the_brokers(pair):
    before = [cart_requests(b.endpoint) for b in (pair.a, pair.b)]
    result = cli("--connect", pair.both, "bench", "--clients", 2, "--requests", 40,
                 "--mix", "get=1", "--json")
    assert result.returncode == 0, result
    after = [cart_requests(b.endpoint) for b in (pair.a, pair.b)]
    #  Client 0 on A, client 1 on B: both carry load.
    assert after[0] > before[0] and after[1] > before[1], (before, after)
