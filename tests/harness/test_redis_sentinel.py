"""The cart worker on Redis Sentinel (contract §7): it finds the master
through the sentinels, follows a planned and an unplanned failover with no
restart, and with --redis-wait loses no acknowledged add.

One topology (1 master, 2 replicas, 3 sentinels, quorum 2, down after
1 s) serves the whole module; the tests run in file order and the last
one kills a master.  Figures print with `pytest -s`.
"""

import subprocess
import time

import pytest

import support
from redis_topologies import MASTER_NAME, CartStream, SentinelTopology, kill
from support import WORKER_BIN, wait_until


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    topology = SentinelTopology(tmp_path_factory.mktemp("sentinel"))
    yield topology
    topology.stop()


def _run_worker(*args):
    return subprocess.run([str(WORKER_BIN)] + list(args), capture_output=True,
                          text=True, timeout=10 * support.SCALE)


@pytest.mark.parametrize("url, problem", [
    ("redis-sentinel:///0#" + MASTER_NAME, "no hosts"),
    ("redis-sentinel://127.0.0.1:0/0#" + MASTER_NAME, "port"),
    ("redis-sentinel://127.0.0.1:26379/0#", "master name"),
    ("redis-cluster://127.0.0.1:70000", "port"),
    ("redis-cluster://", "no hosts"),
    ("redis-cluster://127.0.0.1:7000/1", "no database"),
])
def test_bad_url_is_one_line_and_exit_2(url, problem):
    result = _run_worker("--redis", url)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--redis" in lines[0] and problem in lines[0], result.stderr


def test_unknown_master_or_dead_sentinels_answer_503_naming_the_problem(
        sentinel, start_broker, start_worker):
    broker = start_broker()
    start_worker(broker.endpoint, sentinel.url(master="nosuchmaster"), "--service", "cart")
    dead = [support.free_port(), support.free_port()]
    start_worker(broker.endpoint, sentinel.url(sentinels=dead), "--service", "dead")
    with support.CartClient(broker.endpoint) as cart:
        reply = cart.get("u")
        assert reply["status"] == 503, reply
        assert "nosuchmaster" in reply["error"] and "do not know" in reply["error"], reply
    with support.CartClient(broker.endpoint, service="dead") as cart:
        reply = cart.get("u")
        assert reply["status"] == 503, reply
        assert "no sentinel answered" in reply["error"], reply
        assert str(dead[0]) in reply["error"] or str(dead[1]) in reply["error"], reply


def test_carts_go_to_the_master_the_sentinels_name(sentinel, start_broker, start_worker):
    broker = start_broker()
    start_worker(broker.endpoint, sentinel.url(db=3))
    with support.CartClient(broker.endpoint) as cart:
        assert cart.add("s-alice", "mug", 2, request_id="r1")["status"] == 200
        assert cart.get("s-alice")["items"][0]["quantity"] == 2
    master = sentinel.server(sentinel.master_port()).client()
    master.execute_command("SELECT", 3)
    assert master.execute_command("HGET", "cart:{s-alice}", "mug").startswith(b"2:")


def _stream(sentinel, start_broker, start_worker, wait, prefix):
    """A broker, a worker with --redis-wait wait and a stream of 8 users
    that has had 40 calls answered 200."""
    sentinel.wait_settled()
    broker = start_broker()
    start_worker(broker.endpoint, sentinel.url(), "--redis-wait", str(wait),
                 "--concurrency", "4")
    stream = CartStream(broker.endpoint, users=8, prefix=prefix).start()
    stream.wait_oks(40, 20)
    return broker, stream


def test_planned_failover_fails_no_call_and_loses_no_add(sentinel, start_broker,
                                                        start_worker):
    #  WAIT for both replicas: an add acknowledged by the old master while
    #  the new one is already promoted cannot count the new one, so it is
    #  504 and retried, never acknowledged then lost.
    broker, stream = _stream(sentinel, start_broker, start_worker, 2, "planned")
    old = sentinel.master_port()
    began = time.monotonic()
    sentinel.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
    assert wait_until(lambda: sentinel.master_port() not in (None, old),
                      20 * support.SCALE, interval=0.1), sentinel._view()
    named = time.monotonic()
    stream.wait_oks(60, 30)
    stream.stop()
    lost, doubled = stream.check_carts(broker.endpoint)
    print("\nsentinel planned failover: new master named after %.2f s; %s; "
          "acknowledged adds lost=%d doubled=%d"
          % (named - began, stream.summary(), lost, doubled))
    assert stream.failed_calls == 0, stream.summary()
    assert (lost, doubled) == (0, 0)


def test_master_killed_mid_stream_loses_no_acknowledged_add(sentinel, start_broker,
                                                           start_worker):
    broker, stream = _stream(sentinel, start_broker, start_worker, 1, "killed")
    old = sentinel.master_port()
    before = {status: stream.count(status) for status in (503, 504, None)}
    killed_at = time.monotonic()
    kill(sentinel.server(old))
    assert wait_until(lambda: sentinel.master_port() not in (None, old),
                      30 * support.SCALE, interval=0.1), sentinel._view()
    named = time.monotonic()
    stream.wait_oks(60, 30)
    stream.stop()
    first_fail, first_ok = stream.recovered_after(killed_at)
    assert first_ok is not None, stream.summary()
    lost, doubled = stream.check_carts(broker.endpoint)
    failures = {status: stream.count(status) - before[status] for status in before}
    print("\nsentinel master SIGKILL: sentinels named a new master after %.2f s, "
          "first 200 after %.2f s (%.2f s after naming); 503=%d 504=%d no-answer=%d "
          "during failover; %s; acknowledged adds lost=%d doubled=%d"
          % (named - killed_at, first_ok - killed_at, first_ok - named,
             failures[503], failures[504], failures[None], stream.summary(), lost, doubled))
    assert stream.failed_calls == 0, stream.summary()
    assert (lost, doubled) == (0, 0)
    #  §7: serving again within 1 s of the sentinels naming the new master.
    assert first_ok - named < 1.0 * support.SCALE
