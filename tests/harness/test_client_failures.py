"""Issue 13, client side: retries that cannot double a mutation (contract
section 4, request ids), strings that must be UTF-8 (section 4), replies
matched to their own attempt, peer bytes escaped on the terminal, and
`cartmq keygen` writing only through the files it created."""

import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

import msgpack
import pytest
import zmq

import mdp
from support import CLI_BIN, RTT_S, bound, free_port, pack, services, unpack, wait_until

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def strict(data):
    """Decodes like a strict client: raises on a str that is not UTF-8."""
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


def pack_raw(value):
    """Packs with bytes as msgpack *str*: how a careless client sends
    strings that are not UTF-8."""
    return msgpack.packb(value, use_bin_type=False)


class RecordingBroker:
    """A bare ROUTER that stands in for a broker: records each request
    (sender identity, frames after it) and answers through on_request,
    which returns a list of (identity, body) replies to send now."""

    def __init__(self, on_request=None):
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.on_request = on_request or (lambda broker, identity, frames: [])
        self.requests = []
        self.sock = mdp.context().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            if not self.sock.poll(20):
                continue
            frames = self.sock.recv_multipart()
            identity, rest = frames[0], frames[1:]
            self.requests.append((identity, rest))
            for to, body in self.on_request(self, identity, rest):
                self.sock.send_multipart([to, b"", mdp.CLIENT_HEADER, rest[2], body])

    def bodies(self):
        return [unpack(frames[3]) for _, frames in self.requests]

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close(0)


@pytest.fixture
def recording_broker():
    made = []

    def make(on_request=None):
        broker = RecordingBroker(on_request)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def add_args(user, item, quantity=1, price=100, name="Pen"):
    return ["add", user, item, "--name", name, "--quantity", str(quantity),
            "--price", str(price)]


MUTATIONS = {
    "add": add_args("frank", "sku-1"),
    "remove": ["remove", "frank", "sku-1"],
    "update": ["update", "frank", "sku-1", "--quantity", "3"],
    "clear": ["clear", "frank"],
}


# --- item 5: the CLI multiplies a mutation ---------------------------------------------


def queued(endpoint, service="cart"):
    listing = services(endpoint)
    entry = (listing or {}).get(service)
    return None if entry is None else entry.get("queued", 0)


def test_cli_add_retried_with_no_worker_applies_once_when_a_worker_comes(
        redis_server, start_broker, start_worker, run_cli):
    broker = start_broker()
    result = run_cli(broker.endpoint, "--timeout-ms", "400",
                     *add_args("multi", "sku-1", quantity=1))
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    #  Each attempt waits in the broker's queue: the case of the issue.
    assert queued(broker.endpoint) == 3, services(broker.endpoint)

    start_worker(broker.endpoint, redis_server.url)
    assert wait_until(lambda: queued(broker.endpoint) == 0, bound(5.0)), \
        services(broker.endpoint)
    with mdp.MdpClient(broker.endpoint, timeout=RTT_S) as client:
        frames = client.request("cart", pack({"method": "GetCartItems", "user_id": "multi"}))
    assert frames is not None
    reply = strict(frames[0])
    assert reply["status"] == 200, reply
    assert [(item["id"], item["quantity"]) for item in reply["items"]] == [("sku-1", 1)], \
        "three attempts of one add applied more than once: %r" % reply


@pytest.mark.parametrize("command", sorted(MUTATIONS))
def test_cli_mutation_carries_one_random_request_id_on_every_attempt(
        command, recording_broker, run_cli):
    seen = []
    for _ in range(2):
        broker = recording_broker()
        result = run_cli(broker.endpoint, "--timeout-ms", "200", *MUTATIONS[command])
        assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
        assert wait_until(lambda: len(broker.requests) == 3, bound(2.0)), broker.requests
        ids = [body.get("request_id") for body in broker.bodies()]
        assert ids[0] is not None and HEX_ID.match(ids[0]), ids
        assert ids == [ids[0]] * 3, "retries changed the request_id: %r" % ids
        #  The one-line error names the id, so the call can be rerun safely.
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].endswith("--request-id " + ids[0]), lines
        seen.append(ids[0])
    assert seen[0] != seen[1], "two calls share a request_id: %r" % seen


def test_cli_get_sends_no_request_id(recording_broker, run_cli):
    broker = recording_broker()
    result = run_cli(broker.endpoint, "--timeout-ms", "200", "--retries", "0", "get", "frank")
    assert result.returncode == 3
    assert wait_until(lambda: len(broker.requests) == 1, bound(2.0))
    assert broker.bodies() == [{"method": "GetCartItems", "user_id": "frank"}]


@pytest.mark.parametrize("command", sorted(MUTATIONS))
def test_cli_request_id_given_is_sent_verbatim(command, recording_broker, run_cli):
    broker = recording_broker()
    given = "Given-ID_\u00e9-42"
    result = run_cli(broker.endpoint, "--timeout-ms", "200", "--retries", "1",
                     *MUTATIONS[command], "--request-id", given)
    assert result.returncode == 3
    assert wait_until(lambda: len(broker.requests) == 2, bound(2.0))
    assert [body["request_id"] for body in broker.bodies()] == [given, given]


# --- replies matched to their own attempt ----------------------------------------------


def test_late_reply_to_the_first_attempt_is_never_taken_for_the_second(
        recording_broker, run_cli):
    """The fake broker holds attempt 1 and answers it only once attempt 2
    has arrived, just before answering attempt 2: the CLI must print the
    second answer."""
    late = pack({"status": 200, "items": [{"id": "late", "name": "late", "quantity": 1,
                                            "price": 1}], "total": 1})
    fresh = pack({"status": 200, "items": [], "total": 0})

    def on_request(broker, identity, frames):
        if len(broker.requests) == 1:
            return []
        first = broker.requests[0][0]
        return [(first, late), (identity, fresh)]

    broker = recording_broker(on_request)
    result = run_cli(broker.endpoint, "--timeout-ms", "300", "get", "late-user")
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert json.loads(result.stdout) == {"status": 200, "items": [], "total": 0}
    assert len(broker.requests) == 2
    assert broker.requests[0][0] != broker.requests[1][0], \
        "the retry reused the socket a late reply can still reach"


def test_a_call_after_one_that_gave_up_never_takes_the_late_reply(recording_broker):
    """`stats --watch` makes call after call on one client. The first gets
    its answer only when the second has been sent: the second must show its
    own answer, not the late one."""
    def on_request(broker, identity, frames):
        if len(broker.requests) == 1:
            return []
        first = broker.requests[0][0]
        fresh = pack({"uptime_s": 222 + len(broker.requests)})
        return [(first, pack({"uptime_s": 111})), (identity, fresh)]

    broker = recording_broker(on_request)
    argv = [str(CLI_BIN), "--connect", broker.endpoint, "--timeout-ms", "300",
            "--retries", "0", "stats", "--json", "--watch", "1"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        #  A third request means the second call is over (printed), so the
        #  SIGINT below cannot cut it short.
        assert wait_until(lambda: len(broker.requests) >= 3, bound(5.0)), broker.requests
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=bound(5.0))
    lines = out.decode().splitlines()
    assert lines and json.loads(lines[0]) == {"uptime_s": 224}, (out, err)
    assert broker.requests[0][0] != broker.requests[1][0]


# --- item 6: one bad write poisons a cart ----------------------------------------------

BAD_UTF8 = [b"\xff\xfe", b"ok\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\xe2\x82"]


def bad_requests(bad):
    item = {"id": "sku", "name": "Pen", "quantity": 1, "price": 100}
    return {
        "add.item.id": {"method": "AddItemToCart", "user_id": "victim",
                        "item": dict(item, id=bad)},
        "add.item.name": {"method": "AddItemToCart", "user_id": "victim",
                          "item": dict(item, name=bad)},
        "add.user_id": {"method": "AddItemToCart", "user_id": bad, "item": item},
        "add.request_id": {"method": "AddItemToCart", "user_id": "victim", "item": item,
                           "request_id": bad},
        "remove.item_id": {"method": "RemoveItemFromCart", "user_id": "victim",
                           "item_id": bad},
        "remove.user_id": {"method": "RemoveItemFromCart", "user_id": bad, "item_id": "sku"},
        "remove.request_id": {"method": "RemoveItemFromCart", "user_id": "victim",
                              "item_id": "sku", "request_id": bad},
        "update.item_id": {"method": "UpdateItemQuantity", "user_id": "victim",
                           "item_id": bad, "quantity": 2},
        "update.user_id": {"method": "UpdateItemQuantity", "user_id": bad,
                           "item_id": "sku", "quantity": 2},
        "update.request_id": {"method": "UpdateItemQuantity", "user_id": "victim",
                              "item_id": "sku", "quantity": 2, "request_id": bad},
        "clear.user_id": {"method": "ClearCart", "user_id": bad},
        "clear.request_id": {"method": "ClearCart", "user_id": "victim", "request_id": bad},
        "get.user_id": {"method": "GetCartItems", "user_id": bad},
        "method": {"method": bad, "user_id": "victim"},
    }


def test_strings_that_are_not_utf8_are_refused_with_400_and_nothing_applied(cluster):
    with cluster.cart() as cart:
        assert cart.add("victim", "sku", quantity=5)["status"] == 200
        before = cart.call_bytes({"method": "GetCartItems", "user_id": "victim"})[1]
        for bad in BAD_UTF8:
            for field, request in bad_requests(bad).items():
                frames = cart.call_raw(pack_raw(request))
                assert frames is not None and len(frames) == 1, (field, bad)
                reply = strict(frames[0])   # the reply itself decodes strictly
                assert reply["status"] == 400, (field, bad, reply)
                expected = "unknown method" if field == "method" else "UTF-8"
                assert expected in reply["error"], (field, bad, reply)
                frames = cart.call_raw(pack({"method": "GetCartItems", "user_id": "victim"}))
                strict(frames[0])
                assert frames[0] == before, "a refused %s changed the cart" % field


def test_bin_strings_are_refused_with_400(cluster):
    with cluster.cart() as cart:
        for field, request in bad_requests(b"sku").items():
            reply = strict(cart.call_raw(pack(request))[0])
            assert reply["status"] == 400, (field, reply)
            assert reply["error"], (field, reply)
        assert cart.get("victim") == {"status": 200, "items": [], "total": 0}


def test_valid_multibyte_utf8_is_stored_and_read_back(cluster):
    with cluster.cart() as cart:
        name = "caf\u00e9 \u2603 \U0001f600 \u0000nul"
        assert cart.add("\u00fcser", "\u2603", name=name, request_id="r\u00e9")["status"] == 200
        frames = cart.call_raw(pack({"method": "GetCartItems", "user_id": "\u00fcser"}))
        reply = strict(frames[0])
        assert reply["items"][0]["id"] == "\u2603" and reply["items"][0]["name"] == name


# --- item 7: peer bytes on the terminal ------------------------------------------------


def test_cli_escapes_the_error_text_of_a_reply_on_stderr(recording_broker, run_cli):
    hostile = b"item not in cart\n\x1b[2J\x1b]0;pwned\x07E: forged\r\xc2\x9b31m\xff"
    reply = pack_raw({"status": 404, "error": hostile})
    broker = recording_broker(lambda broker, identity, frames: [(identity, reply)])
    result = run_cli(broker.endpoint, "remove", "u", "ghost")
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cartmq: 404: item not in cart"), lines
    assert not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in lines[0]), lines
    assert "\\x1b" in lines[0], lines
    #  stdout stays one line of valid JSON whatever the reply held.
    out = result.stdout.splitlines()
    assert len(out) == 1
    printed = json.loads(out[0])
    assert printed["status"] == 404
    assert not any(0x7f <= ord(ch) <= 0x9f or ord(ch) < 0x20 for ch in out[0]), out


def test_cli_prints_valid_json_for_a_reply_with_invalid_utf8(recording_broker, run_cli):
    reply = pack_raw({"status": 200, "items": [{"id": b"\xff\xfe", "name": b"caf\xc3\xa9\xc0",
                                                "quantity": 1, "price": 2}], "total": 2})
    broker = recording_broker(lambda broker, identity, frames: [(identity, reply)])
    result = run_cli(broker.endpoint, "get", "u")
    assert result.returncode == 0, result.stderr
    raw = result.stdout.encode()
    raw.decode("utf-8")   # strict: the line itself is valid UTF-8
    printed = json.loads(result.stdout)
    assert printed["items"][0]["name"].startswith("caf\u00e9")
    assert printed["total"] == 2


# --- item 15: keygen writes only through the files it created ---------------------------


def test_keygen_secret_file_is_0600_even_with_a_permissive_umask(run_cli, tmp_path):
    old = os.umask(0)
    try:
        result = run_cli(None, "keygen", "carol", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "carol_secret").st_mode) == 0o600
    assert "secret-key" not in (tmp_path / "carol").read_text()
    assert "secret-key" in (tmp_path / "carol_secret").read_text()


@pytest.mark.parametrize("which", ["public", "secret"])
def test_keygen_refuses_a_symlink_in_its_way_and_changes_nothing(which, run_cli, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    public, secret = tmp_path / "dave", tmp_path / "dave_secret"
    link = public if which == "public" else secret
    link.symlink_to(target)
    result = run_cli(None, "keygen", "dave", cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "exists" in lines[0] and str(link.name) in lines[0], lines
    assert target.read_text() == "precious\n"
    assert os.path.islink(link)
    other = secret if which == "public" else public
    assert not os.path.lexists(other), "keygen left %s behind" % other.name


def test_keygen_refuses_a_dangling_symlink_at_the_secret_path(run_cli, tmp_path):
    (tmp_path / "erin_secret").symlink_to(tmp_path / "stolen")
    result = run_cli(None, "keygen", "erin", cwd=tmp_path)
    assert result.returncode != 0
    assert "exists" in result.stderr
    assert not os.path.lexists(tmp_path / "stolen")
    assert not os.path.lexists(tmp_path / "erin")
