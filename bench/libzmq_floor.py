#!/usr/bin/python3
"""libzmq's own memory per connection: the floor under any broker.

A bare ROUTER (pyzmq, the same Debian libzmq 4.3.4 the broker links) that
reads and drops every message and stores nothing; N DEALERs from this
process connect and each sends one MDP READY, as idle workers do. Prints
the ROUTER process's RSS growth per connection. Compare with the broker's
and the forwarder's rows in docs/benchmarks.md.

    /usr/bin/python3 bench/libzmq_floor.py [CONNECTIONS]
"""

import subprocess
import sys
import time

import zmq

from processes import free_port, rss_bytes, settle

SERVER = """
import sys, zmq
router = zmq.Context().socket(zmq.ROUTER)
router.rcvhwm = 0
router.bind(sys.argv[1])
while True:
    if router.poll(100):
        router.recv_multipart()
"""


def settled_rss(pid):
    """RSS once it stops moving: every connection made and read."""
    settle(pid)
    return rss_bytes(pid)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, endpoint])
    context = zmq.Context()
    dealers = []
    try:
        time.sleep(1)
        before = settled_rss(server.pid)
        for _ in range(count):
            dealer = context.socket(zmq.DEALER)
            dealer.linger = 0
            dealer.connect(endpoint)
            dealer.send_multipart([b"", b"MDPW01", b"\x01", b"idle"])
            dealers.append(dealer)
        after = settled_rss(server.pid)
        print("bare libzmq %s ROUTER: %.0f bytes of RSS per connection "
              "(%d connections, %.1f -> %.1f MiB)" % (
                  zmq.zmq_version(), (after - before) / count, count,
                  before / 2**20, after / 2**20))
    finally:
        for dealer in dealers:
            dealer.close()
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
