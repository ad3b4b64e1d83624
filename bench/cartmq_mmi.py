"""cartmq_mmi.py - the one MMI client of the bench and the scripts.

Asks a cartmq broker its mmi.* services (spec §5) over a fresh DEALER as an
MDP/0.1 client and decodes the msgpack body. The decoded map is returned as
the broker sent it, unknown keys included (mmi.stats grows keys: issue 13
added dropped.output_full, queued and in_flight), so a caller reads what it
knows and passes the rest through.

tests/harness/mdp.py is not built on this on purpose: the harness is an
independent peer that checks the broker against the RFC, and must not share
code with the tools it checks.

Import it from bench/ directly, or from elsewhere after putting bench/ on
sys.path (scripts/rss_cycles.py does); it needs pyzmq and msgpack only.
"""

import time

import msgpack
import zmq

CLIENT = b"MDPC01"
DEFAULT_TIMEOUT_MS = 2000


def _name(service):
    return service if isinstance(service, bytes) else service.encode()


def call(context, endpoint, service, body=b"", timeout_ms=DEFAULT_TIMEOUT_MS):
    """The decoded msgpack body of the broker's reply to one request to
    service, or None if no reply came within timeout_ms."""
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(endpoint)
    try:
        dealer.send_multipart([b"", CLIENT, _name(service), body])
        if not dealer.poll(timeout_ms):
            return None
        frames = dealer.recv_multipart()
        return msgpack.unpackb(frames[3], raw=False)
    finally:
        dealer.close(0)


def services(context, endpoint, timeout_ms=DEFAULT_TIMEOUT_MS):
    """mmi.services: a list of maps, one per service (name, workers,
    idle, queued, ...), or None."""
    return call(context, endpoint, "mmi.services", timeout_ms=timeout_ms)


def stats(context, endpoint, timeout_ms=DEFAULT_TIMEOUT_MS):
    """mmi.stats: the broker's counters as one map, or None."""
    return call(context, endpoint, "mmi.stats", timeout_ms=timeout_ms)


def service_row(context, endpoint, name):
    """mmi.services' row for name; a row of zeros when the broker does not
    know the service (or did not answer)."""
    for row in services(context, endpoint) or []:
        if row.get("name") == name:
            return row
    return {"name": name, "workers": 0, "idle": 0, "queued": 0}


def wait_workers(context, endpoint, service, count, timeout_s=10):
    """True once service has count workers registered, False after
    timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service_row(context, endpoint, service)["workers"] >= count:
            return True
        time.sleep(0.05)
    return False
