"""Shared pieces of the harness: where the programs are, how long to wait,
how to run and stop a process, and small MMI and cart helpers.

The fixtures in conftest.py are built from these; tests import the helpers
directly (`from support import ...`).
"""

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import msgpack

import mdp

HARNESS_DIR = Path(__file__).resolve().parent
REPO_DIR = HARNESS_DIR.parent.parent
BUILD_DIR = Path(os.environ.get("CARTMQ_BUILD_DIR") or REPO_DIR / "build")

BROKER_BIN = BUILD_DIR / "broker" / "cartmq-broker"
WORKER_BIN = BUILD_DIR / "worker" / "cartmq-worker"
CLI_BIN = BUILD_DIR / "client" / "cartmq"
REDIS_BIN = Path("/usr/bin/redis-server")

SANITIZE = os.environ.get("CARTMQ_SANITIZE", "0").strip().lower() in ("1", "on", "true", "yes")

#  Sanitized builds run several times slower: every time bound the harness
#  applies is multiplied by SCALE.  Heartbeats are not scaled, so what a
#  test measures stays comparable between the two builds.
SCALE = 3 if SANITIZE else 1

#  CARTMQ_VALGRIND=1 runs every broker under valgrind's memcheck with a
#  full leak check (not in CI: slow); a report fails the test like a
#  sanitizer message does. Time bounds stretch to match.
VALGRIND = os.environ.get("CARTMQ_VALGRIND", "0").strip().lower() in ("1", "on", "true", "yes")
if VALGRIND:
    SCALE = 6

#  Short heartbeats keep expiry-driven tests quick: a silent peer is dead
#  after LIVENESS * HB_MS = 750 ms.
HB_MS = 250
LIVENESS = 3
EXPIRY_S = HB_MS * LIVENESS / 1000.0

#  How long a healthy round trip may take, and how long a process may take
#  to start listening or registering.
RTT_S = 2.0 * SCALE
START_S = 5.0 * SCALE
#  The contract's bound for stopping on SIGINT/SIGTERM.
STOP_S = 2.0 * SCALE


def bound(seconds):
    """A time bound from the contract, stretched for sanitized builds."""
    return seconds * SCALE


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.02, pump=None):
    """The first truthy value of predicate(), or None after timeout s.

    pump: pyzmq workers to keep heartbeating between tries.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        if pump:
            mdp.pump_all(pump, interval)
        else:
            mdp.idle(interval)


def sample(function, seconds, interval=0.1):
    """function()'s values, taken every interval for seconds."""
    values = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        values.append(function())
        mdp.idle(interval)
    return values


def listed_workers(endpoint, service="cart"):
    """Workers mmi.services lists for service; None if not listed."""
    return (services(endpoint) or {}).get(service, {}).get("workers")


def unlisted(endpoint, service):
    """True if mmi.services answers and does not list service."""
    listing = services(endpoint)
    return listing is not None and service not in listing


def _die_with_parent():
    """Child side of fork: SIGKILL this process if the harness dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:  # noqa: BLE001 - best effort only
        pass


SANITIZER_MARKS = (
    b"ERROR: AddressSanitizer",
    b"ERROR: LeakSanitizer",
    b"runtime error:",
    b"ERROR: UndefinedBehaviorSanitizer",
)


class Proc:
    """One program under test: started, signalled and reaped by the harness.

    stdout and stderr go to files under the test's tmp_path; restarts append
    to the same files.  `stop()` returns the exit code (negative for a
    signal), or None if the process did not exit in time (it is then
    killed).  `stop_seconds` holds how long the last stop took.
    """

    #  Order of teardown: lower ranks are stopped first.
    RANK = 5

    def __init__(self, name, argv, logdir, cwd=None, env=None):
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.cwd = cwd
        self.env = env
        self.proc = None
        self.starts = 0
        self.stop_seconds = None
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logdir / ("%s.stdout" % name)
        self.stderr_path = logdir / ("%s.stderr" % name)

    def __repr__(self):
        return "<%s pid=%s>" % (self.name, self.pid)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        binary = Path(self.argv[0])
        if not binary.exists():
            raise RuntimeError("%s is not built: %s missing (CARTMQ_BUILD_DIR=%s)"
                               % (self.name, binary, BUILD_DIR))
        self.starts += 1
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            err.write(("--- start %d: %s\n" % (self.starts, " ".join(self.argv))).encode())
            err.flush()
            #  PR_SET_PDEATHSIG follows the thread that forked, so only the
            #  main thread may ask for it (a worker restarted from a helper
            #  thread must outlive that thread).
            main = threading.current_thread() is threading.main_thread()
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=self.cwd, env=self.env,
                preexec_fn=_die_with_parent if main else None)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout s."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_S):
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.stop_seconds = 0.0
            return self.proc.returncode
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.wait(timeout)
        self.stop_seconds = time.monotonic() - started
        if code is None:
            self.kill()
        return code

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def restart(self):
        self.kill()
        return self.start()

    def stderr_text(self):
        try:
            return self.stderr_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, limit=12000):
        text = self.stderr_text()
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return text

    def sanitizer_report(self):
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return None
        for mark in SANITIZER_MARKS:
            if mark in data:
                return mark.decode()
        return None


class RedisServer(Proc):
    """A throwaway redis-server on a free loopback port (and a unix socket)."""

    RANK = 9

    def __init__(self, logdir, sockdir):
        self.port = free_port()
        self.dir = Path(logdir) / "redis-data"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.unix_path = Path(sockdir) / "redis.sock"
        argv = [REDIS_BIN, "--port", self.port, "--bind", "127.0.0.1",
                "--unixsocket", self.unix_path, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--protected-mode", "no",
                "--logfile", ""]
        super().__init__("redis-%d" % self.port, argv, logdir)
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.unix_url = "unix://%s" % self.unix_path

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=0,
                           socket_timeout=2, socket_connect_timeout=2)

    def _pings(self):
        try:
            return self.client().ping()
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def start(self):
        super().start()
        if not wait_until(lambda: self._pings() or not self.alive(), START_S) or not self.alive():
            raise RuntimeError("redis-server did not start on port %d:\n%s"
                               % (self.port, self.log_tail()))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=STOP_S):
        code = super().stop(sig, timeout)
        wait_until(lambda: not port_open(self.port), 2.0)
        return code


class Broker(Proc):
    """cartmq-broker bound to one free loopback port."""

    RANK = 3

    def __init__(self, logdir, args, heartbeat_ms, liveness, port=None, name=None):
        self.port = port or free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        name = name or "broker-%d" % self.port
        self.valgrind_logs = Path(logdir) / ("%s.valgrind" % name)
        argv = [BROKER_BIN, "--bind", self.endpoint]
        if VALGRIND:
            self.valgrind_logs.mkdir(parents=True, exist_ok=True)
            argv = ["/usr/bin/valgrind", "--quiet", "--leak-check=full",
                    "--show-leak-kinds=definite,indirect",
                    "--errors-for-leak-kinds=definite,indirect",
                    "--log-file=%s/%%p.log" % self.valgrind_logs] + argv
        if heartbeat_ms is not None:
            argv += ["--heartbeat-ms", heartbeat_ms]
        if liveness is not None:
            argv += ["--liveness", liveness]
        argv += list(args)
        super().__init__(name, argv, logdir)

    def sanitizer_report(self):
        report = super().sanitizer_report()
        if report or not VALGRIND:
            return report
        for log in sorted(self.valgrind_logs.glob("*.log")):
            text = log.read_text(errors="replace").strip()
            if text:
                return "valgrind: " + text[:4000]
        return None

    def start(self):
        super().start()
        listening = wait_until(lambda: port_open(self.port) or not self.alive(), START_S)
        if not listening or not self.alive():
            raise RuntimeError("broker did not listen on %s (exit %s):\n%s"
                               % (self.endpoint, self.returncode(), self.log_tail()))
        return self


class Worker(Proc):
    """cartmq-worker (or its supervisor with --processes)."""

    RANK = 1

    def __init__(self, logdir, endpoint, redis_url, args, heartbeat_ms, liveness, name):
        argv = [WORKER_BIN]
        if endpoint is not None:
            argv += ["--connect", endpoint]
        if redis_url is not None:
            argv += ["--redis", redis_url]
        if heartbeat_ms is not None:
            argv += ["--heartbeat-ms", heartbeat_ms]
        if liveness is not None:
            argv += ["--liveness", liveness]
        argv += list(args)
        super().__init__(name, argv, logdir)
        self.endpoint = endpoint
        self.service = _flag_value(self.argv, "--service", "cart")
        self.processes = int(_flag_value(self.argv, "--processes", "1"))


def _flag_value(argv, flag, default):
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return default


# --- MMI -----------------------------------------------------------------


def mmi(endpoint, name, *body, timeout=RTT_S):
    """Body frames of an MMI reply, or None if none came.

    A request carries at least one body frame (RFC 7, as the reference
    broker reads it), so mmi.services and mmi.stats send an empty one.
    """
    body = body or (b"",)
    with mdp.MdpClient(endpoint, timeout=timeout) as client:
        return client.request(name, *body)


def service_status(endpoint, service, timeout=RTT_S):
    """b"200", b"404" (RFC 8 mmi.service), or None when no reply came."""
    reply = mmi(endpoint, "mmi.service", service, timeout=timeout)
    return None if reply is None else b"".join(reply)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _mmi_value(endpoint, service, kind, timeout):
    """The one msgpack value an MMI service answers, if it is a kind;
    else None (no reply, several frames, or not msgpack)."""
    reply = mmi(endpoint, service, timeout=timeout)
    if reply is None or len(reply) != 1:
        return None
    try:
        value = unpack(reply[0])
    except Exception:  # noqa: BLE001 - a broken reply reads as no reply
        return None
    return value if isinstance(value, kind) else None


def services(endpoint, timeout=RTT_S):
    """mmi.services as {name: entry}, or None if no usable reply came."""
    listing = _mmi_value(endpoint, "mmi.services", list, timeout)
    if listing is None:
        return None
    return {_text(entry["name"]): entry for entry in listing
            if isinstance(entry, dict) and "name" in entry}


def stats(endpoint, timeout=RTT_S):
    """The mmi.stats map, or None if no msgpack map came back."""
    return _mmi_value(endpoint, "mmi.stats", dict, timeout)


def worker_count(endpoint, service):
    """Workers mmi.services lists for service (0 if unlisted), or None."""
    listing = services(endpoint, timeout=0.5 * SCALE)
    if listing is None:
        return None
    entry = listing.get(_text(service) if isinstance(service, (str, bytes)) else service)
    return 0 if entry is None else entry.get("workers", 0)


def wait_workers(endpoint, service, count, timeout=START_S, pump=None):
    """True once mmi.services lists at least count workers for service.

    Falls back to mmi.service (count 1 only) if mmi.services does not work.
    pump: pyzmq workers to keep heartbeating meanwhile.
    """
    def enough():
        listed = worker_count(endpoint, service)
        if listed is None:
            return count <= 1 and service_status(endpoint, service, 0.5 * SCALE) == b"200"
        return listed >= count

    return bool(wait_until(enough, timeout, interval=0.05, pump=pump))


def round_trip_ok(endpoint, service=b"harness.echo", heartbeat_ms=HB_MS):
    """A fresh pyzmq worker and client exchange one request through the
    broker.  Returns a short reason string on failure, "" on success."""
    with mdp.MdpWorker(endpoint, heartbeat_ms) as worker, \
            mdp.MdpClient(endpoint) as client:
        worker.ready(service)
        worker.pump(0.1)
        client.send(service, b"ping")
        got = worker.recv(RTT_S)
        if got is None:
            return "worker got no request"
        address, body = got
        if body != [b"ping"]:
            return "worker got body %r" % (body,)
        worker.reply(address, b"pong")
        reply = client.recv(RTT_S)
        if reply is None:
            return "client got no reply"
        if reply != (service, [b"pong"]):
            return "client got %r" % (reply,)
        worker.disconnect()
    return ""


# --- cart ------------------------------------------------------------------


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


class CartClient:
    """Calls the cart service through a broker with msgpack bodies."""

    def __init__(self, endpoint, timeout=RTT_S, service="cart"):
        self.client = mdp.MdpClient(endpoint, timeout=timeout)
        self.service = service

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.client.close()

    def call_raw(self, body, timeout=None):
        """The reply's body frames for one raw body frame, or None."""
        return self.client.request(self.service, body, timeout=timeout)

    def call_bytes(self, request, timeout=None):
        """(reply map, reply bytes) for a request map; asserts a reply came."""
        body = request if isinstance(request, bytes) else pack(request)
        frames = self.call_raw(body, timeout)
        assert frames is not None, "no reply from cart for %r" % (request,)
        assert len(frames) == 1, "cart reply has %d frames: %r" % (len(frames), frames)
        reply = unpack(frames[0])
        assert isinstance(reply, dict), "cart reply is not a map: %r" % (reply,)
        assert isinstance(reply.get("status"), int), "reply without integer status: %r" % (reply,)
        return reply, frames[0]

    def call(self, request, timeout=None):
        return self.call_bytes(request, timeout)[0]

    def get(self, user):
        return self.call({"method": "GetCartItems", "user_id": user})

    def add(self, user, item_id, quantity=1, price=100, name=None, request_id=None):
        request = {"method": "AddItemToCart", "user_id": user,
                   "item": {"id": item_id, "name": name or "name-" + item_id,
                            "quantity": quantity, "price": price}}
        if request_id is not None:
            request["request_id"] = request_id
        return self.call(request)

    def remove(self, user, item_id, request_id=None):
        request = {"method": "RemoveItemFromCart", "user_id": user, "item_id": item_id}
        if request_id is not None:
            request["request_id"] = request_id
        return self.call(request)

    def update(self, user, item_id, quantity, request_id=None):
        request = {"method": "UpdateItemQuantity", "user_id": user,
                   "item_id": item_id, "quantity": quantity}
        if request_id is not None:
            request["request_id"] = request_id
        return self.call(request)

    def clear(self, user, request_id=None):
        request = {"method": "ClearCart", "user_id": user}
        if request_id is not None:
            request["request_id"] = request_id
        return self.call(request)


def session_pids(sid):
    """Processes of session sid still running (zombies aside)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids
