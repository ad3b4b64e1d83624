"""The broker's own services (MMI, RFC 8, contract §3): what to send and
how to read the answers, shared by the sync and asyncio clients."""

from typing import Any, Dict, List, Optional, Union

import msgpack

from .errors import ProtocolError

SERVICE = b"mmi.service"
SERVICES = b"mmi.services"
STATS = b"mmi.stats"
#  mmi.services and mmi.stats take no body, but a request carries at
#  least one body frame (RFC 7): an empty one.
EMPTY_BODY = [b""]

#  What services() and stats() return: the value from one broker, or with
#  several endpoints {endpoint: value, or None if that broker gave none}.
Services = Union[List[Dict[str, Any]], Dict[str, Optional[List[Dict[str, Any]]]]]
Stats = Union[Dict[str, Any], Dict[str, Optional[Dict[str, Any]]]]


def _one_value(frames: List[bytes], name: bytes) -> Any:
    if len(frames) != 1:
        raise ProtocolError("%s replied %d frames, not 1" % (name.decode(), len(frames)))
    try:
        return msgpack.unpackb(frames[0], raw=False, strict_map_key=False)
    except Exception as error:  # noqa: BLE001 - any decoding failure
        raise ProtocolError("%s reply is not msgpack: %s" % (name.decode(), error)) from None


def services(frames: List[bytes]) -> List[Dict[str, Any]]:
    """mmi.services: a list of {"name", "workers", "idle", "queued"}."""
    value = _one_value(frames, SERVICES)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ProtocolError("mmi.services reply is not an array of maps")
    return value


def stats(frames: List[bytes]) -> Dict[str, Any]:
    """mmi.stats: the broker's counters map."""
    value = _one_value(frames, STATS)
    if not isinstance(value, dict):
        raise ProtocolError("mmi.stats reply is not a map")
    return value


def service_available(frames: List[bytes]) -> bool:
    """mmi.service: True on "200" (a live worker), False on "404"."""
    answer = b"".join(frames)
    if answer not in (b"200", b"404"):
        raise ProtocolError("mmi.service replied %r" % (answer[:64],))
    return answer == b"200"
