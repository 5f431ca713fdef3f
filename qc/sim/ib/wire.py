"""TWS API wire codec for `qc sim`, layer 1: handshake, framing, field values (server versions 157..178).

Pure functions and one small buffering class; no sockets, no clock. Everything follows
/work/shared/reference/ib-api-protocol.md (cited as "ref §N") and was checked against ib_async
2.1.0's own ``Client`` and ``Decoder`` in ``tests/unit/test_ib_{wire,encode,decode}.py``.

Modules of the codec (all pure):
    ib_wire             this one: handshake, version rule, framing, FrameSplitter, field values, Cursor
    ib_versions         the accepted range and every MIN_SERVER_VER_* threshold where a layout changes
    ib_wire_types       inputs/outputs: WireContract, WireContractDetails, WireOrder, WireOrderState,
                        WireExecution, WireCommission, WireBar, WirePosition, WireDepthExchange
    ib_encode           one function per server message (session, contracts, market data, account, bars)
    ib_wire_orders      openOrder (127 fields), completedOrder, orderStatus, execDetails, commissionReport
    ib_decode           parse_request(fields, version) -> typed request dataclass (Unknown/Malformed too)
    ib_wire_place_order placeOrder's cursor parser (re-exported by ib_decode)

How the asyncio server (``qc/sim/ib/server.py``) uses it, per connection::

    buf += data                                 # until the handshake is complete
    got = ib_wire.split_handshake(buf)          # None: wait for more; raises HandshakeError: close
    if got is not None:
        hello, rest = got
        version = ib_wire.negotiate_version(hello)          # None: refuse (close the socket)
        writer.write(ib_wire.encode_handshake_reply(version, ib_wire.ib_conn_time(now)))
        splitter = ib_wire.FrameSplitter()
        for fields in splitter.feed(rest): ...              # then splitter.feed(data) per read
    request = ib_decode.parse_request(fields, version)      # match on its type; never raises
    writer.write(ib_encode.managed_accounts(["DU1234567"]) + ib_encode.error(-1, 2104, "OK", sv=version))

Every ``ib_encode`` / ``ib_wire_orders`` function returns one complete frame (``bytes``: 4-byte
big-endian length + NUL-terminated UTF-8 fields), ready to write; concatenate frames freely.
A client is answered ``min(its max, 178)`` (ref §1 rule) and from then on every message goes out in
that version's layout: the encoders whose layout changes inside 157..178 (error, contractDetails,
openOrder, completedOrder, execDetails) take the negotiated version as a required ``sv`` keyword,
and ``parse_request`` reads requests the same way; ``ib_versions`` holds every threshold. ib_async
2.1 itself always advertises ``v157..178`` and so gets 178; older clients get their own layouts.

Field values (ref §2 "Encoding conventions"): bool → ``1``/``0``; ``None`` and IB's unset
sentinels (``UNSET_DOUBLE`` = float max, ``UNSET_INTEGER`` = 2**31-1) → empty; +inf → ``Infinite``
(the request-side spelling; ib_async's decoder cannot read it, so server messages must not carry
inf); other floats use ``repr`` (shortest round-tripping form), integral floats print as ints.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from datetime import datetime

from qc.sim.ib.versions import MAX_SERVER_VERSION, MIN_SERVER_VERSION

SERVER_VERSION = MAX_SERVER_VERSION  # what the simulator answers a client that accepts it (ref §1)
MIN_CLIENT_VERSION = MIN_SERVER_VERSION  # what ib_async 2.1.0 advertises as its minimum (ref §1)
API_MAGIC = b"API\0"
UNSET_DOUBLE = sys.float_info.max
UNSET_INTEGER = 2**31 - 1
MAX_FRAME_LEN = 0xFFFFFF  # TWS refuses longer messages; a larger prefix means a broken stream
INFINITE = "Infinite"

_LEN = struct.Struct(">I")
_pack_len = _LEN.pack


class WireError(ValueError):
    """A byte stream or field list that cannot be read as the TWS protocol."""


class HandshakeError(WireError):
    """The connection did not open with ``API\\0`` + a length-prefixed ``vMIN..MAX`` string."""


@dataclass(frozen=True, slots=True)
class Handshake:
    """The client's advertised version window and connect options (e.g. ``+PACEAPI``), ref §2.1."""

    min_version: int
    max_version: int
    options: str = ""


def split_handshake(buf: bytes) -> tuple[Handshake, bytes] | None:
    """Read the opening ``API\\0`` + prefixed version string; return it and the bytes after it.

    ``None`` means "not complete yet, buffer more". Raises ``HandshakeError`` for anything that
    can never become a valid handshake, so the server closes instead of waiting forever.
    """
    head = buf[: len(API_MAGIC)]
    if not API_MAGIC.startswith(head):
        raise HandshakeError(f"connection must start with API\\0, got {head!r}")
    if len(buf) < len(API_MAGIC) + 4:
        return None
    (size,) = _LEN.unpack_from(buf, len(API_MAGIC))
    if size > 1024:
        raise HandshakeError(f"handshake string of {size} bytes")
    end = len(API_MAGIC) + 4 + size
    if len(buf) < end:
        return None
    return parse_version_string(buf[len(API_MAGIC) + 4 : end].decode("ascii", "replace")), buf[end:]


def parse_version_string(text: str) -> Handshake:
    """Parse ``v157..178`` or ``v157..178 +PACEAPI`` (ref §2.1); a bare ``v176`` means 176..176."""
    versions, _, options = text.strip("\0").partition(" ")
    if not versions.startswith("v"):
        raise HandshakeError(f"bad version string {text!r}")
    low, sep, high = versions[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError as exc:
        raise HandshakeError(f"bad version string {text!r}") from exc
    if lo > hi:
        raise HandshakeError(f"empty version window {text!r}")
    return Handshake(lo, hi, options.strip())


def negotiate_version(hello: Handshake, server_version: int = SERVER_VERSION) -> int | None:
    """Reply ``min(client_max, server)`` (ref §1); ``None`` (refuse, close) when ``client_min > server``
    or when that reply would fall below ``MIN_SERVER_VERSION``, whose layouts the simulator lacks."""
    if hello.min_version > server_version:
        return None
    version = min(hello.max_version, server_version)
    return version if version >= MIN_SERVER_VERSION else None


def ib_conn_time(now: datetime) -> str:
    """Connection time as TWS prints it, ``YYYYMMDD HH:MM:SS TZ`` (ib_async ignores it, ref §2.2)."""
    return f"{now:%Y%m%d %H:%M:%S} {now.tzname() or 'UTC'}"


def encode_handshake_reply(version: int, conn_time: str) -> bytes:
    """The server's first frame: exactly two fields, which is how ib_async recognises it (ref §2.2)."""
    return frame((str(version), conn_time))


def frame(fields: tuple[str, ...] | list[str]) -> bytes:
    """Frame already-encoded fields: 4-byte big-endian length + each field NUL-terminated (ref §1)."""
    payload = ("\0".join(fields) + "\0").encode()
    return _pack_len(len(payload)) + payload


def frame_text(text: str) -> bytes:
    """Frame a payload that already holds its NUL terminators (the encoders' fast path)."""
    payload = text.encode()
    return _pack_len(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """One frame's payload → its fields; undecodable bytes are escaped, never fatal (as ib_async does)."""
    fields = payload.decode("utf-8", "backslashreplace").split("\0")
    if fields[-1] == "":
        fields.pop()
    return fields


class FrameSplitter:
    """Incremental frame splitter for one connection: bytes in any chunking → complete field lists.

    Keeps the unfinished tail between calls, so a frame split across TCP reads (or many frames in
    one read) comes out exactly once and whole. Raises ``WireError`` on a length prefix above
    ``MAX_FRAME_LEN``: the stream is out of sync and the connection should be closed.
    """

    __slots__ = ("_buf", "max_len")

    def __init__(self, max_len: int = MAX_FRAME_LEN) -> None:
        self._buf = bytearray()
        self.max_len = max_len

    @property
    def pending(self) -> int:
        """Bytes buffered towards the next, still incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[list[str]]:
        """Append ``data``; return every frame it completed, in order."""
        buf = self._buf
        buf += data
        out: list[list[str]] = []
        start, end = 0, len(buf)
        while end - start >= 4:
            (size,) = _LEN.unpack_from(buf, start)
            if size > self.max_len:
                raise WireError(f"frame length {size} exceeds {self.max_len}")
            if end - start - 4 < size:
                break
            out.append(split_fields(bytes(buf[start + 4 : start + 4 + size])))
            start += 4 + size
        del buf[:start]
        return out


def enc_bool(value: bool) -> str:
    return "1" if value else "0"


def enc_int(value: int | None) -> str:
    """Empty for ``None`` or ``UNSET_INTEGER`` (ref §2)."""
    return "" if value is None or value == UNSET_INTEGER else str(value)


def enc_float(value: float | None) -> str:
    """Empty for unset, ``Infinite`` for +inf, integral values as ints, others by ``repr`` (round-trips)."""
    if value is None or value == UNSET_DOUBLE:
        return ""
    if value == math.inf:
        return INFINITE
    if value.__class__ is not float:
        return str(value)  # an int where a float was declared
    return str(int(value)) if value.is_integer() else repr(value)


def enc(value: object) -> str:
    """Encode any field value by its Python type (bool before int: ``True`` is an int)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return enc_int(value)
    if isinstance(value, float):
        return enc_float(value)
    return str(value)


def dec_float(text: str) -> float | None:
    """Read a float field: empty or the unset sentinel → ``None``; ``Infinite`` → inf."""
    if not text:
        return None
    if text == INFINITE:
        return math.inf
    value = float(text)
    return None if value == UNSET_DOUBLE else value


def dec_int(text: str) -> int | None:
    """Read an int field: empty or ``UNSET_INTEGER`` → ``None``; tolerates ``3.0``."""
    if not text:
        return None
    value = int(text) if text.lstrip("-").isdigit() else int(float(text))
    return None if value == UNSET_INTEGER else value


def dec_bool(text: str) -> bool:
    """Read a bool field: ``1``/``true`` → True; empty or ``0`` → False."""
    return text.strip().lower() in {"1", "true"}


class Cursor:
    """Sequential reader over one message's fields; running out raises ``WireError``.

    Method names match the field kinds of the placeOrder tables: ``s`` str, ``i`` int or None,
    ``i0`` int with empty = 0, ``f`` float or None, ``b`` bool.
    """

    __slots__ = ("fields", "pos")

    def __init__(self, fields: list[str], pos: int = 0) -> None:
        self.fields = fields
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.fields) - self.pos

    def s(self) -> str:
        if self.pos >= len(self.fields):
            raise WireError(f"message ended after {self.pos} fields")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def i(self) -> int | None:
        return dec_int(self.s())

    def i0(self) -> int:
        """An int field where empty means 0 (ids, counts, flags)."""
        return dec_int(self.s()) or 0

    def f(self) -> float | None:
        return dec_float(self.s())

    def b(self) -> bool:
        return dec_bool(self.s())
