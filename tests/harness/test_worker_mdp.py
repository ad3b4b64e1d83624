"""cartmq-worker against a plain MDP/0.1 broker written here on a pyzmq
ROUTER (contract section 3: "our worker must work with any conforming
broker"), with a real redis-server behind the worker."""

import time

import pytest
import zmq

import mdp
from mdp import DISCONNECT, HEARTBEAT, READY, REPLY, REQUEST, WORKER_HEADER
from support import EXPIRY_S, HB_MS, RTT_S, bound, free_port, pack, unpack

HB_S = HB_MS / 1000.0


class PlainBroker:
    """The broker side of RFC 7, driven step by step from the test."""

    def __init__(self):
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.sock = mdp.context().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)
        self.heartbeating = True
        self.workers = {}          # identity -> last heartbeat sent
        self.heartbeats = {}       # identity -> heartbeats received
        self.replies = []          # (identity, frames after the command)
        self.readies = []          # (identity, frames after the command)

    def close(self):
        self.sock.close(0)

    def send(self, identity, command, *frames):
        self.sock.send_multipart([identity, b"", WORKER_HEADER, command]
                                 + [mdp.as_bytes(frame) for frame in frames])
        self.workers[identity] = time.monotonic()

    def step(self, timeout):
        """Handles traffic for up to timeout s; heartbeats known workers."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self.heartbeating:
                for identity, last in list(self.workers.items()):
                    if now - last >= HB_S:
                        self.send(identity, HEARTBEAT)
            remaining = deadline - now
            if remaining <= 0:
                return
            if self.sock.poll(int(min(remaining, 0.02) * 1000)):
                self._file(self.sock.recv_multipart())

    def _file(self, frames):
        identity, rest = frames[0], frames[1:]
        assert len(rest) >= 3 and rest[0] == b"" and rest[1] == WORKER_HEADER, \
            "worker sent a malformed message: %r" % (rest[:5],)
        command = rest[2]
        if command == READY:
            self.readies.append((identity, rest[3:]))
            self.workers.setdefault(identity, 0.0)
        elif command == HEARTBEAT:
            assert len(rest) == 3, "HEARTBEAT with extra frames: %r" % (rest,)
            self.heartbeats[identity] = self.heartbeats.get(identity, 0) + 1
        elif command == REPLY:
            assert len(rest) >= 6 and rest[4] == b"", "malformed REPLY: %r" % (rest,)
            self.replies.append((identity, rest[3:]))
        elif command == DISCONNECT:
            self.workers.pop(identity, None)
        else:
            raise AssertionError("worker sent command %r" % (command,))

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            self.step(0.02)
        return True

    def wait_ready(self, count=1, timeout=RTT_S):
        assert self.wait(lambda: len(self.readies) >= count, timeout), \
            "worker sent %d READY, expected %d" % (len(self.readies), count)
        return self.readies[count - 1]


@pytest.fixture
def plain_broker():
    broker = PlainBroker()
    yield broker
    broker.close()


def get_request(user):
    return pack({"method": "GetCartItems", "user_id": user})


@pytest.mark.parametrize("concurrency,credit", [("1", []), ("4", [b"4"])])
def test_ready_carries_a_credit_frame_only_above_1(plain_broker, redis_server, start_worker,
                                                   concurrency, credit):
    start_worker(plain_broker.endpoint, redis_server.url, "--concurrency", concurrency,
                 wait=False)
    _, frames = plain_broker.wait_ready()
    assert frames == [b"cart"] + credit


def test_worker_heartbeats_an_idle_broker_once_per_interval(plain_broker, redis_server,
                                                            start_worker):
    start_worker(plain_broker.endpoint, redis_server.url, wait=False)
    identity, _ = plain_broker.wait_ready()
    plain_broker.step(8 * HB_S)
    count = plain_broker.heartbeats.get(identity, 0)
    assert 4 <= count <= 12, "%d heartbeats in 8 intervals" % count
    assert len(plain_broker.readies) == 1, "worker re-registered with a live broker"


def test_worker_serves_requests_from_a_plain_mdp_broker(plain_broker, redis_server,
                                                        start_worker):
    start_worker(plain_broker.endpoint, redis_server.url, wait=False)
    identity, _ = plain_broker.wait_ready()
    add = pack({"method": "AddItemToCart", "user_id": "olga",
                "item": {"id": "a", "name": "A", "quantity": 2, "price": 5}})
    plain_broker.send(identity, REQUEST, b"client-1", b"", add)
    assert plain_broker.wait(lambda: len(plain_broker.replies) == 1, RTT_S)
    plain_broker.send(identity, REQUEST, b"client-2", b"", get_request("olga"))
    assert plain_broker.wait(lambda: len(plain_broker.replies) == 2, RTT_S)
    (first_worker, first), (_, second) = plain_broker.replies
    assert first_worker == identity
    assert first[:2] == [b"client-1", b""] and len(first) == 3
    assert unpack(first[2]) == {"status": 200, "item_id": "a", "quantity": 2}
    assert second[:2] == [b"client-2", b""]
    assert unpack(second[2])["total"] == 10


def test_worker_with_concurrency_4_takes_four_requests_at_once(plain_broker, redis_server,
                                                               start_worker):
    start_worker(plain_broker.endpoint, redis_server.url, "--concurrency", "4", wait=False)
    identity, _ = plain_broker.wait_ready()
    for number in range(4):
        plain_broker.send(identity, REQUEST, b"c%d" % number, b"", get_request("pat"))
    assert plain_broker.wait(lambda: len(plain_broker.replies) == 4, RTT_S)
    assert sorted(frames[0] for _, frames in plain_broker.replies) == [b"c0", b"c1", b"c2", b"c3"]


def test_worker_registers_again_at_once_after_disconnect(plain_broker, redis_server,
                                                         start_worker):
    start_worker(plain_broker.endpoint, redis_server.url, wait=False)
    identity, _ = plain_broker.wait_ready()
    plain_broker.send(identity, DISCONNECT)
    plain_broker.workers.pop(identity, None)
    started = time.monotonic()
    plain_broker.wait_ready(2, RTT_S)
    print("\n[worker] READY again %.0f ms after DISCONNECT" % ((time.monotonic() - started) * 1000))


def test_worker_reconnects_when_the_broker_falls_silent(plain_broker, redis_server,
                                                        start_worker):
    start_worker(plain_broker.endpoint, redis_server.url, wait=False)
    first, _ = plain_broker.wait_ready()
    plain_broker.step(2 * HB_S)
    plain_broker.heartbeating = False
    silent_since = plain_broker.workers[first]  # the last thing the worker heard
    plain_broker.wait_ready(2, EXPIRY_S + HB_S + bound(2.0))
    elapsed = time.monotonic() - silent_since
    second, _ = plain_broker.readies[1]
    print("\n[worker] reconnected %.0f ms after the broker fell silent "
          "(liveness x interval = %.0f ms)" % (elapsed * 1000, EXPIRY_S * 1000))
    assert second != first, "worker did not reconnect with a fresh socket"
    assert elapsed >= EXPIRY_S - HB_S, "worker gave up on a broker silent for %.2fs" % elapsed


@pytest.mark.parametrize("frames", [
    [b"junk"],
    [b"", b"MDPX01", REQUEST, b"c", b"", b"x"],
    [b"", WORKER_HEADER, b"\x09"],
    [b"", WORKER_HEADER, REQUEST],
    [b"", WORKER_HEADER, REQUEST, b"c"],
    [b"", WORKER_HEADER, REQUEST, b"c", b"not-empty", b"x"],
    [b"", WORKER_HEADER, READY, b"cart"],
    [b"", WORKER_HEADER, REPLY, b"c", b"", b"x"],
    [b"", WORKER_HEADER, HEARTBEAT, b"extra"],
], ids=["junk", "bad-header", "bad-command", "request-no-address", "request-no-delimiter",
        "request-bad-delimiter", "ready-to-worker", "reply-to-worker", "heartbeat-extra"])
def test_worker_survives_malformed_broker_messages(plain_broker, redis_server, start_worker,
                                                   frames):
    worker = start_worker(plain_broker.endpoint, redis_server.url, wait=False)
    identity, _ = plain_broker.wait_ready()
    plain_broker.sock.send_multipart([identity] + frames)
    plain_broker.step(2 * HB_S)
    assert worker.alive(), "worker died on %r" % (frames,)
    assert plain_broker.replies == [], "worker replied to a malformed message"
    target = plain_broker.readies[-1][0]
    plain_broker.send(target, REQUEST, b"client", b"", get_request("quinn"))
    assert plain_broker.wait(lambda: len(plain_broker.replies) == 1, RTT_S), \
        "worker stopped serving after %r" % (frames,)
    assert unpack(plain_broker.replies[0][1][2])["status"] == 200


@pytest.mark.parametrize("body", [b"\xc1", b"", pack([1, 2]), pack({"method": "Nope"})],
                         ids=["not-msgpack", "empty", "array", "unknown-method"])
def test_worker_answers_a_bad_body_with_400(plain_broker, redis_server, start_worker, body):
    worker = start_worker(plain_broker.endpoint, redis_server.url, wait=False)
    identity, _ = plain_broker.wait_ready()
    plain_broker.send(identity, REQUEST, b"client", b"", body)
    assert plain_broker.wait(lambda: len(plain_broker.replies) == 1, RTT_S)
    reply = unpack(plain_broker.replies[0][1][2])
    assert reply["status"] == 400 and reply["error"]
    assert worker.alive()
