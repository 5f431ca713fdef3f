"""The 1-second cycle of `qc stream`: heartbeat, connection flag, staleness, latency, silent feeds.

Runs on the event loop beside the IB handlers. Staleness is judged in market time (``qc.core.clock``:
the simulator's when `qc sim` published its anchor) during the regular session only; the
``monitoring:data:stale`` value is the *wall-clock* time of the feed's last data, as `qc status`
expects. Heartbeats are wall time (as ``qc.runtime.worker`` writes them). Redis failures go through the
writer's backoff; any other failure is logged, counted in ``monitoring:errors`` and survived.
"""

from __future__ import annotations

import logging

from qc.core import clock as clocks
from qc.core import keys
from qc.core.clock import Clock
from qc.core.codec import Absent
from qc.core.keys import Key
from qc.ingest.cycle.ib_feed import IBFeed
from qc.ingest.cycle.stream_writer import StreamWriter
from qc.ingest.staleness import FEEDS
from qc.ingest.state import StreamState
from qc.runtime.codec import IbkrConnected, IngestLatency, IngestRecoveries, StaleFeeds, WorkerErrors
from qc.runtime.redis_batch import WriteBatch
from qc.runtime.store import REDIS_ERRORS, Store
from qc.runtime.worker import SystemdNotifier, registry_entry, stage_heartbeat

log = logging.getLogger(__name__)

REWRITE_EVERY_S = 10.0  # whole hashes and every TTL again: heals a key deleted or evicted behind our back


class Monitor:
    """One cycle per second; ``register`` is False for a ``--once`` run (not a long-running worker)."""

    def __init__(self, name: str, store: Store, state: StreamState, feed: IBFeed, writer: StreamWriter,
                 clock: Clock, notifier: SystemdNotifier, register: bool = True) -> None:
        self.name, self.store, self.state, self.feed, self.writer = name, store, state, feed, writer
        self.clock, self.notifier, self.register = clock, notifier, register
        self.cycles = 0
        self._errors_reported = 0
        self._stale_written: set[str] = set(self._all_fields())
        self._rewritten_at = -1e18
        self.started = clocks.wall_epoch()

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
        freshness = self.state.freshness  # act on silence only once a new connection had time to speak
        self.feed.on_stale({k: v for k, v in stale.items() if not freshness.settling(k[1], mono, market)}, mono)
        self.cycles += 1
        if not self.writer.available(mono):
            return
        if mono - self._rewritten_at >= REWRITE_EVERY_S:
            self.writer.rewrite_all()
            self._rewritten_at = mono
        wall = clocks.wall_epoch()
        fields = StaleFeeds({StaleFeeds.field(s, f): wall - (mono - last) for (s, f), last in stale.items()}).to_redis()
        new_errors = self.feed.errors - self._errors_reported
        try:
            if not self.writer.flush(extra=lambda pipe: self._stage(pipe, fields, new_errors)):
                return
        except REDIS_ERRORS as exc:
            self.writer.failed(exc)
            return
        self._errors_reported += new_errors
        self._stale_written = set(fields)

    def _stage(self, pipe: WriteBatch, fields: dict[str, str], new_errors: int) -> None:
        """The cycle's monitoring writes and heartbeat, sent in the same round trip as the data."""
        stale_key = keys.data_stale()
        _hset(pipe, stale_key, fields)
        fresh = sorted(self._stale_written - fields.keys())
        if fresh:
            pipe.hdel(stale_key.name, *fresh)
        connected = keys.ibkr_connected()
        pipe.set(connected.name, IbkrConnected(self.state.connected).to_redis(), ex=connected.ttl_s)
        latency_key = keys.ingest_latency()
        latency = IngestLatency.from_summary(self.writer.latency.summary(), key=latency_key.name)
        if isinstance(latency, Absent):  # never store a NaN or a negative latency as data
            log.warning("%s: latency not published: %s", self.name, latency)
        else:
            _hset(pipe, latency_key, latency.to_redis())
        _hset(pipe, keys.ingest_latency_histogram(), self.writer.latency.histogram().to_redis())
        recoveries = IngestRecoveries(self.feed.reconnects, {
            StaleFeeds.field(s, f): n for (s, f), n in self.feed.resubscriptions.items()})
        _hset(pipe, keys.ingest_recoveries(), recoveries.to_redis())
        if new_errors:
            errors = keys.worker_errors()
            for module, n in WorkerErrors.counted(self.name, new_errors).increments.items():
                pipe.hincrby(errors.name, module, n)
            _expire(pipe, errors)
        if self.register:  # a --once snapshot is no live worker: it beats nobody's heartbeat
            stage_heartbeat(pipe, self.name, registry_entry(self.started, self.cycles))


def _hset(pipe: WriteBatch, key: Key, fields: dict[str, str]) -> None:
    if fields:
        pipe.hset(key.name, mapping=fields)
        _expire(pipe, key)


def _expire(pipe: WriteBatch, key: Key) -> None:
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)
