"""The worker under failure (contract sections 2, 4 and 5, issue 13): honest
storage statuses, one registration per broker, a supervisor that never
abandons its healthy children, SIGHUP, and peer bytes escaped in its log.

Timing is made deterministic with SIGSTOP/SIGCONT and polling with
generous deadlines: a frozen redis-server holds a command in its socket
buffer (so the worker cannot know whether it ran), a frozen worker lets
a whole batch of requests pile up in its socket so that one pipeline
carries them all, and a frozen broker keeps its sockets open while it
says nothing.
"""

import os
import re
import signal
import time
from pathlib import Path

import mdp
from support import (EXPIRY_S, HB_MS, LIVENESS, RTT_S, SCALE, START_S,
                     CartClient, bound, listed_workers, pack, services, unpack,
                     wait_until, wait_workers)

#  "serves again within liveness x interval + 1 s" of a peer being back.
RECOVERY_S = bound(EXPIRY_S + 1.0)
#  A round trip that must not include an expiry: well under EXPIRY_S, so a
#  request handed to a phantom registration (which the broker only forgets
#  at expiry) misses it.  Not scaled: it measures the broker's timing.
NO_EXPIRY_RTT_S = 0.5
#  The worker's bound on one Redis call: heartbeat x liveness / 3.
REDIS_TIMEOUT_S = HB_MS * LIVENESS / 3 / 1000.0
#  Redis stays frozen this long: far past the worker's bound.
FROZEN_S = 1.0


def try_call(endpoint, request, timeout):
    """The reply map, or None if no reply came (fresh socket each time)."""
    with CartClient(endpoint, timeout=timeout) as cart:
        frames = cart.call_raw(pack(request), timeout)
    if frames is None or len(frames) != 1:
        return None
    return unpack(frames[0])


def add_request(user, item_id, quantity=1, price=100, request_id=None):
    request = {"method": "AddItemToCart", "user_id": user,
               "item": {"id": item_id, "name": "name-" + item_id,
                        "quantity": quantity, "price": price}}
    if request_id is not None:
        request["request_id"] = request_id
    return request


def get_request(user):
    return {"method": "GetCartItems", "user_id": user}


def assert_error(reply, status):
    assert reply is not None, "no reply where %d was due" % status
    assert reply["status"] == status, reply
    assert isinstance(reply.get("error"), str) and reply["error"], \
        "status %d without a readable error: %r" % (status, reply)
    assert set(reply) == {"status", "error"}, reply


def log_lines(proc):
    return [line for line in proc.stderr_text().splitlines()
            if line.strip() and not line.startswith("--- start")]


def count_log(proc, pattern):
    regex = re.compile(pattern)
    return sum(1 for line in log_lines(proc) if regex.search(line))


def wait_log(proc, pattern, timeout=RTT_S, at_least=1):
    return wait_until(lambda: count_log(proc, pattern) >= at_least, timeout)


def child_pids(pid):
    path = Path("/proc/%d/task/%d/children" % (pid, pid))
    try:
        return sorted(int(value) for value in path.read_text().split())
    except OSError:
        return []


def quantity_in_redis(redis, user, item_id):
    """The quantity Redis holds for an item, 0 if none; None if Redis does
    not answer."""
    try:
        value = redis.client().hget("cart:{%s}" % user, item_id)
    except Exception:  # noqa: BLE001 - not answering yet
        return None
    return 0 if value is None else int(value.split(b":", 1)[0])


def redis_answers(redis):
    try:
        return redis.client().ping()
    except Exception:  # noqa: BLE001
        return False


def served(endpoint, timeout=RTT_S):
    reply = try_call(endpoint, get_request("probe"), timeout)
    return reply is not None and reply["status"] == 200


class Concurrent:
    """Requests sent at once, each from its own client socket, so every
    reply is matched to its request by the socket it comes back on."""

    def __init__(self, endpoint, requests):
        self.clients = [mdp.MdpClient(endpoint) for _ in requests]
        self.requests = requests

    def send(self):
        for client, request in zip(self.clients, self.requests):
            client.send("cart", pack(request))

    def replies(self, timeout):
        result = []
        for client in self.clients:
            reply = client.recv(timeout)
            if reply is None:
                result.append(None)
                continue
            _service, frames = reply
            assert len(frames) == 1, frames
            result.append(unpack(frames[0]))
        return result

    def close(self):
        for client in self.clients:
            client.close()


def frozen_batch(worker, endpoint, requests, redis=None):
    """Sends requests while the worker is frozen, so they all wait in its
    socket and its next batch holds them; freezes redis too if given, then
    lets the worker go. Returns the replies, one per request."""
    batch = Concurrent(endpoint, requests)
    worker.send_signal(signal.SIGSTOP)
    try:
        batch.send()
        #  Every request is on its way to the worker (credit covers them
        #  all) once the broker lists it as busy; the bound stays far below
        #  the broker's expiry of the frozen worker.
        time.sleep(0.1)
        if redis is not None:
            redis.send_signal(signal.SIGSTOP)
    finally:
        worker.send_signal(signal.SIGCONT)
    try:
        return batch.replies(bound(5.0))
    finally:
        batch.close()


# --- 504: outcome unknown ---------------------------------------------------------


def test_add_in_flight_while_redis_is_frozen_is_504_and_its_retry_applies_once(cluster):
    """Issue 13 case 4: the EVALSHA is in Redis' socket buffer when the
    worker gives up, and runs when Redis resumes. The worker must not say
    503 (nothing applied); it says 504, and the retry with the same
    request_id gets the first reply while the quantity counts once."""
    redis = cluster.redis
    with CartClient(cluster.endpoint) as cart:
        assert cart.add("fay", "warm")["status"] == 200  #  connection made
    redis.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = try_call(cluster.endpoint,
                         add_request("fay", "a", quantity=3, request_id="rid-fay-1"),
                         bound(5.0))
        elapsed = time.monotonic() - started
        assert_error(reply, 504)
        assert "unknown" in reply["error"], reply
        assert elapsed < EXPIRY_S * SCALE + 0.5, "504 took %.2fs" % elapsed
        print("\n[504] add answered 504 after %.0f ms (Redis bound %.0f ms)"
              % (elapsed * 1000, REDIS_TIMEOUT_S * 1000))
        #  Reads cannot have changed anything: still 503.
        assert_error(try_call(cluster.endpoint, get_request("fay"), bound(5.0)), 503)
        time.sleep(max(0.0, FROZEN_S - (time.monotonic() - started)))
        assert listed_workers(cluster.endpoint) == 1, "worker expired while Redis hung"
    finally:
        redis.send_signal(signal.SIGCONT)
    #  The add that got 504 does run now, from Redis' buffer.
    assert wait_until(lambda: quantity_in_redis(redis, "fay", "a") == 3, bound(5.0)), \
        "the frozen add did not run after SIGCONT: %r" % quantity_in_redis(redis, "fay", "a")

    def retried():
        reply = try_call(cluster.endpoint,
                         add_request("fay", "a", quantity=3, request_id="rid-fay-1"), 0.5)
        return reply if reply is not None and reply["status"] == 200 else None

    first = wait_until(retried, RECOVERY_S)
    assert first == {"status": 200, "item_id": "a", "quantity": 3}, first
    again = try_call(cluster.endpoint,
                     add_request("fay", "a", quantity=3, request_id="rid-fay-1"), RTT_S)
    assert again == first, "the retry did not get the first reply word for word"
    cart = try_call(cluster.endpoint, get_request("fay"), RTT_S)
    assert {item["id"]: item["quantity"] for item in cart["items"]} == {"warm": 1, "a": 3}, \
        "the retried add was applied %r times" % cart


def test_stalled_pipeline_answers_504_or_503_per_request_and_no_stale_reply_later(
        redis_server, start_broker, start_worker):
    """--concurrency: one pipeline carries a whole batch into a frozen
    Redis. Every mutation whose answer did not come gets 504, every read
    503; the connection is dropped, so after SIGCONT no reply meant for
    the old batch is ever given to a new request."""
    broker = start_broker()
    worker = start_worker(broker.endpoint, redis_server.url, "--concurrency", "8",
                          "--verbose")
    assert served(broker.endpoint)
    users = ["pipe-%d" % number for number in range(6)]
    requests = [add_request(user, "item-" + user, quantity=number + 1,
                            request_id="rid-" + user)
                for number, user in enumerate(users)]
    requests += [get_request(users[0]), get_request(users[1])]
    try:
        replies = frozen_batch(worker, broker.endpoint, requests, redis=redis_server)
        for request, reply in zip(requests, replies):
            assert reply is not None, "no reply for %r" % (request,)
            assert_error(reply, 504 if request["method"] == "AddItemToCart" else 503)
        assert count_log(worker, r"batch requests=8\b") >= 1, \
            "the 8 requests did not go out as one batch:\n" + worker.log_tail()
        time.sleep(max(0.0, FROZEN_S - REDIS_TIMEOUT_S))
    finally:
        redis_server.send_signal(signal.SIGCONT)
    assert wait_until(lambda: redis_answers(redis_server), bound(5.0))

    #  Retries (same request_id) and new requests, again as one batch on
    #  the worker's new connection: each reply must be its own request's.
    retries = [add_request(user, "item-" + user, quantity=number + 1,
                           request_id="rid-" + user)
               for number, user in enumerate(users)]
    fresh = [add_request("pipe-new", "n", quantity=7, request_id="rid-new"),
             get_request(users[2])]

    def second_round():
        replies = frozen_batch(worker, broker.endpoint, retries + fresh)
        return replies if all(reply and reply["status"] == 200 for reply in replies) \
            else None

    replies = wait_until(second_round, RECOVERY_S, interval=0.1)
    assert replies, "the worker did not serve the batch again after SIGCONT"
    for number, (user, reply) in enumerate(zip(users, replies)):
        assert reply == {"status": 200, "item_id": "item-" + user, "quantity": number + 1}, \
            "reply %r answers another request than add %s x%d" % (reply, user, number + 1)
    assert replies[6] == {"status": 200, "item_id": "n", "quantity": 7}, replies[6]
    assert replies[7]["status"] == 200 and \
        [item["id"] for item in replies[7]["items"]] == ["item-" + users[2]], replies[7]
    for number, user in enumerate(users):
        assert quantity_in_redis(redis_server, user, "item-" + user) == number + 1, \
            "add for %s applied more than once" % user


def test_connection_refused_is_503_and_changes_nothing(cluster):
    """Where the worker knows nothing reached Redis (it cannot connect),
    the status stays 503."""
    cluster.redis.stop()
    assert_error(try_call(cluster.endpoint,
                          add_request("gus", "a", request_id="rid-gus"), bound(5.0)), 503)
    cluster.redis.start()
    assert wait_until(lambda: served(cluster.endpoint, 0.5), RECOVERY_S)
    assert try_call(cluster.endpoint, get_request("gus"), RTT_S) == \
        {"status": 200, "items": [], "total": 0}


def test_redis_error_reply_is_503_and_changes_nothing(cluster):
    """Redis refusing the command with an error reply (here -OOM: a
    maxmemory of 1 byte with noeviction refuses the script's first write,
    so nothing is written) answers 503, and nothing is applied."""
    client = cluster.redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    try:
        reply = try_call(cluster.endpoint, add_request("hal", "a", request_id="rid-hal"),
                         bound(5.0))
        assert_error(reply, 503)
        assert "OOM" in reply["error"], reply
    finally:
        client.config_set("maxmemory", "0")
    assert try_call(cluster.endpoint, get_request("hal"), RTT_S) == \
        {"status": 200, "items": [], "total": 0}
    #  And the request_id was not remembered: the retry applies.
    assert try_call(cluster.endpoint, add_request("hal", "a", request_id="rid-hal"),
                    RTT_S) == {"status": 200, "item_id": "a", "quantity": 1}


# --- one registration per broker -----------------------------------------------------


def registrations(endpoint, service="cart"):
    """Workers mmi.services lists for service (0 if unlisted), or None if
    the broker did not answer."""
    listing = services(endpoint, timeout=0.5 * SCALE)
    if listing is None:
        return None
    return listing.get(service, {}).get("workers", 0)


def watch_registrations(endpoint, want, settle_s, timeout):
    """Polls mmi.services: returns (first time the service lists want
    workers, every count seen) after watching settle_s more seconds past
    that, or (None, counts) if it never did within timeout."""
    seen = []
    started = time.monotonic()
    reached = None
    while True:
        now = time.monotonic()
        count = registrations(endpoint)
        if count is not None:
            seen.append(count)
            if count == want and reached is None:
                reached = now - started
        if reached is not None and now - started >= reached + settle_s:
            return reached, seen
        if reached is None and now - started >= timeout:
            return None, seen
        mdp.idle(0.03)


def echo_round_trips(endpoint, count):
    """count echo requests, one after another; True if each came back in
    time, without an expiry's wait."""
    with mdp.MdpClient(endpoint, timeout=NO_EXPIRY_RTT_S) as client:
        for number in range(count):
            body = b"ping-%d" % number
            if client.request("cart", body) != [body]:
                return False
    return True


def test_broker_restarted_nine_times_lists_each_worker_once(start_broker, start_worker):
    """Issue 13 case 9: the broker is SIGKILLed and started again on the
    same port 9 times, down for different spans (so the workers are
    caught in every phase of their reconnect backoff). After each restart
    mmi.services must reach exactly 2 workers for 2 processes, never list
    more, and requests are answered without waiting for an expiry."""
    broker = start_broker()
    workers = [start_worker(broker.endpoint, None, "--echo") for _ in range(2)]
    assert listed_workers(broker.endpoint) == 2
    downtimes = [0.0, 1.2, 2.6, 0.3, 3.4, 0.8, 2.0, 1.6, 3.0]
    recovered = []
    polls = 0
    for number, downtime in enumerate(downtimes):
        broker.kill()
        time.sleep(downtime)
        broker.start()
        reached, seen = watch_registrations(broker.endpoint, 2, 2 * EXPIRY_S + 0.5,
                                            RECOVERY_S + bound(1.0))
        assert reached is not None, "restart %d (down %.1fs): never 2 workers: %r" \
            % (number, downtime, seen)
        assert max(seen) <= 2, "restart %d (down %.1fs): phantom workers listed: %r" \
            % (number, downtime, seen)
        assert echo_round_trips(broker.endpoint, 4), \
            "restart %d (down %.1fs): a request waited for an expiry" % (number, downtime)
        recovered.append(reached)
        polls += len(seen)
    print("\n[restarts] 9 broker restarts, %d mmi.services polls, never more than 2 "
          "workers listed; both listed again %.0f..%.0f ms after each restart"
          % (polls, 1000 * min(recovered), 1000 * max(recovered)))
    assert all(worker.alive() and worker.starts == 1 for worker in workers)


def test_frozen_broker_is_left_by_liveness_and_joined_once_after_sigcont(
        start_broker, start_worker):
    """A broker that hangs without closing its sockets (SIGSTOP): the worker
    hears nothing, closes its socket after liveness x heartbeat and
    reconnects; after SIGCONT the broker lists it exactly once."""
    broker = start_broker()
    worker = start_worker(broker.endpoint, None, "--echo")
    before = count_log(worker, "reconnecting to broker")
    broker.send_signal(signal.SIGSTOP)
    try:
        assert wait_log(worker, "reconnecting to broker", bound(EXPIRY_S + 2.0),
                        at_least=before + 1), \
            "the worker did not notice the silent broker:\n" + worker.log_tail()
        time.sleep(2 * HB_MS / 1000.0)
    finally:
        broker.send_signal(signal.SIGCONT)
    reached, seen = watch_registrations(broker.endpoint, 1, 2 * EXPIRY_S + 0.5, RECOVERY_S)
    assert reached is not None, "the worker never registered again: %r" % seen
    assert max(seen) <= 1, "the worker is listed more than once: %r" % seen
    assert echo_round_trips(broker.endpoint, 2), "a request waited for an expiry"
    assert worker.alive() and worker.starts == 1


# --- the supervisor ----------------------------------------------------------------------


def worker_config(path, endpoint, redis_url, extra=""):
    path.write_text("worker\n    connect = \"%s\"\n    redis = \"%s\"\n"
                    "    heartbeat-ms = %d\n    liveness = %d\n%s"
                    % (endpoint, redis_url, HB_MS, LIVENESS, extra))
    return path


def test_supervisor_retries_a_child_that_cannot_restart_and_keeps_the_other_serving(
        tmp_path, redis_server, start_broker, start_worker):
    """Issue 13 case 12: w.cfg goes bad (a key no program knows) while the
    supervisor runs, then a child dies. Its restarts exit 2; the
    supervisor retries with backoff and logs it, the healthy child keeps
    serving, and once w.cfg is fixed the slot serves again."""
    broker = start_broker()
    config = worker_config(tmp_path / "w.cfg", broker.endpoint, redis_server.url)
    supervisor = start_worker(None, None, "--processes", "2", "--config", config,
                              heartbeat_ms=None, liveness=None, wait=False)
    assert wait_workers(broker.endpoint, "cart", 2, START_S)
    children = wait_until(lambda: len(child_pids(supervisor.pid)) == 2
                          and child_pids(supervisor.pid), RTT_S)
    assert children
    healthy, victim = children
    config.write_text(config.read_text() + "    colour = \"blue\"\n")
    supervisor_log_retries = r"child refused its settings .*retry_in_ms=\d+"
    os.kill(victim, signal.SIGKILL)
    assert wait_log(supervisor, supervisor_log_retries, bound(5.0), at_least=3), \
        "no retries logged:\n" + supervisor.log_tail()
    #  Meanwhile the healthy child serves and the supervisor is up.
    for _ in range(5):
        assert served(broker.endpoint), "the healthy child stopped serving"
    assert supervisor.alive(), "supervisor exited %s" % supervisor.returncode()
    assert healthy in child_pids(supervisor.pid), "the healthy child was stopped"
    assert wait_until(lambda: listed_workers(broker.endpoint) == 1, bound(3.0))
    #  The file is fixed: the slot is restarted and serves again.
    worker_config(config, broker.endpoint, redis_server.url)
    assert wait_workers(broker.endpoint, "cart", 2, bound(8.0)), \
        "the failing slot did not come back:\n" + supervisor.log_tail()
    assert healthy in child_pids(supervisor.pid)
    assert wait_until(lambda: len(child_pids(supervisor.pid)) == 2, RTT_S)
    assert served(broker.endpoint)
    assert supervisor.stop(signal.SIGTERM) == 0


def test_bad_settings_at_the_supervisors_own_start_still_exit_2(
        tmp_path, start_broker, start_worker):
    broker = start_broker()
    config = worker_config(tmp_path / "w.cfg", broker.endpoint, "redis://127.0.0.1:1/0",
                           "    colour = \"blue\"\n")
    supervisor = start_worker(None, None, "--processes", "2", "--config", config,
                              heartbeat_ms=None, liveness=None, wait=False)
    assert supervisor.wait(bound(5.0)) == 2
    #  A setting only a child can check (its endpoint) fails every child at
    #  once: still a refusal at start, exit 2 rather than retry forever.
    supervisor = start_worker(None, None, "--processes", "2", "--connect", "garbage",
                              "--echo", heartbeat_ms=None, liveness=None, wait=False)
    assert supervisor.wait(bound(5.0)) == 2


def test_sighup_stops_neither_a_worker_nor_a_supervisor_nor_its_children(
        redis_server, start_broker, start_worker):
    broker = start_broker()
    plain = start_worker(broker.endpoint, redis_server.url)
    supervisor = start_worker(broker.endpoint, redis_server.url, "--processes", "2")
    children = wait_until(lambda: len(child_pids(supervisor.pid)) == 2
                          and child_pids(supervisor.pid), RTT_S)
    assert children
    for target in (plain, supervisor):
        target.send_signal(signal.SIGHUP)
        assert wait_log(target, "SIGHUP"), "no log line for SIGHUP:\n" + target.log_tail()
    time.sleep(0.5)
    assert plain.alive(), "SIGHUP stopped the worker (exit %s)" % plain.returncode()
    assert supervisor.alive(), "SIGHUP stopped the supervisor (exit %s)" \
        % supervisor.returncode()
    assert child_pids(supervisor.pid) == children, "SIGHUP stopped a child"
    assert listed_workers(broker.endpoint) == 3
    for _ in range(6):
        assert served(broker.endpoint)
    assert plain.starts == 1 and supervisor.stop(signal.SIGTERM) == 0


# --- peer bytes in the log -----------------------------------------------------------


def test_peer_bytes_in_the_workers_log_are_escaped(cluster, start_worker):
    """A refused request's reason quotes the peer's method name; in the log
    its quote and backslash bytes are escaped, so no field can be forged."""
    worker = start_worker(cluster.endpoint, cluster.redis.url, "--verbose")
    forged = 'x" forged="1\\'
    for _ in range(4):  #  both workers, by rotation
        reply = try_call(cluster.endpoint, {"method": forged, "user_id": "ian"}, RTT_S)
        assert reply["status"] == 400
    assert wait_log(worker, "request refused"), worker.log_tail()
    lines = [line for line in log_lines(worker) if "request refused" in line]
    assert lines and not any('forged="1' in line for line in lines), lines
    assert any(r"\x22" in line for line in lines), lines
