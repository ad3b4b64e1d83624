"""Exceptions raised by cartmq: one base class, so ``except cartmq.Error``
catches everything the package raises on purpose."""

from typing import Any, Dict, Optional


class Error(Exception):
    """Base class of every cartmq error."""


class NoReply(Error):
    """No reply came after every attempt (the first and ``retries`` more),
    on any broker. A mutation sent with a request_id may or may not have
    been applied; sending it again with the same request_id applies it at
    most once."""


class ProtocolError(Error):
    """A reply came but is not what the service's protocol says (not one
    msgpack map with an integer ``status``, or an MMI answer of the wrong
    shape)."""


class CartError(Error):
    """The cart service answered with a status other than 200.

    ``status`` is the integer status (400, 404, 409, 503, 504), ``error``
    the service's readable reason and ``reply`` the whole reply map.
    """

    def __init__(self, status: int, error: str,
                 reply: Optional[Dict[str, Any]] = None) -> None:
        super().__init__("%d: %s" % (status, error))
        self.status = status
        self.error = error
        self.reply = reply if reply is not None else {"status": status, "error": error}
