"""redis_modes.py - bench/run.py's rows for Redis beyond one server
(run.py --redis-modes): the cart through Sentinel (with and without
--redis-wait 1) and through a three-master Redis Cluster, beside the
one-Redis rows of the same run, and redis-benchmark's own figure against
one cluster master.

Starts, once per run, a Sentinel set (1 master, 2 replicas, 3 sentinels)
and a Cluster (3 masters, 3 replicas) on loopback ports, through the
run's Processes, so they are stopped with everything else.
"""

import os
import subprocess
import time

import redis

import cartmq_mmi
from measure import parse_redis_benchmark
from processes import free_port
from settings import CLIENTS, CREDIT, ECHO_WORKERS, REPO, USERS, WINDOW, log

MASTER = "cart"


class RedisModes:
    """The topologies and the rows that use them."""

    def __init__(self, programs, procs, servers, measure, work_dir):
        self.programs = programs
        self.procs = procs
        self.servers = servers
        self.measure = measure
        self.dir = os.path.join(work_dir, "redis-modes")
        self.sentinel_url = self.cluster_url = None
        self.cluster_ports = []

    def rows(self):
        """Keys that do not start with "cart-", so that the report's "cart
        best" target stays the one-Redis figure."""
        workers, credit = ECHO_WORKERS, CREDIT
        what = "cart AddItemToCart via broker: %d workers, credit %d, " % (
            workers, credit)
        return [
            ("sentinel-cart", what + "Redis through Sentinel",
             lambda: self.cart(self.sentinel_url)),
            ("sentinel-wait1-cart", what + "Sentinel, --redis-wait 1",
             lambda: self.cart(self.sentinel_url, "--redis-wait", "1")),
            ("cluster-cart", what + "Redis Cluster of 3 masters",
             lambda: self.cart(self.cluster_url)),
            ("redis-cluster-p16", "Redis Cluster: redis-benchmark EVALSHA "
             "cart.lua -P 16 against one of its masters",
             self.cluster_ceiling),
        ]

    def _server(self, name, port, *args):
        directory = os.path.join(self.dir, name)
        os.makedirs(directory, exist_ok=True)
        self.procs.start(name, [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", directory, "--repl-diskless-sync-delay", "0"] + list(args))
        return port

    @staticmethod
    def _wait(port, check=lambda client: client.ping()):
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if check(client):
                    return client
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("redis on port %d not ready" % port)

    def start(self):
        master = self._server("sentinel-master", free_port())
        for index in range(2):
            self._server("sentinel-replica-%d" % index, free_port(),
                         "--replicaof", "127.0.0.1", str(master))
        sentinels = []
        for index in range(3):
            port = free_port()
            conf = os.path.join(self.dir, "sentinel-%d.conf" % port)
            with open(conf, "w") as out:
                out.write("port %d\nbind 127.0.0.1\ndir %s\n"
                          "sentinel monitor %s 127.0.0.1 %d 2\n"
                          % (port, self.dir, MASTER, master))
            self.procs.start("sentinel", ["redis-sentinel", conf])
            sentinels.append(port)
        self._wait(master, lambda c: c.info("replication")["connected_slaves"] == 2)
        for port in sentinels:
            self._wait(port, lambda c: c.execute_command(
                "SENTINEL", "get-master-addr-by-name", MASTER))
        self.sentinel_url = "redis-sentinel://%s/0#%s" % (
            ",".join("127.0.0.1:%d" % port for port in sentinels), MASTER)
        self.start_cluster()

    def start_cluster(self):
        ports = []
        while len(ports) < 6:
            port = free_port()
            if port + 10000 < 65536 and port not in ports:
                ports.append(self._server(
                    "cluster-%d" % port, port, "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf"))
        for port in ports:
            self._wait(port)
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % port for port in ports] +
                       ["--cluster-replicas", "1", "--cluster-yes"],
                       capture_output=True, check=True, timeout=60)
        for port in ports:
            self._wait(port, lambda c: b"cluster_state:ok" in
                       c.execute_command("CLUSTER", "INFO"))
        self.cluster_ports = ports
        self.cluster_url = "redis-cluster://" + ",".join(
            "127.0.0.1:%d" % port for port in ports[:3])

    def cart(self, url, *worker_args):
        """cartmq bench on the cart service through a fresh broker and
        ECHO_WORKERS workers with credit on url."""
        endpoint, broker = self.servers.start_broker()
        started = [broker]
        for _ in range(ECHO_WORKERS):
            started.append(self.procs.start("worker", [
                self.programs.worker, "--connect", endpoint, "--redis", url,
                "--concurrency", str(CREDIT)] + list(worker_args)))
        try:
            if not cartmq_mmi.wait_workers(self.servers.context, endpoint,
                                           "cart", ECHO_WORKERS):
                log("  warning: workers did not all register")
            return self.measure.run_bench(endpoint, "cart", CLIENTS, WINDOW, [
                "--mix", "add=100", "--users", str(USERS)])
        finally:
            self.servers.stop(started)

    def cluster_ceiling(self):
        """redis-benchmark -P 16 on one master, every key in a slot that
        master owns (one hash tag, random carts under it)."""
        client = redis.Redis(host="127.0.0.1", port=self.cluster_ports[0])
        with open(os.path.join(REPO, "worker", "cart.lua"), "rb") as script:
            sha = client.script_load(script.read())
        mine = client.execute_command("CLUSTER", "MYID").decode()
        owned = [entry for entry in client.execute_command("CLUSTER", "SLOTS")
                 if entry[2][2].decode() == mine]
        first = int(owned[0][0])
        tag = next("t%d" % n for n in range(100000)
                   if int(client.execute_command("CLUSTER", "KEYSLOT", "t%d" % n))
                   in range(first, int(owned[0][1]) + 1))
        done = subprocess.run([
            "redis-benchmark", "-h", "127.0.0.1", "-p",
            str(self.cluster_ports[0]), "-c", "50", "-n",
            str(self.measure.args.redis_requests * 4), "-r", str(USERS),
            "-P", "16", "--csv", "EVALSHA", sha, "1",
            "cart:{%s}:__rand_int__" % tag, "2", "s1", "1", "100",
            "bench item", "1000000", "1000", "86400"],
            capture_output=True, text=True, timeout=300)
        return parse_redis_benchmark(done.stdout)
