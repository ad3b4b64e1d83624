"""Write an MDP service in Python: ``cartmq.Worker`` registers with every
broker given (one socket and one registration each), keeps heartbeats both
ways, reconnects when a broker goes silent or says DISCONNECT, and runs a
handler for each request.

    def handler(frames: list[bytes]) -> list[bytes]: ...
    cartmq.Worker("tcp://127.0.0.1:5555", "echo", handler).run()

A coroutine function may be the handler: up to ``concurrency`` requests
then run at once, and READY announces that many as credit (contract §3).
A plain function runs in a pool of ``concurrency`` threads, so heartbeats
go on while it works. What the broker sends is never trusted: a malformed
message is dropped (and counted in a summary log line), never raised.
"""

import asyncio
import concurrent.futures
import inspect
import logging
import signal
import threading
import time
from typing import Awaitable, Callable, List, Optional, Sequence, Set, Union

import msgpack
import zmq

from . import mdp
from .client import Endpoints, as_bytes
from .curve import Curve, client_keys
from .failover import parse_endpoints
from .link import BrokerLink

Frames = List[bytes]
Result = Union[None, bytes, str, Sequence[Union[bytes, str]]]
Handler = Callable[[Frames], Union[Result, Awaitable[Result]]]

log = logging.getLogger("cartmq.worker")

#  Reconnect backoff: immediately the first time, then 100 ms doubling to
#  1 s; a REQUEST or HEARTBEAT from the broker resets it (as cartmq-worker).
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 1.0
#  Messages read in one go before timers are looked at again.
BATCH = 256


def default_error_reply(error: BaseException) -> Frames:
    """The reply when a handler raises: a msgpack map {"status": 500,
    "error": "internal error"} (the shape of cartmq's service replies)."""
    return [msgpack.packb({"status": 500, "error": "internal error"}, use_bin_type=True)]


def reply_frames(result: Result) -> Frames:
    """A handler's result as reply frames: bytes or str is one frame, a
    sequence of them is several, None is one empty frame (a REPLY needs a
    body). TypeError for anything else."""
    if result is None:
        return [b""]
    if isinstance(result, (bytes, bytearray, memoryview, str)):
        return [as_bytes(result)]
    if isinstance(result, (list, tuple)) and all(
            isinstance(frame, (bytes, bytearray, memoryview, str)) for frame in result):
        return [as_bytes(frame) for frame in result] or [b""]
    raise TypeError("a handler returns bytes, str, a list of them or None, not %s"
                    % type(result).__name__)


def _check_endpoints(endpoints: List[str]) -> None:
    """ValueError naming the first endpoint libzmq refuses to connect to."""
    context = zmq.Context()
    try:
        for endpoint in endpoints:
            sock = context.socket(zmq.DEALER)
            sock.linger = 0
            try:
                sock.connect(endpoint)
            except zmq.ZMQError as error:
                raise ValueError("cannot connect to %r: %s" % (endpoint, error)) from None
            finally:
                sock.close(0)
    finally:
        context.term()


class Worker:
    """An MDP/0.1 worker for service on every broker in endpoints (a list
    or a comma-separated string).

    handler(frames) gets a request's body frames and returns the reply's
    (bytes, str, a list of them, or None for one empty frame); it may be a
    coroutine function. concurrency: requests served at once (1-1000),
    announced to the broker as credit when over 1. heartbeat_ms and
    liveness as for cartmq-worker. curve: as for ``cartmq.Client``.
    grace_ms: on stop, how long requests being served may take to finish
    before the worker says DISCONNECT. error_reply(exception) makes the
    reply when the handler raises (default: a msgpack status 500 map).
    """

    def __init__(self, endpoints: Endpoints, service: Union[str, bytes], handler: Handler,
                 concurrency: int = 1, heartbeat_ms: int = 2500, liveness: int = 3,
                 curve: Optional[Curve] = None, grace_ms: int = 1000,
                 error_reply: Callable[[BaseException], Frames] = default_error_reply) -> None:
        self.endpoints = parse_endpoints(endpoints)
        self.service = mdp.check_service(as_bytes(service))
        if self.service.startswith(b"mmi."):
            raise ValueError("mmi.* names belong to the broker (RFC 8)")
        if not callable(handler):
            raise TypeError("handler must be callable")
        for name, value, low, high in (("concurrency", concurrency, 1, mdp.MAX_CREDIT),
                                       ("heartbeat_ms", heartbeat_ms, 1, None),
                                       ("liveness", liveness, 1, None),
                                       ("grace_ms", grace_ms, 0, None)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low \
                    or (high is not None and value > high):
                raise ValueError("%s out of range: %r" % (name, value))
        self.handler = handler
        self.concurrency = concurrency
        self.interval_s = heartbeat_ms / 1000.0
        self.expiry_s = self.interval_s * liveness
        self.grace_s = grace_ms / 1000.0
        self.error_reply = error_reply
        self._keys = client_keys(curve) if curve is not None else None
        _check_endpoints(self.endpoints)
        self._is_async = inspect.iscoroutinefunction(handler) or \
            inspect.iscoroutinefunction(getattr(handler, "__call__", None))
        self._links: List[BrokerLink] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._stop_asked = threading.Event()
        self._stopping = False
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._dropped = 0
        self._dropped_logged = 0.0
        self.served = 0

    # --- running and stopping ------------------------------------------

    def run(self) -> None:
        """Serves until SIGTERM or SIGINT (when run from the main thread) or
        stop(); then finishes what it serves (up to grace_ms), says
        DISCONNECT to every broker and closes."""
        asyncio.run(self.serve(handle_signals=threading.current_thread()
                               is threading.main_thread()))

    def stop(self) -> None:
        """Asks the worker to stop; safe from any thread or a handler."""
        self._stop_asked.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass                # the loop has just closed: already stopped

    async def serve(self, handle_signals: bool = False) -> None:
        """run() for a caller that has an event loop of its own."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_asked.is_set():
            self._stop_event.set()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._stop_event.set)
        context = zmq.Context()
        self._links = [BrokerLink(endpoint, self._loop, context, self._keys)
                       for endpoint in self.endpoints]
        #  Each broker keeps to our credit; with several, this keeps the
        #  whole worker to it too.
        self._slots = asyncio.Semaphore(self.concurrency)
        self._executor = None if self._is_async else \
            concurrent.futures.ThreadPoolExecutor(self.concurrency, "cartmq-handler")
        links = [asyncio.ensure_future(self._keep_link(link)) for link in self._links]
        try:
            await self._stop_event.wait()
            await self._shut_down(links)
        finally:
            for task in links + list(self._tasks):
                task.cancel()
            for link in self._links:
                link.close(say_disconnect=link.registered)
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(signum)
            context.term()

    async def _shut_down(self, links: List["asyncio.Future[None]"]) -> None:
        """Lets the requests being served finish (heartbeats go on, new
        requests are left to the broker), then stops the links."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.grace_s)
        for task in links:
            task.cancel()
        await asyncio.gather(*links, return_exceptions=True)

    # --- one broker ----------------------------------------------------

    async def _keep_link(self, link: BrokerLink) -> None:
        """Registers with link's broker, again and again: after it goes
        silent for liveness intervals or says DISCONNECT, with a fresh
        socket and the backoff."""
        while True:
            if link.backoff is None:
                link.backoff = FIRST_BACKOFF_S
            else:
                await asyncio.sleep(link.backoff)
                link.backoff = min(link.backoff * 2, MAX_BACKOFF_S)
            link.open()
            try:
                told_to_go = await self._session(link)
            except Exception:  # noqa: BLE001 - one broker's trouble never stops the rest
                log.exception("%s: session failed; reconnecting", link.endpoint)
                told_to_go = False
            link.close(say_disconnect=link.registered and not told_to_go)

    async def _session(self, link: BrokerLink) -> bool:
        """Serves on link's fresh socket until the broker is silent for
        liveness intervals (False) or says DISCONNECT (True)."""
        #  With ZMQ_IMMEDIATE, READY can go only once the connection is up.
        if not await link.send(mdp.worker_ready(self.service, self.concurrency), self.expiry_s):
            return False
        link.registered = True
        link.heard = time.monotonic()
        log.info("registered %r with %s", self.service, link.endpoint)
        while True:
            now = time.monotonic()
            if now - link.heard >= self.expiry_s:
                log.warning("%s silent for %.1f s; reconnecting", link.endpoint, self.expiry_s)
                return False
            if now - link.sent >= self.interval_s:
                await link.send(mdp.worker_command(mdp.HEARTBEAT), self.interval_s)
            wait_s = min(link.heard + self.expiry_s, link.sent + self.interval_s) - now
            if not await link.wait(zmq.POLLIN, wait_s):
                continue
            for _ in range(BATCH):
                msg = link.recv()
                if msg is None:
                    break
                link.heard = time.monotonic()
                if self._on_message(link, msg):
                    log.info("%s said DISCONNECT; registering again", link.endpoint)
                    return True
            #  Let the handlers just started run before reading more.
            await asyncio.sleep(0)

    def _on_message(self, link: BrokerLink, msg: List[bytes]) -> bool:
        """Handles one message from link's broker; True on DISCONNECT."""
        parsed = mdp.parse_worker(msg)
        if parsed is None:
            self._drop(link, "malformed message %r" % ([bytes(f[:32]) for f in msg[:4]],))
            return False
        command, rest = parsed
        if command == mdp.DISCONNECT:
            return True
        link.backoff = None
        if command == mdp.REQUEST:
            self._start_request(link, rest[0], rest[2:])
        return False

    def _drop(self, link: BrokerLink, what: str) -> None:
        """Counts a dropped message; logs at most one line a second."""
        self._dropped += 1
        now = time.monotonic()
        if now - self._dropped_logged >= 1.0:
            log.warning("%s: dropped %s (%d dropped so far)", link.endpoint, what, self._dropped)
            self._dropped_logged = now

    # --- requests -----------------------------------------------------

    def _start_request(self, link: BrokerLink, address: bytes, body: Frames) -> None:
        if self._stopping:
            return              # the broker re-dispatches it after DISCONNECT
        if link.in_flight >= self.concurrency:
            self._drop(link, "a request over our credit of %d" % self.concurrency)
            return
        link.in_flight += 1
        task = asyncio.ensure_future(self._serve_one(link, link.generation, address, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _error_frames(self, error: BaseException) -> Frames:
        try:
            return reply_frames(self.error_reply(error))
        except Exception:  # noqa: BLE001 - nor is a bug in error_reply
            log.exception("error_reply failed")
            return default_error_reply(error)

    async def _serve_one(self, link: BrokerLink, generation: int, address: bytes,
                         body: Frames) -> None:
        async with self._slots:
            try:
                if self._is_async:
                    result = await self.handler(body)  # type: ignore[misc]
                else:
                    result = await asyncio.get_running_loop().run_in_executor(
                        self._executor, self.handler, body)
                frames = reply_frames(result)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a handler's bug is not ours
                log.exception("handler failed on a %r request", self.service)
                frames = self._error_frames(error)
        if link.generation != generation or link.sock is None:
            return              # its broker is gone or forgot us: it re-dispatched
        link.in_flight -= 1
        if await link.send(mdp.worker_reply(address, frames), self.expiry_s):
            self.served += 1
