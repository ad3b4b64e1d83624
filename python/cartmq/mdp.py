"""Majordomo (MDP/0.1, ZeroMQ RFC 7) frames, as plain functions on lists
of bytes. No sockets here: the clients and the worker build and read
messages with these, and every reader returns None for a message it cannot
use instead of raising, because peer bytes are never trusted.

Messages are as a DEALER sees them: the empty delimiter frame first.
"""

from typing import List, Optional, Sequence, Tuple

CLIENT = b"MDPC01"
WORKER = b"MDPW01"

#  Worker commands: one byte each, 0x01 to 0x05.
COMMANDS = tuple(bytes([code]) for code in range(1, 6))
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = COMMANDS

#  Worker credit (cartmq extension to READY): 1 to 1000 in 1-10 digits.
MAX_CREDIT = 1000
#  A service name the broker accepts: 1-255 bytes, no NUL.
MAX_SERVICE = 255

Frames = List[bytes]


def check_service(service: bytes) -> bytes:
    """service, if the broker would accept it as a name; else ValueError."""
    if not 0 < len(service) <= MAX_SERVICE or b"\0" in service:
        raise ValueError("a service name is 1-%d bytes without NUL: %r"
                         % (MAX_SERVICE, service))
    return service


def client_request(service: bytes, body: Sequence[bytes]) -> Frames:
    """A client request: ["", MDPC01, service, body...] (at least one body
    frame: a request without one is invalid, so an empty one is sent)."""
    return [b"", CLIENT, service] + (list(body) or [b""])


def parse_client_reply(msg: Sequence[bytes]) -> Optional[Tuple[bytes, Frames]]:
    """(service, body frames) of a broker's reply to a client, or None if
    the message is not one."""
    if len(msg) < 3 or msg[0] != b"" or msg[1] != CLIENT:
        return None
    return bytes(msg[2]), [bytes(frame) for frame in msg[3:]]


def credit_frame(credit: int) -> bytes:
    """The READY credit frame for credit requests at once (1-1000)."""
    if not 1 <= credit <= MAX_CREDIT:
        raise ValueError("credit is 1-%d: %r" % (MAX_CREDIT, credit))
    return str(credit).encode()


def worker_ready(service: bytes, credit: int = 1) -> Frames:
    """READY for service; with credit > 1 the credit frame follows (a plain
    MDP broker ignores it), with credit 1 none, exactly RFC 7."""
    msg = [b"", WORKER, READY, service]
    if credit > 1:
        msg.append(credit_frame(credit))
    return msg


def worker_reply(address: bytes, body: Sequence[bytes]) -> Frames:
    """REPLY to the request the broker named address (at least one body
    frame)."""
    return [b"", WORKER, REPLY, address, b""] + (list(body) or [b""])


def worker_command(command: bytes) -> Frames:
    """A command without frames: HEARTBEAT or DISCONNECT."""
    return [b"", WORKER, command]


def parse_worker(msg: Sequence[bytes]) -> Optional[Tuple[bytes, Frames]]:
    """(command, rest) of a broker-to-worker message, or None if it is not
    a well-formed one: REQUEST needs an address, an empty frame and a body;
    HEARTBEAT and DISCONNECT carry nothing; the broker sends no other."""
    if len(msg) < 3 or msg[0] != b"" or msg[1] != WORKER:
        return None
    command, rest = bytes(msg[2]), [bytes(frame) for frame in msg[3:]]
    if command == REQUEST:
        if len(rest) < 3 or rest[1] != b"":
            return None
        return command, rest
    if command in (HEARTBEAT, DISCONNECT):
        return (command, rest) if not rest else None
    return None
