"""`qc stream`'s asyncio main: the IB feed task, coalesced flushes, the 1-s monitor, signals, --once.

First SIGTERM/SIGINT: stop subscribing, write what is pending, leave the worker registry, exit 0;
a second exits at once (``loop.add_signal_handler`` + an ``asyncio.Event``, as arq does).
``--once``: connect, wait until every symbol has a book and a quote (and a finished minute if one
closes meanwhile), write them, exit 0; a cron run writes no heartbeat and joins no registry, and the
command refuses to run beside a live `qc stream` (``qc.runtime.liveness``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass, field

from qc.core import clock as clocks
from qc.core import keys
from qc.core.clock import Clock
from qc.core.errors import QcError, StoreUnavailable
from qc.ingest.cycle.ib_feed import FeedOptions, IBFeed
from qc.ingest.cycle.stream_monitor import Monitor
from qc.ingest.cycle.stream_writer import FLUSH_PART, StreamWriter
from qc.ingest.staleness import FEEDS
from qc.ingest.state import StreamState
from qc.runtime.codec import StaleFeeds
from qc.runtime.health import INGESTION_MODULE
from qc.runtime.store import REDIS_ERRORS, Store
from qc.runtime.worker import SystemdNotifier, deregister

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    """What the command line decided."""

    feed: FeedOptions
    symbols: tuple[str, ...]
    once: bool = False
    once_wait_s: float = 30.0
    cycle_s: float = 1.0
    redis_backoff_cap_s: float = 30.0
    notifier: SystemdNotifier = field(default_factory=lambda: SystemdNotifier(None))


class Flusher:
    """At most one Redis flush per event-loop pass, however many messages the pass decoded."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writer: StreamWriter | None = None
        self.feed: IBFeed | None = None
        self._scheduled = False

    def request(self) -> None:
        if not self._scheduled and not self.loop.is_closed():
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def finish(self) -> None:
        """Finish now a flush that ``StreamWriter.send_part`` began during this read's delivery: nothing else
        (the monitor's minute closing, a resubscription) may touch the state while parts of it are in flight."""
        if self.writer is not None and self.writer.sending:
            self._flush()

    def _flush(self) -> None:
        self._scheduled = False
        if self.writer is None:
            return
        try:
            self.writer.flush()
        except Exception:
            if self.feed is not None:
                self.feed.errors += 1
            log.exception("stream: flush failed; continuing")


def run(store: Store, clock: Clock, options: StreamOptions) -> int:
    """Run until stopped (or one snapshot with ``once``); the exit code."""
    quiet_gc()
    return asyncio.run(_main(store, clock, options))


def quiet_gc() -> None:
    """Keep the cyclic collector off the hot path: freeze what startup allocated, collect rarely.

    The hot path allocates short-lived, acyclic objects (freed by reference counting), yet every
    700 allocations CPython's default thresholds start a collection, and the older generations'
    passes cost milliseconds. Measured with `benchmarks.run stream` (3 × 2,000 depth/s): max
    arrival-to-Redis latency 3.0 → 2.2 ms, p99 1.9 → 1.7 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def _main(store: Store, clock: Clock, options: StreamOptions) -> int:
    stop = asyncio.Event()
    _install_signals(stop)
    flusher = Flusher(asyncio.get_running_loop())
    state = StreamState(options.symbols, clock, options.feed.rows, on_dirty=flusher.request)
    writer = StreamWriter(store, state, options.redis_backoff_cap_s)
    feed = IBFeed(state, options.feed)
    flusher.writer, flusher.feed = writer, feed
    feed.on_part, feed.on_read, feed.part_size = writer.send_part, flusher.finish, FLUSH_PART
    monitor = Monitor(INGESTION_MODULE, store, state, feed, writer, clock, options.notifier,
                      register=not options.once)

    def publish_now() -> None:  # a (dis)connect reaches Redis at once, not at the next cycle
        if not flusher.loop.is_closed():
            flusher.loop.call_soon(monitor.tick)

    feed.on_change = publish_now
    task = asyncio.create_task(feed.run(stop), name="ib-feed")
    options.notifier.notify("READY=1")
    log.debug("stream: %s from %s:%d", ",".join(options.symbols), options.feed.host, options.feed.port)
    try:
        if options.once:
            await _once(state, feed, task, options.once_wait_s)
            _finish_once(store, monitor, writer)
            return 0
        await _serve(task, stop, monitor, options.cycle_s)
        return 0
    finally:
        options.notifier.notify("STOPPING=1")
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, QcError, TimeoutError):
            await asyncio.wait_for(task, timeout=10)  # its error, if any, was raised above
        if not options.once:
            _leave(store, state, monitor, writer)
        log.log(logging.INFO if feed.ready.is_set() else logging.DEBUG,
                "stream stopped after %d cycles (%d reconnects, %d errors)", monitor.cycles, feed.reconnects,
                feed.errors)


async def _serve(task: asyncio.Task[None], stop: asyncio.Event, monitor: Monitor, cycle_s: float) -> None:
    """The 1-s monitor cycle until stopped; the feed task's failure (an unknown symbol) is raised here."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            monitor.tick()
            await asyncio.wait([task, stopped], timeout=cycle_s, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
    finally:
        stopped.cancel()


async def _once(state: StreamState, feed: IBFeed, task: asyncio.Task[None], wait_s: float) -> None:
    """Wait until every symbol has a book and a quote; fail with the missing feeds after ``wait_s``."""
    deadline = clocks.monotonic() + wait_s
    while clocks.monotonic() < deadline:
        if task.done():
            task.result()
        missing = [f"{s}:{f}" for s, st in state.by_symbol.items()
                   for f, has in (("depth", st.book.level_count() > 0), ("quotes", bool(st.quote))) if not has]
        if feed.ready.is_set() and not missing:
            return
        await asyncio.sleep(0.05)
    if not feed.ready.is_set():
        raise QcError(f"could not connect to IB at {feed.options.host}:{feed.options.port} within {wait_s:g} s",
                      "is the gateway (or `qc sim`) running? check QC_IB_HOST/QC_IB_PORT")
    raise QcError(f"no data within {wait_s:g} s for {', '.join(missing)}", "is the market data farm up?")


def _finish_once(store: Store, monitor: Monitor, writer: StreamWriter) -> None:
    """Write the snapshot and the heartbeat now; a snapshot that did not reach Redis is a failure."""
    writer.retry_at = 0.0
    monitor.tick()  # flushes, then publishes heartbeat and monitoring keys
    try:
        if writer.failures:
            raise StoreUnavailable(f"Redis unreachable at {store.address}; the snapshot was not written",
                                   "is it running? check QC_REDIS_URL")
        store.delete(keys.ibkr_connected())  # nothing stays connected after a snapshot
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}", "check QC_REDIS_URL") from None


def _leave(store: Store, state: StreamState, monitor: Monitor, writer: StreamWriter) -> None:
    """A clean stop: write what is pending, then withdraw the connection flag and our stale marks."""
    try:
        writer.retry_at = 0.0
        writer.flush()
        store.delete(keys.ibkr_connected())
        store.hdel(keys.data_stale(), *[StaleFeeds.field(s, f) for s in state.symbols for f in FEEDS])
    except REDIS_ERRORS as exc:
        log.warning("stream: final write skipped, redis unreachable (%s)", exc)
    deregister(store, monitor.name)


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def handle(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("second %s: exiting now", name)
            raise SystemExit(128 + signum)
        log.info("%s: finishing, then exiting (again to exit now)", name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)
