"""Real Redis Sentinel and Redis Cluster topologies for the harness, and a
steady stream of cart calls to fail them under.

    SentinelTopology(dir)    1 master, 2 replicas, 3 sentinels (quorum 2)
    ClusterTopology(dir)     3 masters with one replica each
    CartStream(endpoint)     adds (with request_ids) and gets in a thread,
                             every call retried until 200, all counted

Everything runs on free loopback ports under the given directory, with
short failure-detection timings so a failover takes a second or two.  The
test modules hold one topology per module (it is the slow part to start)
and stop it at the end.
"""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import redis

import support
from support import Proc, wait_until

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_SENTINEL = "/usr/bin/redis-sentinel"
REDIS_CLI = "/usr/bin/redis-cli"
MASTER_NAME = "cartmaster"
#  Sentinel: a master silent this long is down; Cluster: a node likewise.
DOWN_AFTER_MS = 1000


def cluster_port():
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = support.free_port()
        if port + 10000 < 65536 and not support.port_open(port + 10000):
            return port


def client(port, timeout=2.0):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                       socket_connect_timeout=timeout)


def answers(port):
    try:
        return client(port, 0.5).ping()
    except Exception:  # noqa: BLE001 - not up yet, or gone
        return False


class RedisNode(Proc):
    """One redis-server (or sentinel) on a loopback port."""

    RANK = 9

    def __init__(self, directory, name, port, args, binary=REDIS_SERVER):
        self.port = port
        self.dir = Path(directory) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [binary] + list(args)
        super().__init__(name, argv, directory, cwd=self.dir)

    def start(self):
        super().start()
        if not wait_until(lambda: answers(self.port) or not self.alive(), support.START_S) \
                or not self.alive():
            raise RuntimeError("%s did not start:\n%s" % (self.name, self.log_tail()))
        return self

    def client(self, timeout=2.0):
        return client(self.port, timeout)


def _server_args(port):
    return ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "no", "--logfile", "",
            #  A replica (re)joining syncs at once, not after the default 5 s.
            "--repl-diskless-sync-delay", "0"]


class Topology:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.nodes = []

    def _add(self, node):
        self.nodes.append(node)
        return node.start()

    def stop(self):
        for node in self.nodes:
            node.kill()


class SentinelTopology(Topology):
    """1 master, 2 replicas, 3 sentinels watching MASTER_NAME (quorum 2)."""

    def __init__(self, directory):
        super().__init__(directory)
        port = support.free_port()
        self.servers = [self._add(RedisNode(self.dir, "master-%d" % port, port,
                                            _server_args(port)))]
        for index in range(2):
            port = support.free_port()
            args = _server_args(port) + ["--replicaof", "127.0.0.1", self.servers[0].port]
            self.servers.append(self._add(RedisNode(self.dir, "replica-%d" % port, port, args)))
        self.sentinels = []
        for index in range(3):
            port = support.free_port()
            name = "sentinel-%d" % port
            conf = self.dir / ("%s.conf" % name)
            conf.write_text(
                "port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
                "dir %s\nlogfile \"\"\n"
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s %d\n"
                "sentinel failover-timeout %s 4000\n"
                "sentinel parallel-syncs %s 2\n"
                % (port, self.dir, MASTER_NAME, self.servers[0].port, MASTER_NAME,
                   DOWN_AFTER_MS, MASTER_NAME, MASTER_NAME))
            self.sentinels.append(self._add(RedisNode(self.dir, name, port, [conf],
                                                      binary=REDIS_SENTINEL)))
        if not wait_until(self._settled, 30 * support.SCALE, interval=0.2):
            raise RuntimeError("sentinels did not settle: %s" % self._view())

    def url(self, db=0, master=MASTER_NAME, sentinels=None):
        ports = sentinels or [s.port for s in self.sentinels]
        return "redis-sentinel://%s/%d#%s" % (
            ",".join("127.0.0.1:%d" % port for port in ports), db, master)

    def _view(self):
        views = []
        for sentinel in self.sentinels:
            try:
                c = sentinel.client(1.0)
                views.append((c.execute_command("SENTINEL", "get-master-addr-by-name",
                                                 MASTER_NAME),
                              len(c.execute_command("SENTINEL", "replicas", MASTER_NAME)),
                              len(c.execute_command("SENTINEL", "sentinels", MASTER_NAME))))
            except Exception as error:  # noqa: BLE001 - reported as it is
                views.append(repr(error))
        return views

    def master_port(self):
        """The port every sentinel names as the master's, or None."""
        names = set()
        for sentinel in self.sentinels:
            try:
                address = sentinel.client(1.0).execute_command(
                    "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            except Exception:  # noqa: BLE001 - a sentinel that cannot say
                return None
            names.add(int(address[1]))
        return names.pop() if len(names) == 1 else None

    def server(self, port):
        return next(s for s in self.servers if s.port == port)

    def _settled(self):
        """Every sentinel sees the master, both replicas (linked) and the
        other two sentinels, and the master has both replicas online."""
        master = self.master_port()
        if master is None:
            return False
        try:
            for sentinel in self.sentinels:
                c = sentinel.client(1.0)
                replicas = c.execute_command("SENTINEL", "replicas", MASTER_NAME)
                others = c.execute_command("SENTINEL", "sentinels", MASTER_NAME)
                if len(others) != 2 or len(replicas) != 2:
                    return False
                for replica in replicas:
                    fields = dict(zip(replica[::2], replica[1::2]))
                    if b"s_down" in fields.get(b"flags", b"") or \
                            fields.get(b"master-link-status") != b"ok":
                        return False
            info = self.server(master).client(1.0).info("replication")
            return info.get("role") == "master" and info.get("connected_slaves") == 2
        except Exception:  # noqa: BLE001 - not yet
            return False

    def wait_settled(self, timeout=30):
        if not wait_until(self._settled, timeout * support.SCALE, interval=0.2):
            raise RuntimeError("sentinels did not settle: %s" % self._view())


class ClusterTopology(Topology):
    """3 masters and 3 replicas made with redis-cli --cluster create."""

    def __init__(self, directory):
        super().__init__(directory)
        self.servers = []
        for index in range(6):
            port = cluster_port()
            args = _server_args(port) + [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", DOWN_AFTER_MS]
            self.servers.append(self._add(RedisNode(self.dir, "node-%d" % port, port, args)))
        addresses = ["127.0.0.1:%d" % s.port for s in self.servers]
        result = subprocess.run([REDIS_CLI, "--cluster", "create"] + addresses +
                                ["--cluster-replicas", "1", "--cluster-yes"],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError("cluster create failed: %s %s" % (result.stdout, result.stderr))
        self.wait_ok()

    def url(self, seeds=None):
        ports = seeds or [self.servers[0].port, self.servers[1].port]
        return "redis-cluster://" + ",".join("127.0.0.1:%d" % port for port in ports)

    def alive_servers(self):
        return [s for s in self.servers if s.alive()]

    def _state_ok(self):
        try:
            for server in self.alive_servers():
                info = server.client(1.0).execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
                if "cluster_slots_ok:16384" not in info:
                    return False
            return True
        except Exception:  # noqa: BLE001 - not yet
            return False

    def wait_ok(self, timeout=30):
        if not wait_until(self._state_ok, timeout * support.SCALE, interval=0.2):
            raise RuntimeError("cluster did not become ok")

    def masters(self):
        """The live servers that are masters owning slots."""
        result = []
        for server in self.alive_servers():
            info = server.client(1.0).info("replication")
            if info.get("role") == "master":
                result.append(server)
        return result

    def slot_ranges(self, master):
        """[(start, end)] of the slots master serves."""
        node_id = master.client().execute_command("CLUSTER", "MYID").decode()
        ranges = []
        for entry in master.client().execute_command("CLUSTER", "SLOTS"):
            if entry[2][2].decode() == node_id:
                ranges.append((int(entry[0]), int(entry[1])))
        return sorted(ranges)

    def node_id(self, server):
        return server.client().execute_command("CLUSTER", "MYID").decode()

    def replica_of(self, master):
        node_id = master.client().execute_command("CLUSTER", "MYID").decode()
        for server in self.alive_servers():
            if server is master:
                continue
            line = server.client().execute_command("CLUSTER", "NODES").decode()
            for entry in line.splitlines():
                fields = entry.split()
                if "myself" in fields[2] and fields[3] == node_id:
                    return server
        return None


class CartStream:
    """A steady stream of cart calls through a broker, in a thread.

    Each step adds one unit of an item for one of `users` users (a fresh
    request_id per add, reused on every retry) and reads that user's cart.
    A call that answers 503 or 504 or not at all is retried with the same
    request_id until it answers 200 or `give_up_s` passes.  Counted:
    every status seen, the adds acknowledged (200) per (user, item), the
    adds never acknowledged, and when each 200 came.
    """

    def __init__(self, endpoint, users, prefix="", give_up_s=20.0, retry_pause_s=0.05):
        self.endpoint = endpoint
        self.users = (list(users) if not isinstance(users, int)
                      else ["%s-%d" % (prefix, i) for i in range(users)])
        self.give_up_s = give_up_s
        self.retry_pause_s = retry_pause_s
        self.statuses = {}
        self.acked = {}
        self.unacked = {}
        self.ok_times = []
        self.fail_times = []
        self.errors = {}   # a few distinct error texts per status
        self.retries_max = 0
        self.failed_calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()
        self.steps = 0
        self.error = None

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=60):
        self._stop.set()
        self._thread.join(timeout * support.SCALE)
        assert not self._thread.is_alive(), "stream did not stop"
        assert self.error is None, "stream failed: %r" % (self.error,)

    def _call(self, cart, request):
        """The final reply of one call after its retries, or None."""
        deadline = time.monotonic() + self.give_up_s * support.SCALE
        attempts = 0
        while True:
            attempts += 1
            try:
                reply = cart.call(request, timeout=support.RTT_S)
            except AssertionError:
                reply = None
                cart.client.reconnect()
            status = reply["status"] if reply else None
            with self._lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.ok_times.append(time.monotonic())
                elif status in (None, 503, 504):
                    self.fail_times.append(time.monotonic())
                if reply and status != 200:
                    seen = self.errors.setdefault(status, [])
                    text = reply.get("error", "")[:100]
                    if len(seen) < 3 and text not in seen:
                        seen.append(text)
            if status not in (None, 503, 504) or time.monotonic() > deadline:
                self.retries_max = max(self.retries_max, attempts - 1)
                if status != 200:
                    self.failed_calls += 1
                return reply
            time.sleep(self.retry_pause_s)

    def _run(self):
        try:
            with support.CartClient(self.endpoint) as cart:
                while not self._stop.is_set():
                    user = self.users[self.steps % len(self.users)]
                    item = "item-%d" % (self.steps // len(self.users) % 3)
                    rid = os.urandom(8).hex()
                    request = {"method": "AddItemToCart", "user_id": user,
                               "request_id": rid,
                               "item": {"id": item, "name": "n", "quantity": 1,
                                        "price": 100}}
                    reply = self._call(cart, request)
                    key = (user, item)
                    book = self.acked if reply and reply["status"] == 200 else self.unacked
                    book[key] = book.get(key, 0) + 1
                    self._call(cart, {"method": "GetCartItems", "user_id": user})
                    self.steps += 1
        except Exception as error:  # noqa: BLE001 - reported by stop()
            self.error = error

    def wait_oks(self, count, timeout):
        """Waits until count more calls answered 200."""
        before = self.count(200)
        assert wait_until(lambda: self.count(200) >= before + count or self.error,
                          timeout * support.SCALE), self.summary()

    def oks_after(self, moment):
        with self._lock:
            return sorted(t for t in self.ok_times if t > moment)

    def last_failure(self):
        with self._lock:
            return max(self.fail_times) if self.fail_times else None

    def recovered_after(self, moment):
        """(first failure after moment, first 200 after that failure), or
        (None, None) when nothing failed after moment."""
        with self._lock:
            fails = sorted(t for t in self.fail_times if t > moment)
            if not fails:
                return None, None
            oks = sorted(t for t in self.ok_times if t > fails[0])
            return fails[0], (oks[0] if oks else None)

    def count(self, status):
        with self._lock:
            return self.statuses.get(status, 0)

    def check_carts(self, endpoint):
        """Every acknowledged add is in its cart, none twice: the quantity
        of each item is the acknowledged adds, plus at most the adds that
        never got an answer (those may or may not have applied)."""
        lost = doubled = 0
        with support.CartClient(endpoint) as cart:
            for user in self.users:
                reply = cart.get(user)
                assert reply["status"] == 200, reply
                have = {item["id"]: item["quantity"] for item in reply["items"]}
                for index in range(3):
                    item = "item-%d" % index
                    acked = self.acked.get((user, item), 0)
                    unknown = self.unacked.get((user, item), 0)
                    quantity = have.get(item, 0)
                    lost += max(0, acked - quantity)
                    doubled += max(0, quantity - acked - unknown)
        return lost, doubled

    def summary(self):
        return ("steps=%d statuses=%s max_retries=%d failed_calls=%d errors=%s"
                % (self.steps, dict(sorted(self.statuses.items(), key=str)),
                   self.retries_max, self.failed_calls, self.errors))


def kill(node):
    node.send_signal(signal.SIGKILL)
    node.wait(10)
