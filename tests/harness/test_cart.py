"""The cart service end to end (contract sections 4 and 5): a pyzmq MDP
client sends msgpack bodies through the real broker to real cartmq-worker
processes backed by a real redis-server.
"""

import random
import signal
import threading
import time

import pytest

import mdp
from support import (EXPIRY_S, RTT_S, SCALE, CartClient, bound, listed_workers,
                     pack, sample, unlisted, unpack, wait_until, wait_workers)

MAX_PRICE = 2**31 - 1
#  "serves again within liveness x interval + 1 s" of Redis or the broker
#  being back.
RECOVERY_S = bound(EXPIRY_S + 1.0)


def try_call(endpoint, request, timeout):
    """The reply map, or None if no reply came (fresh socket each time)."""
    with CartClient(endpoint, timeout=timeout) as cart:
        frames = cart.call_raw(pack(request), timeout)
    if frames is None or len(frames) != 1:
        return None
    return unpack(frames[0])


def add_request(user, item_id, quantity=1, price=100, name=None, request_id=None):
    request = {"method": "AddItemToCart", "user_id": user,
               "item": {"id": item_id, "name": name or "name-" + item_id,
                        "quantity": quantity, "price": price}}
    if request_id is not None:
        request["request_id"] = request_id
    return request


def assert_error(reply, status):
    assert reply["status"] == status, reply
    assert isinstance(reply.get("error"), str) and reply["error"], \
        "status %d without a readable error: %r" % (status, reply)


@pytest.fixture
def cart(cluster):
    with cluster.cart() as client:
        yield client


# --- every method, exact replies ---------------------------------------------------


def test_add_replies_item_id_and_new_quantity_and_takes_the_new_name_and_price(cart):
    assert cart.add("alice", "sku-1", quantity=2, price=150, name="Pen") \
        == {"status": 200, "item_id": "sku-1", "quantity": 2}
    assert cart.add("alice", "sku-1", quantity=3, price=175, name="Blue pen") \
        == {"status": 200, "item_id": "sku-1", "quantity": 5}
    assert cart.get("alice") == {
        "status": 200,
        "items": [{"id": "sku-1", "name": "Blue pen", "quantity": 5, "price": 175}],
        "total": 875}


def test_get_of_an_unknown_user_is_an_empty_cart(cart):
    assert cart.get("nobody") == {"status": 200, "items": [], "total": 0}


def test_items_are_sorted_by_id_in_byte_order(cart):
    ids = ["b", "a", "B", "\u00e4", "aa", "a0", "Z9", "0", "~"]
    for number, item_id in enumerate(ids):
        assert cart.add("sorter", item_id, quantity=1, price=number)["status"] == 200
    reply = cart.get("sorter")
    assert [item["id"] for item in reply["items"]] == sorted(ids, key=lambda s: s.encode())
    assert reply["total"] == sum(range(len(ids)))


def test_total_is_exact_in_64_bits(cart):
    """5 x 999,999 x (2^31-1) is odd and above 2^53: a double cannot hold it."""
    for number in range(5):
        assert cart.add("rich", "i%d" % number, quantity=999_999, price=MAX_PRICE)["status"] == 200
    reply = cart.get("rich")
    assert reply["total"] == 5 * 999_999 * MAX_PRICE
    assert reply["total"] > 2**53
    assert all(item["price"] == MAX_PRICE for item in reply["items"])


def test_get_items_carry_exactly_id_name_quantity_price(cart):
    cart.add("keys", "x", quantity=4, price=25, name="Thing")
    reply = cart.get("keys")
    assert set(reply) == {"status", "items", "total"}
    assert reply["items"] == [{"id": "x", "name": "Thing", "quantity": 4, "price": 25}]


def test_remove_replies_item_removed_and_removes_only_that_item(cart):
    cart.add("bob", "a", quantity=1, price=10)
    cart.add("bob", "b", quantity=2, price=20)
    assert cart.remove("bob", "a") == {"status": 200, "message": "Item removed"}
    assert cart.get("bob")["items"] == [{"id": "b", "name": "name-b", "quantity": 2, "price": 20}]


def test_update_sets_the_quantity_and_zero_removes(cart):
    cart.add("carol", "a", quantity=1, price=10)
    cart.add("carol", "b", quantity=1, price=7)
    assert cart.update("carol", "a", 9) == {"status": 200, "item_id": "a", "quantity": 9}
    assert cart.get("carol")["total"] == 9 * 10 + 7
    assert cart.update("carol", "a", 0) == {"status": 200, "item_id": "a", "quantity": 0}
    assert cart.get("carol") == {
        "status": 200, "items": [{"id": "b", "name": "name-b", "quantity": 1, "price": 7}],
        "total": 7}


def test_clear_replies_cart_cleared_and_empties_the_cart(cart):
    cart.add("dave", "a")
    cart.add("dave", "b")
    assert cart.clear("dave") == {"status": 200, "message": "Cart cleared"}
    assert cart.get("dave") == {"status": 200, "items": [], "total": 0}
    assert cart.clear("dave") == {"status": 200, "message": "Cart cleared"}


def test_carts_of_different_users_are_separate(cart):
    cart.add("u1", "a", quantity=1, price=1)
    cart.add("u2", "a", quantity=5, price=1)
    cart.clear("u1")
    assert cart.get("u2")["total"] == 5


# --- 404 and 409 ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["remove", "update"])
def test_missing_item_is_404_and_changes_nothing(cart, method):
    cart.add("erin", "a", quantity=2, price=3)
    before = cart.get("erin")
    if method == "remove":
        reply = cart.remove("erin", "ghost")
    else:
        reply = cart.update("erin", "ghost", 4)
    assert_error(reply, 404)
    assert cart.get("erin") == before
    if method == "remove":
        assert_error(cart.remove("nobody-at-all", "ghost"), 404)


def test_the_1001st_distinct_item_is_409_and_changes_nothing(cart, cluster):
    user = "hoarder"
    with mdp.MdpClient(cluster.endpoint, timeout=bound(10)) as client:
        for start in range(0, 1000, 50):
            for number in range(start, start + 50):
                client.send("cart", pack(add_request(user, "item-%04d" % number, price=1)))
            for _ in range(50):
                reply = client.recv(bound(10))
                assert reply is not None, "no reply while filling the cart"
                assert unpack(reply[1][0])["status"] == 200, unpack(reply[1][0])
    full = cart.get(user)
    assert len(full["items"]) == 1000 and full["total"] == 1000
    reply = cart.call(add_request(user, "item-1000", price=1, request_id="over"))
    assert_error(reply, 409)
    assert cart.get(user) == full
    assert cart.add(user, "item-0007", quantity=2, price=1) \
        == {"status": 200, "item_id": "item-0007", "quantity": 3}
    assert cart.remove(user, "item-0000")["status"] == 200
    #  The refused add was not remembered: its request_id still works.
    assert cart.call(add_request(user, "item-1000", price=1, request_id="over")) \
        == {"status": 200, "item_id": "item-1000", "quantity": 1}


# --- 400 -----------------------------------------------------------------------------------

GOOD_ITEM = {"id": "i", "name": "n", "quantity": 1, "price": 1}

BAD_REQUESTS = {
    "not-msgpack": b"\xc1",
    "empty-body": b"",
    "truncated-msgpack": pack({"method": "GetCartItems", "user_id": "victim"})[:-3],
    "trailing-bytes": pack({"method": "GetCartItems", "user_id": "victim"}) + b"\x01",
    "not-a-map": pack(["GetCartItems", "victim"]),
    "unknown-method": {"method": "DropTables", "user_id": "victim"},
    "method-not-a-string": {"method": 7, "user_id": "victim"},
    "missing-method": {"user_id": "victim"},
    "missing-user-id": {"method": "GetCartItems"},
    "user-id-not-a-string": {"method": "GetCartItems", "user_id": 42},
    "empty-user-id": {"method": "ClearCart", "user_id": ""},
    "user-id-129-bytes": {"method": "ClearCart", "user_id": "u" * 129},
    "user-id-130-utf8-bytes": {"method": "ClearCart", "user_id": "\u00e9" * 65},
    "missing-item": {"method": "AddItemToCart", "user_id": "victim"},
    "item-not-a-map": {"method": "AddItemToCart", "user_id": "victim", "item": ["i", "n", 1, 1]},
    "item-missing-price": {"method": "AddItemToCart", "user_id": "victim",
                           "item": {"id": "i", "name": "n", "quantity": 1}},
    "item-id-129-bytes": {"method": "AddItemToCart", "user_id": "victim",
                          "item": dict(GOOD_ITEM, id="i" * 129)},
    "empty-item-id": {"method": "AddItemToCart", "user_id": "victim",
                      "item": dict(GOOD_ITEM, id="")},
    "name-257-bytes": {"method": "AddItemToCart", "user_id": "victim",
                       "item": dict(GOOD_ITEM, name="n" * 257)},
    "empty-name": {"method": "AddItemToCart", "user_id": "victim",
                   "item": dict(GOOD_ITEM, name="")},
    "quantity-as-string": {"method": "AddItemToCart", "user_id": "victim",
                           "item": dict(GOOD_ITEM, quantity="1")},
    "quantity-as-float": {"method": "AddItemToCart", "user_id": "victim",
                          "item": dict(GOOD_ITEM, quantity=1.0)},
    "add-quantity-0": {"method": "AddItemToCart", "user_id": "victim",
                       "item": dict(GOOD_ITEM, quantity=0)},
    "add-quantity-1000001": {"method": "AddItemToCart", "user_id": "victim",
                             "item": dict(GOOD_ITEM, quantity=1_000_001)},
    "price-negative": {"method": "AddItemToCart", "user_id": "victim",
                       "item": dict(GOOD_ITEM, price=-1)},
    "price-2-to-the-31": {"method": "AddItemToCart", "user_id": "victim",
                          "item": dict(GOOD_ITEM, price=2**31)},
    "price-2-to-the-64-minus-1": {"method": "AddItemToCart", "user_id": "victim",
                                  "item": dict(GOOD_ITEM, price=2**64 - 1)},
    "request-id-65-bytes": {"method": "AddItemToCart", "user_id": "victim",
                            "item": GOOD_ITEM, "request_id": "r" * 65},
    "request-id-not-a-string": {"method": "ClearCart", "user_id": "victim", "request_id": 5},
    "update-quantity-negative": {"method": "UpdateItemQuantity", "user_id": "victim",
                                 "item_id": "keep", "quantity": -1},
    "update-quantity-1000001": {"method": "UpdateItemQuantity", "user_id": "victim",
                                "item_id": "keep", "quantity": 1_000_001},
    "update-missing-quantity": {"method": "UpdateItemQuantity", "user_id": "victim",
                                "item_id": "keep"},
    "remove-missing-item-id": {"method": "RemoveItemFromCart", "user_id": "victim"},
    "remove-item-id-as-bytes": {"method": "RemoveItemFromCart", "user_id": "victim",
                                "item_id": b"keep"},
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_malformed_request_is_400_and_changes_nothing(cart, case):
    cart.add("victim", "keep", quantity=3, price=11)
    before = cart.get("victim")
    request = BAD_REQUESTS[case]
    reply = cart.call(request if isinstance(request, bytes) else pack(request))
    assert_error(reply, 400)
    assert cart.get("victim") == before


@pytest.mark.parametrize("field,value", [
    ("user_id", "u" * 128), ("user_id", "\u00e9" * 64), ("id", "i" * 128),
    ("name", "n" * 256), ("request_id", "r" * 64), ("quantity", 1_000_000),
    ("price", 0), ("price", MAX_PRICE),
])
def test_values_at_the_limits_are_accepted(cart, field, value):
    request = add_request("limits", "item")
    if field in ("user_id", "request_id"):
        request[field] = value
    else:
        request["item"][field] = value
    reply = cart.call(request)
    assert reply == {"status": 200, "item_id": request["item"]["id"], "quantity":
                     request["item"]["quantity"]}
    items = cart.get(request["user_id"])["items"]
    assert items == [request["item"]]


# --- request_id: exactly once ----------------------------------------------------------------


def test_repeated_request_id_returns_the_first_reply_bytes_and_applies_once(cart):
    request = add_request("frank", "sku", quantity=2, request_id="rid-1")
    first, first_bytes = cart.call_bytes(request)
    assert first == {"status": 200, "item_id": "sku", "quantity": 2}
    assert cart.call_bytes(request)[1] == first_bytes
    other_body = cart.call_bytes(add_request("frank", "other", quantity=7, request_id="rid-1"))[1]
    assert other_body == first_bytes, "a different body with a used request_id was applied"
    other_method = cart.call_bytes({"method": "ClearCart", "user_id": "frank",
                                    "request_id": "rid-1"})[1]
    assert other_method == first_bytes
    assert cart.get("frank")["items"] == [{"id": "sku", "name": "name-sku", "quantity": 2,
                                           "price": 100}]
    #  Remembered per user_id: another user's rid-1 is a new call.
    assert cart.call(add_request("grace", "sku", quantity=5, request_id="rid-1"))["quantity"] == 5


@pytest.mark.parametrize("method", ["remove", "update", "clear"])
def test_every_mutation_is_deduplicated_by_request_id(cart, method):
    cart.add("henry", "sku", quantity=1, price=10)
    call = {
        "remove": lambda: cart.call_bytes({"method": "RemoveItemFromCart", "user_id": "henry",
                                           "item_id": "sku", "request_id": "m-1"}),
        "update": lambda: cart.call_bytes({"method": "UpdateItemQuantity", "user_id": "henry",
                                           "item_id": "sku", "quantity": 5, "request_id": "m-1"}),
        "clear": lambda: cart.call_bytes({"method": "ClearCart", "user_id": "henry",
                                          "request_id": "m-1"}),
    }[method]
    first, first_bytes = call()
    assert first["status"] == 200, first
    cart.add("henry", "sku", quantity=1, price=10)
    state = cart.get("henry")
    assert call()[1] == first_bytes
    assert cart.get("henry") == state, "the repeated %s was applied again" % method


def test_a_rejected_mutation_is_not_remembered(cart):
    assert_error(cart.remove("ivy", "ghost", request_id="rid-x"), 404)
    cart.add("ivy", "ghost")
    assert cart.remove("ivy", "ghost", request_id="rid-x") == {"status": 200,
                                                             "message": "Item removed"}
    assert_error(cart.call(add_request("ivy", "a", quantity=0, request_id="rid-y")), 400)
    assert cart.call(add_request("ivy", "a", quantity=4, request_id="rid-y")) \
        == {"status": 200, "item_id": "a", "quantity": 4}


# --- concurrency and failures ------------------------------------------------------------------


@pytest.mark.parametrize("worker_args", [(), ("--concurrency", "8")],
                         ids=["plain", "concurrency-8"])
def test_concurrent_adds_through_three_workers_lose_no_update(cluster, worker_args):
    if worker_args:
        for worker in list(cluster.workers):
            worker.kill()
        cluster.workers.clear()
        assert wait_until(lambda: unlisted(cluster.endpoint, "cart"), bound(EXPIRY_S + 1.5))
    while len(cluster.workers) < 3:
        cluster.add_worker(*worker_args)
    clients, adds = 8, 100
    quantities, errors = [], []
    lock = threading.Lock()

    def run():
        mine = []
        try:
            with CartClient(cluster.endpoint, timeout=bound(5)) as cart:
                for _ in range(adds):
                    reply = cart.add("crowd", "sku", quantity=1, price=3)
                    assert reply["status"] == 200, reply
                    mine.append(reply["quantity"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        with lock:
            quantities.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(bound(60))
    assert not any(thread.is_alive() for thread in threads), "clients did not finish"
    assert not errors, errors[:3]
    with CartClient(cluster.endpoint) as cart:
        final = cart.get("crowd")
    assert final["items"][0]["quantity"] == clients * adds
    assert final["total"] == clients * adds * 3
    assert sorted(quantities) == list(range(1, clients * adds + 1)), \
        "two adds saw the same quantity: an update was lost or doubled"


def test_retried_adds_apply_exactly_once_while_workers_are_killed(cluster):
    """Clients retry with the same request_id on a fresh socket; workers are
    SIGKILLed and restarted under them.  Every add must count once."""
    while len(cluster.workers) < 3:
        cluster.add_worker()
    endpoint = cluster.endpoint
    stop = threading.Event()
    lock = threading.Lock()
    outcome = {"ops": 0, "retries": 0, "errors": [], "quantities": []}
    #  Shorter than the expiry (and not scaled), so a request stuck on a
    #  killed worker is retried while the broker may still re-dispatch the
    #  original: both copies reach Redis.
    attempt_timeout = 0.4

    def run(client_number):
        number = 0
        try:
            while not stop.is_set():
                request = add_request("exact", "sku", quantity=1, price=1,
                                      request_id="c%d-op%d" % (client_number, number))
                deadline = time.monotonic() + bound(20)
                reply = None
                while reply is None:
                    assert time.monotonic() < deadline, "op %d never succeeded" % number
                    reply = try_call(endpoint, request, attempt_timeout)
                    if reply is None or reply["status"] == 503:
                        with lock:
                            outcome["retries"] += 1
                        reply = None
                assert reply["status"] == 200, reply
                with lock:
                    outcome["ops"] += 1
                    outcome["quantities"].append(reply["quantity"])
                number += 1
                time.sleep(0.005)
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                outcome["errors"].append(repr(exc))

    threads = [threading.Thread(target=run, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    rng = random.Random(7)
    kills = 0
    try:
        for _ in range(6):
            time.sleep(0.4)
            victim = rng.choice(cluster.workers)
            victim.kill()
            kills += 1
            victim.start()
    finally:
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(bound(30))
    assert not any(thread.is_alive() for thread in threads), "clients did not finish"
    print("\n[exactly-once] %d adds, %d retries, %d worker kills"
          % (outcome["ops"], outcome["retries"], kills))
    assert not outcome["errors"], outcome["errors"][:3]
    final = try_call(endpoint, {"method": "GetCartItems", "user_id": "exact"}, RTT_S)
    assert final is not None and final["status"] == 200
    assert final["items"][0]["quantity"] == outcome["ops"], \
        "cart holds %d, clients completed %d adds" % (final["items"][0]["quantity"], outcome["ops"])
    assert sorted(outcome["quantities"]) == list(range(1, outcome["ops"] + 1)), \
        "a retried add did not get its first reply back"
    assert kills == 6 and outcome["ops"] > 50
    #  A killed worker stays in the ready-queue until it expires, so some
    #  requests must have gone to a dead worker and been retried.
    assert outcome["retries"] > 0, "no retry happened: the run tested nothing"


def test_redis_down_gives_503_from_the_same_worker_and_recovers(cluster, cart):
    worker = cluster.workers[0]
    assert cart.add("judy", "a")["status"] == 200
    cluster.redis.stop()
    assert_error(cart.get("judy"), 503)
    assert_error(cart.add("judy", "b"), 503)
    assert worker.alive() and worker.starts == 1, "worker did not keep running"
    assert listed_workers(cluster.endpoint) == 1

    cluster.redis.start()
    back = time.monotonic()

    def served():
        reply = try_call(cluster.endpoint, {"method": "GetCartItems", "user_id": "judy"}, 0.5)
        return reply is not None and reply["status"] == 200

    ok = wait_until(served, RECOVERY_S + 1.0, interval=0.05)
    elapsed = time.monotonic() - back
    print("\n[redis] worker served again %.0f ms after redis-server came back "
          "(bound %.0f ms)" % (elapsed * 1000, RECOVERY_S * 1000))
    assert ok and elapsed <= RECOVERY_S, "not serving %.2fs after Redis came back" % elapsed
    assert worker.starts == 1 and worker.alive()


def test_stalled_redis_gives_503_before_the_broker_expires_the_worker(cluster, cart):
    """Every Redis call is bounded well inside the heartbeat expiry, so a
    hung Redis costs a 503, not the worker's registration."""
    assert cart.add("kate", "a")["status"] == 200
    cluster.redis.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = try_call(cluster.endpoint, {"method": "GetCartItems", "user_id": "kate"},
                         bound(3.0))
        elapsed = time.monotonic() - started
        assert reply is not None, "no reply while Redis hangs"
        assert_error(reply, 503)
        assert elapsed < EXPIRY_S * SCALE, "503 took %.2fs, past the expiry" % elapsed
        listed = sample(lambda: listed_workers(cluster.endpoint), 2 * EXPIRY_S)
        assert all(count == 1 for count in listed), "worker expired while Redis hung: %r" % listed
    finally:
        cluster.redis.send_signal(signal.SIGCONT)
    assert wait_until(lambda: (try_call(cluster.endpoint, {"method": "GetCartItems",
                                                           "user_id": "kate"}, 0.5)
                               or {}).get("status") == 200, RECOVERY_S)


@pytest.mark.parametrize("downtime", [0.0, 2 * EXPIRY_S], ids=["at-once", "after-expiry"])
def test_workers_reregister_after_the_broker_is_killed_and_restarted(cluster, downtime):
    cluster.add_worker()
    broker = cluster.broker
    broker.kill()
    time.sleep(downtime)
    broker.start()
    back = time.monotonic()
    registered = wait_workers(cluster.endpoint, "cart", 2, RECOVERY_S + 1.0)
    elapsed = time.monotonic() - back
    print("\n[broker] %s workers re-registered %.0f ms after the broker came back "
          "(bound %.0f ms)" % ("both" if registered else "not all", elapsed * 1000,
                               RECOVERY_S * 1000))
    assert registered and elapsed <= RECOVERY_S
    reply = try_call(cluster.endpoint, {"method": "GetCartItems", "user_id": "leo"}, RTT_S)
    assert reply == {"status": 200, "items": [], "total": 0}
    assert all(worker.alive() and worker.starts == 1 for worker in cluster.workers)


def test_worker_reaches_redis_over_a_unix_socket(redis_server, start_broker, start_worker):
    broker = start_broker()
    start_worker(broker.endpoint, redis_server.unix_url)
    with CartClient(broker.endpoint) as cart:
        assert cart.add("mia", "a", quantity=2, price=5)["status"] == 200
        assert cart.get("mia")["total"] == 10


def test_worker_serves_the_service_named_by_the_flag(redis_server, start_broker, start_worker):
    broker = start_broker()
    start_worker(broker.endpoint, redis_server.url, "--service", "basket")
    with CartClient(broker.endpoint, service="basket") as cart:
        assert cart.get("nina") == {"status": 200, "items": [], "total": 0}
    with mdp.MdpClient(broker.endpoint) as client:
        assert client.request("mmi.service", "cart") == [b"404"]


def test_heartbeat_flags_reach_the_worker(redis_server, start_broker, start_worker):
    """A worker told --heartbeat-ms HB_MS survives several expiry periods
    of idleness against a broker with the same settings."""
    broker = start_broker()
    start_worker(broker.endpoint, redis_server.url)
    counts = sample(lambda: listed_workers(broker.endpoint), 3 * EXPIRY_S)
    assert all(count == 1 for count in counts), counts
