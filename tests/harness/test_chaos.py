"""Chaos (contract sections 3 and 5): nothing lost, nothing doubled.

Client threads make logical cart calls under steady load; each call carries
a request_id and is retried on a fresh socket until it gets a 200 (bounded).
Meanwhile workers are SIGKILLed and restarted, a worker is SIGSTOPped past
its expiry and SIGCONTed, redis-server is restarted once (keeping its data)
and the broker once (same port).  At the end every logical call got a 200
and every cart holds exactly what a model of the calls says.

The load and the acts of chaos are classes here so that the soak driver
(tests/soak/soak.py) runs the same mix for longer.
"""

import random
import signal
import threading
import time
from collections import Counter

import pytest

import mdp
from support import (EXPIRY_S, HB_MS, RTT_S, bound, pack, port_open, stats,
                     unpack, wait_until, wait_workers)

HB_S = HB_MS / 1000.0
#  Long enough that a re-dispatch after a worker's expiry usually rescues
#  an attempt; a broker restart still needs a retry.
ATTEMPT_S = bound(1.5)
#  A logical call that has no 200 after this long is a failure.
GIVE_UP_S = bound(30.0)
#  A SIGSTOPped worker stays stopped this long: past its expiry, plus the
#  broker's timer granularity and slack.
STOPPED_S = EXPIRY_S + 2 * HB_S + 0.3

ITEMS = ["sku-%d" % number for number in range(6)]


def price_of(item):
    return 100 + ITEMS.index(item)


def rss_kb(pid):
    """VmRSS of a process in kB, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class CallFailed(Exception):
    """A logical call that never got its 200."""


class CartLoad:
    """Client threads making logical cart calls, with retries.

    Each thread owns one user and a model of that user's cart; it adds,
    updates, removes, clears and reads (a read must match the model
    exactly), and adds 1 to one item of a user all threads share.  Every
    mutation carries a request_id, so a retried call applies once.  A
    timed-out attempt is retried on a fresh socket (MdpClient replaces it),
    a 503 or 504 after a short pause (a 504 mutation may have applied: its
    retry carries the same request_id, so it applies at most once, §4);
    any other status, or no 200 after GIVE_UP_S,
    is a failure, after which the thread re-reads its cart to carry on.
    """

    def __init__(self, endpoint, clients=4, prefix="chaos", seed=1,
                 attempt_s=ATTEMPT_S, give_up_s=GIVE_UP_S, pause_s=0.0):
        self.endpoint = endpoint
        self.clients = clients
        self.prefix = prefix
        self.seed = seed
        self.attempt_s = attempt_s
        self.give_up_s = give_up_s
        self.pause_s = pause_s
        self.shared_user = "%s-shared" % prefix
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.threads = []
        self.calls = Counter()  #  logical calls with a 200, by method
        self.attempts = 0
        self.retries = 0
        self.unavailable = 0  #  503 and 504 replies (storage), each retried
        self.failures = []
        self.models = {}  #  user -> {item: quantity}
        self.shared_adds = 0
        self.shared_uncertain = 0  #  shared adds that failed: 0 or 1 each
        self.shared_quantities = []

    # --- one logical call --------------------------------------------------

    def call(self, client, request):
        """The 200 reply to request; raises CallFailed."""
        deadline = time.monotonic() + self.give_up_s
        body = pack(request)
        attempt = 0
        while True:
            attempt += 1
            with self.lock:
                self.attempts += 1
                if attempt > 1:
                    self.retries += 1
            reply = None
            try:
                frames = client.request("cart", body, timeout=self.attempt_s)
            except mdp.ProtocolError as error:
                client.reconnect()
                raise CallFailed("protocol error: %s" % error)
            if frames is not None:
                if len(frames) != 1:
                    raise CallFailed("reply has %d frames" % len(frames))
                reply = unpack(frames[0])
                if not isinstance(reply, dict) or not isinstance(reply.get("status"), int):
                    raise CallFailed("reply is not a map with a status: %r" % (reply,))
                if reply["status"] == 200:
                    return reply
                if reply["status"] not in (503, 504):
                    raise CallFailed("status %d for %r: %r" % (reply["status"], request, reply))
            if time.monotonic() >= deadline:
                raise CallFailed("no 200 after %d attempts for %r" % (attempt, request))
            if reply is not None:  #  503 or 504: storage coming back
                with self.lock:
                    self.unavailable += 1
                time.sleep(min(0.05 * attempt, 0.5))

    # --- the threads ----------------------------------------------------------

    def _fail(self, text):
        with self.lock:
            self.failures.append(text)

    def _count(self, method):
        with self.lock:
            self.calls[method] += 1

    def _read_cart(self, client, user):
        """{item: quantity} from GetCartItems; checks names, prices, total."""
        reply = self.call(client, {"method": "GetCartItems", "user_id": user})
        cart = {}
        total = 0
        for item in reply.get("items", []):
            cart[item["id"]] = item["quantity"]
            total += item["quantity"] * item["price"]
            if item["id"] in ITEMS and (item["price"] != price_of(item["id"])
                                        or item["name"] != "name-" + item["id"]):
                raise CallFailed("item stored wrongly: %r" % (item,))
        if reply.get("total") != total:
            raise CallFailed("total %r, items sum to %d" % (reply.get("total"), total))
        return cart

    def _step(self, client, rng, user, model, request_id):
        """One logical call, checked against the model, which it updates."""
        roll = rng.random()
        present = sorted(model)
        if roll < 0.15:
            reply = self.call(client, {
                "method": "AddItemToCart", "user_id": self.shared_user,
                "request_id": request_id,
                "item": {"id": "hot", "name": "name-hot", "quantity": 1, "price": 1}})
            with self.lock:
                self.shared_adds += 1
                self.shared_quantities.append(reply["quantity"])
            return "shared-add"
        if roll < 0.55 or not present:
            item = rng.choice(ITEMS)
            quantity = rng.randint(1, 3)
            reply = self.call(client, {
                "method": "AddItemToCart", "user_id": user, "request_id": request_id,
                "item": {"id": item, "name": "name-" + item, "quantity": quantity,
                         "price": price_of(item)}})
            model[item] = model.get(item, 0) + quantity
            if reply != {"status": 200, "item_id": item, "quantity": model[item]}:
                raise CallFailed("add %s: reply %r, model says %d" % (item, reply, model[item]))
            return "add"
        if roll < 0.70:
            item = rng.choice(present)
            quantity = rng.randint(0, 5)
            reply = self.call(client, {
                "method": "UpdateItemQuantity", "user_id": user, "item_id": item,
                "quantity": quantity, "request_id": request_id})
            if quantity:
                model[item] = quantity
            else:
                del model[item]
            if reply != {"status": 200, "item_id": item, "quantity": quantity}:
                raise CallFailed("update %s: reply %r" % (item, reply))
            return "update"
        if roll < 0.80:
            item = rng.choice(present)
            reply = self.call(client, {
                "method": "RemoveItemFromCart", "user_id": user, "item_id": item,
                "request_id": request_id})
            del model[item]
            if reply != {"status": 200, "message": "Item removed"}:
                raise CallFailed("remove %s: reply %r" % (item, reply))
            return "remove"
        if roll < 0.83:
            reply = self.call(client, {"method": "ClearCart", "user_id": user,
                                       "request_id": request_id})
            model.clear()
            if reply != {"status": 200, "message": "Cart cleared"}:
                raise CallFailed("clear: reply %r" % (reply,))
            return "clear"
        cart = self._read_cart(client, user)
        if cart != model:
            raise CallFailed("cart of %s is %r, model says %r" % (user, cart, model))
        return "get"

    def _run(self, number):
        rng = random.Random(self.seed * 1000 + number)
        user = "%s-u%d" % (self.prefix, number)
        model = {}
        with self.lock:
            self.models[user] = model
        client = mdp.MdpClient(self.endpoint, timeout=self.attempt_s)
        sequence = 0
        try:
            while not self.stop_event.is_set():
                sequence += 1
                request_id = "%s-%d-%d" % (self.prefix, number, sequence)
                try:
                    self._count(self._step(client, rng, user, model, request_id))
                except CallFailed as error:
                    self._fail("client %d call %d: %s" % (number, sequence, error))
                    self._resync(client, user, model)
                if self.pause_s:
                    time.sleep(self.pause_s)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            self._fail("client %d crashed: %r" % (number, error))
        finally:
            client.close()

    def _resync(self, client, user, model):
        """After a failure the model is unknown: take the cart as it is.
        A shared add that failed may or may not have applied."""
        with self.lock:
            self.shared_uncertain += 1
        while not self.stop_event.is_set():
            try:
                cart = self._read_cart(client, user)
            except CallFailed:
                continue
            model.clear()
            model.update(cart)
            return

    def start(self):
        for number in range(self.clients):
            thread = threading.Thread(target=self._run, args=(number,),
                                      name="cart-load-%d" % number, daemon=True)
            self.threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout=None):
        """Stops the threads after their current call; True if all ended."""
        self.stop_event.set()
        deadline = time.monotonic() + (timeout or self.give_up_s + bound(10))
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    # --- the end ----------------------------------------------------------------

    def total_calls(self):
        return sum(self.calls.values())

    def verify(self):
        """Problems found comparing every cart with its model ([] if none)."""
        problems = []
        client = mdp.MdpClient(self.endpoint, timeout=self.attempt_s)
        try:
            for user, model in sorted(self.models.items()):
                cart = self._read_cart(client, user)
                if cart != model:
                    problems.append("cart of %s is %r, model says %r" % (user, cart, model))
            shared = self._read_cart(client, self.shared_user).get("hot", 0)
            low, high = self.shared_adds, self.shared_adds + self.shared_uncertain
            if not low <= shared <= high:
                problems.append("shared item holds %d, %d adds succeeded" % (shared, low))
            if sorted(self.shared_quantities) != sorted(set(self.shared_quantities)):
                problems.append("two shared adds got the same quantity back")
        except CallFailed as error:
            problems.append("final read failed: %s" % error)
        finally:
            client.close()
        return problems


class Chaos:
    """The acts of chaos on a running cluster.

    victims: the cart workers (support.Worker) that may be killed or
    stopped.  Counts what it did in `counts`; keeps the broker's counters
    from before its restart so re-dispatches can be summed.
    """

    def __init__(self, redis, broker, victims, rng, log=None):
        self.redis = redis
        self.broker = broker
        self.victims = victims
        self.rng = rng
        self.log = log or (lambda text: None)
        self.counts = Counter()
        self.earlier_stats = []  #  mmi.stats of brokers since stopped

    def kill_worker(self):
        victim = self.rng.choice(self.victims)
        victim.kill()
        self.counts["kills"] += 1
        self.log("SIGKILL %s, restarting it" % victim.name)
        victim.start()

    def stop_worker_past_expiry(self):
        victim = self.rng.choice(self.victims)
        self.log("SIGSTOP %s for %.2fs" % (victim.name, STOPPED_S))
        victim.send_signal(signal.SIGSTOP)
        try:
            time.sleep(STOPPED_S)
        finally:
            victim.send_signal(signal.SIGCONT)
        self.counts["stops"] += 1

    def restart_redis(self):
        """SHUTDOWN SAVE (the test server runs without save points, so a
        plain SIGTERM would lose the carts), then start it again on the
        same port; it loads the snapshot."""
        self.log("restarting redis-server")
        try:
            self.redis.client().shutdown(save=True)
        except Exception:  # noqa: BLE001 - the connection drops as it exits
            pass
        if self.redis.wait(bound(10)) is None:
            raise RuntimeError("redis-server did not shut down")
        wait_until(lambda: not port_open(self.redis.port), bound(5))
        self.redis.start()
        self.counts["redis_restarts"] += 1

    def restart_broker(self):
        """SIGTERM and start again on the same port; queued and in-flight
        requests are lost there, so clients must retry."""
        self.log("restarting the broker")
        snapshot = stats(self.broker.endpoint)
        if snapshot is not None:
            self.earlier_stats.append(snapshot)
        code = self.broker.stop()
        if code != 0:
            raise RuntimeError("broker exited %s on SIGTERM" % code)
        self.broker.start()
        self.counts["broker_restarts"] += 1

    def resume_all(self):
        """SIGCONT every victim (for teardown after a failure)."""
        for victim in self.victims:
            victim.send_signal(signal.SIGCONT)

    def broker_total(self, key, *path):
        """A counter of mmi.stats summed over every broker run so far."""
        total = 0
        current = stats(self.broker.endpoint)
        for snapshot in self.earlier_stats + ([current] if current else []):
            value = snapshot.get(key, 0)
            for step in path:
                value = value.get(step, 0) if isinstance(value, dict) else 0
            total += value if isinstance(value, int) else 0
        return total


def report(load, chaos, title="chaos"):
    """One summary line of counts."""
    return ("[%s] %d logical calls (%s), %d attempts, %d retries (%d after a 503/504), "
            "%d re-dispatches, %d dropped by the broker, %d worker kills, "
            "%d stops, %d redis restarts, %d broker restarts, %d failures"
            % (title, load.total_calls(),
               ", ".join("%s %d" % pair for pair in sorted(load.calls.items())),
               load.attempts, load.retries, load.unavailable,
               chaos.broker_total("redispatched"),
               sum(chaos.broker_total("dropped", reason)
                   for reason in ("expired", "queue_full", "redispatch_limit")),
               chaos.counts["kills"], chaos.counts["stops"],
               chaos.counts["redis_restarts"], chaos.counts["broker_restarts"],
               len(load.failures)))


# --- the chaos test ------------------------------------------------------------------


def test_every_call_gets_a_200_and_carts_are_exact_through_chaos(
        redis_server, start_broker, start_worker):
    broker = start_broker()
    endpoint = broker.endpoint
    workers = [start_worker(endpoint, redis_server.url),
               start_worker(endpoint, redis_server.url),
               start_worker(endpoint, redis_server.url, "--concurrency", "4")]
    started = time.monotonic()
    log = []

    def note(text):
        log.append("%6.2fs %s" % (time.monotonic() - started, text))

    chaos = Chaos(redis_server, broker, workers, random.Random(11), note)
    load = CartLoad(endpoint, clients=4, prefix="chaos").start()
    try:
        time.sleep(1.0)
        plan = ([chaos.kill_worker] * 3 + [chaos.stop_worker_past_expiry]
                + [chaos.kill_worker] * 2 + [chaos.restart_redis, chaos.kill_worker,
                                             chaos.restart_broker]
                + [chaos.kill_worker] * 2 + [chaos.stop_worker_past_expiry])
        for act in plan:
            act()
            time.sleep(0.8)
        time.sleep(1.0)
    finally:
        chaos.resume_all()
        ended = load.stop()
    assert ended, "client threads did not finish their calls"
    assert wait_workers(endpoint, "cart", len(workers), bound(5)), \
        "workers did not all come back"
    problems = load.verify()
    summary = report(load, chaos)
    print("\n" + summary + "\n" + "\n".join(log))
    assert not load.failures, "%d failed calls: %s" % (len(load.failures), load.failures[:5])
    assert not problems, problems
    assert chaos.counts["kills"] == 8 and chaos.counts["stops"] == 2
    assert load.total_calls() > 100, summary
    assert load.calls["get"] > 0 and load.calls["shared-add"] > 0, summary
    assert chaos.broker_total("redispatched") > 0, \
        "no request was re-dispatched: the chaos missed every request in flight"


# --- re-dispatch end to end ---------------------------------------------------------


def silent_workers(endpoint, count, service="cart"):
    """count pyzmq workers registered for service in order, so they are at
    the front of its ready-queue."""
    workers = []
    for number in range(count):
        worker = mdp.MdpWorker(endpoint, HB_MS)
        workers.append(worker)
        worker.ready(service)
        assert wait_workers(endpoint, service, number + 1, RTT_S, pump=workers), \
            "pyzmq worker %d did not register" % number
    return workers


@pytest.mark.parametrize("how", ["silent", "silent-twice", "disconnect", "vanish"])
def test_client_gets_its_reply_from_another_worker_without_retrying(
        redis_server, start_broker, start_worker, how):
    """A pyzmq worker takes the request and then dies (goes silent, says
    DISCONNECT, or closes its socket); the broker re-dispatches and the
    client, making one attempt only, gets its 200 from the cart worker."""
    broker = start_broker()
    endpoint = broker.endpoint
    takers = silent_workers(endpoint, 2 if how == "silent-twice" else 1)
    try:
        start_worker(endpoint, redis_server.url, wait=False)
        assert wait_workers(endpoint, "cart", len(takers) + 1, bound(5), pump=takers), \
            "cart worker did not register"
        before = stats(endpoint)
        request = {"method": "AddItemToCart", "user_id": "once", "request_id": "only-try",
                   "item": {"id": "sku", "name": "n", "quantity": 3, "price": 7}}
        with mdp.MdpClient(endpoint, timeout=bound(10)) as client:
            client.send("cart", pack(request))
            for number, taker in enumerate(takers):
                got = mdp.wait_any(takers, RTT_S)
                assert got is not None, "pyzmq worker %d got no request" % number
                index, _address, body = got
                assert index == number and body == [pack(request)], \
                    "request went to worker %d, expected %d" % (index, number)
                if how == "disconnect":
                    taker.disconnect()
                elif how == "vanish":
                    taker.close()
                else:
                    taker.go_silent()
            started = time.monotonic()
            reply = client.recv(bound(10))
            waited = time.monotonic() - started
        assert reply is not None, "no reply on the one attempt: request lost"
        assert reply[0] == b"cart" and len(reply[1]) == 1
        assert unpack(reply[1][0]) == {"status": 200, "item_id": "sku", "quantity": 3}
        for taker in takers:
            assert not taker.pending, "a dead worker was sent the request again"
        after = stats(endpoint)
        assert after["redispatched"] - before["redispatched"] == len(takers)
        assert after["replies"] - before["replies"] == 1
        with mdp.MdpClient(endpoint, timeout=RTT_S) as client:
            frames = client.request("cart", pack({"method": "GetCartItems",
                                                  "user_id": "once"}))
        assert frames is not None
        items = unpack(frames[0])["items"]
        assert [(item["id"], item["quantity"]) for item in items] == [("sku", 3)]
        print("\n[redispatch-%s] reply %.0f ms after the last taker died, "
              "%d re-dispatch(es)" % (how, waited * 1000, len(takers)))
    finally:
        for taker in takers:
            taker.close()
