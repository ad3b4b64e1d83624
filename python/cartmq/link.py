"""A worker's socket to one broker, driven from an asyncio loop.

The socket is a plain ``zmq.Socket`` whose file descriptor the loop
watches (``add_reader``). That descriptor is edge-triggered: it signals
that the socket's state may have changed, and any call on the socket (a
send included) can consume that signal. So every waiter checks
``ZMQ_EVENTS`` itself before it sleeps, and every send wakes the waiters
to check again. This costs one future per wait instead of pyzmq's asyncio
machinery per message.
"""

import asyncio
import time
from typing import List, Optional, Tuple

import zmq

from . import mdp
from .curve import apply_client


class BrokerLink:
    """The registration with one broker: its socket (replaced on every
    reconnect; ``generation`` counts them, so a reply to a request of an
    old socket is never sent on a new one) and its heartbeat clock."""

    def __init__(self, endpoint: str, loop: asyncio.AbstractEventLoop,
                 context: zmq.Context, keys: Optional[Tuple[bytes, bytes, bytes]]) -> None:
        self.endpoint = endpoint
        self.loop = loop
        self.context = context
        self.keys = keys
        self.sock: Optional[zmq.Socket] = None
        self.generation = 0
        self.registered = False     # READY sent on this socket
        self.heard = 0.0            # last message from the broker
        self.sent = 0.0             # last message to it
        self.in_flight = 0          # requests of this socket being served
        self.backoff: Optional[float] = None
        self._waiters: List["asyncio.Future[None]"] = []

    def open(self) -> None:
        """A fresh socket: ZMQ_IMMEDIATE, so nothing (READY above all)
        waits in it before its connection is up (contract section 5)."""
        sock = self.context.socket(zmq.DEALER)
        sock.linger = 0
        sock.immediate = 1
        sock.reconnect_ivl = 100
        if self.keys is not None:
            apply_client(sock, self.keys)
        sock.connect(self.endpoint)
        self.sock = sock
        self.generation += 1
        self.registered = False
        self.in_flight = 0
        self.loop.add_reader(sock.FD, self._on_fd)

    def close(self, say_disconnect: bool) -> None:
        """Closes the socket; with say_disconnect it sends DISCONNECT first
        and lingers briefly so the command leaves."""
        sock, self.sock = self.sock, None
        self.registered = False
        self._wake()
        if sock is None or sock.closed:
            return
        self.loop.remove_reader(sock.FD)
        linger = 0
        if say_disconnect:
            try:
                sock.send_multipart(mdp.worker_command(mdp.DISCONNECT), zmq.NOBLOCK)
                linger = 100
            except zmq.ZMQError:
                pass
        sock.close(linger)

    def _on_fd(self) -> None:
        #  Reading ZMQ_EVENTS takes the signal off the descriptor, so the
        #  loop does not call us again until something new happens.
        if self.sock is not None:
            self.sock.getsockopt(zmq.EVENTS)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, mask: int, timeout_s: float) -> bool:
        """True once the socket has an event in mask (zmq.POLLIN,
        zmq.POLLOUT), False after timeout_s or if the socket was closed."""
        deadline = time.monotonic() + timeout_s
        while True:
            sock = self.sock
            if sock is None:
                return False
            if sock.getsockopt(zmq.EVENTS) & mask:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            timer = self.loop.call_later(remaining, _settle, waiter)
            try:
                await waiter
            finally:
                timer.cancel()

    def recv(self) -> Optional[List[bytes]]:
        """One message if one is waiting, else None."""
        assert self.sock is not None
        try:
            return self.sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    async def send(self, msg: List[bytes], patience_s: float) -> bool:
        """Sends msg on the current socket, waiting up to patience_s for
        room. False if it could not go, or if the socket was replaced in
        the meantime (msg belonged to the old one)."""
        generation = self.generation
        deadline = time.monotonic() + patience_s
        while self.sock is not None and self.generation == generation:
            try:
                self.sock.send_multipart(msg, zmq.NOBLOCK)
            except zmq.Again:
                if not await self.wait(zmq.POLLOUT, deadline - time.monotonic()):
                    if time.monotonic() >= deadline:
                        return False
                continue
            self.sent = time.monotonic()
            #  The send may have taken the descriptor's signal of a message
            #  that came meanwhile: the reader must look again.
            self._wake()
            return True
        return False


def _settle(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_result(None)
