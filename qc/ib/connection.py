"""The one ib_async connection manager: connect, notice loss, reconnect with backoff, sort IB's errors.

Subsystems subclass :class:`IBConnection` and say what to do once connected (ingestion qualifies
and subscribes; execution will reconcile orders): ib_async wipes its own state on disconnect, so
whatever must survive a reconnect is the subclass's to redo in :meth:`on_connected`.

Reconnect triggers: the socket closing when we did not close it (``disconnectedEvent`` fires twice;
the ``_up`` flag makes the second and our own disconnects no-ops), error 1100/100/1300, and
whatever a subclass decides through :meth:`lose`. Backoff between attempts is
:func:`qc.core.backoff.backoff_s` (capped, jittered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ib_async import IB, Contract, StartupFetchNONE

from qc.core.backoff import backoff_s
from qc.core.errors import QcError
from qc.ib import errors as ib_errors
from qc.ib.errors import Action

log = logging.getLogger(__name__)

CONNECT_ERRORS = (OSError, TimeoutError)


@dataclass(frozen=True)
class ConnectionOptions:
    """Where the gateway is and how hard to try (tests shorten the backoffs)."""

    host: str
    port: int
    client_id: int
    readonly: bool = True
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0


class IBConnection:
    """Keeps one ib_async ``IB`` connected until told to stop; subclasses react to its events."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.connection_options = options
        self.ib = IB()
        self.ib.RequestTimeout = options.request_timeout_s
        self.farms = ib_errors.FarmState()
        self.reconnects = 0
        self.errors = 0
        self.ready = asyncio.Event()
        self.on_change: Callable[[], None] = lambda: None  # connection state changed: publish it now
        self._up = False
        self._lost = asyncio.Event()
        self.ib.errorEvent += self.guard(self._on_error)
        self.ib.disconnectedEvent += self.guard(self._on_disconnected)

    @property
    def up(self) -> bool:
        return self._up

    # --- what a subclass says ------------------------------------------------------------------

    async def on_connected(self, first: bool) -> None:
        """Qualify, subscribe, reconcile: whatever this subsystem needs on a fresh socket."""

    def on_state(self, connected: bool) -> None:
        """The connection went up or down (called before ``on_change``)."""

    def on_farm(self, ok: bool) -> None:
        """Every data farm fine (True) or one broken (False)."""

    def on_ib_error(self, action: Action, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        """An error or notice the connection itself does not act on (resubscribe, depth reset, …)."""
        if action is Action.KEEP:
            log.info("ib %d: %s", code, message)
        elif action is not Action.NO_SECURITY and code < 2100:
            log.warning("ib %d (req %d): %s", code, req_id, message)

    # --- the connection loop -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; a QcError from the first ``on_connected`` ends the run."""
        o = self.connection_options
        attempt, first = 0, True
        while not stop.is_set():
            if attempt and await wait_any(stop, timeout=backoff_s(attempt, o.backoff_base_s, o.backoff_cap_s)):
                break
            try:
                await self._connect(first)
            except QcError:
                self.disconnect()
                raise
            except Exception as exc:  # a socket error, a timeout or an ib_async surprise: all retried
                attempt += 1
                if not isinstance(exc, CONNECT_ERRORS):
                    self.errors += 1
                log.warning("ib %s:%d: connect failed (%s: %s); attempt %d", o.host, o.port,
                            type(exc).__name__, exc, attempt)
                self.disconnect()
                continue
            first, attempt = False, 1
            self.ready.set()
            await wait_any(stop, self._lost)
            self.disconnect()
        self.disconnect()

    async def _connect(self, first: bool) -> None:
        self._lost.clear()
        await self._open()
        await self.on_connected(first)
        self._up = True
        self.farms = ib_errors.FarmState()
        self.on_farm(True)
        self.on_state(True)
        self.on_change()

    async def _open(self) -> None:
        """connectAsync, failing at once when the gateway closes the socket mid-handshake.

        ib_async reports that close on ``client.apiError`` but keeps waiting for the API to start
        until its timeout; a gateway refusing connections would cost a full timeout per attempt.
        """
        o = self.connection_options
        failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_api_error(msg: object) -> None:
            if not failed.done():
                failed.set_result(str(msg))

        self.ib.client.apiError += on_api_error
        connect = asyncio.ensure_future(self.ib.connectAsync(
            o.host, o.port, clientId=o.client_id, timeout=o.connect_timeout_s, readonly=o.readonly,
            fetchFields=StartupFetchNONE))
        try:
            await asyncio.wait([connect, failed], return_when=asyncio.FIRST_COMPLETED)
            if not connect.done():
                connect.cancel()
                with contextlib.suppress(asyncio.CancelledError, *CONNECT_ERRORS):
                    await connect
                raise ConnectionError(failed.result())
            connect.result()
        finally:
            self.ib.client.apiError -= on_api_error
            failed.cancel()

    def disconnect(self) -> None:
        """An intentional disconnect: the disconnectedEvent it causes is ignored (``_up`` is False)."""
        self._up = False
        self.on_state(False)
        if self.ib.isConnected() or self.ib.client.connState != self.ib.client.DISCONNECTED:
            self.ib.disconnect()

    def lose(self, why: str) -> None:
        """The connection is no longer to be trusted: drop it and reconnect (once per loss)."""
        if not self._up:
            return
        log.warning("ib: %s; reconnecting", why)
        self._up = False
        self.on_state(False)
        self.reconnects += 1
        self._lost.set()
        self.on_change()

    # --- ib_async events -----------------------------------------------------------------------

    def guard(self, fn: Any) -> Any:
        """Handlers log and count their failures; one bad message never stops the connection."""
        def handler(*args: Any) -> None:
            try:
                fn(*args)
            except Exception:
                self.errors += 1
                log.exception("ib: handling %s failed; continuing", fn.__name__)
        return handler

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        action = ib_errors.classify(code)
        if action is Action.RECONNECT:
            self.lose(f"IB error {code} ({message})")
        elif action in (Action.FARM_DOWN, Action.FARM_UP):
            was_ok = not self.farms.broken
            ok = self.farms.note(code)
            level = logging.WARNING if action is Action.FARM_DOWN else logging.INFO if not was_ok else logging.DEBUG
            log.log(level, "ib %d: %s; feeds %s", code, message, "live" if ok else "stale")
            self.on_farm(ok)
        else:
            self.on_ib_error(action, req_id, code, message, contract)

    def _on_disconnected(self) -> None:
        self.lose("socket closed by the gateway")


async def wait_any(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until one event is set or ``timeout`` passes; True when the first event (stop) is set."""
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return events[0].is_set()
