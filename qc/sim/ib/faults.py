"""Fault switches of the simulated gateway (ref ib-api-protocol.md §6 "Connectivity", §12.5).

A mixin of ``IBGatewayServer``: each switch returns at once and takes effect on the server's loop.
Notices use IB's codes and texts: 2103/2105 farm broken, 2104/2106 farm OK, 1100 connectivity
lost, 1101 restored with data lost (every market-data subscription is dropped server-side; the
client must resubscribe), 1102 restored with data maintained (depth is re-sent after error 317).

``restart_gateway`` is IB Gateway's (auto-)restart as LEAN-IB#242 met it: every socket drops,
connections are refused while it is down, and it comes back having forgotten which order ids were
used: a client's nextValidId is 1 + its highest still-unfinished order id (1 if none), so ids of
its filled, cancelled and rejected orders are handed out again and a reissued id is accepted as a
new order (new permId). Working orders keep their ids. The old and the new order then share an
orderId in that day's executions and completed orders, told apart by permId and orderRef.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from qc.core import clock

if TYPE_CHECKING:
    from qc.sim.broker.engine import SimBroker
    from qc.sim.ib.feeds import Feeds
    from qc.sim.ib.session import IBSession

log = logging.getLogger(__name__)

FARM_BROKEN = ((2103, "Market data farm connection is broken:usfarm"),
               (2105, "HMDS data farm connection is broken:ushmds"))
FARM_OK = ((2104, "Market data farm connection is OK:usfarm"), (2106, "HMDS data farm connection is OK:ushmds"))
LOST = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."
RESTORED_KEPT = "Connectivity between IB and Trader Workstation has been restored - data maintained."


class FaultSwitches(abc.ABC):
    """drop_all, refuse_for, farm_flap, silence_feed, connectivity_lost, delay_end_markers, order faults."""

    feeds: Feeds
    broker: SimBroker
    sent: Counter[str]
    _used_ids: dict[int, int]
    end_marker_delay: tuple[float | None, frozenset[str] | None] | None
    _all: set[IBSession]
    _refuse_until: float
    _loop: asyncio.AbstractEventLoop | None

    @abc.abstractmethod
    def broadcast(self, notices: Iterable[tuple[int, str]]) -> None:
        """Send system notices (error messages with reqId −1) to every session."""

    @abc.abstractmethod
    def flush_all(self) -> None:
        """Write every session's pending output now."""

    def _post(self, fn: Callable[[], None]) -> None:
        if self._loop is None:
            raise RuntimeError("IBGatewayServer is not started")
        self._loop.call_soon_threadsafe(fn)

    def _after(self, seconds: float, fn: Callable[[], None]) -> None:
        assert self._loop is not None

        def guarded() -> None:
            try:
                fn()
            except Exception:
                log.exception("ib sim: scheduled fault action failed")
        self._loop.call_later(seconds, guarded)

    def drop_all(self) -> None:
        """Close every socket now."""
        def apply() -> None:
            for s in list(self._all):
                s.close(abort=True)
        self._post(apply)

    def refuse_for(self, seconds: float) -> None:
        """Accept-then-close every new connection for ``seconds`` real seconds."""
        def apply() -> None:
            self._refuse_until = clock.monotonic() + seconds
        self._post(apply)

    def restart_gateway(self, down_s: float) -> None:
        """Drop every socket, refuse connections for ``down_s`` real seconds, roll order ids back."""
        def apply() -> None:
            self._refuse_until = clock.monotonic() + down_s
            for s in list(self._all):
                s.close(abort=True)
            freed = self.broker.forget_finished_ids()
            self._used_ids.clear()
            self.sent["restarts"] += 1
            log.warning("ib sim: gateway restart: sockets dropped, down for %.1f s, %d finished order ids "
                        "free to be reissued", down_s, freed)
        self._post(apply)

    def farm_flap(self, seconds: float) -> None:
        """2103/2105 now, market data paused, 2104/2106 and a depth re-sync after ``seconds``."""
        def restore() -> None:
            self.broadcast(FARM_OK)
            self.feeds.resync_depth()
            self.flush_all()

        def apply() -> None:
            self.broadcast(FARM_BROKEN)
            self.feeds.pause(seconds)
            self._after(seconds, restore)
        self._post(apply)

    def silence_feed(self, symbol: str, feed: str, seconds: float | None) -> None:
        """Stop one feed kind (depth, bars, ticks, quotes) of ``symbol``; None: until cleared with 0."""
        self.feeds.silence(symbol, feed, 0.0)  # validates the feed name in the caller's thread
        self._post(lambda: self.feeds.silence(symbol, feed, seconds))

    def connectivity_lost(self, seconds: float, data_lost: bool) -> None:
        """1100 now; after ``seconds`` 1101 (every subscription dropped) or 1102 (kept, depth re-synced)."""
        def restore() -> None:
            if data_lost:
                n = self.feeds.clear()
                log.info("ib sim: connectivity restored, %d market-data subscriptions lost", n)
                self.broadcast([(1101, RESTORED_LOST)])
            else:
                self.broadcast([(1102, RESTORED_KEPT)])
                self.feeds.resync_depth()
                self.flush_all()

        def apply() -> None:
            self.broadcast([(1100, LOST)])
            self.feeds.pause(seconds)
            self._after(seconds, restore)
        self._post(apply)

    def delay_end_markers(self, seconds: float | None, kinds: set[str] | None = None) -> None:
        """For sessions connecting from now on: delay (None: withhold) the startup-sync end markers
        named in ``kinds`` (positionEnd, openOrderEnd, completedOrdersEnd, execDetailsEnd,
        accountDownloadEnd, accountUpdateMultiEnd, accountSummaryEnd; None: all). 0 clears."""
        value = None if seconds == 0 else (seconds, None if kinds is None else frozenset(kinds))

        def apply() -> None:
            self.end_marker_delay = value
        self._post(apply)

    def reject_next_order(self, reason: str) -> None:
        self._post(lambda: self.broker.reject_next(reason))

    def fill_next_partially(self, fraction: float) -> None:
        self._post(lambda: self.broker.fill_next_partially(fraction))
