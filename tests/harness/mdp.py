"""Majordomo Protocol 0.1 peers for the harness.

Written from ZeroMQ RFC 7/MDP and RFC 8/MMI alone, without looking at the
project's C code: these are the "conforming peers written by someone else"
that the broker must work with.  Both peers talk through a DEALER socket, so
they add the empty delimiter frame themselves.

Anything the broker sends that RFC 7 does not allow raises ProtocolError, an
AssertionError, so a test that sees one fails with the offending frames.
Every wait takes a timeout; nothing here blocks without bound.
"""

import threading
import time
import weakref

import zmq

CLIENT_HEADER = b"MDPC01"
WORKER_HEADER = b"MDPW01"

READY = b"\x01"
REQUEST = b"\x02"
REPLY = b"\x03"
HEARTBEAT = b"\x04"
DISCONNECT = b"\x05"

COMMAND_NAMES = {
    READY: "READY",
    REQUEST: "REQUEST",
    REPLY: "REPLY",
    HEARTBEAT: "HEARTBEAT",
    DISCONNECT: "DISCONNECT",
}

_CONTEXT = None

#  Registered workers, so that every wait in this module (on any peer) keeps
#  them heartbeating, as a worker's own background thread would.  Sockets
#  are not thread-safe: a wait only ticks workers its own thread made.
_LIVE_WORKERS = weakref.WeakSet()
#  Longest a wait sleeps between heartbeat checks.
_TICK_S = 0.02


def context():
    """One shared pyzmq context; sockets are per peer and per thread."""
    global _CONTEXT
    if _CONTEXT is None or _CONTEXT.closed:
        _CONTEXT = zmq.Context()
    return _CONTEXT


def as_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return str(value).encode()
    raise TypeError("frame must be bytes, str or int: %r" % (value,))


class ProtocolError(AssertionError):
    """The broker sent a message that RFC 7 does not allow."""


class Disconnected(AssertionError):
    """The broker sent DISCONNECT where the test did not expect one."""


def _dealer(endpoint, identity=None, ctx=None, curve=None):
    """curve: (public key, secret key, server public key), Z85."""
    sock = (ctx or context()).socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, 2000)
    if identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, as_bytes(identity))
    if curve is not None:
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = curve
    sock.connect(endpoint)
    return sock


def tick_all():
    """Sends the heartbeats that are due from this thread's workers."""
    me = threading.get_ident()
    for worker in list(_LIVE_WORKERS):
        if worker.owner == me:
            worker.tick()


def idle(seconds):
    """Sleeps for seconds while this thread's workers keep heartbeating."""
    deadline = time.monotonic() + seconds
    while True:
        tick_all()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, _TICK_S))


def _recv_multipart(sock, timeout):
    """Frames of the next message, or None if none came within timeout s."""
    deadline = time.monotonic() + max(timeout or 0, 0)
    while True:
        tick_all()
        remaining = deadline - time.monotonic()
        if sock.poll(int(max(0, min(remaining, _TICK_S)) * 1000), zmq.POLLIN):
            return sock.recv_multipart()
        if remaining <= 0:
            return None


class MdpClient:
    """An MDP/0.1 client (RFC 7 section "Client protocol") over DEALER.

    request() is synchronous; send() and recv() let a test keep several
    requests outstanding on one socket.  After a request times out the
    socket is replaced, so a late reply can never be taken for the answer
    to a later request (the retry pattern of RFC 7's client).
    """

    def __init__(self, endpoint, timeout=2.5, identity=None, ctx=None, curve=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.identity = identity
        self.ctx = ctx
        self.curve = curve
        self.sock = _dealer(endpoint, identity, ctx, curve)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def reconnect(self):
        self.close()
        self.sock = _dealer(self.endpoint, self.identity, self.ctx, self.curve)

    def send(self, service, *body):
        frames = [b"", CLIENT_HEADER, as_bytes(service)]
        frames += [as_bytes(frame) for frame in body]
        self.sock.send_multipart(frames)

    def recv(self, timeout=None):
        """(service, [body frames]) of the next reply, or None on timeout."""
        frames = _recv_multipart(self.sock, self.timeout if timeout is None else timeout)
        if frames is None:
            return None
        if len(frames) < 3 or frames[0] != b"" or frames[1] != CLIENT_HEADER:
            raise ProtocolError("malformed reply to client: %r" % (frames[:6],))
        return frames[2], frames[3:]

    def request(self, service, *body, timeout=None):
        """Body frames of the reply, or None if none came within timeout."""
        self.send(service, *body)
        reply = self.recv(timeout)
        if reply is None:
            self.reconnect()
            return None
        service_frame, body_frames = reply
        if service_frame != as_bytes(service):
            raise ProtocolError("reply names service %r, request was for %r"
                                % (service_frame, as_bytes(service)))
        return body_frames


class MdpWorker:
    """An MDP/0.1 worker (RFC 7 section "Worker protocol") over DEALER.

    Heartbeats go out from every call that waits (recv, pump, wait_any),
    once nothing has been sent for one heartbeat interval, and only while
    registered: RFC 7 lets a broker refuse a HEARTBEAT from a worker it
    does not know.  Requests that arrive while the test waits for something
    else are kept in `pending` and handed out by recv() first.
    """

    def __init__(self, endpoint, heartbeat_ms=2500, identity=None, ctx=None):
        self.endpoint = endpoint
        self.heartbeat_s = heartbeat_ms / 1000.0
        self.sock = _dealer(endpoint, identity, ctx)
        self.registered = False
        self.service = None
        self.pending = []
        self.heartbeats_received = 0
        self.disconnects_received = 0
        self.last_send = time.monotonic()
        self.last_recv = None
        self.silent = False
        self.owner = threading.get_ident()
        _LIVE_WORKERS.add(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Vanishes without a word, like a process that died."""
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None
        self.registered = False
        _LIVE_WORKERS.discard(self)

    # --- sending --------------------------------------------------------

    def send_raw(self, *frames):
        """Sends frames exactly as given (no delimiter added)."""
        self.sock.send_multipart([as_bytes(frame) for frame in frames])
        self.last_send = time.monotonic()

    def send_command(self, command, *frames):
        self.send_raw(b"", WORKER_HEADER, command, *frames)

    def ready(self, service, credit=None, extra=()):
        """READY for service; credit adds the cartmq credit frame."""
        frames = [as_bytes(service)]
        if credit is not None:
            frames.append(as_bytes(credit))
        frames += [as_bytes(frame) for frame in extra]
        self.send_command(READY, *frames)
        self.registered = True
        self.service = as_bytes(service)

    def heartbeat(self):
        self.send_command(HEARTBEAT)

    def reply(self, address, *body):
        self.send_command(REPLY, address, b"", *body)

    def disconnect(self):
        """Says DISCONNECT and closes the socket (RFC 7 orderly exit)."""
        self.send_command(DISCONNECT)
        self.registered = False
        time.sleep(0.05)  # let the frames leave before LINGER 0 drops them
        self.close()

    def go_silent(self):
        """Stops all heartbeats but keeps the socket open and reading."""
        self.silent = True

    def tick(self):
        """Sends a heartbeat if one is due."""
        if self.sock is None or not self.registered or self.silent:
            return
        if time.monotonic() - self.last_send >= self.heartbeat_s:
            self.heartbeat()

    # --- receiving ------------------------------------------------------

    def recv_raw(self, timeout):
        """Frames of the next message, unchecked, or None on timeout."""
        frames = _recv_multipart(self.sock, timeout)
        if frames is not None:
            self.last_recv = time.monotonic()
        return frames

    def _handle(self, frames):
        """Files one broker message; returns its command."""
        if len(frames) < 3 or frames[0] != b"" or frames[1] != WORKER_HEADER:
            raise ProtocolError("malformed message to worker: %r" % (frames[:6],))
        command = frames[2]
        if command == REQUEST:
            if len(frames) < 5 or frames[4] != b"":
                raise ProtocolError("malformed REQUEST: %r" % (frames[:6],))
            self.pending.append((frames[3], frames[5:]))
        elif command == HEARTBEAT:
            if len(frames) != 3:
                raise ProtocolError("HEARTBEAT with extra frames: %r" % (frames,))
            self.heartbeats_received += 1
        elif command == DISCONNECT:
            if len(frames) != 3:
                raise ProtocolError("DISCONNECT with extra frames: %r" % (frames,))
            self.disconnects_received += 1
            self.registered = False
        else:
            raise ProtocolError("broker sent command %r to a worker" % (command,))
        return command

    def poll_once(self, timeout):
        """Waits up to timeout for one message and files it; heartbeats."""
        self.tick()
        step = min(timeout, self.heartbeat_s / 2) if timeout > 0 else 0
        frames = self.recv_raw(step)
        if frames is not None:
            command = self._handle(frames)
            self.tick()
            return command
        self.tick()
        return None

    def recv(self, timeout=None):
        """(client address, [body frames]) of the next REQUEST, or None.

        Raises Disconnected if the broker says DISCONNECT meanwhile.
        """
        timeout = 2.5 if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if self.pending:
                return self.pending.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self.poll_once(remaining) == DISCONNECT:
                raise Disconnected("broker sent DISCONNECT to worker of %r" % (self.service,))

    def pump(self, seconds):
        """Keeps heartbeating for seconds; requests go to `pending`.

        Returns True if a DISCONNECT arrived meanwhile.
        """
        deadline = time.monotonic() + seconds
        seen = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return seen
            if self.poll_once(remaining) == DISCONNECT:
                seen = True

    def expect_disconnect(self, timeout):
        """True once DISCONNECT arrives, False if none came within timeout."""
        deadline = time.monotonic() + timeout
        while self.disconnects_received == 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            frames = self.recv_raw(min(remaining, 0.05))
            if frames is not None:
                self._handle(frames)
            self.tick()
        return True


def wait_any(workers, timeout):
    """First REQUEST to reach any of workers: (index, address, body).

    Keeps every registered worker heartbeating while it waits; returns None
    if no request came within timeout.
    """
    deadline = time.monotonic() + timeout
    poller = zmq.Poller()
    for worker in workers:
        if worker.sock is not None:
            poller.register(worker.sock, zmq.POLLIN)
    while True:
        for index, worker in enumerate(workers):
            if worker.pending:
                address, body = worker.pending.pop(0)
                return index, address, body
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        tick_all()
        for worker in workers:
            worker.tick()
        step = min([remaining, _TICK_S * 5] + [w.heartbeat_s / 2 for w in workers])
        ready = dict(poller.poll(int(step * 1000)))
        for worker in workers:
            if worker.sock is not None and worker.sock in ready:
                frames = worker.recv_raw(0)
                if frames is not None:
                    if worker._handle(frames) == DISCONNECT:
                        raise Disconnected("broker sent DISCONNECT to worker of %r"
                                           % (worker.service,))


def pump_all(workers, seconds):
    """Keeps all workers heartbeating for seconds (instead of sleeping)."""
    deadline = time.monotonic() + seconds
    poller = zmq.Poller()
    for worker in workers:
        if worker.sock is not None:
            poller.register(worker.sock, zmq.POLLIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        tick_all()
        for worker in workers:
            worker.tick()
        step = min([remaining, _TICK_S * 5] + [w.heartbeat_s / 2 for w in workers])
        ready = dict(poller.poll(int(step * 1000)))
        for worker in workers:
            if worker.sock is not None and worker.sock in ready:
                frames = worker.recv_raw(0)
                if frames is not None:
                    worker._handle(frames)
