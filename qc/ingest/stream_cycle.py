"""The 1-second cycle of `qc stream`: heartbeat, connection flag, staleness, latency, silent feeds.

Runs on the event loop beside the IB handlers. Staleness is judged in market time (``qc.clock``:
the simulator's when `qc sim` published its anchor) during the regular session only; the
``monitoring:data:stale`` value is the *wall-clock* time of the feed's last data, as `qc status`
expects. Heartbeats are wall time (as ``qc.worker`` writes them). Redis failures go through the
writer's backoff; any other failure is logged, counted in ``monitoring:errors`` and survived.
"""

from __future__ import annotations

import logging
from typing import Any

from qc import clock as clocks
from qc import keys
from qc.clock import Clock
from qc.ingest.ib_feed import IBFeed
from qc.ingest.staleness import FEEDS
from qc.ingest.stream_state import StreamState
from qc.ingest.stream_writer import StreamWriter
from qc.store import REDIS_ERRORS, Store
from qc.worker import SystemdNotifier, write_heartbeat

log = logging.getLogger(__name__)


class Monitor:
    """One cycle per second; ``register`` is False for a ``--once`` run (not a long-running worker)."""

    def __init__(self, name: str, store: Store, state: StreamState, feed: IBFeed, writer: StreamWriter,
                 clock: Clock, notifier: SystemdNotifier, register: bool = True) -> None:
        self.name, self.store, self.state, self.feed, self.writer = name, store, state, feed, writer
        self.clock, self.notifier, self.register = clock, notifier, register
        self.cycles = 0
        self._errors_reported = 0
        self._stale_written: set[str] = set(self._all_fields())

    def _all_fields(self) -> list[str]:
        return [f"{s}:{f}" for s in self.state.symbols for f in FEEDS]

    def tick(self) -> None:
        """One cycle: never raises (a failure is logged and counted)."""
        self.notifier.notify("WATCHDOG=1")
        try:
            self._cycle()
        except Exception:
            self.feed.errors += 1
            log.exception("%s: cycle failed; continuing", self.name)

    def _cycle(self) -> None:
        mono, market = clocks.monotonic(), self.clock.epoch()
        self.state.close_minutes(market, mono)
        in_session = clocks.is_market_open(self.clock.now())
        feeds_up = self.state.connected and self.state.farm_ok
        stale = self.state.freshness.stale(self.state.symbols, mono, market, feeds_up=feeds_up,
                                           in_session=in_session)
        self.feed.on_stale(stale, mono)
        self.cycles += 1
        if not self.writer.available(mono):
            return
        try:
            self.writer.rewrite_all()
            if self.writer.flush():
                self._publish(stale, mono)
        except REDIS_ERRORS as exc:
            self.writer.failed(exc)

    def _publish(self, stale: dict[tuple[str, str], float], mono: float) -> None:
        wall = clocks.wall_epoch()
        fields = {f"{s}:{f}": f"{wall - (mono - last):.3f}" for (s, f), last in stale.items()}
        pipe = self.store.client.pipeline(transaction=False)
        stale_key = keys.data_stale()
        if fields:
            pipe.hset(stale_key.name, mapping=fields)
            pipe.expire(stale_key.name, stale_key.ttl_s)
        fresh = sorted(self._stale_written - fields.keys())
        if fresh:
            pipe.hdel(stale_key.name, *fresh)
        connected = keys.ibkr_connected()
        pipe.set(connected.name, "1" if self.state.connected else "0", ex=connected.ttl_s)
        latency = self.writer.latency.summary()
        _hset(pipe, keys.ingest_latency().name, {k: str(v) for k, v in latency.items()},
              keys.ingest_latency().ttl_s)
        recoveries = {f"{s}:{f}": str(n) for (s, f), n in self.feed.resubscriptions.items()}
        recoveries["reconnects"] = str(self.feed.reconnects)
        _hset(pipe, keys.ingest_recoveries().name, recoveries, keys.ingest_recoveries().ttl_s)
        new_errors = self.feed.errors - self._errors_reported
        if new_errors:
            pipe.hincrby(keys.worker_errors().name, self.name, new_errors)
            pipe.expire(keys.worker_errors().name, keys.worker_errors().ttl_s)
        pipe.execute()
        self._errors_reported += new_errors
        self._stale_written = set(fields)
        write_heartbeat(self.store, self.name, self.cycles, self.register)
        self.writer.recovered()


def _hset(pipe: Any, name: str, fields: dict[str, str], ttl_s: int | None) -> None:
    if fields:
        pipe.hset(name, mapping=fields)
        if ttl_s is not None:
            pipe.expire(name, ttl_s)
