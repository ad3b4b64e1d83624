"""The cart worker on Redis Cluster (contract §7): carts spread over the
masters by their user's hash tag, and a resharding or a master failover
mid-stream needs no restart and loses no acknowledged add.

One cluster (3 masters, 3 replicas, node timeout 1 s) serves the whole
module; the tests run in file order and the last one kills a master.
Figures print with `pytest -s`.
"""

import subprocess
import time

import pytest

import support
from redis_topologies import REDIS_CLI, CartStream, ClusterTopology, kill
from support import wait_until


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    topology = ClusterTopology(tmp_path_factory.mktemp("cluster"))
    yield topology
    topology.stop()


def test_seed_not_in_cluster_mode_answers_503_naming_it(redis_server, start_broker,
                                                        start_worker):
    broker = start_broker()
    start_worker(broker.endpoint, "redis-cluster://127.0.0.1:%d" % redis_server.port)
    with support.CartClient(broker.endpoint) as cart:
        reply = cart.get("u")
    assert reply["status"] == 503, reply
    assert "127.0.0.1:%d is not in cluster mode" % redis_server.port in reply["error"], reply


def test_carts_spread_over_all_three_masters(cluster3, start_broker, start_worker):
    broker = start_broker()
    worker = start_worker(broker.endpoint, cluster3.url(), "--concurrency", "16",
                          "--verbose")
    users = ["spread-%d" % i for i in range(60)]
    with support.CartClient(broker.endpoint) as cart:
        #  All sent before any reply is read: the worker's batches hold
        #  users of every master, split into one pipeline per master.
        for user in users:
            cart.client.send("cart", support.pack({
                "method": "AddItemToCart", "user_id": user, "request_id": "rid-" + user,
                "item": {"id": "mug", "name": "Mug", "quantity": 1, "price": 5}}))
        for _ in users:
            reply = cart.client.recv(support.RTT_S)
            assert reply is not None
            assert support.unpack(reply[1][0])["status"] == 200, reply
        for user in users:
            #  A replay of the same request_id is answered from its record,
            #  which lives beside the cart on the same master.
            replay = cart.add(user, "mug", 1, request_id="rid-" + user)
            assert replay == {"status": 200, "item_id": "mug", "quantity": 1}, replay
            assert cart.get(user)["items"][0]["quantity"] == 1
    assert "batch requests=" in worker.stderr_text()
    masters = cluster3.masters()
    assert len(masters) == 3
    carts = [len(m.client().keys("cart:{spread-*}")) for m in masters]
    print("\ncluster: carts per master %s (60 users)" % carts)
    assert all(count > 0 for count in carts) and sum(carts) == 60, carts


def _users_in(cluster, first, last, count, prefix):
    """count user ids whose cart slot lies in first..last."""
    client = cluster.servers[0].client()
    users, index = [], 0
    while len(users) < count:
        user = "%s-%d" % (prefix, index)
        index += 1
        if first <= client.execute_command("CLUSTER", "KEYSLOT", user) <= last:
            users.append(user)
    return users


def test_reshard_mid_stream_every_call_ends_200_and_carts_are_exact(
        cluster3, start_broker, start_worker):
    cluster3.wait_ok()
    source, target = cluster3.masters()[:2]
    start, _ = cluster3.slot_ranges(source)[0]
    moved = 300
    users = _users_in(cluster3, start, start + moved - 1, 6, "resh")
    users += ["%s-other-%d" % (users[0], i) for i in range(6)]
    broker = start_broker()
    worker = start_worker(broker.endpoint, cluster3.url(), "--redis-wait", "1",
                          "--concurrency", "4", "--verbose")
    stream = CartStream(broker.endpoint, users).start()
    stream.wait_oks(40, 20)
    began = time.monotonic()
    result = subprocess.run(
        [REDIS_CLI, "--cluster", "reshard", "127.0.0.1:%d" % source.port,
         "--cluster-from", cluster3.node_id(source), "--cluster-to",
         cluster3.node_id(target), "--cluster-slots", str(moved), "--cluster-yes"],
        capture_output=True, text=True, timeout=120)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    stream.wait_oks(40, 20)
    stream.stop()
    on_target = sum(len(target.client().keys("cart:{%s}" % user)) for user in users[:6])
    lost, doubled = stream.check_carts(broker.endpoint)
    print("\ncluster reshard of %d slots (%.2f s) mid-stream: %s; carts moved=%d; "
          "acknowledged adds lost=%d doubled=%d"
          % (moved, took, stream.summary(), on_target, lost, doubled))
    assert on_target == 6
    #  The worker's map was behind: calls were redirected, not failed.
    assert "redis cluster redirected calls=" in worker.stderr_text()
    assert stream.failed_calls == 0, stream.summary()
    assert (lost, doubled) == (0, 0)


def test_master_killed_its_replica_takes_over_and_no_add_is_lost(
        cluster3, start_broker, start_worker):
    cluster3.wait_ok()
    victim = cluster3.masters()[2]
    replica = cluster3.replica_of(victim)
    assert replica is not None
    first, last = cluster3.slot_ranges(victim)[0]
    users = _users_in(cluster3, first, last, 6, "kill")
    users += ["%s-other-%d" % (users[0], i) for i in range(6)]
    broker = start_broker()
    start_worker(broker.endpoint, cluster3.url(seeds=[victim.port, replica.port]),
                 "--redis-wait", "1", "--concurrency", "4")
    stream = CartStream(broker.endpoint, users).start()
    stream.wait_oks(40, 20)
    before = {status: stream.count(status) for status in (503, 504, None)}
    killed_at = time.monotonic()
    kill(victim)
    assert wait_until(lambda: replica.client(1.0).info("replication").get("role") == "master",
                      30 * support.SCALE, interval=0.1)
    promoted = time.monotonic()
    cluster3.wait_ok()
    #  The promoted replica has no replica of its own, so no add on its
    #  slots can be confirmed (504, retried) until the old master comes
    #  back: it rejoins as the new master's replica, as an operator would
    #  have it.
    victim.start()
    assert wait_until(lambda: replica.client(1.0).info("replication").get(
        "connected_slaves") == 1, 30 * support.SCALE, interval=0.1)
    rejoined = time.monotonic()
    stream.wait_oks(60, 30)
    stream.stop()
    lost, doubled = stream.check_carts(broker.endpoint)
    failures = {status: stream.count(status) - before[status] for status in before}
    last_fail = stream.last_failure() or killed_at
    print("\ncluster master SIGKILL: replica promoted after %.2f s, old master "
          "back as its replica after %.2f s, last 503/504 %.2f s after the kill; "
          "503=%d 504=%d no-answer=%d after the kill; %s; acknowledged adds "
          "lost=%d doubled=%d"
          % (promoted - killed_at, rejoined - killed_at, last_fail - killed_at,
             failures[503], failures[504], failures[None], stream.summary(), lost,
             doubled))
    assert stream.failed_calls == 0, stream.summary()
    assert (lost, doubled) == (0, 0)
