"""Security (contract section 6, issue 5): CurveZMQ encryption with a ZAP
allow-list (CZMQ zauth), `cartmq keygen`, the --curve-* flags, refusals in
the broker's log, revocation on SIGHUP, and what is on the wire.

Every test runs the real programs.  Peers written here in pyzmq stand for
clients and workers written by someone else; their keys are either files
from `cartmq keygen` or fresh pairs from zmq.curve_keypair().

The broker logs through zsys.  Its log is read from both of its output
files, so these tests do not depend on which stream zsys writes to.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.auth

import support
from support import (BROKER_BIN, CLI_BIN, HB_MS, WORKER_BIN, bound,
                     wait_until)

#  How long a refused peer is given to get an answer it must not get.
SILENCE_S = 1.0 * support.SCALE
#  How long a program may take to refuse to start.
REFUSE_S = 5.0 * support.SCALE
NOBODY = 65534

CLIENT = b"MDPC01"
WORKER = b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = (bytes([n]) for n in range(1, 6))


# --- keys and peers ----------------------------------------------------------


def keygen(cwd, name):
    """Runs `cartmq keygen name` in cwd; returns (public path, secret path)."""
    result = subprocess.run([str(CLI_BIN), "keygen", name], cwd=cwd,
                            capture_output=True, text=True, timeout=bound(10))
    assert result.returncode == 0, "keygen %s failed: %s" % (name, result.stderr)
    return Path(cwd) / name, Path(cwd) / (name + "_secret")


def cert_keys(path):
    """(public, secret) Z85 keys of a zcert file; secret is None for a public one."""
    return zmq.auth.load_certificate(str(path))


def write_public_cert(path, public):
    """A public certificate in zcert's format, always the same size."""
    Path(path).write_text('curve\n    public-key = "%s"\n' % public.decode())


class Keys:
    """The broker's pair, an allow-list directory and named client pairs."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.allowed = self.root / "allowed"
        self.allowed.mkdir()
        self.broker_public, self.broker_secret = keygen(self.root, "broker")
        self.server_key = cert_keys(self.broker_public)[0]

    def make(self, name, allow=True):
        """keygen name; with allow, its public cert goes into the allow-list."""
        public, secret = keygen(self.root, name)
        if allow:
            shutil.copy(public, self.allowed / name)
        return public, secret

    def flags(self, secret):
        return ["--curve-server", str(self.broker_public), "--curve-cert", str(secret)]


def dealer(ctx, endpoint, keys=None, server_key=None):
    """A DEALER; keys (public, secret) make it a CURVE client of server_key."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, 0)
    if keys is not None:
        sock.curve_publickey, sock.curve_secretkey = keys[0], keys[1]
        sock.curve_serverkey = server_key
    sock.connect(endpoint)
    return sock


def send(sock, *frames):
    """Sends without blocking; False if the socket would not take it."""
    try:
        sock.send_multipart(list(frames), flags=zmq.NOBLOCK)
        return True
    except zmq.Again:
        return False


def recv(sock, timeout):
    if sock.poll(int(timeout * 1000), zmq.POLLIN):
        return sock.recv_multipart()
    return None


class Client:
    """An MDP client over one DEALER (one connection)."""

    def __init__(self, ctx, endpoint, keys=None, server_key=None):
        self.sock = dealer(ctx, endpoint, keys, server_key)

    def send(self, service, body):
        return send(self.sock, b"", CLIENT, service, body)

    def recv(self, timeout=support.RTT_S):
        frames = recv(self.sock, timeout)
        if frames is None:
            return None
        assert frames[:2] == [b"", CLIENT], "bad reply %r" % (frames,)
        return frames[2:]

    def request(self, service, body, timeout=support.RTT_S):
        """[service, body...] of the reply, or None."""
        return self.recv(timeout) if self.send(service, body) else None

    def service_status(self, service):
        reply = self.request(b"mmi.service", service)
        return None if reply is None else reply[1]

    def close(self):
        self.sock.close(0)


class Worker:
    """An MDP worker over one DEALER: says READY, answers HEARTBEATs."""

    def __init__(self, ctx, endpoint, service, keys=None, server_key=None):
        self.sock = dealer(ctx, endpoint, keys, server_key)
        self.requests = 0
        self.heard = 0
        send(self.sock, b"", WORKER, READY, service)
        self.last_send = time.monotonic()

    def serve(self, seconds, echo=True):
        """Echoes requests for seconds, heartbeating; counts what came."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_send > HB_MS / 1000.0:
                send(self.sock, b"", WORKER, HEARTBEAT)
                self.last_send = time.monotonic()
            frames = recv(self.sock, 0.05)
            if frames is None:
                continue
            self.heard += 1
            if frames[:3] == [b"", WORKER, REQUEST]:
                self.requests += 1
                if echo:
                    address, body = frames[3], frames[5:]
                    send(self.sock, b"", WORKER, REPLY, address, b"", *body)
                    self.last_send = time.monotonic()

    def close(self):
        self.sock.close(0)


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def keys(tmp_path):
    if not CLI_BIN.exists():
        pytest.fail("cartmq is not built: %s missing" % CLI_BIN)
    return Keys(tmp_path / "keys")


def log_text(proc):
    """Everything a program logged so far (stdout and stderr)."""
    text = proc.stderr_text()
    try:
        text += proc.stdout_path.read_bytes().decode(errors="replace")
    except OSError:
        pass
    return text


def wait_log(proc, needle, count=1, timeout=support.START_S):
    """True once needle occurs count times in proc's log."""
    return bool(wait_until(lambda: log_text(proc).count(needle) >= count, timeout))


def start_curve_broker(start_broker, keys, *args):
    return start_broker("--curve-secret", keys.broker_secret,
                        "--curve-clients", keys.allowed, *args)


#  The greeting of a ZMTP 3.1 peer without security (mechanism NULL):
#  signature, version, mechanism, as-server, filler; 64 bytes.
NULL_GREETING = (b"\xff" + bytes(8) + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\0")
                 + bytes(32))


def plain_peer(endpoint, sent):
    """A plain-text ZMTP peer made by hand, so that the order in which the
    two greetings are read is fixed (a libzmq peer races the broker: see
    broker_guard.c).  Sends the first `sent` bytes of a NULL greeting, then
    reads the broker's greeting until its 64 bytes are in or the broker
    closes, and closes.  Returns what it read."""
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=bound(5)) as sock:
        sock.sendall(NULL_GREETING[:sent])
        while len(received) < len(NULL_GREETING):
            try:
                chunk = sock.recv(len(NULL_GREETING) - len(received))
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


def start_echo_worker(start_worker, endpoint, service, *args):
    """cartmq-worker --echo for service (no Redis), not waited for."""
    return start_worker(endpoint, None, "--echo", "--service", service, *args,
                        wait=False)


def wait_service(client, service, timeout=support.START_S):
    """True once mmi.service says 200 for service."""
    return bool(wait_until(lambda: client.service_status(service) == b"200",
                           timeout, interval=0.05))


def hup(broker):
    """SIGHUP, and wait until the broker has re-read its allow-list."""
    before = log_text(broker).count("allow-list dir=")
    broker.send_signal(signal.SIGHUP)
    assert wait_log(broker, "allow-list dir=", before + 1), \
        "broker did not re-read its allow-list after SIGHUP:\n" + broker.log_tail()
    assert broker.alive(), "broker died on SIGHUP:\n" + broker.log_tail()


# --- keygen --------------------------------------------------------------------


def test_keygen_writes_a_public_cert_and_a_0600_secret_cert(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    public, secret = keygen(tmp_path, "alice")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644 & ~umask
    pub_public, pub_secret = cert_keys(public)
    sec_public, sec_secret = cert_keys(secret)
    assert pub_secret is None, "the public file holds a secret key"
    assert "secret-key" not in public.read_text()
    assert sec_public == pub_public and len(sec_secret) == 40
    assert zmq.curve_public(sec_secret) == sec_public

    #  A second keygen must not overwrite the pair.
    before = (public.read_bytes(), secret.read_bytes())
    result = subprocess.run([str(CLI_BIN), "keygen", "alice"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=bound(10))
    assert result.returncode != 0
    assert (public.read_bytes(), secret.read_bytes()) == before

    #  Another keygen makes another key.
    other, _ = keygen(tmp_path, "bob")
    assert cert_keys(other)[0] != pub_public


# --- authorised peers are served ---------------------------------------------------


def test_authorised_cart_worker_cli_and_pyzmq_client_are_served(
        ctx, keys, redis_server, start_broker, start_worker, run_cli):
    _, worker_secret = keys.make("cart-worker")
    client_public, client_secret = keys.make("client")
    broker = start_curve_broker(start_broker, keys)
    start_worker(broker.endpoint, redis_server.url, *keys.flags(worker_secret), wait=False)
    client = Client(ctx, broker.endpoint, cert_keys(client_secret), keys.server_key)
    assert wait_service(client, b"cart"), "CURVE cart worker never registered:\n" \
        + broker.log_tail()

    cli = keys.flags(client_secret)
    result = run_cli(broker.endpoint, *cli, "add", "alice", "sku-1", "--name", "Pen",
                     "--quantity", "2", "--price", "150")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": 200, "item_id": "sku-1", "quantity": 2}
    result = run_cli(broker.endpoint, *cli, "get", "alice")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"] == 300

    reply = client.request(b"cart", msgpack.packb({"method": "GetCartItems",
                                                   "user_id": "alice"}))
    assert reply is not None and reply[0] == b"cart"
    assert msgpack.unpackb(reply[1], raw=False)["items"][0]["id"] == "sku-1"

    log = log_text(broker)
    assert "allowed (CURVE) client_key=%s" % cert_keys(client_public)[0].decode() in log
    assert "curve=on" in log


def test_authorised_echo_worker_serves_curve_clients(ctx, keys, start_broker, start_worker):
    _, worker_secret = keys.make("echo-worker")
    _, client_secret = keys.make("client")
    broker = start_curve_broker(start_broker, keys)
    start_echo_worker(start_worker, broker.endpoint, "echo", *keys.flags(worker_secret))
    client = Client(ctx, broker.endpoint, cert_keys(client_secret), keys.server_key)
    assert wait_service(client, b"echo"), broker.log_tail()
    for index in range(20):
        body = b"ping-%d" % index
        assert client.request(b"echo", body) == [b"echo", body]


# --- refused peers get nothing -----------------------------------------------------


def test_unlisted_fresh_and_plaintext_peers_get_nothing_while_the_broker_serves(
        ctx, keys, start_broker, start_worker):
    _, worker_secret = keys.make("echo-worker")
    _, client_secret = keys.make("client")
    unlisted_public, unlisted_secret = keys.make("unlisted", allow=False)
    unlisted_key = cert_keys(unlisted_public)[0]
    fresh = zmq.curve_keypair()
    #  A second endpoint only the hand-made plain-text peers use, so their
    #  lines are told apart from the others' (and each kind of line is
    #  rate-limited: these come before anyone else's).
    plain_endpoint = "tcp://127.0.0.1:%d" % support.free_port()
    broker = start_curve_broker(start_broker, keys, "--bind", plain_endpoint)
    endpoint = broker.endpoint

    #  A plain-text peer is refused whichever greeting is read first, and
    #  logged: when the broker reads its mechanism, as not using CURVE;
    #  when it reads the broker's first and leaves (libzmq does, for good),
    #  as a peer that closed the connection, which may not use CURVE.
    plain_peer(plain_endpoint, len(NULL_GREETING))
    assert wait_log(broker, 'refused connection endpoint=%s reason="peer does not use '
                    'CURVE (plain text?)"' % plain_endpoint), log_text(broker)
    greeting = plain_peer(plain_endpoint, 11)
    assert greeting[12:32] == b"CURVE".ljust(20, b"\0"), greeting
    assert wait_log(broker, 'handshake not completed endpoint=%s reason="peer closed the '
                    'connection (Broken pipe): a peer that does not use CURVE'
                    % plain_endpoint), log_text(broker)
    start_echo_worker(start_worker, endpoint, "echo", *keys.flags(worker_secret))
    good = Client(ctx, endpoint, cert_keys(client_secret), keys.server_key)
    assert wait_service(good, b"echo"), broker.log_tail()

    #  Refused workers: our worker with an unlisted cert, a pyzmq worker with
    #  a fresh key, a plain-text pyzmq worker.
    refused_worker = start_echo_worker(start_worker, endpoint, "echo-unlisted",
                                       *keys.flags(unlisted_secret))
    workers = {b"echo-fresh": Worker(ctx, endpoint, b"echo-fresh", fresh, keys.server_key),
               b"echo-plain": Worker(ctx, endpoint, b"echo-plain")}
    #  Refused clients, all asking the authorised echo worker.
    bad_clients = {
        "unlisted": Client(ctx, endpoint, cert_keys(unlisted_secret), keys.server_key),
        "fresh": Client(ctx, endpoint, fresh, keys.server_key),
        "plain": Client(ctx, endpoint),
        #  A listed key that has the wrong server key fails the handshake.
        "wrong server key": Client(ctx, endpoint, cert_keys(client_secret),
                                   zmq.curve_keypair()[0]),
    }
    for client in bad_clients.values():
        client.send(b"echo", b"let me in")
    for worker in workers.values():
        worker.serve(0.3)
    #  An authorised client asks each refused worker's service.
    for service in (b"echo-unlisted", b"echo-fresh", b"echo-plain"):
        assert good.send(service, b"for a refused worker")
    for worker in workers.values():
        worker.serve(SILENCE_S)

    for name, client in bad_clients.items():
        assert client.recv(0.05) is None, "%s client got a reply" % name
    for service, worker in workers.items():
        assert worker.heard == 0 and worker.requests == 0, \
            "%s worker heard %d messages" % (service, worker.heard)
    for service in (b"echo-unlisted", b"echo-fresh", b"echo-plain"):
        assert good.service_status(service) == b"404", service
    assert refused_worker.alive(), refused_worker.log_tail()

    #  The broker kept serving the authorised peers.
    assert good.request(b"echo", b"still here") == [b"echo", b"still here"]
    late = Client(ctx, endpoint, cert_keys(client_secret), keys.server_key)
    assert late.request(b"echo", b"new client") == [b"echo", b"new client"]
    assert broker.alive()

    #  ... and logged each refusal: zauth names the key and the address,
    #  the socket monitor the peers with the wrong server key (the plain-text
    #  pyzmq peers race the broker's greeting, so their lines were checked
    #  above with peers that do not). The monitor is read on its own thread
    #  and zauth logs from its own, so a line may land a moment after the
    #  replies above.
    needles = ["denied (CURVE) client_key=%s" % key.decode()
               for key in (unlisted_key, fresh[0])]
    needles += ["ZAP request mechanism=CURVE ipaddress=127.0.0.1",
                'reason="key not allowed"', "wrong server key",
                "refused connection endpoint=%s" % endpoint]
    for needle in needles:
        assert wait_log(broker, needle), (needle, log_text(broker))


# --- revocation and admission with SIGHUP ------------------------------------------


def test_sighup_after_removing_a_key_refuses_new_connections_with_it(
        ctx, keys, start_broker, start_worker):
    _, worker_secret = keys.make("echo-worker")
    revoked_public, revoked_secret = keys.make("revoked")
    _, kept_secret = keys.make("kept")
    broker = start_curve_broker(start_broker, keys)
    start_echo_worker(start_worker, broker.endpoint, "echo", *keys.flags(worker_secret))
    revoked_keys = cert_keys(revoked_secret)
    connected = Client(ctx, broker.endpoint, revoked_keys, keys.server_key)
    assert wait_service(connected, b"echo"), broker.log_tail()

    (keys.allowed / "revoked").unlink()
    hup(broker)

    fresh_connection = Client(ctx, broker.endpoint, revoked_keys, keys.server_key)
    assert fresh_connection.request(b"echo", b"revoked", timeout=SILENCE_S) is None
    assert "denied (CURVE) client_key=%s" % cert_keys(revoked_public)[0].decode() \
        in log_text(broker)
    #  Keys still listed are served, old connections and new ones alike.
    kept = Client(ctx, broker.endpoint, cert_keys(kept_secret), keys.server_key)
    assert kept.request(b"echo", b"kept") == [b"echo", b"kept"]
    #  ... and a connection made before the SIGHUP is not served either:
    #  every message from a revoked key is dropped (contract section 6).
    assert connected.request(b"echo", b"old", timeout=SILENCE_S) is None
    assert wait_log(broker, "revoked) client_key=%s" % revoked_keys[0].decode())


def test_sighup_after_adding_a_key_admits_it(ctx, keys, start_broker, start_worker):
    _, worker_secret = keys.make("echo-worker")
    newcomer_public, newcomer_secret = keys.make("newcomer", allow=False)
    broker = start_curve_broker(start_broker, keys)
    start_echo_worker(start_worker, broker.endpoint, "echo", *keys.flags(worker_secret))
    newcomer_keys = cert_keys(newcomer_secret)
    refused = Client(ctx, broker.endpoint, newcomer_keys, keys.server_key)
    assert refused.request(b"mmi.service", b"echo", timeout=SILENCE_S) is None

    shutil.copy(newcomer_public, keys.allowed / "newcomer")
    hup(broker)
    admitted = Client(ctx, broker.endpoint, newcomer_keys, keys.server_key)
    assert wait_service(admitted, b"echo"), broker.log_tail()
    assert admitted.request(b"echo", b"hello") == [b"echo", b"hello"]


def test_sighup_rereads_the_allow_list_even_when_zauth_sees_no_change(
        ctx, keys, start_broker, start_worker):
    """zcertstore reloads by itself only when the directory's file count,
    total size or newest mtime changes; a cert replaced in place by one of
    the same size, mtime kept, goes unnoticed until SIGHUP."""
    _, worker_secret = keys.make("echo-worker")
    old, new = zmq.curve_keypair(), zmq.curve_keypair()
    slot = keys.allowed / "rotating"
    write_public_cert(slot, old[0])
    broker = start_curve_broker(start_broker, keys)
    start_echo_worker(start_worker, broker.endpoint, "echo", *keys.flags(worker_secret))
    assert wait_service(Client(ctx, broker.endpoint, old, keys.server_key), b"echo"), \
        broker.log_tail()

    times = slot.stat()
    write_public_cert(slot, new[0])
    os.utime(slot, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert slot.stat().st_size == times.st_size
    assert Client(ctx, broker.endpoint, new, keys.server_key).request(
        b"echo", b"too early", timeout=SILENCE_S) is None
    assert Client(ctx, broker.endpoint, old, keys.server_key).request(
        b"echo", b"stale") == [b"echo", b"stale"]

    hup(broker)
    assert Client(ctx, broker.endpoint, new, keys.server_key).request(
        b"echo", b"now") == [b"echo", b"now"]
    assert Client(ctx, broker.endpoint, old, keys.server_key).request(
        b"echo", b"gone", timeout=SILENCE_S) is None


def test_broker_without_curve_survives_sighup(ctx, start_broker, start_worker):
    broker = start_broker()
    start_echo_worker(start_worker, broker.endpoint, "echo")
    client = Client(ctx, broker.endpoint)
    assert wait_service(client, b"echo")
    broker.send_signal(signal.SIGHUP)
    assert wait_log(broker, "SIGHUP")
    assert client.request(b"echo", b"after hup") == [b"echo", b"after hup"]
    assert broker.alive()


# --- refusing to start -----------------------------------------------------------


@pytest.fixture
def shared_dir():
    """A directory every user may enter (tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="cmq-sec-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_refused(argv, cwd, as_nobody=False):
    """Runs a program that must refuse to start: (exit code, output lines)."""
    def drop():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    try:
        result = subprocess.run([str(arg) for arg in argv], cwd=cwd, capture_output=True,
                                text=True, timeout=REFUSE_S, stdin=subprocess.DEVNULL,
                                preexec_fn=drop if as_nobody else None)
    except subprocess.TimeoutExpired:
        pytest.fail("%s did not refuse to start within %.0fs" % (argv[0], REFUSE_S))
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return result.returncode, lines


PROGRAMS = {
    "broker": lambda port, cert, public, allowed: [
        BROKER_BIN, "--bind", "tcp://127.0.0.1:%d" % port,
        "--curve-secret", cert, "--curve-clients", allowed],
    "worker": lambda port, cert, public, allowed: [
        WORKER_BIN, "--connect", "tcp://127.0.0.1:%d" % port, "--echo",
        "--curve-server", public, "--curve-cert", cert],
    "cli": lambda port, cert, public, allowed: [
        CLI_BIN, "--connect", "tcp://127.0.0.1:%d" % port, "--retries", "0",
        "--curve-server", public, "--curve-cert", cert, "get", "alice"],
}


@pytest.mark.parametrize("fault", ["missing", "unreadable", "readable by others",
                                   "readable by group", "public file", "fifo"])
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_programs_refuse_to_start_on_a_bad_secret_cert(program, fault, shared_dir,
                                                       free_port):
    if not CLI_BIN.exists():
        pytest.fail("cartmq is not built: %s missing" % CLI_BIN)
    public, secret = keygen(shared_dir, "me")
    allowed = shared_dir / "allowed"
    allowed.mkdir(mode=0o755)
    as_nobody = False
    cert = secret
    if fault == "missing":
        cert = shared_dir / "no-such-cert_secret"
        expect = "No such file"
    elif fault == "unreadable":
        expect = "Permission denied"
        if os.geteuid() == 0:
            as_nobody = True  # root reads any file; nobody cannot read root's 0600
        else:
            secret.chmod(0)
    elif fault == "readable by others":
        secret.chmod(0o604)
        expect = "readable by group or others"
    elif fault == "readable by group":
        secret.chmod(0o640)
        expect = "readable by group or others"
    elif fault == "fifo":
        cert = shared_dir / "fifo_secret"
        os.mkfifo(cert, 0o600)
        expect = "not a regular file"
    else:
        cert = public
        expect = "public certificate"
    port = free_port()
    code, lines = run_refused(PROGRAMS[program](port, cert, public, allowed), shared_dir,
                              as_nobody)
    assert code != 0, "%s started with a %s cert: %r" % (program, fault, lines)
    assert len(lines) == 1, "expected a one-line error, got %r" % lines
    assert str(cert) in lines[0] or cert.name in lines[0], lines[0]
    assert expect in lines[0], lines[0]
    assert not support.port_open(port)


def test_broker_refuses_an_allow_list_that_is_not_a_directory(keys, free_port):
    port = free_port()
    code, lines = run_refused([BROKER_BIN, "--bind", "tcp://127.0.0.1:%d" % port,
                               "--curve-secret", keys.broker_secret,
                               "--curve-clients", keys.broker_public], keys.root)
    assert code != 0 and len(lines) == 1, lines
    assert "--curve-clients" in lines[0]


def test_broker_warns_about_secret_certs_in_the_allow_list(keys, start_broker):
    _, secret = keys.make("careless")
    shutil.copy(secret, keys.allowed / "careless_secret")
    broker = start_curve_broker(start_broker, keys)
    assert wait_log(broker, "allow-list holds a secret certificate")
    assert "keys=1" in log_text(broker)


# --- plain text on a public address ---------------------------------------------


def test_plain_bind_on_a_public_address_warns_and_loopback_does_not(
        keys, start_broker, free_port):
    any_port, star_port = free_port(), free_port()
    broker = start_broker("--bind", "tcp://0.0.0.0:%d" % any_port,
                          "--bind", "tcp://*:%d" % star_port)
    assert wait_log(broker, "listening endpoint=tcp://0.0.0.0:%d bind=tcp://*:%d"
                    % (star_port, star_port))
    warnings = [line for line in log_text(broker).splitlines() if "plain text" in line]
    assert len(warnings) == 2, warnings
    assert any("tcp://0.0.0.0:%d" % any_port in line for line in warnings)
    assert any("tcp://*:%d" % star_port in line for line in warnings)
    broker.stop()

    curve = start_curve_broker(start_broker, keys, "--bind", "tcp://*:%d" % free_port())
    assert wait_log(curve, "curve=on", 2)
    assert "plain text" not in log_text(curve)


# --- on the wire ---------------------------------------------------------------


def capture(port, path, action):
    """Runs action() while Wireshark's capture engine records loopback
    traffic on port into path; returns the capture file's bytes.

    dumpcap (what tshark runs underneath; Debian installs it with tshark)
    starts in a fraction of a second, where tshark first loads every
    dissector; tshark itself is the fallback."""
    tool = shutil.which("dumpcap") or shutil.which("tshark")
    if not tool:
        pytest.fail("neither dumpcap nor tshark is installed (Debian package tshark; "
                    "scripts/deps.sh installs it): the capture test cannot run")
    log = path.with_suffix(".log")
    with open(log, "wb") as err:
        proc = subprocess.Popen([tool, "-i", "lo", "-f", "tcp port %d" % port,
                                 "-w", str(path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        #  dumpcap says "File:" once it writes; tshark "Capture started".
        started = wait_until(lambda: b"File:" in log.read_bytes()
                             or b"Capture started" in log.read_bytes()
                             or proc.poll() is not None, bound(20))
        if not started or proc.poll() is not None:
            pytest.fail("%s could not capture on lo: %s"
                        % (tool, log.read_bytes().decode(errors="replace")))
        time.sleep(0.2)
        action()
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=bound(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    data = path.read_bytes() if path.exists() else b""
    if b"captured" not in log.read_bytes() or not data:
        pytest.fail("%s captured nothing: %s" % (tool, log.read_bytes().decode(errors="replace")))
    return data


def test_capture_shows_no_payload_with_curve_and_shows_it_without(
        ctx, keys, tmp_path, start_broker, start_worker):
    _, worker_secret = keys.make("echo-worker")
    _, client_secret = keys.make("client")
    marker = b"CARTMQ-MARKER-" + secrets.token_hex(8).encode()
    plain = start_broker()
    curve = start_curve_broker(start_broker, keys)
    start_echo_worker(start_worker, plain.endpoint, "echo")
    start_echo_worker(start_worker, curve.endpoint, "echo", *keys.flags(worker_secret))
    plain_client = Client(ctx, plain.endpoint)
    curve_client = Client(ctx, curve.endpoint, cert_keys(client_secret), keys.server_key)
    assert wait_service(plain_client, b"echo") and wait_service(curve_client, b"echo")

    def exchange(endpoint, client_keys=None):
        def action():
            #  A fresh connection, so the capture holds its handshake too.
            fresh = Client(ctx, endpoint, client_keys, keys.server_key)
            assert fresh.request(b"echo", b"body " + marker) == [b"echo", b"body " + marker]
            fresh.close()
        return action

    control = capture(plain.port, tmp_path / "plain.pcapng", exchange(plain.endpoint))
    #  Client to broker, broker to worker and back: four copies in clear.
    assert control.count(marker) >= 4, "control capture lacks the payload in clear"
    assert b"MDPC01" in control and b"NULL" in control

    data = capture(curve.port, tmp_path / "curve.pcapng",
                   exchange(curve.endpoint, cert_keys(client_secret)))
    assert b"CURVE" in data, "capture does not hold the CURVE handshake"
    assert b"HELLO" in data and b"MESSAGE" in data, "no CURVE traffic captured"
    assert marker not in data, "request payload is visible in the CURVE capture"
    for clear in (b"MDPC01", b"MDPW01", b"echo", b"body "):
        assert clear not in data, "%r is visible in the CURVE capture" % clear


# --- cost ----------------------------------------------------------------------


def round_trips(client, count, size=32):
    """Latencies (s) of count sequential echo round trips."""
    body = b"x" * size
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        reply = client.request(b"echo", body)
        latencies.append(time.perf_counter() - started)
        assert reply == [b"echo", body]
    return latencies


def test_round_trip_cost_of_curve_against_plain(ctx, keys, tmp_path, start_broker,
                                                start_worker):
    count = 2000
    _, worker_secret = keys.make("echo-worker")
    _, client_secret = keys.make("client")
    plain = start_broker()
    curve = start_curve_broker(start_broker, keys)
    start_echo_worker(start_worker, plain.endpoint, "echo")
    start_echo_worker(start_worker, curve.endpoint, "echo", *keys.flags(worker_secret))
    clients = {"plain": Client(ctx, plain.endpoint),
               "curve": Client(ctx, curve.endpoint, cert_keys(client_secret),
                               keys.server_key)}
    results = {}
    for name, client in clients.items():
        assert wait_service(client, b"echo")
        round_trips(client, 100)  # warm up
    for name, client in clients.items():
        latencies = sorted(round_trips(client, count))
        results[name] = {"median_us": round(latencies[count // 2] * 1e6),
                         "p99_us": round(latencies[int(count * 0.99)] * 1e6),
                         "per_s": round(count / sum(latencies))}
    (tmp_path / "curve-cost.json").write_text(json.dumps(results))
    print("\nsequential echo, %d round trips: %s" % (count, json.dumps(results)))
    #  A sanity bound only; the numbers go in the report.
    assert results["curve"]["median_us"] < 20 * results["plain"]["median_us"] + 2000
