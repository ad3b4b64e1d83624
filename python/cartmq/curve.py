"""CURVE keys for the clients and the worker: Z85 text, raw bytes, or the
CZMQ zcert files ``cartmq keygen NAME`` writes (NAME holds the public key,
NAME_secret both)."""

import os
import re
from typing import Optional, Tuple, Union

import zmq
import zmq.utils.z85

Key = Union[str, bytes, "os.PathLike[str]"]
#  (server public key, our public key, our secret key), or
#  (server public key, our secret certificate file).
Curve = Union[Tuple[Key, Key, Key], Tuple[Key, Key]]

_Z85 = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
#  A ZPL line "    name = value", value quoted with " or ' or bare.
_ZPL_ITEM = re.compile(r"""^(\s*)([^\s=#]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S*))""")


def _read_zcert(path: str) -> dict:
    """The keys of a zcert file's "curve" section: {"public-key": ...}."""
    keys = {}
    section = None
    with open(path, encoding="utf-8", errors="replace") as cert:
        for line in cert:
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                section = line.split("#", 1)[0].strip()
                continue
            match = _ZPL_ITEM.match(line)
            if section == "curve" and match:
                value = next(group for group in match.groups()[2:] if group is not None)
                keys[match.group(2)] = value
    return keys


def _as_z85(value: Key) -> Optional[bytes]:
    """value as a Z85 key if it is one (40 characters)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str) and _Z85.match(value):
        return value.encode("ascii")
    return None


def load_key(value: Key, which: str = "public") -> bytes:
    """The Z85 key (40 bytes) that value gives: the key itself (40 Z85
    characters, or 32 raw bytes), or the path of a zcert file whose curve
    section holds ``public-key`` / ``secret-key`` (which = "public" or
    "secret"); an existing file wins over a key that reads the same.
    ValueError if there is none."""
    if isinstance(value, bytes) and len(value) == 32:
        return zmq.utils.z85.encode(value)
    path = os.fsdecode(value)
    key = _as_z85(value)
    if key is not None and not os.path.exists(path):
        return key
    try:
        keys = _read_zcert(path)
    except OSError as error:
        raise ValueError("%s: cannot read certificate: %s" % (path, error)) from None
    text = keys.get("%s-key" % which, "")
    if not _Z85.match(text):
        raise ValueError("%s: no valid curve/%s-key" % (path, which))
    return text.encode("ascii")


def client_keys(curve: Curve) -> Tuple[bytes, bytes, bytes]:
    """(server public, our public, our secret) Z85 keys from a curve
    setting; a 2-tuple names our secret certificate file for both of
    ours. The public key is checked against the secret one."""
    if len(curve) == 2:
        server, ours = curve  # type: ignore[misc]
        public, secret = load_key(ours, "public"), load_key(ours, "secret")
    elif len(curve) == 3:
        server, ours_public, ours_secret = curve  # type: ignore[misc]
        public, secret = load_key(ours_public, "public"), load_key(ours_secret, "secret")
    else:
        raise ValueError("curve is (server_public, client_public, client_secret)")
    if zmq.curve_public(secret) != public:
        raise ValueError("curve: the client public key does not match its secret key")
    return load_key(server, "public"), public, secret


def apply_client(sock: zmq.Socket, keys: Tuple[bytes, bytes, bytes]) -> None:
    """Makes sock a CURVE client of the server whose public key is keys[0]."""
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = keys
