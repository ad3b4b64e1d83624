"""The broker's routing under failure (issue 13; contract sections 3 and 5).

Real cartmq-broker, pyzmq MDP peers from mdp.py.  Each test is a case that
went wrong before: a credit worker answering out of order, re-dispatch
reordering a queue, a queued request outliving its timeout, peer bytes in
log lines, worker-less services locking out new ones, mmi.stats not adding
up, and the small ones (credit frames with leading zeros, mmi.service with
a NUL, invalid client messages, one log line per drop).
"""

import re
import time

import pytest
import zmq

import mdp
from mdp import CLIENT_HEADER
from support import (RTT_S, SCALE, bound, round_trip_ok, service_status, services,
                     stats, wait_until, wait_workers)
from test_bounds import peers  # noqa: F401  (the shared fixture)

#  How long "nothing arrives" is watched for.
QUIET_S = 0.3 * SCALE


def dropped(snapshot, reason):
    return snapshot["dropped"].get(reason, 0)


def assert_serving(endpoint):
    problem = round_trip_ok(endpoint)
    assert problem == "", "broker stopped serving: " + problem


def take(worker, body, timeout=RTT_S):
    """The next REQUEST's address, checking its body."""
    got = worker.recv(timeout)
    assert got is not None, "worker got no request (expected %r)" % body
    address, frames = got
    assert frames == [body], "worker got %r, expected %r" % (frames, body)
    return address


def assert_identity(snapshot):
    """requests = replies + sum(dropped) + queued + in flight (section 3)."""
    queued = sum(entry["queued"] for entry in snapshot["services"])
    assert snapshot["queued"] == queued, snapshot
    total = (snapshot["replies"] + sum(snapshot["dropped"].values())
             + snapshot["queued"] + snapshot["in_flight"])
    assert snapshot["requests"] == total, snapshot


# --- 1: a reply names its own request --------------------------------------------------


def test_credit_worker_answering_out_of_order_loses_and_doubles_nothing(start_broker, peers):
    """Credit 2 holds R1 and R2 of one client, replies to R2, then says
    DISCONNECT: R2's client got its reply once, R1 is the one re-dispatched
    and answered."""
    endpoint = start_broker().endpoint
    first = peers.worker(endpoint)
    first.ready("ooo", credit=2)
    assert wait_workers(endpoint, "ooo", 1, RTT_S, pump=[first])
    before = stats(endpoint)
    client = peers.client(endpoint)
    client.send("ooo", b"R1")
    take(first, b"R1")
    client.send("ooo", b"R2")
    second_address = take(first, b"R2")
    first.reply(second_address, b"A2")
    assert client.recv(RTT_S) == (b"ooo", [b"A2"])
    first.disconnect()

    other = peers.worker(endpoint)
    other.ready("ooo")
    got = other.recv(RTT_S)
    assert got is not None, "R1 was lost"
    assert got[1] == [b"R1"], "re-dispatched %r, which was answered already" % got[1]
    other.reply(got[0], b"A1")
    assert client.recv(RTT_S) == (b"ooo", [b"A1"])
    assert other.recv(QUIET_S) is None, "a request was sent twice"
    assert client.recv(QUIET_S) is None, "a reply came twice"
    after = stats(endpoint)
    assert after["replies"] - before["replies"] == 2
    assert after["redispatched"] - before["redispatched"] == 1


def test_replies_in_reverse_order_each_reach_their_own_request(start_broker, peers):
    endpoint = start_broker().endpoint
    worker = peers.worker(endpoint)
    worker.ready("rev", credit=3)
    assert wait_workers(endpoint, "rev", 1, RTT_S, pump=[worker])
    clients = [peers.client(endpoint) for _ in range(2)]
    order = [(clients[0], b"q0"), (clients[1], b"q1"), (clients[0], b"q2")]
    addresses = []
    for client, body in order:
        client.send("rev", body)
        addresses.append(take(worker, body))
    for (client, body), address in reversed(list(zip(order, addresses))):
        worker.reply(address, b"a" + body[1:])
        assert client.recv(RTT_S) == (b"rev", [b"a" + body[1:]])
    #  A token answered once is no longer a request: invalid traffic.
    worker.reply(addresses[0], b"again")
    assert worker.expect_disconnect(RTT_S), "a second REPLY with one token was accepted"
    assert clients[0].recv(QUIET_S) is None


# --- 2: re-dispatch keeps first-arrival order ------------------------------------------


def test_redispatched_requests_keep_their_order_of_first_arrival(start_broker, peers):
    """R1 to w1, R2 to w2; w1 then w2 say DISCONNECT: the next worker gets
    R1 first, then R2."""
    endpoint = start_broker().endpoint
    w1, w2 = peers.worker(endpoint), peers.worker(endpoint)
    w1.ready("order")
    assert wait_workers(endpoint, "order", 1, RTT_S, pump=[w1])
    w2.ready("order")
    assert wait_workers(endpoint, "order", 2, RTT_S, pump=[w1, w2])
    client = peers.client(endpoint)
    client.send("order", b"R1")
    take(w1, b"R1")
    client.send("order", b"R2")
    take(w2, b"R2")
    w1.disconnect()
    assert wait_until(lambda: (services(endpoint) or {}).get("order", {}).get("queued") == 1,
                      RTT_S, pump=[w2])
    w2.disconnect()
    assert wait_until(lambda: (services(endpoint) or {}).get("order", {}).get("queued") == 2,
                      RTT_S)
    w3 = peers.worker(endpoint)
    w3.ready("order")
    address = take(w3, b"R1")
    w3.reply(address, b"A1")
    assert client.recv(RTT_S) == (b"order", [b"A1"])
    address = take(w3, b"R2")
    w3.reply(address, b"A2")
    assert client.recv(RTT_S) == (b"order", [b"A2"])


# --- 3: the queue timeout holds wherever a request sits --------------------------------


def test_request_behind_a_younger_one_is_dropped_at_its_timeout(start_broker, peers):
    """--queue-timeout-ms 4000: R1 (t=0) and R2 (t=2 s) both come back to
    the queue; R1 is dropped at about 4 s, and a worker arriving between
    R1's and R2's timeouts gets R2 only."""
    endpoint = start_broker("--queue-timeout-ms", "4000").endpoint
    w1, w2 = peers.worker(endpoint), peers.worker(endpoint)
    w1.ready("late")
    assert wait_workers(endpoint, "late", 1, RTT_S, pump=[w1])
    w2.ready("late")
    assert wait_workers(endpoint, "late", 2, RTT_S, pump=[w1, w2])
    first, second = peers.client(endpoint), peers.client(endpoint)
    started = time.monotonic()
    first.send("late", b"R1")
    take(w1, b"R1")
    mdp.idle(max(0.0, started + 2.0 - time.monotonic()))
    second.send("late", b"R2")
    take(w2, b"R2")
    #  w1 first: a broker that put re-dispatched requests at the front
    #  would queue R2 ahead of R1 and look only at R2's age.
    w1.disconnect()
    w2.disconnect()
    assert wait_until(lambda: (services(endpoint) or {}).get("late", {}).get("queued") == 2,
                      RTT_S)
    before = dropped(stats(endpoint), "expired")

    def r1_dropped():
        snapshot = stats(endpoint, timeout=0.5 * SCALE)
        return snapshot is not None and dropped(snapshot, "expired") > before and snapshot

    snapshot = wait_until(r1_dropped, started + 4.0 + bound(0.6) - time.monotonic())
    elapsed = time.monotonic() - started
    assert snapshot, "R1 was still queued %.1f s after it arrived" % elapsed
    assert elapsed >= 3.9, "R1 was dropped early, at %.1f s" % elapsed
    assert dropped(snapshot, "expired") == before + 1, "R2 was dropped with R1"
    late = peers.worker(endpoint)
    late.ready("late", credit=2)
    assert time.monotonic() - started < 5.8, "test too slow: R2's timeout is near"
    take(late, b"R2")
    assert late.recv(QUIET_S) is None, "R1 was handed out after its timeout"
    assert first.recv(0.1) is None


# --- 7: peer bytes in logs are escaped -------------------------------------------------


def test_service_names_with_newlines_cannot_forge_log_lines(start_broker, peers):
    broker = start_broker("--queue-timeout-ms", "300", "--verbose")
    endpoint = broker.endpoint
    worker = peers.worker(endpoint)
    worker.ready(b"evil\nE: forged ready")
    assert wait_until(lambda: "evil\\x0aE: forged ready" in broker.stderr_text(), RTT_S,
                      pump=[worker]), broker.log_tail()
    client = peers.client(endpoint)
    client.send(b"gone\nE: forged drop", b"x")
    assert wait_until(lambda: "service=gone\\x0aE: forged drop count=1" in broker.stderr_text(),
                      bound(3.0), pump=[worker]), broker.log_tail()
    lines = broker.stderr_text().splitlines()
    forged = [line for line in lines if line.startswith("E: forged")]
    assert not forged, forged
    assert all(re.match(r"^([EWID]: \(cartmq-broker\)|--- start)", line) for line in lines), \
        [line for line in lines if not re.match(r"^([EWID]: \(cartmq-broker\)|--- start)", line)]


# --- 10: services with only queued requests give way ----------------------------------


def test_worker_less_services_never_lock_out_a_ready(start_broker, peers):
    """--max-services 20, a client fills all 20 with names nobody serves:
    a READY for a new service still registers (one of them gives way, its
    request dropped as no_service); a client request for yet another new
    name is dropped."""
    endpoint = start_broker("--max-services", "20", "--queue-timeout-ms", "60000").endpoint
    before = stats(endpoint)
    client = peers.client(endpoint)
    for number in range(20):
        client.send("ghost-%d" % number, b"x")
    assert wait_until(lambda: len(services(endpoint) or {}) == 20, RTT_S)
    worker = peers.worker(endpoint)
    worker.ready("real")
    assert wait_workers(endpoint, "real", 1, RTT_S, pump=[worker]), \
        "READY was refused while services only had queued requests"
    assert worker.disconnects_received == 0
    listing = services(endpoint)
    assert len(listing) == 20 and "real" in listing
    assert dropped(stats(endpoint), "no_service") - dropped(before, "no_service") == 1
    client.send("real", b"hello")
    address = take(worker, b"hello")
    worker.reply(address, b"hi")
    assert client.recv(RTT_S) == (b"real", [b"hi"])
    #  A client still cannot make a service at the limit.
    client.send("newcomer", b"x")
    assert wait_until(lambda: dropped(stats(endpoint), "no_service")
                      - dropped(before, "no_service") == 2, RTT_S, pump=[worker])
    assert "newcomer" not in services(endpoint)


def test_a_service_whose_last_worker_died_gives_way_too(start_broker, peers):
    endpoint = start_broker("--max-services", "2", "--queue-timeout-ms", "60000").endpoint
    cart, other = peers.worker(endpoint), peers.worker(endpoint)
    cart.ready("cart")
    other.ready("other")
    assert wait_workers(endpoint, "other", 1, RTT_S, pump=[cart, other])
    assert wait_workers(endpoint, "cart", 1, RTT_S, pump=[cart, other])
    client = peers.client(endpoint)
    client.send("cart", b"waits")
    take(cart, b"waits")
    cart.disconnect()
    assert wait_until(lambda: (services(endpoint) or {}).get("cart", {}).get("workers") == 0,
                      RTT_S, pump=[other])
    third = peers.worker(endpoint)
    third.ready("third")
    assert wait_workers(endpoint, "third", 1, RTT_S, pump=[other, third])
    assert third.disconnects_received == 0
    assert "cart" not in services(endpoint)


# --- 11: mmi.stats adds up -------------------------------------------------------------


def test_stats_identity_holds_after_10000_requests_with_drops(start_broker, start_worker):
    """6,000 to an echo worker (whose queue overflows), 3,000 to a service
    nobody serves (50 wait and expire, the rest queue_full), 1,000 to new
    names past --max-services (no_service): the identity holds in the
    middle of the run and once everything settled."""
    broker = start_broker("--max-queued", "50", "--max-services", "4",
                          "--queue-timeout-ms", "3000")
    endpoint = broker.endpoint
    start_worker(endpoint, None, "--echo", "--service", "echo", "--concurrency", "4")
    before = stats(endpoint)
    assert_identity(before)
    sock = mdp.context().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    replies = 0
    try:
        for number in range(10000):
            kind = number % 10
            service = (b"echo" if kind < 6 else b"nobody" if kind < 9
                       else b"n-%d" % number)
            sock.send_multipart([b"", CLIENT_HEADER, service, b"%d" % number])
            while sock.poll(0):
                sock.recv_multipart()
                replies += 1
        middle = stats(endpoint)
        assert_identity(middle)
        after = None
        deadline = time.monotonic() + bound(10.0) + 3.0
        while time.monotonic() < deadline:
            while sock.poll(50):
                sock.recv_multipart()
                replies += 1
            snapshot = stats(endpoint)
            if (snapshot["queued"] == 0 and snapshot["in_flight"] == 0
                    and snapshot["replies"] - before["replies"] == replies):
                after = snapshot
                break
    finally:
        sock.close(0)
    assert after, "requests still queued or in flight well after the timeout"
    assert_identity(after)
    assert after["requests"] - before["requests"] == 10000
    assert replies >= 50
    assert dropped(after, "queue_full") - dropped(before, "queue_full") >= 2900
    assert dropped(after, "no_service") - dropped(before, "no_service") >= 900
    assert dropped(after, "expired") - dropped(before, "expired") >= 50


# --- 15: small ones --------------------------------------------------------------------


@pytest.mark.parametrize("credit", ["00016", "0000000016"])
def test_ready_credit_with_leading_zeros_is_accepted(start_broker, peers, credit):
    endpoint = start_broker().endpoint
    worker = peers.worker(endpoint)
    worker.ready("padded", credit)
    assert wait_workers(endpoint, "padded", 1, RTT_S, pump=[worker])
    client = peers.client(endpoint)
    for number in range(3):
        client.send("padded", b"%d" % number)
    addresses = [take(worker, b"%d" % number) for number in range(3)]
    for address in addresses:
        worker.reply(address, b"ok")
    for _ in range(3):
        assert client.recv(RTT_S) == (b"padded", [b"ok"])
    assert worker.disconnects_received == 0


@pytest.mark.parametrize("credit", ["00000000016", "0000000000", "4294967312"])
def test_ready_credit_of_eleven_digits_or_zero_gets_disconnect(start_broker, peers, credit):
    endpoint = start_broker().endpoint
    worker = peers.worker(endpoint)
    worker.ready("padded", credit)
    assert worker.expect_disconnect(RTT_S), "no DISCONNECT for credit %r" % credit
    assert service_status(endpoint, "padded") == b"404"


def test_mmi_service_compares_the_whole_body_frame(start_broker, peers):
    endpoint = start_broker().endpoint
    worker = peers.worker(endpoint)
    worker.ready("cart")
    assert wait_workers(endpoint, "cart", 1, RTT_S, pump=[worker])
    assert service_status(endpoint, "cart") == b"200"
    assert service_status(endpoint, b"cart\0junk") == b"404"
    assert service_status(endpoint, b"cart\0") == b"404"
    assert service_status(endpoint, b"car") == b"404"


CLIENT_INVALID = {
    "no-body": [b"", CLIENT_HEADER, b"echo"],
    "no-service": [b"", CLIENT_HEADER],
    "empty-service": [b"", CLIENT_HEADER, b"", b"body"],
    "long-service": [b"", CLIENT_HEADER, b"n" * 256, b"body"],
    "too-many-frames": [b"", CLIENT_HEADER, b"echo"] + [b""] * 1021,
}


@pytest.mark.parametrize("case", sorted(CLIENT_INVALID))
def test_invalid_client_message_is_dropped_and_never_answered(start_broker, peers, case):
    """Dropped, counted as invalid, not a request; the client is sent
    nothing (no DISCONNECT: that is for workers) and can go on."""
    broker = start_broker()
    endpoint = broker.endpoint
    worker = peers.worker(endpoint)
    worker.ready("echo")
    assert wait_workers(endpoint, "echo", 1, RTT_S, pump=[worker])
    before = stats(endpoint)
    dealer = peers.dealer(endpoint)
    dealer.send_multipart(CLIENT_INVALID[case])
    assert wait_until(lambda: stats(endpoint)["invalid"] > before["invalid"], RTT_S,
                      pump=[worker]), "invalid counter did not move"
    #  Polled in steps so that the worker keeps heartbeating meanwhile.
    if wait_until(lambda: dealer.poll(0), QUIET_S, pump=[worker]):
        pytest.fail("the client was sent %r" % (dealer.recv_multipart()[:4],))
    assert worker.recv(0.1) is None
    after = stats(endpoint)
    assert after["invalid"] - before["invalid"] == 1
    assert after["requests"] == before["requests"]
    #  The same connection still gets served.
    dealer.send_multipart([b"", CLIENT_HEADER, b"echo", b"fine"])
    address = take(worker, b"fine")
    worker.reply(address, b"ok")
    assert wait_until(lambda: dealer.poll(0), RTT_S, pump=[worker]), \
        "the client was not served after"
    assert dealer.recv_multipart() == [b"", CLIENT_HEADER, b"echo", b"ok"]
    assert "client message dropped" in broker.stderr_text() or wait_until(
        lambda: "client message dropped" in broker.stderr_text(), bound(2.0), pump=[worker])


def drop_lines(broker):
    return [line for line in broker.stderr_text().splitlines() if "requests dropped" in line]


def summed(lines, reason):
    total = 0
    for line in lines:
        match = re.search(r"reason=%s service=\S+ count=(\d+)" % reason, line)
        if match:
            total += int(match.group(1))
    return total


def test_5000_drops_write_a_handful_of_log_lines(start_broker, peers):
    broker = start_broker("--max-queued", "1", "--queue-timeout-ms", "500")
    endpoint = broker.endpoint
    before = stats(endpoint)
    sock = peers.dealer(endpoint)
    for number in range(5000):
        sock.send_multipart([b"", CLIENT_HEADER, b"full", b"%d" % number])
    assert wait_until(lambda: dropped(stats(endpoint), "queue_full")
                      - dropped(before, "queue_full") == 4999, bound(5.0))
    assert wait_until(lambda: summed(drop_lines(broker), "queue_full") == 4999
                      and summed(drop_lines(broker), "expired") == 1, bound(3.0)), \
        broker.log_tail()
    lines = drop_lines(broker)
    assert len(lines) <= 6, lines
