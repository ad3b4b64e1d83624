"""Issue 17 item 1: the Python package `cartmq` (contract section 8)
against the real broker, the C cart worker and Redis: typed cart calls,
request ids reused on retries, failover over two brokers, the asyncio
client with many calls in flight, a Python worker (the inventory example)
beside the C ones, and the README's snippet run as written.

The package is imported from the repository's python/ directory; the
README test installs it with pip into a fresh venv instead. tests/harness/
mdp.py stays the independent RFC peer: nothing here replaces it."""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import zmq

import support
from support import (BUILD_DIR, EXPIRY_S, HB_MS, REPO_DIR, RTT_S, START_S, STOP_S, Proc,
                     bound, free_port, pack, port_open, services, stats, unlisted, unpack,
                     wait_until, wait_workers)

PYTHON_DIR = REPO_DIR / "python"
EXAMPLES_DIR = REPO_DIR / "examples"
sys.path.insert(0, str(PYTHON_DIR))
import cartmq  # noqa: E402
import cartmq.aio  # noqa: E402

PYTHON = "/usr/bin/python3"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
#  One attempt's timeout in the failover tests: short, so a stopped
#  broker costs little, and far above a healthy round trip.
ATTEMPT_MS = int(400 * support.SCALE)
RTT_MS = int(RTT_S * 1000)


class PyWorker(Proc):
    """A Python program (an example worker) run like the C programs."""

    RANK = 1

    def __init__(self, logdir, script, args, name):
        env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
        super().__init__(name, [PYTHON, "-u", script] + list(args), logdir, env=env)


@pytest.fixture
def start_inventory(procs, tmp_path):
    """start_inventory(endpoint, *args): examples/inventory_worker.py,
    registered with the broker at endpoint."""
    count = [0]

    def start(endpoint, *args):
        count[0] += 1
        worker = PyWorker(tmp_path, EXAMPLES_DIR / "inventory_worker.py",
                          ["--connect", endpoint, "--heartbeat-ms", HB_MS] + list(args),
                          "inventory-%d" % count[0])
        procs.append(worker)
        worker.start()
        assert wait_workers(endpoint, "inventory", 1, START_S), worker.log_tail()
        return worker

    return start


class ThreadWorker:
    """A cartmq.Worker run in a thread of the test (stop() joins it)."""

    def __init__(self, *args, **kwargs):
        self.worker = cartmq.Worker(*args, **kwargs)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.worker.stop()
        self.thread.join(STOP_S)
        assert not self.thread.is_alive(), "cartmq.Worker did not stop"


def inventory(client, **request):
    frames = client.call("inventory", pack(request))
    assert len(frames) == 1, frames
    return unpack(frames[0])


# --- the failover rules, on a clock of the test's own -----------------------------------


def test_failover_rules_round_robin_backoff_and_all_down():
    from cartmq.failover import Failover, parse_endpoints

    assert parse_endpoints(" tcp://a:1, tcp://b:2 ,") == ["tcp://a:1", "tcp://b:2"]
    assert parse_endpoints(["tcp://a:1,tcp://b:2", "tcp://c:3"]) == \
        ["tcp://a:1", "tcp://b:2", "tcp://c:3"]
    with pytest.raises(ValueError):
        parse_endpoints(" , ")
    now = [100.0]
    rules = Failover(3, 0.4, clock=lambda: now[0])
    assert [rules.first() for _ in range(4)] == [0, 1, 2, 0]
    #  A timeout on 1 marks it down for max(timeout, 1 s); the retry goes
    #  to the next broker up, and the calls after it go on from there,
    #  skipping 1 until its backoff ends.
    rules.on_timeout(1)
    assert rules.next(1) == 2
    assert [rules.first() for _ in range(3)] == [0, 2, 0]
    now[0] += 1.0
    assert rules.first() == 1 and rules.first() == 2
    #  Backoff doubles (the first timeout above took 1 s) to 30 s; a reply
    #  resets it.
    for expected in (2, 4, 8, 16, 30, 30):
        rules.on_timeout(1)
        assert rules.down_until[1] - now[0] == expected
    rules.on_reply(1)
    assert not rules.is_down(1)
    rules.on_timeout(1)
    assert rules.down_until[1] - now[0] == 1
    #  None up: a call starts at the broker whose backoff ends first, its
    #  retry goes to the other one whose backoff ends first.
    now[0] += 0.25
    rules.on_timeout(2)
    rules.on_timeout(0)
    rules.on_timeout(0)
    now[0] += 0.5
    assert all(rules.is_down(index) for index in range(3))
    assert rules.first() == 1 and rules.next(1) == 2 and rules.next(2) == 1
    #  One broker: the retry goes to it; a timeout over 30 s is the
    #  smallest backoff and the largest.
    alone = Failover(1, 40.0, clock=lambda: now[0])
    alone.on_timeout(0)
    alone.on_timeout(0)
    assert alone.next(0) == 0 and alone.down_until[0] - now[0] == 40


def test_bad_arguments_are_refused_at_once():
    for kwargs in ({"endpoints": ""}, {"endpoints": "tcp://127.0.0.1:1,nowhere"},
                   {"timeout_ms": 0}, {"retries": -1}, {"curve": ("short", "keys")}):
        with pytest.raises(ValueError):
            cartmq.Client(**kwargs)
        with pytest.raises(ValueError):
            cartmq.aio.Client(**kwargs)
    with pytest.raises(ValueError):
        cartmq.aio.Client(max_in_flight=0)
    for kwargs in ({"concurrency": 0}, {"concurrency": 1001}, {"heartbeat_ms": 0},
                   {"service": "mmi.x"}, {"service": ""}, {"endpoints": "nowhere"}):
        arguments = {"endpoints": "tcp://127.0.0.1:1", "service": "x",
                     "handler": lambda frames: frames}
        arguments.update(kwargs)
        with pytest.raises(ValueError):
            cartmq.Worker(**arguments)


# --- the typed calls against the C cart worker -------------------------------------------


def test_typed_cart_calls_return_replies_and_raise_cart_errors(cluster):
    with cartmq.Client(cluster.endpoint, timeout_ms=RTT_MS) as client:
        assert client.add_item("py", "sku-1", "Coffee beans", 2, 1250) == \
            {"status": 200, "item_id": "sku-1", "quantity": 2}
        assert client.add_item("py", "sku-2", "Mug", 1, 800) == \
            {"status": 200, "item_id": "sku-2", "quantity": 1}
        assert client.update_quantity("py", "sku-1", 3) == \
            {"status": 200, "item_id": "sku-1", "quantity": 3}
        assert client.remove_item("py", "sku-2") == {"status": 200, "message": "Item removed"}
        with pytest.raises(cartmq.CartError) as caught:
            client.remove_item("py", "sku-2")
        assert (caught.value.status, caught.value.reply["status"]) == (404, 404)
        assert caught.value.error

        bad_calls = [lambda: client.add_item("py", "sku-3", "Pen", 0, 10),
                     lambda: client.add_item("py", "sku-3", "Pen", 1, -1),
                     lambda: client.add_item("", "sku-3", "Pen", 1, 10),
                     lambda: client.update_quantity("py", "sku-1", 1_000_001),
                     lambda: client.get_cart("u" * 129)]
        for bad in bad_calls:
            with pytest.raises(cartmq.CartError) as caught:
                bad()
            assert caught.value.status == 400 and caught.value.error
            assert isinstance(caught.value, cartmq.Error)

        #  A request_id given is sent as it is: the second add is a replay.
        first = client.add_item("py", "sku-4", "Cup", 1, 5, request_id="order-7")
        assert client.add_item("py", "sku-4", "Other", 9, 9, request_id="order-7") == first
        assert client.get_cart("py") == {
            "status": 200, "total": 3 * 1250 + 5,
            "items": [{"id": "sku-1", "name": "Coffee beans", "quantity": 3, "price": 1250},
                      {"id": "sku-4", "name": "Cup", "quantity": 1, "price": 5}]}
        assert client.clear_cart("py") == {"status": 200, "message": "Cart cleared"}
        assert client.get_cart("py") == {"status": 200, "items": [], "total": 0}


def test_call_services_and_stats_reach_the_broker(cluster):
    with cartmq.Client([cluster.endpoint], timeout_ms=RTT_MS) as client:
        frames = client.call("cart", pack({"method": "GetCartItems", "user_id": "x"}))
        assert unpack(frames[0]) == {"status": 200, "items": [], "total": 0}
        assert client.call("mmi.nothing") == [b"501"]
        assert client.service_available("cart") is True
        assert client.service_available("carts") is False
        assert [(entry["name"], entry["workers"]) for entry in client.services()] == \
            [("cart", 1)]
        counters = client.stats()
        assert counters["requests"] >= 1 and counters["workers"] == 1, counters


# --- request ids and retries ------------------------------------------------------------


class SilentBroker:
    """A ROUTER that records what it reads and never answers."""

    def __init__(self):
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind(self.endpoint)

    def read(self, count, timeout):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and self.sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            got.append(self.sock.recv_multipart())
        return got


def test_each_mutation_carries_one_request_id_on_every_attempt_over_fresh_sockets():
    broker = SilentBroker()
    calls = {"add": lambda client: client.add_item("add", "sku-1", "Pen", 1, 10),
             "remove": lambda client: client.remove_item("remove", "sku-1"),
             "update": lambda client: client.update_quantity("update", "sku-1", 2),
             "clear": lambda client: client.clear_cart("clear"),
             "given": lambda client: client.clear_cart("given", request_id="mine-1"),
             "get": lambda client: client.get_cart("get")}
    outcomes = {}

    def run(name):
        with cartmq.Client(broker.endpoint, timeout_ms=ATTEMPT_MS, retries=2) as client:
            try:
                calls[name](client)
            except cartmq.NoReply:
                outcomes[name] = "no reply"

    async def aio_add():
        async with cartmq.aio.Client(broker.endpoint, timeout_ms=ATTEMPT_MS) as client:
            try:
                await client.add_item("aio-add", "sku-1", "Pen", 1, 10)
            except cartmq.NoReply:
                outcomes["aio-add"] = "no reply"

    calls["aio-add"] = None

    #  One client per call, all at once: three attempts each.
    threads = [threading.Thread(target=run, args=(name,)) for name in calls if calls[name]]
    threads.append(threading.Thread(target=lambda: asyncio.run(aio_add())))
    try:
        for thread in threads:
            thread.start()
        attempts = broker.read(3 * len(calls), bound(10))
        for thread in threads:
            thread.join()
    finally:
        broker.sock.close(0)
    assert outcomes == {name: "no reply" for name in calls}
    by_user = {}
    for frames in attempts:
        by_user.setdefault(unpack(frames[-1])["user_id"], []).append(frames)
    assert sorted(by_user) == sorted(calls)
    for name, frames_list in by_user.items():
        assert len(frames_list) == 3, (name, frames_list)
        assert len({frames[0] for frames in frames_list}) == 3, \
            "%s: an attempt reused a socket" % name
        bodies = [unpack(frames[-1]) for frames in frames_list]
        assert bodies[0] == bodies[1] == bodies[2], (name, bodies)
        if name == "get":
            assert "request_id" not in bodies[0]
        elif name == "given":
            assert bodies[0]["request_id"] == "mine-1"
        else:
            assert HEX_ID.match(bodies[0]["request_id"]), bodies[0]


def test_add_retried_with_no_worker_applies_once_when_a_worker_comes(
        redis_server, start_broker, start_worker):
    broker = start_broker()
    with cartmq.Client(broker.endpoint, timeout_ms=300, retries=2) as client:
        with pytest.raises(cartmq.NoReply):
            client.add_item("late", "sku-1", "Pen", 1, 10)
        #  All three attempts wait in the broker's queue.
        assert services(broker.endpoint)["cart"]["queued"] == 3
        start_worker(broker.endpoint, redis_server.url)
        assert wait_until(lambda: services(broker.endpoint)["cart"]["queued"] == 0, bound(5))
        client2 = cartmq.Client(broker.endpoint, timeout_ms=RTT_MS)
        with client2:
            reply = client2.get_cart("late")
    assert [(item["id"], item["quantity"]) for item in reply["items"]] == [("sku-1", 1)], \
        "three attempts of one add applied more than once: %r" % reply


# --- failover over two brokers ----------------------------------------------------------


@pytest.fixture
def two_brokers(redis_server, start_broker, start_worker):
    """Brokers A and B, each with a C cart worker of its own, one Redis."""
    brokers = [start_broker(), start_broker()]
    for broker in brokers:
        start_worker(broker.endpoint, redis_server.url)
    return brokers


def quantities(client, user):
    return {item["id"]: item["quantity"] for item in client.get_cart(user)["items"]}


def test_broker_killed_mid_stream_every_call_succeeds_and_the_cart_is_exact(two_brokers):
    a, b = two_brokers
    calls, done = 200, [0]

    def kill_a():
        wait_until(lambda: done[0] >= calls // 3, bound(30))
        a.kill()

    with cartmq.Client([a.endpoint, b.endpoint], timeout_ms=ATTEMPT_MS, retries=2) as client:
        before = client.stats()
        assert set(before) == {a.endpoint, b.endpoint}
        killer = threading.Thread(target=kill_a)
        killer.start()
        try:
            for index in range(calls):
                reply = client.add_item("stream", "sku-%d" % (index % 4), "Pen", 1, 10)
                assert reply["status"] == 200
                done[0] += 1
        finally:
            killer.join()
        assert not a.alive()
        assert quantities(client, "stream") == {"sku-%d" % n: calls // 4 for n in range(4)}
        after = client.stats()
    assert after[a.endpoint] is None
    #  B took its share before the kill and everything after it.
    assert after[b.endpoint]["requests"] - before[b.endpoint]["requests"] > calls * 2 // 3


def test_stopped_broker_costs_one_attempt_timeout_then_calls_go_on(two_brokers):
    a, b = two_brokers
    timeout_s = ATTEMPT_MS / 1000.0
    with cartmq.Client(f"{a.endpoint},{b.endpoint}", timeout_ms=ATTEMPT_MS,
                       retries=2) as client:
        for _ in range(4):
            client.add_item("frozen", "sku-1", "Pen", 1, 10)
        a.send_signal(signal.SIGSTOP)
        try:
            durations = []
            for _ in range(20):
                started = time.monotonic()
                assert client.add_item("frozen", "sku-1", "Pen", 1, 10)["status"] == 200
                durations.append(time.monotonic() - started)
        finally:
            a.send_signal(signal.SIGCONT)
        slow = [seconds for seconds in durations if seconds >= timeout_s]
        #  The first call that meets A waits one attempt; A is then down
        #  for a second, so the calls after it go straight to B. No call
        #  waits two attempts.
        assert 1 <= len(slow) <= 3, durations
        assert max(durations) < 2 * timeout_s, durations
        #  A, resumed, serves what it held with the same request_id: the
        #  cart stays exact.
        assert wait_until(lambda: (stats(a.endpoint) or {}).get("queued", 1) == 0
                          and stats(a.endpoint)["in_flight"] == 0, bound(15))
        assert quantities(client, "frozen") == {"sku-1": 24}


# --- the asyncio client -----------------------------------------------------------------


def test_aio_client_has_50_calls_in_flight_at_once(cluster):
    #  The service answers nothing until it holds 50 requests: a client
    #  that did not keep 50 in flight would time out.
    held = {"count": 0, "event": None}

    async def hold(frames):
        if held["event"] is None:
            held["event"] = asyncio.Event()
        held["count"] += 1
        if held["count"] >= 50:
            held["event"].set()
        await held["event"].wait()
        return frames

    worker = ThreadWorker(cluster.endpoint, "hold", hold, concurrency=50, heartbeat_ms=HB_MS)
    try:
        assert wait_workers(cluster.endpoint, "hold", 1, START_S)

        async def main():
            async with cartmq.aio.Client(cluster.endpoint, timeout_ms=int(bound(5000)),
                                         retries=0) as client:
                echoes = await asyncio.gather(*(client.call("hold", b"%d" % n)
                                                for n in range(50)))
                adds = await asyncio.gather(*(client.add_item("aio", "sku-1", "Pen", 1, 10)
                                              for _ in range(50)))
                return echoes, adds, await client.get_cart("aio"), await client.services()

        echoes, adds, cart, listing = asyncio.run(main())
    finally:
        worker.stop()
    assert echoes == [[b"%d" % n] for n in range(50)]
    assert all(reply["status"] == 200 for reply in adds)
    assert sorted(reply["quantity"] for reply in adds) == list(range(1, 51))
    assert cart["items"] == [{"id": "sku-1", "name": "Pen", "quantity": 50, "price": 10}]
    assert {entry["name"] for entry in listing} >= {"cart", "hold"}


def test_aio_client_fails_over_and_raises_no_reply(two_brokers):
    a, b = two_brokers
    a.kill()

    async def main():
        async with cartmq.aio.Client([a.endpoint, b.endpoint], timeout_ms=ATTEMPT_MS) as client:
            replies = await asyncio.gather(*(client.add_item("aiofail", "sku-%d" % n, "Pen", 1, 1)
                                             for n in range(10)))
            listing = await client.services()
        async with cartmq.aio.Client(a.endpoint, timeout_ms=100, retries=1) as client:
            with pytest.raises(cartmq.NoReply):
                await client.get_cart("aiofail")
        return replies, listing

    replies, listing = asyncio.run(main())
    assert [reply["quantity"] for reply in replies] == [1] * 10
    assert listing[a.endpoint] is None and listing[b.endpoint][0]["name"] == "cart"


# --- a worker written in Python ---------------------------------------------------------


def bench(run_cli, endpoint, service):
    result = run_cli(endpoint, "bench", "--service", service, "--clients", "4",
                     "--window", "8", "--duration", "2", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["requests"] > 0 and report["errors"] == 0 and report["timeouts"] == 0, report
    return report


def test_python_inventory_worker_serves_the_client_and_a_bench_beside_the_c_echo_worker(
        start_broker, start_inventory, start_worker, run_cli):
    broker = start_broker()
    inventory_worker = start_inventory(broker.endpoint, "--concurrency", "16")
    with cartmq.Client(broker.endpoint, timeout_ms=RTT_MS) as client:
        assert inventory(client, op="set", sku="sku-1", count=5) == \
            {"status": 200, "sku": "sku-1", "count": 5}
        assert inventory(client, op="take", sku="sku-1", count=2)["count"] == 3
        assert inventory(client, op="take", sku="sku-1", count=9)["status"] == 409
        assert inventory(client, op="get", sku="sku-1") == {"status": 200, "sku": "sku-1",
                                                             "count": 3}
        assert inventory(client, op="fly")["status"] == 400
        assert client.call("inventory", b"ping", b"two") == [b"ping", b"two"]
        assert services(broker.endpoint)["inventory"]["workers"] == 1
    #  The same service through the generic CLI command: JSON in, JSON out
    result = run_cli(broker.endpoint, "call", "inventory",
                     '{"op": "take", "sku": "sku-1", "count": 1}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": 200, "sku": "sku-1", "count": 2}
    result = run_cli(broker.endpoint, "call", "inventory", '{"op": "list"}')
    assert json.loads(result.stdout) == {"status": 200, "stock": {"sku-1": 2}}

    python = bench(run_cli, broker.endpoint, "inventory")
    assert inventory_worker.stop(signal.SIGINT) == 0, inventory_worker.log_tail()
    start_worker(broker.endpoint, None, "--echo", "--service", "echo", "--concurrency", "16")
    echo = bench(run_cli, broker.endpoint, "echo")
    print("\nbench 4 clients x window 8, 32-byte bodies: Python inventory worker "
          "(concurrency 16) %.0f req/s, p50 %.0f us; C echo worker (--echo --concurrency 16) "
          "%.0f req/s, p50 %.0f us"
          % (python["rps"], python["p50_us"], echo["rps"], echo["p50_us"]))


def test_python_worker_reregisters_after_a_broker_restart_and_stops_on_sigterm(
        start_broker, start_inventory):
    broker = start_broker()
    worker = start_inventory(broker.endpoint)
    broker.kill()
    broker.start()
    assert wait_workers(broker.endpoint, "inventory", 1, bound(EXPIRY_S + 1) + 1), \
        worker.log_tail()
    with cartmq.Client(broker.endpoint, timeout_ms=RTT_MS) as client:
        assert inventory(client, op="set", sku="a", count=1)["status"] == 200
    assert worker.stop(signal.SIGTERM) == 0, worker.log_tail()
    assert worker.stop_seconds < STOP_S
    assert wait_until(lambda: unlisted(broker.endpoint, "inventory"), bound(2))
    assert "service=inventory reason=disconnect" in broker.stderr_text()


def test_python_worker_registers_once_with_each_broker_and_serves_both(start_broker):
    brokers = [start_broker(), start_broker()]
    endpoints = [broker.endpoint for broker in brokers]

    async def shout(frames):
        return [frame.upper() for frame in frames]

    worker = ThreadWorker(",".join(endpoints), "shout", shout, concurrency=8,
                          heartbeat_ms=HB_MS)
    try:
        for endpoint in endpoints:
            assert wait_workers(endpoint, "shout", 1, START_S)
        with cartmq.Client(endpoints, timeout_ms=RTT_MS) as client:
            assert [client.call("shout", b"hi %d" % n) for n in range(4)] == \
                [[b"HI %d" % n] for n in range(4)]
            listing = client.services()
        assert {endpoint: [(entry["name"], entry["workers"]) for entry in entries]
                for endpoint, entries in listing.items()} == \
            {endpoint: [("shout", 1)] for endpoint in endpoints}
        for endpoint in endpoints:
            assert stats(endpoint)["services"][0]["requests"] == 2
    finally:
        worker.stop()
    for endpoint in endpoints:
        assert wait_until(lambda: unlisted(endpoint, "shout"), bound(2))


class FakeBroker:
    """A ROUTER standing in for a broker, to speak to cartmq.Worker frame
    by frame."""

    def __init__(self):
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind(self.endpoint)

    def next_command(self, timeout=RTT_S, skip=(b"\x04",)):
        """(routing id, frames after MDPW01) of the next message whose
        command is not in skip."""
        deadline = time.monotonic() + timeout
        while self.sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            frames = self.sock.recv_multipart()
            assert frames[1:3] == [b"", b"MDPW01"], frames
            if frames[3] not in skip:
                return frames[0], frames[3:]
        raise AssertionError("no worker command within %.1f s" % timeout)

    def send(self, identity, *frames):
        self.sock.send_multipart([identity] + list(frames))


def test_python_worker_speaks_mdp_and_survives_malformed_broker_traffic():
    def echo(frames):
        if frames == [b"boom"]:
            raise RuntimeError("a bug in the handler")
        return 42 if frames == [b"odd"] else frames

    broker = FakeBroker()
    worker = ThreadWorker(broker.endpoint, "echo", echo, concurrency=4, heartbeat_ms=100)
    try:
        identity, ready = broker.next_command()
        assert ready == [b"\x01", b"echo", b"4"]
        #  Heartbeats come while the broker says nothing.
        assert broker.next_command(skip=())[1] == [b"\x04"]
        for junk in ([b"junk"], [b"", b"MDPW01"], [b"", b"MDPW01", b"\x09"],
                     [b"", b"MDPW01", b"\x02", b"token"], [b"", b"MDPC01", b"echo", b"x"],
                     [b"", b"MDPW01", b"\x04", b"extra"], [b"", b"MDPW01", b"\x02\x02"]):
            broker.send(identity, *junk)
        broker.send(identity, b"", b"MDPW01", b"\x02", b"token-1", b"", b"hello", b"world")
        assert broker.next_command() == (identity, [b"\x03", b"token-1", b"", b"hello", b"world"])
        #  A handler that raises or returns what is not frames: status 500.
        for number, body in enumerate((b"boom", b"odd")):
            token = b"token-%d" % (number + 2)
            broker.send(identity, b"", b"MDPW01", b"\x02", token, b"", body)
            _, reply = broker.next_command()
            assert reply[:3] == [b"\x03", token, b""] and len(reply) == 4, reply
            assert unpack(reply[3]) == {"status": 500, "error": "internal error"}
        #  DISCONNECT: the worker registers again on a fresh socket.
        broker.send(identity, b"", b"MDPW01", b"\x05")
        again, ready = broker.next_command()
        assert ready == [b"\x01", b"echo", b"4"] and again != identity
        worker.worker.stop()
        assert broker.next_command() == (again, [b"\x05"])
    finally:
        worker.stop()
        broker.sock.close(0)


# --- CURVE ------------------------------------------------------------------------------


def test_curve_client_with_zcert_files_or_z85_keys(tmp_path, run_cli, start_broker,
                                                   redis_server, start_worker):
    for name in ("server", "client", "worker", "stranger"):
        assert run_cli(None, "keygen", name, cwd=tmp_path).returncode == 0
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("client", "worker"):
        shutil.copy(tmp_path / name, allowed / name)
    broker = start_broker("--curve-secret", tmp_path / "server_secret",
                          "--curve-clients", allowed)
    start_worker(broker.endpoint, redis_server.url, "--curve-server", tmp_path / "server",
                 "--curve-cert", tmp_path / "worker_secret", wait=False)
    files = (str(tmp_path / "server"), str(tmp_path / "client_secret"))
    keys = tuple(cartmq.curve.load_key(path, which) for path, which in
                 ((files[0], "public"), (files[1], "public"), (files[1], "secret")))
    for curve in (files, tuple(key.decode() for key in keys)):
        with cartmq.Client(broker.endpoint, timeout_ms=RTT_MS, retries=5, curve=curve) as client:
            assert wait_until(lambda: client.service_available("cart"), bound(5))
            assert client.add_item("sec", "sku-1", "Pen", 1, 10)["status"] == 200
    stranger = (str(tmp_path / "server"), str(tmp_path / "stranger_secret"))
    with cartmq.Client(broker.endpoint, timeout_ms=200, retries=0, curve=stranger) as client:
        with pytest.raises(cartmq.NoReply):
            client.get_cart("sec")
    with pytest.raises(ValueError):
        cartmq.Client(broker.endpoint, curve=(files[0], str(tmp_path / "client")))


# --- examples, install, README ----------------------------------------------------------


def test_example_client_script_fills_and_reads_a_cart(cluster):
    result = subprocess.run([PYTHON, EXAMPLES_DIR / "python_client.py", cluster.endpoint, "eve"],
                            env=dict(os.environ, PYTHONPATH=str(PYTHON_DIR)),
                            capture_output=True, text=True, timeout=bound(30))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("remove sku-9: 404 ")
    assert json.loads(lines[1])["total"] == 3 * 1250 + 800
    assert json.loads(lines[2])[0]["name"] == "cart"


def test_cmake_install_puts_the_package_where_debian_python_looks(tmp_path):
    result = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", tmp_path / "usr"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    site = tmp_path / "usr" / "lib" / "python3" / "dist-packages"
    assert (site / "cartmq" / "py.typed").exists()
    probe = subprocess.run([PYTHON, "-c", "import cartmq, cartmq.aio; print(cartmq.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(site)), cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.startswith(str(site)), probe


def readme_blocks():
    """The sh and python blocks of the README's "From Python" section."""
    text = (REPO_DIR / "README.md").read_text()
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"```(sh|python)\n(.*?)```", section, re.S))
    assert set(blocks) == {"sh", "python"}, section
    return blocks["sh"], blocks["python"]


def test_readme_snippet_runs_verbatim_after_pip_install(tmp_path, run_sh):
    install, snippet = readme_blocks()
    assert "tcp://127.0.0.1:5555" in snippet
    #  The snippet runs against scripts/run.sh's cluster, on its default
    #  broker port (the state and Redis port are the test's own).
    assert wait_until(lambda: not port_open(5555), bound(10)), "port 5555 is in use"
    cluster, log = run_sh("--no-build", first_port=5555, redis_port=support.free_port())
    assert wait_workers("tcp://127.0.0.1:5555", "cart", 2, bound(START_S * 2)), \
        log.read_text()
    #  pip builds in the source tree: give it a copy, as a clone would be.
    shutil.copytree(PYTHON_DIR, tmp_path / "python",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", install], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=bound(180))
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([str(tmp_path / ".venv" / "bin" / "python"), "-c", snippet],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=bound(30))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "2500 [('sku-1', 2)]", result.stdout
    cluster.send_signal(signal.SIGTERM)
    assert cluster.wait(timeout=bound(10)) == 0, log.read_text()
