"""cartmq-broker against pyzmq MDP peers (contract section 3 and 5).

The workers and clients here are the RFC 7 peers of mdp.py, so every test
also checks that a Majordomo peer written by someone else works with the
broker.  Heartbeats are HB_MS with LIVENESS; a silent peer is dead after
EXPIRY_S.
"""

import random
import time

import pytest
import zmq

import mdp
from mdp import (CLIENT_HEADER, HEARTBEAT, READY, REPLY, WORKER_HEADER,
                 MdpClient, MdpWorker, pump_all, wait_any)
from support import (EXPIRY_S, HB_MS, RTT_S, SCALE, bound, round_trip_ok,
                     service_status, services, stats, unlisted, wait_until, wait_workers)

HB_S = HB_MS / 1000.0
#  How long "nothing arrives" is watched for.
QUIET_S = 0.3 * SCALE
#  Expiry as the broker may see it: LIVENESS intervals, plus one interval
#  of timer granularity, plus scheduling slack.
EXPIRY_BOUND_S = EXPIRY_S + HB_S + bound(0.35)


@pytest.fixture
def broker(start_broker):
    return start_broker()


@pytest.fixture
def peers():
    """Makes pyzmq peers and closes whatever the test left open."""
    made = []

    class Peers:
        def worker(self, endpoint, identity=None):
            peer = MdpWorker(endpoint, HB_MS, identity=identity)
            made.append(peer)
            return peer

        def client(self, endpoint, identity=None, timeout=RTT_S):
            peer = MdpClient(endpoint, timeout=timeout, identity=identity)
            made.append(peer)
            return peer

    yield Peers()
    for peer in made:
        peer.close()


def register(endpoint, workers, service, credit=None, others=()):
    """READY for each worker in turn, each confirmed before the next, so
    the broker's ready-queue holds them in list order.  others: workers
    already registered, kept heartbeating (and counted if of service)."""
    everyone = list(others) + list(workers)
    base = sum(1 for worker in others
               if worker.registered and worker.service == mdp.as_bytes(service))
    for count, worker in enumerate(workers, start=base + 1):
        worker.ready(service, credit)
        assert wait_workers(endpoint, service, count, RTT_S, pump=everyone), \
            "broker does not list %d workers for %r" % (count, service)


def serve_one(worker, reply=b"ok", timeout=RTT_S):
    got = worker.recv(timeout)
    assert got is not None, "worker got no request"
    address, body = got
    worker.reply(address, reply)
    return body


def assert_serving(endpoint):
    problem = round_trip_ok(endpoint)
    assert problem == "", "broker stopped serving: " + problem


def counter(snapshot, *path):
    value = snapshot
    for key in path:
        value = value[key]
    return value


# --- discovery (MMI, RFC 8) --------------------------------------------------


def test_mmi_service_is_404_before_ready_200_after_and_404_after_disconnect(broker, peers):
    endpoint = broker.endpoint
    assert service_status(endpoint, "echo") == b"404"
    worker = peers.worker(endpoint)
    worker.ready("echo")
    assert wait_until(lambda: service_status(endpoint, "echo") == b"200", RTT_S,
                      pump=[worker]), "mmi.service stays 404 after READY"
    worker.disconnect()
    assert wait_until(lambda: service_status(endpoint, "echo") == b"404", RTT_S), \
        "mmi.service stays 200 after the only worker said DISCONNECT"


def test_mmi_service_is_404_once_the_only_worker_falls_silent(broker, peers):
    endpoint = broker.endpoint
    worker = peers.worker(endpoint)
    worker.ready("quiet")
    assert wait_until(lambda: service_status(endpoint, "quiet") == b"200", RTT_S,
                      pump=[worker])
    worker.heartbeat()
    worker.go_silent()
    silent_since = worker.last_send
    gone = wait_until(lambda: service_status(endpoint, "quiet", 0.5) == b"404",
                      EXPIRY_BOUND_S + 1.0, interval=0.01)
    elapsed = time.monotonic() - silent_since
    print("\n[expiry] mmi.service 404 %.0f ms after the worker's last message "
          "(liveness x interval = %.0f ms)" % (elapsed * 1000, EXPIRY_S * 1000))
    assert gone, "silent worker still listed %.2fs after its last message" % elapsed
    assert elapsed <= EXPIRY_BOUND_S
    assert elapsed >= EXPIRY_S - HB_S, "worker forgotten before liveness x interval"


def test_mmi_services_lists_name_workers_idle_queued(broker, peers):
    endpoint = broker.endpoint
    echo = [peers.worker(endpoint), peers.worker(endpoint)]
    other = peers.worker(endpoint)
    register(endpoint, echo, "echo")
    register(endpoint, [other], "other", others=echo)
    everyone = echo + [other]

    listing = services(endpoint)
    assert listing is not None, "mmi.services gave no msgpack array"
    for name in ("echo", "other"):
        assert {"name", "workers", "idle", "queued"} <= set(listing[name]), listing[name]
        assert all(isinstance(listing[name][key], int)
                   for key in ("workers", "idle", "queued")), listing[name]
    assert (listing["echo"]["workers"], listing["echo"]["idle"], listing["echo"]["queued"]) \
        == (2, 2, 0)
    assert (listing["other"]["workers"], listing["other"]["idle"]) == (1, 1)

    client = peers.client(endpoint)
    client.send("echo", b"hold")
    held = wait_any(everyone, RTT_S)
    assert held is not None and held[0] in (0, 1)
    client.send("nobody", b"q1")
    client.send("nobody", b"q2")
    pump_all(everyone, 0.1)
    listing = services(endpoint)
    assert (listing["echo"]["workers"], listing["echo"]["idle"]) == (2, 1), listing["echo"]
    assert "nobody" in listing, "a service with queued requests must be listed"
    assert (listing["nobody"]["workers"], listing["nobody"]["idle"],
            listing["nobody"]["queued"]) == (0, 0, 2), listing["nobody"]

    index, address, _ = held
    echo[index].reply(address, b"done")
    assert client.recv(RTT_S) == (b"echo", [b"done"])
    other.disconnect()
    pump_all(echo, 0.1)
    listing = services(endpoint)
    assert listing["echo"]["idle"] == 2
    assert "other" not in listing, "a service without workers or queue is still listed"


@pytest.mark.parametrize("name", ["mmi.foo", "mmi.servicez", "mmi.stat"])
def test_unknown_mmi_service_replies_501(broker, peers, name):
    client = peers.client(broker.endpoint)
    assert client.request(name, b"echo") == [b"501"]


@pytest.mark.parametrize("name", ["mmi.foo", "mmi.service"])
def test_worker_ready_for_an_mmi_name_gets_disconnect(broker, peers, name):
    worker = peers.worker(broker.endpoint)
    worker.ready(name)
    assert worker.expect_disconnect(RTT_S), "no DISCONNECT for READY %r" % name
    assert service_status(broker.endpoint, name) == b"404"
    client = peers.client(broker.endpoint)
    assert client.request("mmi.service", b"echo") == [b"404"], "MMI no longer answered"


def test_broker_heartbeats_an_idle_worker(broker, peers):
    worker = peers.worker(broker.endpoint)
    worker.ready("hb")
    worker.pump(HB_S * 6)
    assert worker.heartbeats_received >= 3, \
        "broker sent %d heartbeats in 6 intervals" % worker.heartbeats_received
    assert worker.disconnects_received == 0


# --- load balancing ----------------------------------------------------------


def test_sequential_requests_rotate_strictly_over_three_workers(broker, peers):
    endpoint = broker.endpoint
    workers = [peers.worker(endpoint) for _ in range(3)]
    register(endpoint, workers, "rot")
    client = peers.client(endpoint)
    order = []
    for number in range(9):
        client.send("rot", b"m%d" % number)
        got = wait_any(workers, RTT_S)
        assert got is not None, "request %d reached no worker" % number
        index, address, body = got
        assert body == [b"m%d" % number]
        workers[index].reply(address, b"r%d" % number)
        assert client.recv(RTT_S) == (b"rot", [b"r%d" % number])
        order.append(index)
    assert order == [0, 1, 2] * 3, "dispatch order %r is not strict rotation" % order


def test_silent_worker_stops_being_chosen_after_expiry(broker, peers):
    """A silent worker with free credit keeps being chosen until the broker
    declares it dead; the requests it swallowed are then re-dispatched."""
    endpoint = broker.endpoint
    silent = peers.worker(endpoint)
    live = peers.worker(endpoint)
    register(endpoint, [silent], "exp", credit=1000)
    register(endpoint, [live], "exp", others=[silent])
    client = peers.client(endpoint)

    silent.heartbeat()
    silent.go_silent()
    silent_since = silent.last_send
    poller = zmq.Poller()
    for sock in (silent.sock, live.sock, client.sock):
        poller.register(sock, zmq.POLLIN)

    sent, replies, chosen_at = 0, {}, []
    send_until = silent_since + EXPIRY_BOUND_S + 0.5
    deadline = send_until + bound(3.0)
    next_send = time.monotonic()
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now < send_until and now >= next_send:
            client.send("exp", b"%d" % sent)
            sent += 1
            next_send = now + 0.03
        if now >= send_until and len(replies) == sent:
            break
        live.tick()
        ready = dict(poller.poll(10))
        if silent.sock in ready:
            frames = silent.recv_raw(0)
            if silent._handle(frames) == mdp.REQUEST:
                silent.pending.pop()
                chosen_at.append(time.monotonic() - silent_since)
        if live.sock in ready:
            frames = live.recv_raw(0)
            if live._handle(frames) == mdp.REQUEST:
                address, body = live.pending.pop()
                live.reply(address, b"re:" + body[0])
        if client.sock in ready:
            service, body = client.recv(0)
            assert service == b"exp" and body[0].startswith(b"re:"), body
            key = body[0][3:]
            assert key not in replies, "request %r answered twice" % key
            replies[key] = True

    last = chosen_at[-1] if chosen_at else None
    print("\n[expiry] silent worker (credit 1000) last chosen %s after its last "
          "message; %d of %d requests went to it; liveness x interval = %.0f ms"
          % ("%.0f ms" % (last * 1000) if last is not None else "never",
             len(chosen_at), sent, EXPIRY_S * 1000))
    assert chosen_at, "the silent worker was never chosen while still alive"
    assert last <= EXPIRY_BOUND_S, "still chosen %.2fs after falling silent" % last
    assert last >= EXPIRY_S - HB_S - 0.1, "stopped being chosen after only %.2fs" % last
    assert len(replies) == sent, "%d of %d requests answered (swallowed ones must be " \
        "re-dispatched)" % (len(replies), sent)


# --- queueing ------------------------------------------------------------------


def test_request_queued_without_worker_is_served_when_one_arrives(broker, peers):
    client = peers.client(broker.endpoint)
    client.send("late", b"hello")
    assert client.recv(QUIET_S) is None
    worker = peers.worker(broker.endpoint)
    worker.ready("late")
    got = worker.recv(RTT_S)
    assert got is not None, "queued request not dispatched to the new worker"
    address, body = got
    assert body == [b"hello"]
    worker.reply(address, b"world", b"two")
    assert client.recv(RTT_S) == (b"late", [b"world", b"two"])


def test_bodies_of_many_frames_pass_both_ways_up_to_the_frame_limit(broker, peers):
    #  With the routing id, [""][MDPC01][service] and 1020 body frames make
    #  1024, the most frames per message the broker accepts.
    body = [b"%d" % index for index in range(1020)]
    worker = peers.worker(broker.endpoint)
    worker.ready("many")
    client = peers.client(broker.endpoint)
    client.send("many", *body)
    got = worker.recv(RTT_S)
    assert got is not None, "request of 1020 frames not dispatched"
    address, received = got
    assert received == body
    #  [wid][""][MDPW01][REPLY][client][""] and 1018 body frames: 1024 too
    worker.reply(address, *body[:1018])
    assert client.recv(RTT_S) == (b"many", body[:1018])


def test_a_service_with_only_queued_requests_is_404_to_mmi_service(broker, peers):
    client = peers.client(broker.endpoint)
    client.send("pending", b"x")
    assert wait_until(lambda: "pending" in (services(broker.endpoint) or {}), RTT_S)
    assert service_status(broker.endpoint, "pending") == b"404"


def test_a_busy_worker_that_keeps_heartbeating_is_not_expired(broker, peers):
    """Silence, not work, kills a worker: one holding a request for several
    expiry periods while heartbeating still delivers its reply."""
    endpoint = broker.endpoint
    worker, spare = peers.worker(endpoint), peers.worker(endpoint)
    register(endpoint, [worker, spare], "slowpoke")
    client = peers.client(endpoint)
    client.send("slowpoke", b"long job")
    got = wait_any([worker, spare], RTT_S)
    assert got is not None and got[0] == 0
    pump_all([worker, spare], 3 * EXPIRY_S)
    assert spare.pending == [], "request re-dispatched although its worker heartbeated"
    worker.reply(got[1], b"finally")
    assert client.recv(RTT_S) == (b"slowpoke", [b"finally"])
    assert worker.disconnects_received == 0


def test_queued_requests_are_served_in_arrival_order(broker, peers):
    endpoint = broker.endpoint
    clients = [peers.client(endpoint) for _ in range(5)]
    for number, client in enumerate(clients):
        client.send("fifo", b"m%d" % number)
        assert wait_until(lambda: (services(endpoint) or {}).get("fifo", {}).get("queued")
                          == number + 1, RTT_S), "request %d not queued" % number
    worker = peers.worker(endpoint)
    worker.ready("fifo")
    for number in range(5):
        assert serve_one(worker, b"r%d" % number) == [b"m%d" % number]
    for number, client in enumerate(clients):
        assert client.recv(RTT_S) == (b"fifo", [b"r%d" % number])


def test_queue_timeout_drops_a_queued_request(start_broker, peers):
    broker = start_broker("--queue-timeout-ms", "300")
    endpoint = broker.endpoint
    before = stats(endpoint)
    client = peers.client(endpoint)
    client.send("slow", b"stale")
    assert wait_until(lambda: "slow" in (services(endpoint) or {}), RTT_S)
    dropped = wait_until(lambda: unlisted(endpoint, "slow"), 0.3 + HB_S + bound(1.0))
    assert dropped, "request still queued well after --queue-timeout-ms"
    worker = peers.worker(endpoint)
    worker.ready("slow")
    assert worker.recv(QUIET_S) is None, "an expired request was dispatched"
    assert client.recv(0.1) is None
    client.send("slow", b"fresh")
    assert serve_one(worker) == [b"fresh"]
    assert client.recv(RTT_S) == (b"slow", [b"ok"])
    after = stats(endpoint)
    if before is not None and after is not None:
        assert counter(after, "dropped", "expired") - counter(before, "dropped", "expired") == 1


def test_max_queued_drops_requests_past_the_limit(start_broker, peers):
    broker = start_broker("--max-queued", "2")
    endpoint = broker.endpoint
    before = stats(endpoint)
    assert before is not None, "mmi.stats missing"
    client = peers.client(endpoint)
    for number in range(3):
        client.send("full", b"m%d" % number)
    pump_all([], 0.2)
    assert (services(endpoint) or {}).get("full", {}).get("queued") == 2
    worker = peers.worker(endpoint)
    worker.ready("full")
    assert serve_one(worker) == [b"m0"]
    assert serve_one(worker) == [b"m1"]
    assert worker.recv(QUIET_S) is None, "a request past --max-queued was kept"
    after = stats(endpoint)
    assert after is not None, "mmi.stats missing"
    assert counter(after, "dropped", "queue_full") - counter(before, "dropped", "queue_full") == 1


# --- invalid traffic -------------------------------------------------------------

VICTIM = b"victim-client"

UNREGISTERED_INVALID = {
    "unknown-worker-header": [b"", b"MDPW02", READY, b"echo"],
    "unknown-client-header": [b"", b"MDPC02", b"echo", b"body"],
    "header-only": [b"", WORKER_HEADER],
    "no-delimiter": [WORKER_HEADER, READY, b"echo"],
    "unknown-command": [b"", WORKER_HEADER, b"\x09"],
    "command-zero": [b"", WORKER_HEADER, b"\x00"],
    "long-command": [b"", WORKER_HEADER, b"\x01\x01", b"echo"],
    "ready-without-service": [b"", WORKER_HEADER, READY],
    "reply-from-unregistered": [b"", WORKER_HEADER, REPLY, VICTIM, b"", b"forged"],
    "heartbeat-from-unregistered": [b"", WORKER_HEADER, HEARTBEAT],
    #  1025 frames with the routing id: one past what the broker accepts
    "too-many-frames": [b"", WORKER_HEADER, READY, b"echo"] + [b""] * 1020,
    #  Invalid messages with the client header (no service, no body, too
    #  many frames) were here, expecting DISCONNECT; §3 now says a client
    #  is never sent a worker command: test_routing_failures.py checks
    #  that they are dropped and counted instead.
}


def hold_victim(peers, endpoint):
    """A client with a known routing id and a request waiting in the broker."""
    victim = peers.client(endpoint, identity=VICTIM)
    victim.send("hold", b"waiting")
    assert wait_until(lambda: (services(endpoint) or {}).get("hold", {}).get("queued") == 1,
                      RTT_S)
    return victim


@pytest.mark.parametrize("case", sorted(UNREGISTERED_INVALID))
def test_invalid_traffic_gets_disconnect_and_broker_keeps_serving(broker, peers, case):
    endpoint = broker.endpoint
    victim = hold_victim(peers, endpoint)
    before = stats(endpoint)
    peer = peers.worker(endpoint)
    peer.send_raw(*UNREGISTERED_INVALID[case])
    assert peer.expect_disconnect(RTT_S), "no DISCONNECT for %s" % case
    assert victim.recv(QUIET_S) is None, "something reached the victim client"
    assert service_status(endpoint, "echo") == b"404"
    assert broker.alive()
    assert_serving(endpoint)
    after = stats(endpoint)
    #  A HEARTBEAT from a stranger is how a restarted broker makes workers
    #  re-register; whether it counts as "invalid" is left open.
    if before is not None and after is not None and case != "heartbeat-from-unregistered":
        assert after["invalid"] > before["invalid"], "invalid counter did not move"


REGISTERED_INVALID = {
    "reply-without-request": [b"", WORKER_HEADER, REPLY, VICTIM, b"", b"forged"],
    "reply-missing-frames": [b"", WORKER_HEADER, REPLY],
    "reply-without-envelope-delimiter": [b"", WORKER_HEADER, REPLY, VICTIM, b"forged"],
    "ready-twice": [b"", WORKER_HEADER, READY, b"echo"],
    "ready-twice-other-service": [b"", WORKER_HEADER, READY, b"other"],
    "unknown-command": [b"", WORKER_HEADER, b"\x07"],
    "unknown-header": [b"", b"MDPX01", HEARTBEAT],
}


@pytest.mark.parametrize("case", sorted(REGISTERED_INVALID))
def test_invalid_traffic_from_a_registered_worker_gets_disconnect(broker, peers, case):
    endpoint = broker.endpoint
    victim = hold_victim(peers, endpoint)
    peer = peers.worker(endpoint)
    register(endpoint, [peer], "echo")
    peer.send_raw(*REGISTERED_INVALID[case])
    assert peer.expect_disconnect(RTT_S), "no DISCONNECT for %s" % case
    assert wait_until(lambda: service_status(endpoint, "echo") == b"404", RTT_S), \
        "misbehaving worker was not forgotten"
    assert victim.recv(QUIET_S) is None, "something reached the victim client"
    assert broker.alive()
    assert_serving(endpoint)


def test_forged_reply_for_another_workers_request_never_reaches_the_client(broker, peers):
    endpoint = broker.endpoint
    honest = peers.worker(endpoint)
    forger = peers.worker(endpoint)
    register(endpoint, [honest], "echo")
    register(endpoint, [forger], "other", others=[honest])
    client = peers.client(endpoint)
    client.send("echo", b"question")
    got = honest.recv(RTT_S)
    assert got is not None
    address, _ = got
    forger.reply(address, b"forged")
    assert forger.expect_disconnect(RTT_S), "forger was not disconnected"
    assert client.recv(QUIET_S) is None, "the forged reply reached the client"
    honest.reply(address, b"genuine")
    assert client.recv(RTT_S) == (b"echo", [b"genuine"])
    assert client.recv(QUIET_S) is None


def test_reply_addressed_to_another_client_never_reaches_it(broker, peers):
    endpoint = broker.endpoint
    worker = peers.worker(endpoint)
    register(endpoint, [worker], "echo")
    victim = hold_victim(peers, endpoint)
    client = peers.client(endpoint)
    client.send("echo", b"question")
    assert worker.recv(RTT_S) is not None
    worker.reply(VICTIM, b"misdirected")
    assert victim.recv(QUIET_S) is None, "a reply reached a client that did not ask"
    assert broker.alive()
    assert_serving(endpoint)


def test_garbage_flood_leaves_the_broker_serving(broker):
    """Thousands of random messages from many sockets, some with 10 MB
    frames (over the 1 MiB limit, so libzmq drops those connections)."""
    endpoint = broker.endpoint
    rng = random.Random(20250)
    services_pool = [b"echo", b"mmi.service", b"mmi.services", b"mmi.stats",
                     b"mmi.x", b"", b"x" * 300]
    prefixes = [[], [b""], [b"", WORKER_HEADER], [b"", CLIENT_HEADER],
                [b"", WORKER_HEADER, READY], [b"", WORKER_HEADER, REPLY],
                [b"", WORKER_HEADER, HEARTBEAT], [b"", WORKER_HEADER, mdp.DISCONNECT],
                [b"", WORKER_HEADER, mdp.REQUEST], [b"", WORKER_HEADER, b"\x06"],
                [b"", CLIENT_HEADER, b"mmi.service"], [b"", b"MDPC00"]]
    sizes = [0, 0, 1, 2, 6, 8, 64, 255, 256, 1000, 5000, 70000]
    ctx = zmq.Context()
    sockets = []
    for _ in range(24):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, int(3000 * SCALE))
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.connect(endpoint)
        sockets.append(sock)
    sent = refused = big = 0
    started = time.monotonic()
    for number in range(4000):
        frames = list(rng.choice(prefixes))
        if frames and frames[-1] in (READY, b"mmi.service") and rng.random() < 0.5:
            frames.append(rng.choice(services_pool))
        frames += [rng.randbytes(rng.choice(sizes)) for _ in range(rng.randint(0, 6))]
        if number % 500 == 250:
            frames.append(b"\xa5" * (10 * 1024 * 1024))
            big += 1
        if not frames:
            frames = [b""]
        try:
            rng.choice(sockets).send_multipart(frames, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            refused += 1
    for sock in sockets:
        sock.close()
    ctx.term()
    print("\n[flood] %d messages (%d with a 10 MB frame) sent in %.1fs, %d refused by HWM"
          % (sent, big, time.monotonic() - started, refused))
    assert broker.alive(), "broker died under the flood"
    assert_serving(endpoint)
    assert service_status(endpoint, "mmi.nothing") == b"404"


# --- worker credit ------------------------------------------------------------------


def test_worker_with_credit_4_gets_up_to_four_requests_in_flight(broker, peers):
    endpoint = broker.endpoint
    worker = peers.worker(endpoint)
    register(endpoint, [worker], "credit", credit=4)
    client = peers.client(endpoint)
    for number in range(6):
        client.send("credit", b"m%d" % number)
    held = []
    assert wait_until(lambda: len(worker.pending) >= 4, RTT_S, pump=[worker]), \
        "worker with credit 4 got %d requests" % len(worker.pending)
    worker.pump(QUIET_S)
    held = list(worker.pending)
    worker.pending.clear()
    assert [body for _, body in held] == [[b"m0"], [b"m1"], [b"m2"], [b"m3"]], held
    worker.reply(held[0][0], b"r0")
    assert serve_one(worker, b"r4") == [b"m4"]
    for address, body in held[1:]:
        worker.reply(address, b"r" + body[0][1:])
    assert serve_one(worker, b"r5") == [b"m5"]
    replies = sorted(client.recv(RTT_S)[1][0] for _ in range(6))
    assert replies == [b"r%d" % number for number in range(6)]


@pytest.mark.parametrize("credit,extra", [
    ("0", ()), ("1001", ()), ("abc", ()), ("-1", ()), ("+4", ()), ("", ()),
    ("4 ", ()), ("1e3", ()), ("99999999999999999999", ()), ("4", ("x",)),
])
def test_ready_with_invalid_credit_gets_disconnect(broker, peers, credit, extra):
    worker = peers.worker(broker.endpoint)
    worker.ready("credit", credit, extra)
    assert worker.expect_disconnect(RTT_S), "no DISCONNECT for credit %r %r" % (credit, extra)
    assert service_status(broker.endpoint, "credit") == b"404"
    assert_serving(broker.endpoint)


@pytest.mark.parametrize("credit", ["1", "1000"])
def test_ready_with_credit_at_the_bounds_is_accepted(broker, peers, credit):
    worker = peers.worker(broker.endpoint)
    register(broker.endpoint, [worker], "credit", credit=credit)
    client = peers.client(broker.endpoint)
    client.send("credit", b"x")
    assert serve_one(worker) == [b"x"]
    assert client.recv(RTT_S) == (b"credit", [b"ok"])
    assert worker.disconnects_received == 0


def test_worker_with_free_credit_moves_to_the_back_of_the_ready_queue(broker, peers):
    endpoint = broker.endpoint
    wide, narrow = peers.worker(endpoint), peers.worker(endpoint)
    register(endpoint, [wide], "order", credit=2)
    register(endpoint, [narrow], "order", others=[wide])
    workers = [wide, narrow]
    client = peers.client(endpoint)
    seen = []
    for number in range(3):
        client.send("order", b"m%d" % number)
        got = wait_any(workers, RTT_S)
        assert got is not None
        seen.append((got[0], got[1]))
    assert [index for index, _ in seen] == [0, 1, 0], "dispatch order %r" % seen
    client.send("order", b"m3")
    assert wait_any(workers, QUIET_S) is None, "a worker got more than its credit"
    narrow.reply(seen[1][1], b"r1")
    got = wait_any(workers, RTT_S)
    assert got is not None and got[0] == 1 and got[2] == [b"m3"], got


# --- failures: re-dispatch -----------------------------------------------------------


def test_requests_of_a_worker_that_disconnects_go_to_another_worker(broker, peers):
    endpoint = broker.endpoint
    doomed = peers.worker(endpoint)
    register(endpoint, [doomed], "rd", credit=3)
    client = peers.client(endpoint)
    for number in range(3):
        client.send("rd", b"m%d" % number)
    assert wait_until(lambda: len(doomed.pending) == 3, RTT_S, pump=[doomed])
    survivor = peers.worker(endpoint)
    register(endpoint, [survivor], "rd", others=[doomed])
    doomed.disconnect()
    bodies = sorted(serve_one(survivor, b"done")[0] for _ in range(3))
    assert bodies == [b"m0", b"m1", b"m2"]
    replies = [client.recv(RTT_S) for _ in range(3)]
    assert replies == [(b"rd", [b"done"])] * 3, "client did not get every reply"


def test_request_of_a_worker_that_expires_goes_to_another_worker(broker, peers):
    endpoint = broker.endpoint
    doomed, survivor = peers.worker(endpoint), peers.worker(endpoint)
    register(endpoint, [doomed, survivor], "rx")
    client = peers.client(endpoint)
    client.send("rx", b"payload")
    got = wait_any([doomed, survivor], RTT_S)
    assert got is not None and got[0] == 0
    doomed.close()
    started = time.monotonic()
    again = survivor.recv(EXPIRY_BOUND_S + 1.0)
    elapsed = time.monotonic() - started
    assert again is not None, "request of the dead worker was not re-dispatched"
    assert again == (got[1], [b"payload"]), "re-dispatched request changed"
    print("\n[redispatch] request re-dispatched %.0f ms after its worker died" % (elapsed * 1000))
    survivor.reply(again[0], b"saved")
    assert client.recv(RTT_S) == (b"rx", [b"saved"])


def test_redispatched_request_goes_ahead_of_later_arrivals(broker, peers):
    endpoint = broker.endpoint
    doomed = peers.worker(endpoint)
    register(endpoint, [doomed], "front")
    first, second = peers.client(endpoint), peers.client(endpoint)
    first.send("front", b"early")
    assert doomed.recv(RTT_S) is not None
    second.send("front", b"later")
    assert wait_until(lambda: (services(endpoint) or {}).get("front", {}).get("queued") == 1,
                      RTT_S, pump=[doomed])
    doomed.disconnect()
    survivor = peers.worker(endpoint)
    survivor.ready("front")
    assert serve_one(survivor, b"r-early") == [b"early"]
    assert serve_one(survivor, b"r-later") == [b"later"]
    assert first.recv(RTT_S) == (b"front", [b"r-early"])
    assert second.recv(RTT_S) == (b"front", [b"r-later"])


def test_a_request_is_redispatched_at_most_twice(broker, peers):
    endpoint = broker.endpoint
    before = stats(endpoint)
    assert before is not None, "mmi.stats missing"
    client = peers.client(endpoint)
    client.send("poison", b"pill")
    for attempt in range(3):
        victim = peers.worker(endpoint)
        victim.ready("poison")
        got = victim.recv(RTT_S)
        assert got is not None and got[1] == [b"pill"], \
            "dispatch %d of the request did not happen" % (attempt + 1)
        victim.disconnect()
    last = peers.worker(endpoint)
    last.ready("poison")
    assert last.recv(QUIET_S * 2) is None, "request dispatched a fourth time"
    assert client.recv(0.1) is None
    after = stats(endpoint)
    assert after is not None, "mmi.stats missing"
    assert after["redispatched"] - before["redispatched"] == 2
    assert counter(after, "dropped", "redispatch_limit") \
        - counter(before, "dropped", "redispatch_limit") == 1


# --- mmi.stats ----------------------------------------------------------------------


def test_mmi_stats_reports_the_contract_keys_and_counts(broker, peers):
    endpoint = broker.endpoint
    first = stats(endpoint)
    assert first is not None, "mmi.stats gave no msgpack map"
    integer_keys = {"uptime_s", "requests", "replies", "redispatched", "invalid", "workers"}
    assert integer_keys | {"dropped", "services"} <= set(first), sorted(first)
    for key in integer_keys:
        assert isinstance(first[key], int) and first[key] >= 0, (key, first[key])
    assert {"expired", "queue_full", "redispatch_limit"} <= set(first["dropped"])
    assert all(isinstance(value, int) for value in first["dropped"].values())
    assert isinstance(first["services"], list)

    worker = peers.worker(endpoint)
    register(endpoint, [worker], "st")
    first = stats(endpoint)
    client = peers.client(endpoint)
    for number in range(3):
        client.send("st", b"%d" % number)
        serve_one(worker)
        assert client.recv(RTT_S) == (b"st", [b"ok"])
    bad = peers.worker(endpoint)
    bad.send_raw(b"", b"nonsense")
    assert bad.expect_disconnect(RTT_S)

    second = stats(endpoint)
    assert 3 <= second["requests"] - first["requests"] <= 5, (first, second)
    assert 3 <= second["replies"] - first["replies"] <= 5, (first, second)
    assert second["invalid"] - first["invalid"] >= 1
    assert second["workers"] == 1
    listed = {entry["name"]: entry for entry in second["services"]}
    assert "st" in listed, second["services"]
    entry = listed["st"]
    assert {"name", "workers", "idle", "queued", "requests", "mean_us", "p99_us"} <= set(entry)
    assert (entry["workers"], entry["idle"], entry["queued"]) == (1, 1, 0)
    assert entry["requests"] >= 3
    for key in ("mean_us", "p99_us"):
        assert isinstance(entry[key], int) and 0 < entry[key] < 10_000_000, (key, entry)
