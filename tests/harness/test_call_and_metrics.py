"""`cartmq call`, `cartmq stats --prometheus` and `cartmq metrics` (contract
§8) against real brokers, workers and Redis.

The Prometheus output is read back with a real parser
(python3-prometheus-client's text parser), and its counters are compared
with mmi.stats after a known load.
"""

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import mdp
import support
from support import CLI_BIN, REPO_DIR

DASHBOARD = REPO_DIR / "examples" / "grafana-dashboard.json"


def families(text):
    """{family name: [(labels, value), ...]} as the real parser reads it."""
    parsed = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed.setdefault(sample.name, []).append((sample.labels, sample.value))
    return parsed


def value(parsed, name, **labels):
    matches = [v for got, v in parsed.get(name, []) if all(got.get(k) == w for k, w in labels.items())]
    assert len(matches) == 1, (name, labels, parsed.get(name))
    return matches[0]


def add_body(user, item, quantity, request_id):
    return json.dumps({"method": "AddItemToCart", "user_id": user, "request_id": request_id,
                       "item": {"id": item, "name": "thing", "quantity": quantity, "price": 150}})


# ---------------------------------------------------------------------------
# cartmq call


def test_call_sends_json_as_msgpack_and_prints_the_reply_as_json(cluster, run_cli):
    added = run_cli(cluster.endpoint, "call", "cart", add_body("call-user", "sku", 2, "call-r1"))
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"status": 200, "item_id": "sku", "quantity": 2}
    #  The same request_id again: applied once, the same reply
    again = run_cli(cluster.endpoint, "call", "cart", add_body("call-user", "sku", 2, "call-r1"))
    assert json.loads(again.stdout) == json.loads(added.stdout)
    got = run_cli(cluster.endpoint, "call", "cart",
                  '{"method": "GetCartItems", "user_id": "call-user"}')
    reply = json.loads(got.stdout)
    assert got.returncode == 0 and reply["status"] == 200
    assert [(item["id"], item["quantity"]) for item in reply["items"]] == [("sku", 2)]
    #  A non-200 status is still a reply: exit 0, the JSON on stdout
    bad = run_cli(cluster.endpoint, "call", "cart", '{"method": "Nope"}')
    assert bad.returncode == 0 and json.loads(bad.stdout)["status"] == 400


def test_call_without_a_body_sends_an_empty_frame(cluster, run_cli):
    result = run_cli(cluster.endpoint, "call", "mmi.services")
    assert result.returncode == 0, result.stderr
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["cart"]


@pytest.mark.parametrize("body, reason", [
    ("{bad", "not JSON"),
    ("{'a': 1}", "single-quoted"),
    ('{"a": 1} trailing', "not JSON"),
    ("[18446744073709551616]", "64-bit range"),
])
def test_bad_json_is_a_usage_error_and_nothing_is_sent(cluster, run_cli, body, reason):
    before = support.stats(cluster.endpoint)["requests"]
    result = run_cli(cluster.endpoint, "call", "cart", body)
    assert result.returncode == 2, result
    assert "BODY_JSON" in result.stderr and reason in result.stderr, result.stderr
    assert result.stdout == ""
    assert support.stats(cluster.endpoint)["requests"] == before


def test_json_with_bytes_that_are_not_utf8_is_refused(cluster):
    result = subprocess.run([str(CLI_BIN), "--connect", cluster.endpoint, "call", "cart",
                             b'{"user_id": "\xff"}'], capture_output=True, timeout=15 * support.SCALE)
    assert result.returncode == 2 and b"not JSON" in result.stderr, result


def test_call_usage_errors_and_no_reply(cluster, run_cli):
    assert run_cli(cluster.endpoint, "call").returncode == 2
    assert run_cli(cluster.endpoint, "call", "x" * 256).returncode == 2
    assert run_cli(cluster.endpoint, "call", "a", "{}", "extra").returncode == 2
    silent = run_cli(cluster.endpoint, "call", "nobody", "{}", "--timeout-ms", "200",
                     "--retries", "0")
    assert silent.returncode == 3 and "no reply" in silent.stderr


def test_call_prints_frames_that_are_not_msgpack_as_json_strings(start_broker):
    broker = start_broker()
    with mdp.MdpWorker(broker.endpoint, heartbeat_ms=support.HB_MS) as worker:
        worker.ready("raw")
        assert support.wait_workers(broker.endpoint, "raw", 1)
        cli = subprocess.Popen([str(CLI_BIN), "--connect", broker.endpoint, "call", "raw",
                                '"hello"'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        request = worker.recv(timeout=10 * support.SCALE)
        assert request is not None
        address, body = request
        assert [support.unpack(frame) for frame in body] == ["hello"]
        #  Two frames: bytes that are not msgpack (with a newline and a
        #  byte that is not UTF-8), and a msgpack map
        worker.reply(address, b"line\n\xff", b"\x81\xa1k\x01")
        out, err = cli.communicate(timeout=10 * support.SCALE)
    assert cli.returncode == 0, err
    assert out.count("\n") == 1
    assert json.loads(out) == ["line\n\u00ff", {"k": 1}]


# ---------------------------------------------------------------------------
# Prometheus


def load(endpoint, run_cli, calls):
    for index in range(calls):
        result = run_cli(endpoint, "call", "cart", add_body("prom-%d" % index, "i", 1,
                                                             "prom-r%d" % index))
        assert result.returncode == 0, result.stderr


def test_stats_prometheus_parses_and_matches_mmi_stats(cluster, run_cli):
    load(cluster.endpoint, run_cli, 7)
    result = run_cli(cluster.endpoint, "stats", "--prometheus")
    assert result.returncode == 0, result.stderr
    parsed = families(result.stdout)
    stats = support.stats(cluster.endpoint)
    broker = {"broker": cluster.endpoint}
    #  mmi.stats was asked after the page, so its requests count one more
    #  of nothing: MMI calls are not counted, and nothing else ran.
    assert value(parsed, "cartmq_requests_total", **broker) == stats["requests"] >= 7
    assert value(parsed, "cartmq_replies_total", **broker) == stats["replies"]
    assert value(parsed, "cartmq_redispatched_total", **broker) == stats["redispatched"]
    assert value(parsed, "cartmq_invalid_total", **broker) == stats["invalid"]
    assert value(parsed, "cartmq_workers", **broker) == stats["workers"] == 1
    for reason, count in stats["dropped"].items():
        assert value(parsed, "cartmq_dropped_total", reason=reason, **broker) == count
    cart = {"service": "cart", **broker}
    assert value(parsed, "cartmq_service_requests_total", **cart) == stats["requests"]
    assert value(parsed, "cartmq_service_workers", **cart) == 1
    assert value(parsed, "cartmq_service_idle_workers", **cart) == 1
    assert value(parsed, "cartmq_service_queued_requests", **cart) == 0
    assert 0 < value(parsed, "cartmq_service_time_p99_seconds", **cart) < 5
    assert value(parsed, "cartmq_up", **broker) == 1


def test_stats_prometheus_with_a_dead_broker_says_up_0_and_exits_3(cluster, run_cli):
    dead = "tcp://127.0.0.1:%d" % support.free_port()
    result = run_cli(cluster.endpoint, "--connect", dead, "stats", "--prometheus",
                     "--timeout-ms", "300")
    assert result.returncode == 3, result
    parsed = families(result.stdout)
    assert value(parsed, "cartmq_up", broker=cluster.endpoint) == 1
    assert value(parsed, "cartmq_up", broker=dead) == 0
    assert all(labels["broker"] == cluster.endpoint
               for labels, _ in parsed["cartmq_requests_total"])


def test_hostile_service_names_cannot_break_the_page(start_broker, run_cli):
    broker = start_broker()
    hostile = b'evil"} 1\ncartmq_up{broker="x"} 0\n\\\xff'
    with mdp.MdpWorker(broker.endpoint) as worker:
        worker.ready(hostile)
        assert support.wait_workers(broker.endpoint, hostile, 1)
        result = run_cli(broker.endpoint, "stats", "--prometheus")
    assert result.returncode == 0, result.stderr
    parsed = families(result.stdout)
    assert [labels for labels, _ in parsed["cartmq_up"]] == [{"broker": broker.endpoint}]
    names = [labels["service"] for labels, _ in parsed["cartmq_service_workers"]]
    #  Quote and backslash escaped as the format wants (the parser undoes
    #  it); the newline and the byte that is not UTF-8 as \xHH text.
    assert names == [r'evil"} 1\x0acartmq_up{broker="x"} 0\x0a\\xff'], names
    assert "\n" not in names[0] and names[0].startswith('evil"}')


class MetricsServer:
    """`cartmq metrics --listen` as a process."""

    def __init__(self, tmp_path, endpoints, port, *extra):
        argv = [str(CLI_BIN)]
        for endpoint in endpoints:
            argv += ["--connect", endpoint]
        argv += ["metrics", "--listen", "127.0.0.1:%d" % port, *extra]
        self.url = "http://127.0.0.1:%d" % port
        self.log = open(tmp_path / "metrics.log", "wb")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        assert support.wait_until(lambda: support.port_open(port), support.START_S), \
            "cartmq metrics did not listen"

    def get(self, path="/metrics", method="GET"):
        request = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10 * support.SCALE) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(2 * support.SCALE)
            finally:
                self.log.close()
        self.log.close()
        return self.process.returncode


def test_metrics_serves_every_broker_and_counters_match_mmi_stats(
        redis_server, start_broker, start_worker, run_cli, tmp_path):
    brokers = [start_broker(), start_broker()]
    for broker in brokers:
        start_worker(broker.endpoint, redis_server.url)
    load(brokers[0].endpoint, run_cli, 5)
    load(brokers[1].endpoint, run_cli, 3)
    server = MetricsServer(tmp_path, [b.endpoint for b in brokers], support.free_port())
    try:
        status, headers, text = server.get()
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        parsed = families(text)
        for broker in brokers:
            stats = support.stats(broker.endpoint)
            assert value(parsed, "cartmq_requests_total", broker=broker.endpoint) \
                == stats["requests"]
            assert value(parsed, "cartmq_service_requests_total", broker=broker.endpoint,
                         service="cart") == stats["services"][0]["requests"]
        assert value(parsed, "cartmq_requests_total", broker=brokers[0].endpoint) == 5
        assert value(parsed, "cartmq_requests_total", broker=brokers[1].endpoint) == 3
        #  A broker that dies is cartmq_up 0 within one scrape, the other
        #  still served; the scrape takes at most about one timeout
        brokers[1].kill()
        started = time.monotonic()
        status, _, text = server.get()
        assert time.monotonic() - started < 2.5 * 2 * support.SCALE
        parsed = families(text)
        assert value(parsed, "cartmq_up", broker=brokers[1].endpoint) == 0
        assert value(parsed, "cartmq_up", broker=brokers[0].endpoint) == 1
        assert server.get("/other")[0] == 404
        assert server.get("/metrics", method="POST")[0] == 405
        assert server.get("/")[0] == 200
    finally:
        assert server.stop() == 0


def test_metrics_bad_listen_address_is_exit_2(run_cli):
    for listen in ("garbage", "127.0.0.1:99999", "no.such.host.invalid:80"):
        result = run_cli(None, "metrics", "--listen", listen)
        assert result.returncode == 2 and "--listen" in result.stderr, result
    assert run_cli(None, "metrics").returncode == 2


def test_grafana_dashboard_names_only_metrics_the_page_has(cluster, run_cli):
    dashboard = json.loads(DASHBOARD.read_text())
    page = run_cli(cluster.endpoint, "stats", "--prometheus").stdout
    known = {family.name for family in text_string_to_metric_families(page)}
    #  The parser names a counter family without its _total
    known |= {name + "_total" for name in known}
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs
    for expr in exprs:
        for name in re.findall(r"cartmq_[a-z0-9_]+", expr):
            assert name in known, (name, expr)
