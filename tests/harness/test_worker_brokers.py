"""One cartmq-worker serving several brokers at once (contract §7, §2, §5).

Real brokers, workers and redis-server: a worker given `--connect A
--connect B` (or a comma list, or a config list) registers once with each
broker on its own socket, serves requests from both, keeps serving one
broker while the other is frozen or killed, and registers again, once,
with a broker that comes back.
"""

import signal
import subprocess
import time

import mdp
from support import (EXPIRY_S, HB_MS, LIVENESS, RTT_S, SCALE, START_S, WORKER_BIN,
                     CartClient, bound, wait_until, wait_workers, worker_count)

#  The freeze test uses a longer heartbeat, so that "no added latency" has
#  room to be told apart from scheduling noise on a busy machine.
FREEZE_HB_MS = 500
FREEZE_WINDOW_S = FREEZE_HB_MS * LIVENESS / 1000.0


def echo(endpoint, service, body, timeout=RTT_S):
    """The reply's body frames for one request, or None."""
    with mdp.MdpClient(endpoint, timeout=timeout) as client:
        return client.request(service, body)


def counts(endpoint, service, seconds):
    """Workers mmi.services lists for service, polled for seconds (None
    where the broker did not answer)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(worker_count(endpoint, service))
        mdp.idle(0.05)
    return seen


def listed_exactly(endpoint, service, want, settle_s=1.0, timeout=START_S):
    """True once the broker lists want workers for service and then never
    another number while watched for settle_s."""
    if not wait_until(lambda: worker_count(endpoint, service) == want, timeout):
        return False
    seen = counts(endpoint, service, settle_s)
    assert all(count == want for count in seen if count is not None), \
        "%s listed %r workers for %s, want %d throughout" % (endpoint, seen, service, want)
    return True


def count_log(proc, text):
    return proc.stderr_text().count(text)


def test_worker_registers_once_with_each_broker_and_serves_carts_through_both(
        redis_server, start_broker, start_worker):
    a, b = start_broker(), start_broker()
    worker = start_worker(a.endpoint, redis_server.url, "--connect", b.endpoint)
    assert listed_exactly(a.endpoint, "cart", 1)
    assert listed_exactly(b.endpoint, "cart", 1)
    with CartClient(a.endpoint) as via_a, CartClient(b.endpoint) as via_b:
        assert via_a.add("u1", "i1", quantity=2)["status"] == 200
        assert via_b.add("u1", "i1", quantity=3, request_id="r-b")["status"] == 200
        cart = via_a.get("u1")
        assert cart["status"] == 200 and cart["items"][0]["quantity"] == 5, cart
        assert via_b.get("u1") == cart
    started = [line for line in worker.stderr_text().splitlines()
               if "worker started" in line]
    assert started and ("connect=%s,%s " % (a.endpoint, b.endpoint)) in started[-1], \
        started


def test_processes_pass_a_comma_list_to_every_child(start_broker, start_worker):
    a, b = start_broker(), start_broker()
    start_worker("%s,%s" % (a.endpoint, b.endpoint), None, "--echo", "--service", "echo",
                 "--processes", "2", wait=False)
    assert listed_exactly(a.endpoint, "echo", 2)
    assert listed_exactly(b.endpoint, "echo", 2)
    for endpoint in (a.endpoint, b.endpoint):
        for number in range(4):
            body = b"ping-%d" % number
            assert echo(endpoint, "echo", body) == [body]


def test_frozen_broker_delays_nothing_through_the_other_and_is_joined_once_after_sigcont(
        start_broker, start_worker):
    """SIGSTOP broker A (a host that hangs, sockets open): every request
    through B is answered well inside one heartbeat x liveness window, the
    worker gives A up and retries it meanwhile, and after SIGCONT A lists
    the worker once, never twice, and serves it again."""
    a = start_broker(heartbeat_ms=FREEZE_HB_MS)
    b = start_broker(heartbeat_ms=FREEZE_HB_MS)
    worker = start_worker(a.endpoint, None, "--echo", "--service", "echo",
                          "--connect", b.endpoint, heartbeat_ms=FREEZE_HB_MS, wait=False)
    assert listed_exactly(a.endpoint, "echo", 1, settle_s=0.2)
    assert listed_exactly(b.endpoint, "echo", 1, settle_s=0.2)
    given_up = "reconnecting to broker=%s" % a.endpoint
    before = count_log(worker, given_up)
    latencies = []
    a.send_signal(signal.SIGSTOP)
    try:
        with mdp.MdpClient(b.endpoint, timeout=bound(2 * FREEZE_WINDOW_S)) as client:
            deadline = time.monotonic() + 2 * FREEZE_WINDOW_S + 0.5
            number = 0
            while time.monotonic() < deadline or count_log(worker, given_up) <= before:
                assert time.monotonic() < deadline + bound(FREEZE_WINDOW_S + 2.0), \
                    "the worker never gave the frozen broker up:\n" + worker.log_tail()
                body = b"b-%d" % number
                sent = time.monotonic()
                assert client.request("echo", body) == [body], "request %d lost" % number
                latencies.append(time.monotonic() - sent)
                number += 1
                mdp.idle(0.02)
    finally:
        a.send_signal(signal.SIGCONT)
    worst = max(latencies)
    print("\n[frozen broker] %d requests through B while A was stopped, worst %.1f ms "
          "(window %.0f ms)" % (len(latencies), 1000 * worst, 1000 * FREEZE_WINDOW_S))
    assert worst < FREEZE_WINDOW_S / 3, \
        "a request through B waited %.0f ms while A was frozen" % (1000 * worst)
    assert wait_until(lambda: worker_count(a.endpoint, "echo") == 1,
                      bound(2 * FREEZE_WINDOW_S + 2.0))
    seen = counts(a.endpoint, "echo", 2 * FREEZE_WINDOW_S)
    assert max(count for count in seen if count is not None) == 1, \
        "A listed the worker more than once: %r" % seen
    assert echo(a.endpoint, "echo", b"again") == [b"again"]
    assert worker.alive() and worker.starts == 1


def test_killed_broker_restarted_on_its_port_is_served_again_in_time(
        start_broker, start_worker):
    """SIGKILL broker A and start it again on the same port: B serves all
    along, and A serves again within liveness x interval + 1 s (§2)."""
    a, b = start_broker(), start_broker()
    worker = start_worker(a.endpoint, None, "--echo", "--service", "echo",
                          "--connect", b.endpoint, wait=False)
    assert listed_exactly(a.endpoint, "echo", 1, settle_s=0.2)
    assert listed_exactly(b.endpoint, "echo", 1, settle_s=0.2)
    a.kill()
    assert echo(b.endpoint, "echo", b"while-a-is-dead") == [b"while-a-is-dead"]
    a.start()
    restarted = time.monotonic()
    served = wait_until(lambda: echo(a.endpoint, "echo", b"x", timeout=0.3 * SCALE) == [b"x"],
                        bound(EXPIRY_S + 1.0) + 1.0)
    took = time.monotonic() - restarted
    print("\n[killed broker] served again %.0f ms after the restart (bound %.0f ms)"
          % (1000 * took, 1000 * (EXPIRY_S + 1.0)))
    assert served, "broker A was not served again in time:\n" + worker.log_tail()
    assert took < bound(EXPIRY_S + 1.0)
    assert listed_exactly(a.endpoint, "echo", 1, settle_s=2 * EXPIRY_S)
    assert echo(b.endpoint, "echo", b"b-still") == [b"b-still"]


def test_each_broker_gets_the_full_credit(start_broker, start_worker):
    """--concurrency 4 with two brokers: each READY announces credit 4, and
    each broker hands the worker 4 requests at once."""
    a, b = start_broker(), start_broker()
    start_worker(a.endpoint, None, "--echo", "--service", "echo", "--concurrency", "4",
                 "--connect", b.endpoint, wait=False)
    for broker in (a, b):
        assert wait_until(lambda: "service=echo credit=4" in broker.stderr_text(), START_S), \
            broker.log_tail()
        assert listed_exactly(broker.endpoint, "echo", 1, settle_s=0.2)
    #  Eight requests at once, four through each broker, all answered.
    clients = [mdp.MdpClient(broker.endpoint) for broker in (a, b) for _ in range(4)]
    try:
        for number, client in enumerate(clients):
            client.send("echo", b"c-%d" % number)
        for number, client in enumerate(clients):
            assert client.recv(RTT_S) == (b"echo", [b"c-%d" % number])
    finally:
        for client in clients:
            client.close()


def test_config_file_names_several_brokers_as_a_list_or_a_repeated_key(
        tmp_path, start_broker, start_worker):
    a, b = start_broker(), start_broker()
    as_list = tmp_path / "list.cfg"
    as_list.write_text('worker\n    connect = "%s, %s"\n    service = "listed"\n'
                       "    echo = 1\n" % (a.endpoint, b.endpoint))
    repeated = tmp_path / "repeated.cfg"
    repeated.write_text('worker\n    connect = "%s"\n    connect = "%s"\n'
                        '    service = "repeated"\n    echo = 1\n' % (a.endpoint, b.endpoint))
    for config in (as_list, repeated):
        start_worker(None, None, "--config", config, wait=False)
    for service in ("listed", "repeated"):
        for endpoint in (a.endpoint, b.endpoint):
            assert listed_exactly(endpoint, service, 1, settle_s=0.2), (service, endpoint)
            assert echo(endpoint, service, b"hi") == [b"hi"]


def test_the_same_broker_twice_is_exit_2_naming_it(tmp_path):
    endpoint = "tcp://127.0.0.1:5999"
    config = tmp_path / "twice.cfg"
    config.write_text('worker\n    connect = "%s %s"\n' % (endpoint, endpoint))
    for args in (["--connect", endpoint, "--connect", endpoint],
                 ["--connect", "%s,tcp://127.0.0.1:5998,%s" % (endpoint, endpoint)],
                 ["--connect", endpoint, "--connect", endpoint, "--processes", "2"],
                 ["--config", str(config)]):
        result = subprocess.run([str(WORKER_BIN), "--echo"] + args, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=10 * SCALE)
        assert result.returncode == 2, (args, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "duplicate endpoint %s" % endpoint in lines[0], \
            (args, result.stderr)
