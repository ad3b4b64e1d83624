"""The cartmq command-line client (contract section 2): one JSON line per
reply, exit 0 on 200, 1 on another status, 2 on bad usage, 3 when no reply
came after all attempts."""

import json
import threading
import time

import pytest
import zmq

import mdp
from support import bound, free_port, pack, unpack

MAX_PRICE = 2**31 - 1


def one_json_line(result):
    lines = result.stdout.splitlines()
    assert len(lines) == 1, "expected one line of JSON on stdout, got %r (stderr %r)" \
        % (result.stdout, result.stderr)
    return json.loads(lines[0])


def stderr_one_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, "expected a one-line error on stderr, got %r" % result.stderr
    return lines[0]


@pytest.fixture
def cli(cluster, run_cli):
    """cli(*args) runs cartmq against the test's cluster."""
    return lambda *args, **kwargs: run_cli(cluster.endpoint, *args, **kwargs)


def add_args(user, item, quantity, price, name="Pen"):
    return ["add", user, item, "--name", name, "--quantity", str(quantity), "--price", str(price)]


def test_every_command_prints_the_reply_as_one_json_line(cli):
    result = cli(*add_args("alice", "sku-1", 2, 150))
    assert result.returncode == 0, result.stderr
    assert one_json_line(result) == {"status": 200, "item_id": "sku-1", "quantity": 2}

    result = cli("get", "alice")
    assert result.returncode == 0, result.stderr
    assert one_json_line(result) == {
        "status": 200, "items": [{"id": "sku-1", "name": "Pen", "quantity": 2, "price": 150}],
        "total": 300}

    result = cli("update", "alice", "sku-1", "--quantity", "5")
    assert result.returncode == 0, result.stderr
    assert one_json_line(result) == {"status": 200, "item_id": "sku-1", "quantity": 5}

    result = cli("remove", "alice", "sku-1")
    assert result.returncode == 0, result.stderr
    assert one_json_line(result) == {"status": 200, "message": "Item removed"}

    cli(*add_args("alice", "sku-2", 1, 1))
    result = cli("clear", "alice")
    assert result.returncode == 0, result.stderr
    assert one_json_line(result) == {"status": 200, "message": "Cart cleared"}
    assert one_json_line(cli("get", "alice")) == {"status": 200, "items": [], "total": 0}


def test_json_output_escapes_strings_and_keeps_64_bit_totals_exact(cli):
    name = 'He said "hi" \\ caf\u00e9 \u2603\ttab'
    for number in range(5):
        assert cli(*add_args("bob", "i%d" % number, 999_999, MAX_PRICE, name)).returncode == 0
    reply = one_json_line(cli("get", "bob"))
    assert reply["total"] == 5 * 999_999 * MAX_PRICE
    assert all(item["name"] == name for item in reply["items"])


def test_other_status_exits_1_with_json_on_stdout_and_error_on_stderr(cli):
    result = cli("remove", "carol", "ghost")
    assert result.returncode == 1
    reply = one_json_line(result)
    assert reply["status"] == 404 and reply["error"]
    assert result.stderr.strip(), "error text missing on stderr"


@pytest.mark.parametrize("args", [
    add_args("dave", "a", 0, 1),
    add_args("dave", "a", 1_000_001, 1),
    add_args("dave", "a", 1, MAX_PRICE + 1),
    add_args("dave", "a", 1, -1),
    ["update", "dave", "a", "--quantity", "-1"],
], ids=["quantity-0", "quantity-over", "price-over", "price-negative", "update-negative"])
def test_values_that_parse_are_sent_and_judged_by_the_service(cli, args):
    result = cli(*args)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert one_json_line(result)["status"] == 400


@pytest.mark.parametrize("args", [
    ["frobnicate", "x"],
    [],
    ["get"],
    ["get", "u", "extra"],
    ["add", "u", "sku", "--name", "n", "--quantity", "1"],
    ["add", "u", "sku", "--name", "n", "--price", "1"],
    ["add", "u", "--name", "n", "--quantity", "1", "--price", "1"],
    ["add", "u", "sku", "--name", "n", "--quantity", "abc", "--price", "1"],
    ["add", "u", "sku", "--name", "n", "--quantity", "1.5", "--price", "1"],
    ["add", "u", "sku", "--name", "n", "--quantity", "1", "--price", "1x"],
    ["add", "u", "sku", "--name", "n", "--quantity", "1", "--price", "99999999999999999999999"],
    ["add", "u", "sku", "--name"],
    ["update", "u", "sku"],
    ["update", "u", "sku", "--quantity", ""],
    ["remove", "u"],
    ["clear"],
    ["get", "u", "--bogus"],
    ["--bogus", "get", "u"],
    ["--timeout-ms", "abc", "get", "u"],
    ["--retries", "x", "get", "u"],
], ids=lambda args: "_".join(args) or "no-command")
def test_bad_usage_exits_2(run_cli, args):
    #  Nothing listens there: bad usage must be refused before any request.
    result = run_cli("tcp://127.0.0.1:%d" % free_port(), *args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.strip(), "no error text for bad usage"


def test_no_reply_after_all_attempts_exits_3(run_cli):
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    started = time.monotonic()
    result = run_cli(endpoint, "--timeout-ms", "200", "--retries", "1", "get", "erin")
    elapsed = time.monotonic() - started
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert elapsed < bound(3.0), "gave up after %.1fs for 2 x 200 ms attempts" % elapsed


def test_no_worker_for_the_service_exits_3(start_broker, run_cli):
    broker = start_broker()
    result = run_cli(broker.endpoint, "--timeout-ms", "200", "--retries", "0", "get", "erin")
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)


class FakeBroker:
    """A bare ROUTER that records the cart requests reaching it and answers
    only the attempt numbered answer_on (1-based; 0 never answers)."""

    def __init__(self, answer_on):
        self.port = free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.answer_on = answer_on
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
            self.requests.append(rest)
            if len(self.requests) == self.answer_on:
                reply = pack({"status": 200, "items": [], "total": 0})
                self.sock.send_multipart([identity, b"", mdp.CLIENT_HEADER, rest[2], reply])

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close(0)


@pytest.fixture
def fake_broker():
    made = []

    def make(answer_on):
        broker = FakeBroker(answer_on)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def test_default_retries_make_three_attempts_with_the_same_request(fake_broker, run_cli):
    broker = fake_broker(0)
    result = run_cli(broker.endpoint, "--timeout-ms", "200", "clear", "frank",
                     "--request-id", "rid-7")
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    time.sleep(0.1)
    assert len(broker.requests) == 3, "%d attempts seen" % len(broker.requests)
    for frames in broker.requests:
        assert frames[:3] == [b"", mdp.CLIENT_HEADER, b"cart"] and len(frames) == 4, frames
    bodies = [unpack(frames[3]) for frames in broker.requests]
    assert bodies[0] == {"method": "ClearCart", "user_id": "frank", "request_id": "rid-7"}
    assert bodies[1] == bodies[0] and bodies[2] == bodies[0]


def test_a_reply_to_a_later_attempt_is_accepted(fake_broker, run_cli):
    broker = fake_broker(2)
    result = run_cli(broker.endpoint, "--timeout-ms", "300", "--retries", "2", "get", "grace")
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert one_json_line(result) == {"status": 200, "items": [], "total": 0}
    assert len(broker.requests) == 2


def test_request_id_makes_a_repeated_add_apply_once(cli):
    args = add_args("heidi", "sku", 2, 10) + ["--request-id", "cli-1"]
    first = cli(*args)
    second = cli(*args)
    assert first.returncode == 0 and second.returncode == 0
    assert first.stdout == second.stdout
    assert one_json_line(cli("get", "heidi"))["items"][0]["quantity"] == 2


def test_services_table_lists_the_cart_service(cluster, cli):
    cluster.add_worker()
    result = cli("services")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    cart_rows = [row for row in rows if "cart" in row]
    assert len(cart_rows) == 1, result.stdout
    assert "2" in cart_rows[0], "worker count missing from %r" % cart_rows[0]


def test_stats_json_prints_the_mmi_stats_map(cli):
    cli("get", "ivan")
    result = cli("stats", "--json")
    assert result.returncode == 0, result.stderr
    reply = one_json_line(result)
    assert {"uptime_s", "requests", "replies", "redispatched", "dropped", "invalid",
            "workers", "services"} <= set(reply), reply
    assert reply["workers"] == 1 and reply["requests"] >= 1
    assert "cart" in [entry["name"] for entry in reply["services"]]
    table = cli("stats")
    assert table.returncode == 0 and "cart" in table.stdout, table.stdout


def test_help_and_version_exit_0(run_cli):
    result = run_cli(None, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("get", "add", "remove", "update", "clear", "services"):
        assert command in result.stdout, "--help does not mention %s" % command
    result = run_cli(None, "--version")
    assert result.returncode == 0 and result.stdout.strip()


def test_keygen_writes_a_public_and_a_secret_certificate(run_cli, tmp_path):
    result = run_cli(None, "keygen", "alice", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    public = (tmp_path / "alice").read_text()
    secret = (tmp_path / "alice_secret").read_text()
    assert "public-key" in public and "secret-key" not in public
    assert "public-key" in secret and "secret-key" in secret


def test_bench_runs_against_the_cart_service(cli):
    result = cli("bench", "--clients", "2", "--duration", "1", "--json", timeout=30)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(report, dict) and report, result.stdout
