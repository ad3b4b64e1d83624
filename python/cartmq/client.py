"""The synchronous client: cart calls, any MDP service, and the broker's
MMI, over one or several brokers with the failover rules of
``cartmq.failover`` (the same as the C library's).

Each broker gets one DEALER socket. A call has at most one request in
flight, and a socket whose attempt timed out is closed at once and a fresh
one opened for the next attempt on that broker, so a late reply is never
taken for another call's. Not thread safe: one client per thread.
"""

import time
from typing import Any, Dict, List, Optional, Sequence, Union

import zmq

from . import cart, mdp, mmi
from .curve import Curve, apply_client, client_keys
from .errors import NoReply
from .failover import Failover, parse_endpoints

Endpoints = Union[str, Sequence[str], None]
Frame = Union[bytes, bytearray, memoryview, str]


def as_bytes(value: Frame) -> bytes:
    """A frame or service name as bytes (str is UTF-8 encoded)."""
    return value.encode() if isinstance(value, str) else bytes(value)


class Settings:
    """What both clients check and keep from their arguments."""

    def __init__(self, endpoints: Endpoints, timeout_ms: int, retries: int,
                 curve: Optional[Curve]) -> None:
        self.endpoints = parse_endpoints(endpoints)
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0:
            raise ValueError("timeout_ms is a positive integer: %r" % (timeout_ms,))
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError("retries is an integer >= 0: %r" % (retries,))
        self.timeout_ms = timeout_ms
        self.timeout_s = timeout_ms / 1000.0
        self.retries = retries
        self.keys = client_keys(curve) if curve is not None else None

    def new_socket(self, context: zmq.Context, index: int) -> zmq.Socket:
        """A DEALER connected to broker index: linger 0 (closing it drops
        whatever it still holds), CURVE if set."""
        sock = context.socket(zmq.DEALER)
        sock.linger = 0
        if self.keys is not None:
            apply_client(sock, self.keys)
        try:
            sock.connect(self.endpoints[index])
        except zmq.ZMQError as error:
            sock.close(0)
            raise ValueError("cannot connect to %r: %s" % (self.endpoints[index], error)) from None
        return sock


def request_frames(service: Frame, frames: Sequence[Frame]) -> List[bytes]:
    return mdp.client_request(mdp.check_service(as_bytes(service)),
                              [as_bytes(frame) for frame in frames])


class Client:
    """A client of one or several cartmq brokers.

    endpoints: a list, or one comma-separated string (None: the default
    ``tcp://127.0.0.1:5555``). timeout_ms: how long one attempt waits for
    its reply. retries: attempts after the first (2: three in all).
    curve: (server public key, client public key, client secret key), each
    a Z85 string or a zcert file (``cartmq keygen``), or (server public
    cert, client secret cert). context: a zmq.Context to use (default: a
    private one, terminated by close()).
    """

    def __init__(self, endpoints: Endpoints = None, timeout_ms: int = 2500,
                 retries: int = 2, curve: Optional[Curve] = None,
                 context: Optional[zmq.Context] = None) -> None:
        self._settings = Settings(endpoints, timeout_ms, retries, curve)
        self.endpoints = self._settings.endpoints
        self._own_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._sockets: List[Optional[zmq.Socket]] = [None] * len(self.endpoints)
        self._failover = Failover(len(self.endpoints), self._settings.timeout_s)
        try:
            #  Connect now: a bad endpoint fails here, and the connections
            #  are up by the first call.
            for index in range(len(self.endpoints)):
                self._socket(index)
        except BaseException:
            self.close()
            raise

    # --- life -----------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes every socket (dropping anything unsent); safe twice."""
        for index in range(len(self._sockets)):
            self._discard(index)
        if self._own_context and not self._context.closed:
            self._context.term()

    # --- any service ----------------------------------------------------

    def call(self, service: Frame, *frames: Frame) -> List[bytes]:
        """Sends frames (bytes, or str sent as UTF-8; none: one empty frame)
        to service and returns the reply's body frames. Raises NoReply when
        no attempt got an answer."""
        request = request_frames(service, frames)
        index = self._failover.first()
        for attempt in range(self._settings.retries + 1):
            if attempt:
                index = self._failover.next(index)
            reply = self._attempt(index, request)
            if reply is not None:
                self._failover.on_reply(index)
                return reply
            self._discard(index)
            self._failover.on_timeout(index)
        raise NoReply("no reply from %s after %d attempts of %d ms"
                      % (as_bytes(service).decode(errors="replace"),
                         self._settings.retries + 1, self._settings.timeout_ms))

    def _socket(self, index: int) -> zmq.Socket:
        sock = self._sockets[index]
        if sock is None:
            sock = self._sockets[index] = self._settings.new_socket(self._context, index)
        return sock

    def _discard(self, index: int) -> None:
        sock, self._sockets[index] = self._sockets[index], None
        if sock is not None:
            sock.close(0)

    def _attempt(self, index: int, request: List[bytes]) -> Optional[List[bytes]]:
        """The reply to request from broker index, or None after the
        timeout. A malformed reply, or one from another service, is
        dropped. Interrupted (KeyboardInterrupt...), the socket is closed,
        so nothing it still holds can answer a later call."""
        try:
            sock = self._socket(index)
            sock.send_multipart(request, copy=False)
            deadline = time.monotonic() + self._settings.timeout_s
            while True:
                remaining_ms = int((deadline - time.monotonic()) * 1000)
                if remaining_ms <= 0 or not sock.poll(remaining_ms, zmq.POLLIN):
                    if time.monotonic() >= deadline:
                        return None
                    continue
                parsed = mdp.parse_client_reply(sock.recv_multipart())
                if parsed is not None and parsed[0] == request[2]:
                    return parsed[1]
        except BaseException:
            self._discard(index)
            raise

    # --- MMI ------------------------------------------------------------

    def _ask_each(self, service: bytes) -> Dict[str, Optional[List[bytes]]]:
        """service's reply from every broker (None from one that gave
        none after retries + 1 attempts), asked in parallel."""
        request = mdp.client_request(service, mmi.EMPTY_BODY)
        replies: Dict[int, Optional[List[bytes]]] = {}
        pending = list(range(len(self.endpoints)))
        for _ in range(self._settings.retries + 1):
            if not pending:
                break
            try:
                for index in pending:
                    self._socket(index).send_multipart(request)
                self._collect(pending, replies, service)
            except BaseException:
                for index in pending:
                    self._discard(index)
                raise
            for index in pending:
                self._discard(index)
                self._failover.on_timeout(index)
        return {self.endpoints[index]: replies.get(index) for index in range(len(self.endpoints))}

    def _collect(self, pending: List[int], replies: Dict[int, Optional[List[bytes]]],
                 service: bytes) -> None:
        """Waits one timeout for pending brokers' replies; removes each that
        answers from pending."""
        poller = zmq.Poller()
        by_socket = {}
        for index in pending:
            sock = self._socket(index)
            poller.register(sock, zmq.POLLIN)
            by_socket[sock] = index
        deadline = time.monotonic() + self._settings.timeout_s
        while pending and time.monotonic() < deadline:
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            for sock, _ in poller.poll(remaining_ms):
                index = by_socket[sock]
                parsed = mdp.parse_client_reply(sock.recv_multipart())
                if parsed is None or parsed[0] != service or index not in pending:
                    continue
                replies[index] = parsed[1]
                pending.remove(index)
                poller.unregister(sock)
                self._failover.on_reply(index)

    def _mmi(self, service: bytes, decode: Any) -> Any:
        if len(self.endpoints) == 1:
            return decode(self.call(service, *mmi.EMPTY_BODY))
        return {endpoint: None if frames is None else decode(frames)
                for endpoint, frames in self._ask_each(service).items()}

    def services(self) -> mmi.Services:
        """mmi.services: a list of {"name", "workers", "idle", "queued"}.
        With several endpoints, a dict {endpoint: list, or None if that
        broker did not answer}."""
        return self._mmi(mmi.SERVICES, mmi.services)

    def stats(self) -> mmi.Stats:
        """mmi.stats: the broker's counters map (contract §3). With several
        endpoints, a dict {endpoint: map, or None if that broker did not
        answer}."""
        return self._mmi(mmi.STATS, mmi.stats)

    def service_available(self, service: Frame) -> bool:
        """mmi.service: True if the broker that answers has a live worker
        for service."""
        return mmi.service_available(self.call(mmi.SERVICE, as_bytes(service)))

    # --- the cart service -----------------------------------------------

    def _cart(self, request: Dict[str, Any]) -> cart.Reply:
        return cart.result(self.call(cart.SERVICE, cart.pack(request)))

    def get_cart(self, user: str) -> cart.Reply:
        """GetCartItems: {"status": 200, "items": [...], "total": N}."""
        return self._cart(cart.request("GetCartItems", user))

    def add_item(self, user: str, item_id: str, name: str, quantity: int, price: int,
                 request_id: Optional[str] = None) -> cart.Reply:
        """AddItemToCart (price in the smallest currency unit): {"status":
        200, "item_id", "quantity": the new quantity}."""
        return self._cart(cart.add_request(user, item_id, name, quantity, price, request_id))

    def remove_item(self, user: str, item_id: str,
                    request_id: Optional[str] = None) -> cart.Reply:
        """RemoveItemFromCart: {"status": 200, "message": "Item removed"};
        CartError 404 if the item is not in the cart."""
        return self._cart(cart.request("RemoveItemFromCart", user, request_id,
                                       item_id=item_id))

    def update_quantity(self, user: str, item_id: str, quantity: int,
                        request_id: Optional[str] = None) -> cart.Reply:
        """UpdateItemQuantity (0 removes): {"status": 200, "item_id",
        "quantity"}."""
        return self._cart(cart.request("UpdateItemQuantity", user, request_id,
                                       item_id=item_id, quantity=quantity))

    def clear_cart(self, user: str, request_id: Optional[str] = None) -> cart.Reply:
        """ClearCart: {"status": 200, "message": "Cart cleared"}."""
        return self._cart(cart.request("ClearCart", user, request_id))
