"""The cart service's msgpack requests and replies (contract §4), shared
by the sync and asyncio clients."""

import secrets
from typing import Any, Dict, List, Optional

import msgpack

from .errors import CartError, ProtocolError

SERVICE = b"cart"
#  Methods that change the cart: each carries a request_id.
MUTATIONS = ("AddItemToCart", "RemoveItemFromCart", "UpdateItemQuantity", "ClearCart")

Reply = Dict[str, Any]


def new_request_id() -> str:
    """128 random bits as 32 lowercase hex digits, as the C library makes."""
    return secrets.token_hex(16)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def request(method: str, user: str, request_id: Optional[str] = None,
            **fields: Any) -> Dict[str, Any]:
    """The request map for method. A mutation always carries a request_id:
    the caller's, or a new random one; one call reuses it on every attempt
    because this map is built once per call."""
    body: Dict[str, Any] = {"method": method, "user_id": user}
    body.update(fields)
    if method in MUTATIONS:
        body["request_id"] = request_id if request_id is not None else new_request_id()
    return body


def add_request(user: str, item_id: str, name: str, quantity: int, price: int,
                request_id: Optional[str]) -> Dict[str, Any]:
    item = {"id": item_id, "name": name, "quantity": quantity, "price": price}
    return request("AddItemToCart", user, request_id, item=item)


def result(frames: List[bytes]) -> Reply:
    """The reply map on status 200; CartError for another status;
    ProtocolError if the reply is not one msgpack map with an integer
    status."""
    if len(frames) != 1:
        raise ProtocolError("cart reply has %d frames, not 1" % len(frames))
    try:
        reply = unpack(frames[0])
    except Exception as error:  # noqa: BLE001 - any decoding failure
        raise ProtocolError("cart reply is not msgpack: %s" % error) from None
    if not isinstance(reply, dict) or type(reply.get("status")) is not int:
        raise ProtocolError("cart reply is not a map with an integer status: %r"
                            % (reply,))
    if reply["status"] != 200:
        error = reply.get("error")
        raise CartError(reply["status"], error if isinstance(error, str) else "", reply)
    return reply
