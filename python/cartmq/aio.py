"""The asyncio client: the API of ``cartmq.Client`` as coroutines on
``zmq.asyncio``, with any number of calls in flight at once on one client.

MDP replies carry no request id, so two requests in flight on one socket
could not be told apart when one of them times out. Each attempt therefore
takes a DEALER socket of its own from a small pool per broker: after a
reply the socket goes back to the pool (at most ``max_idle`` are kept per
broker), and a socket whose attempt timed out or was cancelled is closed,
never reused, so a late reply can only ever reach a closed socket. At most
``max_in_flight`` attempts hold a socket at once (each is a connection and
file descriptors); further calls wait for one to finish, and their
timeout counts only from when they are sent. The broker choice follows the
same failover rules as the sync client (``cartmq.failover``). Use a client
from one event loop.
"""

import asyncio
import time
from typing import Any, Dict, List, Optional

import zmq
import zmq.asyncio

from . import cart, mdp, mmi
from .client import Endpoints, Frame, Settings, as_bytes, request_frames
from .curve import Curve
from .errors import NoReply
from .failover import Failover


class Client:
    """An asyncio client of one or several cartmq brokers; the arguments
    are those of ``cartmq.Client``, plus max_idle: sockets kept open per
    broker between calls, and max_in_flight: attempts under way at once
    (calls beyond it wait their turn)."""

    def __init__(self, endpoints: Endpoints = None, timeout_ms: int = 2500,
                 retries: int = 2, curve: Optional[Curve] = None,
                 context: Optional[zmq.asyncio.Context] = None,
                 max_idle: int = 32, max_in_flight: int = 256) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) \
                or max_in_flight < 1:
            raise ValueError("max_in_flight is a positive integer: %r" % (max_in_flight,))
        self._settings = Settings(endpoints, timeout_ms, retries, curve)
        self.endpoints = self._settings.endpoints
        self._own_context = context is None
        self._context = context if context is not None else zmq.asyncio.Context()
        self._idle: List[List[zmq.asyncio.Socket]] = [[] for _ in self.endpoints]
        self._busy: set = set()
        self._max_idle = max(0, max_idle)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._failover = Failover(len(self.endpoints), self._settings.timeout_s)
        self._closed = False
        try:
            #  One socket per broker now: a bad endpoint fails here.
            for index, pool in enumerate(self._idle):
                pool.append(self._settings.new_socket(self._context, index))
        except BaseException:
            self.close()
            raise

    # --- life -----------------------------------------------------------

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes every socket, idle or in use (calls in flight then fail);
        safe twice."""
        self._closed = True
        for pool in self._idle:
            while pool:
                pool.pop().close(0)
        for sock in list(self._busy):
            sock.close(0)
        self._busy.clear()
        if self._own_context and not self._context.closed:
            self._context.term()

    # --- any service ----------------------------------------------------

    async def call(self, service: Frame, *frames: Frame) -> List[bytes]:
        """Sends frames to service and returns the reply's body frames;
        NoReply when no attempt got an answer."""
        request = request_frames(service, frames)
        index = self._failover.first()
        for attempt in range(self._settings.retries + 1):
            if attempt:
                index = self._failover.next(index)
            reply = await self._attempt(index, request)
            if reply is not None:
                self._failover.on_reply(index)
                return reply
            self._failover.on_timeout(index)
        raise NoReply("no reply from %s after %d attempts of %d ms"
                      % (as_bytes(service).decode(errors="replace"),
                         self._settings.retries + 1, self._settings.timeout_ms))

    def _take(self, index: int) -> zmq.asyncio.Socket:
        if self._closed:
            raise RuntimeError("cartmq.aio.Client is closed")
        pool = self._idle[index]
        sock = pool.pop() if pool else self._settings.new_socket(self._context, index)
        self._busy.add(sock)
        return sock

    def _give_back(self, index: int, sock: zmq.asyncio.Socket, reusable: bool) -> None:
        self._busy.discard(sock)
        if reusable and not self._closed and len(self._idle[index]) < self._max_idle:
            self._idle[index].append(sock)
        elif not sock.closed:
            sock.close(0)

    async def _attempt(self, index: int, request: List[bytes]) -> Optional[List[bytes]]:
        """The reply from broker index on a socket of this attempt's own,
        or None after the timeout."""
        async with self._slots:
            return await self._attempt_on(index, request)

    async def _attempt_on(self, index: int, request: List[bytes]) -> Optional[List[bytes]]:
        sock = self._take(index)
        reply = None
        try:
            await sock.send_multipart(request, copy=False)
            deadline = time.monotonic() + self._settings.timeout_s
            while reply is None:
                remaining_ms = int((deadline - time.monotonic()) * 1000)
                if remaining_ms <= 0:
                    return None
                if not await sock.poll(remaining_ms, zmq.POLLIN):
                    continue
                parsed = mdp.parse_client_reply(await sock.recv_multipart())
                if parsed is not None and parsed[0] == request[2]:
                    reply = parsed[1]
            return reply
        finally:
            self._give_back(index, sock, reply is not None)

    # --- MMI ------------------------------------------------------------

    async def _ask(self, index: int, service: bytes) -> Optional[List[bytes]]:
        """service's reply from broker index alone (retries + 1 attempts)."""
        request = mdp.client_request(service, mmi.EMPTY_BODY)
        for _ in range(self._settings.retries + 1):
            reply = await self._attempt(index, request)
            if reply is not None:
                self._failover.on_reply(index)
                return reply
            self._failover.on_timeout(index)
        return None

    async def _mmi(self, service: bytes, decode: Any) -> Any:
        if len(self.endpoints) == 1:
            return decode(await self.call(service, *mmi.EMPTY_BODY))
        replies = await asyncio.gather(*(self._ask(index, service)
                                         for index in range(len(self.endpoints))))
        return {endpoint: None if frames is None else decode(frames)
                for endpoint, frames in zip(self.endpoints, replies)}

    async def services(self) -> mmi.Services:
        """As ``cartmq.Client.services``."""
        return await self._mmi(mmi.SERVICES, mmi.services)

    async def stats(self) -> mmi.Stats:
        """As ``cartmq.Client.stats``."""
        return await self._mmi(mmi.STATS, mmi.stats)

    async def service_available(self, service: Frame) -> bool:
        """As ``cartmq.Client.service_available``."""
        return mmi.service_available(await self.call(mmi.SERVICE, as_bytes(service)))

    # --- the cart service -----------------------------------------------

    async def _cart(self, request: Dict[str, Any]) -> cart.Reply:
        return cart.result(await self.call(cart.SERVICE, cart.pack(request)))

    async def get_cart(self, user: str) -> cart.Reply:
        """As ``cartmq.Client.get_cart``."""
        return await self._cart(cart.request("GetCartItems", user))

    async def add_item(self, user: str, item_id: str, name: str, quantity: int,
                       price: int, request_id: Optional[str] = None) -> cart.Reply:
        """As ``cartmq.Client.add_item``."""
        return await self._cart(cart.add_request(user, item_id, name, quantity, price,
                                                 request_id))

    async def remove_item(self, user: str, item_id: str,
                          request_id: Optional[str] = None) -> cart.Reply:
        """As ``cartmq.Client.remove_item``."""
        return await self._cart(cart.request("RemoveItemFromCart", user, request_id,
                                             item_id=item_id))

    async def update_quantity(self, user: str, item_id: str, quantity: int,
                              request_id: Optional[str] = None) -> cart.Reply:
        """As ``cartmq.Client.update_quantity``."""
        return await self._cart(cart.request("UpdateItemQuantity", user, request_id,
                                             item_id=item_id, quantity=quantity))

    async def clear_cart(self, user: str, request_id: Optional[str] = None) -> cart.Reply:
        """As ``cartmq.Client.clear_cart``."""
        return await self._cart(cart.request("ClearCart", user, request_id))
