"""One client connection of the simulated gateway: handshake, startApi, rate limit, request dispatch.

Per connection (ref ib-api-protocol.md §2): ``API\\0`` + version window → the 2-field handshake
reply (``min(client max, server_version)``; ``version`` then picks every message's layout);
``startApi`` → managedAccounts, nextValidId and the farm notices 2104/2106/2158, or error 326 and
a close when the clientId is already connected. Every later frame is parsed by
``ib_decode.parse_request`` and handed to the handler of its type (``ib_req_market``,
``ib_req_orders``). Unknown requests are logged and ignored; malformed ones get error 321; a
handler that raises closes this session only, with a log line. Outgoing frames queue on ``out``
and are written joined, once per read or pump tick (``flush``); a client that stops reading and
lets the write buffer pass ``WRITE_HIGH_WATER`` is dropped rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qc.core import clock
from qc.core.clock import NEW_YORK
from qc.sim.ib import decode as dec
from qc.sim.ib import encode as enc
from qc.sim.ib import req_market as ib_req_market
from qc.sim.ib import req_orders as ib_req_orders
from qc.sim.ib.wire import (
    FrameSplitter,
    HandshakeError,
    WireError,
    encode_handshake_reply,
    ib_conn_time,
    negotiate_version,
    split_handshake,
)

if TYPE_CHECKING:
    from qc.sim.ib.server import IBGatewayServer

log = logging.getLogger(__name__)

WRITE_HIGH_WATER = 32 * 2**20
MAX_RATE_VIOLATIONS = 3
FARM_OK = ((2104, "Market data farm connection is OK:usfarm"), (2106, "HMDS data farm connection is OK:ushmds"),
           (2158, "Sec-def data farm connection is OK:secdefnj"))
CLIENT_ID_IN_USE = "Unable to connect as the client id is already in use. Retry with a unique client id."

Handler = Callable[["IBSession", Any], None]
HANDLERS: dict[type, Handler] = {**ib_req_market.HANDLERS, **ib_req_orders.HANDLERS}
BY_MSG_ID: dict[int, Handler] = {**ib_req_market.BY_MSG_ID, **ib_req_orders.BY_MSG_ID}


class IBSession(asyncio.Protocol):
    """The server side of one TWS API socket."""

    def __init__(self, server: IBGatewayServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.client_id: int | None = None
        self.version = 0
        self._hello = b""
        self._splitter: FrameSplitter | None = None
        self._window_start = clock.monotonic()
        self._window_count = 0
        self._window_flagged = False
        self.received_at = 0.0  # wall epoch when the bytes being handled arrived (placeOrder's receivedAt)
        self.rate_violations = 0
        self.end_delay: tuple[float | None, frozenset[str] | None] | None = server.end_marker_delay
        # subscriptions that live on the session (market data ones live in server.feeds)
        self.positions_sub = False
        self.account_updates: set[str] = set()
        self.account_multi: dict[int, str] = {}
        self.account_summary: dict[int, frozenset[str]] = {}
        self.market_data_type = 1
        self.depth_notice_sent = False
        self.history_pacing: list[tuple[float, str]] = []

    # --- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.server.refusing():
            log.info("ib sim: refusing a connection (fault injection)")
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("ib sim: client %s connection lost: %s", self.client_id, exc)
        self.server.session_closed(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.received_at = clock.wall_epoch()  # before any frame of this read is handled: bytes at the gateway
        try:
            if self._splitter is None:
                data = self._handshake(data)
                if self._splitter is None:
                    return
            for fields in self._splitter.feed(data):
                if self.transport is None or self.transport.is_closing():
                    return
                self._count_rate()
                self._dispatch(fields)
        except (HandshakeError, WireError) as exc:
            log.warning("ib sim: closing a connection that does not speak the TWS API: %s", exc)
            self.close()
        except Exception:
            log.exception("ib sim: session of client %s failed; closing it", self.client_id)
            self.close()
        self.server.flush_all()

    # --- output ------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, kind: str, *frames: bytes) -> None:
        self.out.extend(frames)
        self.server.sent[kind] += len(frames)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send("error", enc.error(req_id, code, text, sv=self.version))

    def flush(self) -> None:
        if not self.out:
            return
        data, self.out = b"".join(self.out), []
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        self.server.sent["bytes"] += len(data)
        if transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            log.warning("ib sim: client %s is not reading (%d bytes queued); dropping it", self.client_id,
                        transport.get_write_buffer_size())
            transport.abort()

    def close(self, abort: bool = False) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def end_marker(self, kind: str, frame: bytes) -> None:
        """Send a startup-sync end marker now, later, or never (``IBGatewayServer.delay_end_markers``)."""
        delay = self.end_delay
        if delay is None or (delay[1] is not None and kind not in delay[1]):
            self.send(kind, frame)
            return
        seconds = delay[0]
        if seconds is None:
            log.info("ib sim: withholding %s from client %s (fault injection)", kind, self.client_id)
            return
        asyncio.get_running_loop().call_later(seconds, self._late, kind, frame)

    def _late(self, kind: str, frame: bytes) -> None:
        if self.alive:
            self.send(kind, frame)
            self.flush()

    # --- input -------------------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        self._hello += data
        got = split_handshake(self._hello)
        if got is None:
            return b""
        hello, rest = got
        version = negotiate_version(hello, self.server.server_version)
        if version is None:
            log.warning("ib sim: refusing client versions %d..%d", hello.min_version, hello.max_version)
            self.close()
            return b""
        self.version = version  # every later message goes out in this version's layout
        log.info("ib sim: client versions %d..%d, answered %d", hello.min_version, hello.max_version, version)
        now = self.server.clock.now().astimezone(NEW_YORK)
        self.out.append(encode_handshake_reply(version, ib_conn_time(now)))
        self._splitter = FrameSplitter()
        self._hello = b""
        self.flush()
        return rest

    def _count_rate(self) -> None:
        now = clock.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count, self._window_flagged = now, 0, False
        self._window_count += 1
        limit = self.server.max_msgs_per_s
        if self._window_count > limit and not self._window_flagged:
            self._window_flagged = True
            self.rate_violations += 1
            self.error(-1, 100, f"Max rate of messages per second has been exceeded:max={limit} "
                                f"rec={self._window_count} ({self.rate_violations})")
            if self.rate_violations >= MAX_RATE_VIOLATIONS:
                log.warning("ib sim: client %s exceeded the message rate %d times; disconnecting",
                            self.client_id, self.rate_violations)
                self.close()

    def _dispatch(self, fields: list[str]) -> None:
        request = dec.parse_request(fields, self.version)
        if self.client_id is None:
            if isinstance(request, dec.StartApi):
                self._start_api(request)
            else:
                log.info("ib sim: ignoring %s before startApi", fields[:1])
            return
        if isinstance(request, dec.Unknown):
            log.info("ib sim: client %s sent unknown message %s", self.client_id, request.fields[:3])
            return
        if isinstance(request, dec.Malformed):
            log.warning("ib sim: client %s sent malformed message %d: %s", self.client_id, request.msg_id,
                        request.reason)
            self.error(-1, 321, f"Error validating request:-'{request.msg_id}' : cause - {request.reason}")
            return
        self.server.note_id(self.client_id, request)
        handler = HANDLERS.get(type(request))
        if handler is None and isinstance(request, dec.NoArgs | dec.Cancel):
            handler = BY_MSG_ID.get(request.msg_id)
        if handler is None:
            log.info("ib sim: client %s: %s is not simulated; ignored", self.client_id, type(request).__name__)
            return
        handler(self, request)

    def _start_api(self, req: dec.StartApi) -> None:
        if req.client_id in self.server.client_sessions:
            log.warning("ib sim: clientId %d is already connected; refusing the new connection", req.client_id)
            self.error(-1, 326, CLIENT_ID_IN_USE)
            self.close()
            return
        self.client_id = req.client_id
        self.server.session_started(self)
        self.send("managedAccounts", enc.managed_accounts(self.server.accounts))
        self.send("nextValidId", enc.next_valid_id(self.server.next_id(req.client_id)))
        for code, text in FARM_OK:
            self.error(-1, code, text)
