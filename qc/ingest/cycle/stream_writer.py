"""`qc stream`'s Redis side: one pipeline per flush with what changed, latency per feed, backoff.

Coalescing: the IB handlers only mark items dirty and ask for a flush with ``loop.call_soon``, so
every burst read from the socket in one event-loop pass becomes at most one book write per symbol;
a hash write sends only the fields that changed (a failed write, and the monitor every 10 s, force
whole hashes and every TTL again, in case Redis came back empty or a key was deleted behind our back),
and venue shares follow the book at most every ``VENUES_EVERY_S``, at most ``VENUES_PER_FLUSH`` symbols'
shares per flush, the longest waiting first (at 100 symbols all came due in the same flush, four
times a second: 4 ms of encoding that every book of that flush waited behind). A flush is one
``qc.runtime.redis_batch.Batch`` (one held connection, no redis-py pipeline machinery: half the round trip),
sent in parts of ``FLUSH_PART`` symbols, each part's replies read once the next part is sent (``_write``).
Each written item reports (write done − arrival of its first unwritten message), the worst message
it carries. Redis down: the flush fails, nothing is dropped but what the bounded buffers drop
(books and quotes are current state, prints and minutes are capped deques), and no Redis call is
tried again before ``backoff_s`` has passed, so the IB side keeps reading at full speed.

One bad value never stops a flush: each item (a symbol's book, quote, auction, venue shares, each
minute bar) is encoded on its own, and one that fails to encode (a NaN refused by the strict JSON
encoders) is dropped, counted in ``monitoring:rejects`` as ``{surface}:unencodable`` and logged at
most once a minute per item kind; every other symbol, the heartbeat and the monitoring keys go out.
IB values refused at the boundary (``StreamState.rejects``) are counted in the same round trip.

Ownership of the book (and venue shares) hash: its field names depend on what this process holds,
so whenever the hash's content is not known to be exactly what this process last wrote (its first
write after start, after a Redis failure, after the monitor's ``rewrite_all``, after the book was
empty), the write is a full replacement, DEL + HSET + EXPIRE in one MULTI/EXEC: a dead process's
deeper levels vanish at our first write and the key never exists without its TTL. Otherwise only the
changed fields go, without EXPIRE: the replacement set the TTL and the monitor's ``rewrite_all``
renews it every 10 s (TTLs are 60 s and more), so a key deleted behind our back is at most 10 s
without one (an EXPIRE with every book write was a third of the flush's commands at 100 symbols,
~22,000 a second). The MULTI/EXEC rides in the flush's own batch (on a Cluster, where
the batch is redis-py's cluster pipeline, it is a round trip of its own): at 100 symbols the monitor's
rewrite every 10 s is 200 replacements, which as round trips of their own held the loop ~15 ms.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from itertools import accumulate, islice
from typing import TypeVar

import numpy as np

from qc.analytics.imbalance import venue_attribution
from qc.core import clock, keys
from qc.core.backoff import backoff_s
from qc.core.keys import Key
from qc.ingest.bars import merge_history
from qc.ingest.book import ASK, BID, DepthBook
from qc.ingest.codec import VenueShares, auction_fields, decode_bars, quote_fields
from qc.ingest.state import Reject, StreamState, SymbolState
from qc.runtime.codec import LATENCY_BOUNDS_MS, FeedHistogram, InputRejects, LatencyHistogram
from qc.runtime.redis_batch import Batch, WriteBatch, batcher_for
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

TRADES_MAXLEN = 100_000
BARS_KEEP = 2 * 390  # two regular sessions of minutes: the backfill's "2 D", the warm start's realised vols
LATENCY_WINDOW = 4096
VENUES_EVERY_S = 0.25  # venue shares are a slow aggregate: refreshed at most 4x/s, not per book write
VENUES_PER_FLUSH = 8  # and a few per flush: 100 symbols' shares came due together, a 4-ms flush 4x a second
FLUSH_PART = 16  # symbols per send: Redis runs one part while the next is queued, and the first are done sooner
FEED_OF_ITEM = {"book": "depth", "quote": "quotes", "trades": "trades", "bars": "bars", "auction": "auction"}
HANDED = {feed: f"{feed}_handed" for feed in FEED_OF_ITEM.values()}
SURFACE_OF_ITEM = {"book": "ib.depth", "venues": "ib.depth", "quote": "ib.tick", "auction": "ib.tick",
                   "bars": "ib.bar"}
ENCODE_ERRORS = (ValueError, TypeError, ArithmeticError)  # what a bad value raises while being encoded
LOG_EVERY_S = 60.0
UNATTRIBUTED = "UNATTRIBUTED"
T = TypeVar("T")


class QuietLog:
    """At most one warning per topic every ``every_s``, with how many occurrences it stands for: a value
    that fails on every message cannot flood the log, and none goes unmentioned."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def warn(self, topic: str, n: int, text: str) -> bool:
        """Log ``text`` for ``n`` more occurrences of ``topic`` unless it was logged within ``every_s``."""
        self._held[topic] += n
        now = clock.monotonic()
        if now - self._last.get(topic, -math.inf) < self.every_s:
            return False
        self._last[topic] = now
        log.warning("%s (%d since the last report; next at most in %.0f s)", text, self._held.pop(topic),
                    self.every_s)
        return True


class LatencyWindow:
    """The last ``size`` samples in a preallocated ring: adding one is a store, not an allocation (a list's:
    a third of a numpy array's item store; percentiles take an array once a second)."""

    def __init__(self, size: int = LATENCY_WINDOW) -> None:
        self.ring = [0.0] * size
        self.size = size
        self.n = 0

    def add(self, ms: float) -> None:
        self.ring[self.n % self.size] = ms
        self.n += 1

    def values(self) -> np.ndarray:
        return np.asarray(self.ring[: min(self.n, self.size)])


class LatencyStats:
    """Arrival-to-write latencies per feed, in milliseconds: the last ``LATENCY_WINDOW`` of them (percentiles
    of the recent past) and every one since the start counted by bucket (``LatencyHistogram``: percentiles
    over any window, and Prometheus's histogram).

    ``{feed}``: from the start of the socket read that carried the first unwritten message;
    ``{feed}_handed``: from ib_async handing it over (after decoding the whole read).
    """

    def __init__(self, started: float = 0.0) -> None:
        self.started = started
        self.samples: dict[str, LatencyWindow] = {}
        self.buckets: dict[str, list[int]] = {}  # feed -> writes per bucket (not cumulative), +Inf last
        self.sums: dict[str, float] = {}
        self.writes = 0

    def add(self, feed: str, ms: float) -> None:
        window = self.samples.get(feed)
        if window is None:
            window = self.samples[feed] = LatencyWindow()
            self.buckets[feed] = [0] * (len(LATENCY_BOUNDS_MS) + 1)
            self.sums[feed] = 0.0
        window.add(ms)
        self.buckets[feed][bisect_left(LATENCY_BOUNDS_MS, ms)] += 1
        self.sums[feed] += ms

    def histogram(self) -> LatencyHistogram:
        return LatencyHistogram(self.started, {feed: FeedHistogram(tuple(accumulate(counts)), self.sums[feed])
                                               for feed, counts in self.buckets.items()})

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"writes": float(self.writes)}
        for feed, window in self.samples.items():
            arr = window.values()
            if arr.size:
                p50, p99, top = nearest_rank(arr, (0.5, 0.99, 1.0))
                out |= {f"{feed}_p50_ms": round(p50, 4), f"{feed}_p99_ms": round(p99, 4),
                        f"{feed}_max_ms": round(top, 4), f"{feed}_n": float(arr.size)}
        return out


def nearest_rank(values: np.ndarray, quantiles: tuple[float, ...]) -> list[float]:
    """Nearest-rank percentiles (the smallest sample with at least q·n samples at or below it).

    One ``np.partition`` instead of ``np.percentile``: the monitor runs on the event loop, and
    np.percentile's machinery cost ~165 µs per feed there, this ~20 µs.
    """
    n = values.size
    ranks = [min(n - 1, max(0, math.ceil(q * n) - 1)) for q in quantiles]
    part = np.partition(values, sorted(set(ranks)))
    return [float(part[r]) for r in ranks]


class StreamWriter:
    """Drains ``StreamState`` into Redis, one non-transactional pipeline per flush."""

    def __init__(self, store: Store, state: StreamState, backoff_cap_s: float = 30.0) -> None:
        self.store, self.state = store, state
        self.batch = batcher_for(store)
        self.backoff_cap_s = backoff_cap_s
        self.latency = LatencyStats(clock.wall_epoch())
        self.failures = 0
        self.retry_at = 0.0
        self._written: dict[str, dict[str, str]] = {}  # key name -> hash as last written
        self._ttl_set: set[str] = set()  # keys whose TTL was set since the last rewrite_all
        self._ttl_staged: set[str] = set()
        # a flush begun by ``send_part`` while IB's read is still being delivered: its batch, what it staged,
        # and the part whose replies are not read yet
        self._open: WriteBatch | None = None
        self._staged: list[tuple[str, dict[str, str]]] = []
        self._in_flight: list[SymbolState] = []
        self._venues_due: dict[str, float] = {}  # symbol -> arrival of the first book change not in venues
        self._venues_at: dict[str, float] = {}  # symbol -> when its venue shares were last written
        self.quiet = QuietLog()

    def available(self, mono: float) -> bool:
        return mono >= self.retry_at

    def rewrite_all(self) -> None:
        """Forget what was written: the next flush rewrites whole hashes (a restarted Redis comes back empty)
        and sets every TTL again. The monitor calls it every ``REWRITE_EVERY_S`` (10 s, TTLs are 60 s and more)."""
        self._written.clear()
        self._ttl_set.clear()

    def failed(self, exc: Exception) -> None:
        """Note a Redis failure: no call is tried again before the backoff has passed."""
        self.failures += 1
        self.rewrite_all()
        delay = backoff_s(self.failures, cap_s=self.backoff_cap_s)
        self.retry_at = clock.monotonic() + delay
        log.warning("stream: redis unreachable at %s (%s); retry %d in %.1f s, IB side keeps running",
                    self.store.address, exc, self.failures, delay)

    def recovered(self) -> None:
        if self.failures:
            log.info("stream: redis is back after %d failed attempts", self.failures)
        self.failures = 0

    def send_part(self, symbols: list[str]) -> None:
        """Stage and send these symbols' items now, while the rest of IB's read is still being delivered; the
        flush that ends the read finishes the batch (and reads every reply).

        A burst of 80 symbols was decoded, then all delivered (~1.5 ms), then written: the first symbols'
        books waited for the last symbols' delivery. A part sent here waits only for its own, and its
        replies are read once the next part went out. Nothing is sent while Redis is backed off, nor on a
        Cluster (its pipeline is one round trip per execute): the flush writes everything then.
        """
        if not self.available(clock.monotonic()):
            return
        pipe = self._open if self._open is not None else self.batch()
        if not isinstance(pipe, Batch):
            return
        in_flight = {s.symbol for s in self._in_flight}
        part = [s for sym in symbols if (s := self.state.by_symbol[sym]).pending and s.history is None
                and sym not in in_flight]
        if not part:
            return
        self._open = pipe
        try:
            for s in part:
                self._stage(pipe, s, self._staged)
            pipe.send()
            self._received(pipe, self._in_flight)
            self._in_flight = part
        except REDIS_ERRORS as exc:  # the parts already received stay written
            self._close(pipe)
            self.failed(exc)
        except Exception:
            self._close(pipe, unknown=True)
            raise

    @property
    def sending(self) -> bool:
        """A flush is under way (``send_part`` began it): it must finish before anything else touches the state."""
        return self._open is not None

    def _close(self, pipe: WriteBatch | None = None, *, unknown: bool = False) -> None:
        """Forget the flush in progress (its batch, what it staged, what it has in flight); replies still owed
        are given up with their connection. ``unknown``: it failed some other way than Redis being unreachable
        (an error reply, a bug): nothing is known written exactly."""
        self._open, self._staged, self._in_flight, self._ttl_staged = None, [], [], set()
        if isinstance(pipe, Batch):
            pipe.abandon()
        if unknown:
            self.rewrite_all()

    def flush(self, extra: Callable[[WriteBatch], None] | None = None) -> bool:
        """Write every dirty item of every symbol; False if Redis failed or is backed off.

        One round trip, sent in parts of ``FLUSH_PART`` symbols (see ``_write``), continuing what
        ``send_part`` began; ``extra`` queues more writes into the last part (the monitor's heartbeat and flags).
        """
        mono = clock.monotonic()
        in_flight = {s.symbol for s in self._in_flight}
        dirty = [s for s in self.state.by_symbol.values() if s.pending and s.symbol not in in_flight]
        venues = list(islice((self.state.by_symbol[sym] for sym in self._venues_due  # oldest change first
                              if mono - self._venues_at.get(sym, -1e18) >= VENUES_EVERY_S
                              and not self.state.by_symbol[sym].book.resetting),  # not while IB re-sends it
                             VENUES_PER_FLUSH))
        if not self.available(mono):
            return False
        if not (dirty or venues or extra or self.state.rejects or in_flight):
            return True
        if not all(self._merge_history(s) for s in dirty if s.history is not None):
            self._close(self._open)  # Redis failed (rewrite_all forgot what was written)
            return False
        pipe = self._open if self._open is not None else self.batch()
        size = FLUSH_PART if isinstance(pipe, Batch) else max(1, len(dirty))  # a Cluster pipeline: one part
        parts = [dirty[i:i + size] for i in range(0, len(dirty), size)] or [[]]
        staged, in_flight_part = self._staged, self._in_flight
        try:
            rejects = self._write(pipe, parts, venues, extra, staged, in_flight_part)
        except REDIS_ERRORS as exc:  # the parts already received stay written
            self._close(pipe)
            self.failed(exc)
            return False
        except Exception:  # a key of the wrong type (Redis ran the rest), a bug: nothing is known written exactly
            self._close(pipe, unknown=True)
            raise
        done = clock.monotonic()
        self.recovered()
        self._written.update(staged)
        self._ttl_set |= self._ttl_staged
        self._close()
        self._counted(rejects)
        for s in venues:
            self.latency.add("venues", (done - self._venues_due.pop(s.symbol)) * 1000.0)
            self._venues_at[s.symbol] = done
        for s in parts[-1]:
            self._written_out(s, done)
        self.latency.writes += 1
        return True

    def _write(self, pipe: WriteBatch, parts: list[list[SymbolState]], venues: list[SymbolState],
               extra: Callable[[WriteBatch], None] | None, staged: list[tuple[str, dict[str, str]]],
               in_flight: list[SymbolState]) -> Counter[Reject]:
        """Stage and send part after part, reading each part's replies once the next is sent; the last part
        carries the venue shares, the rejects and ``extra``. The rejects staged.

        Redis runs a part while the next is staged (it has a core of its own), and a part's items count as
        written when its replies are read, before the later parts are even staged: a burst of 80 symbols'
        books was 1.5 ms of staging and 0.9 ms of round trip that every book of it waited through, the
        first part now waits for one part's staging and reply. Each part costs a send and a read (~20 µs).
        """
        for part in parts[:-1]:
            for s in part:
                self._stage(pipe, s, staged)
            self._send(pipe)
            self._received(pipe, in_flight)
            in_flight = part
        for s in parts[-1]:
            self._stage(pipe, s, staged)
        for s in venues:
            self._stage_venues(pipe, s, staged)
        rejects = self._stage_rejects(pipe)
        if extra is not None:
            extra(pipe)
        if isinstance(pipe, Batch):
            pipe.send()
            self._received(pipe, in_flight)
            pipe.receive()
        else:
            pipe.execute()
        return rejects

    @staticmethod
    def _send(pipe: WriteBatch) -> None:
        if isinstance(pipe, Batch):
            pipe.send()

    def _received(self, pipe: WriteBatch, part: list[SymbolState]) -> None:
        """Read the replies to ``part``'s writes (sent before the part just sent): they are in Redis now."""
        if part and isinstance(pipe, Batch):
            pipe.receive()
            done = clock.monotonic()
            for s in part:
                self._written_out(s, done)

    def _written_out(self, s: SymbolState, done: float) -> None:
        """A symbol's items reached Redis: their latencies, and nothing of them pending any more."""
        add = self.latency.add
        for item, since in s.pending.items():
            feed = FEED_OF_ITEM.get(item)
            if feed is not None:
                add(feed, (done - since) * 1000.0)
                add(HANDED[feed], (done - s.handed.get(item, since)) * 1000.0)
        s.pending.clear()
        s.handed.clear()
        s.trades.clear()
        s.bars.clear()

    def _stage(self, pipe: WriteBatch, s: SymbolState, staged: list[tuple[str, dict[str, str]]]) -> None:
        """Queue one symbol's dirty items, each encoded on its own (a failure costs that item only)."""
        if "book" in s.pending and self._stage_book(pipe, s, staged):
            self._venues_due.setdefault(s.symbol, s.pending["book"])
        if "quote" in s.pending:
            fields = self._encode(s, "quote", lambda: quote_fields(s.quote))
            if fields is not None:
                staged.append(self._hash(pipe, keys.quote(s.symbol), fields))
        if "auction" in s.pending:
            fields = self._encode(s, "auction", lambda: auction_fields(s.auction))
            if fields is not None:
                staged.append(self._hash(pipe, keys.auction_imbalance(s.symbol), fields))
        self._stage_series(pipe, s)

    def _stage_book(self, pipe: WriteBatch, s: SymbolState, staged: list[tuple[str, dict[str, str]]]) -> bool:
        """Queue the book's write; False if it could not be encoded (dropped from this flush, counted).

        While the hash holds what this process last wrote, only the book's own ``changes`` go (HSET the
        changed levels, HDEL the vanished ones) and the hash as written is kept up to date in place (a
        failed flush forgets it: ``rewrite_all``); otherwise the whole book, as ``_owned`` writes it.
        """
        key = keys.book(s.symbol)
        last = self._written.get(key.name)
        if not last:
            fields = self._encode(s, "book", s.book.fields)
            if fields is not None:
                staged.append(self._owned(pipe, key, fields))
            return fields is not None
        delta = self._encode(s, "book", s.book.changes)
        if delta is None:
            del self._written[key.name]  # the book's changes since then are lost with this item: whole next time
            return False
        changed, gone = delta
        if changed:
            pipe.hset(key.name, mapping=changed)
            last.update(changed)
        if gone:
            pipe.hdel(key.name, *gone)
            for name in gone:
                del last[name]
        return True

    def _stage_venues(self, pipe: WriteBatch, s: SymbolState, staged: list[tuple[str, dict[str, str]]]) -> None:
        fields = self._encode(s, "venues", lambda: venue_fields(s.book))
        if fields is not None:
            staged.append(self._owned(pipe, keys.venue_shares(s.symbol), fields))

    def _stage_series(self, pipe: WriteBatch, s: SymbolState) -> None:
        """Prints (encoded when they arrived) and finished minutes, each minute encoded on its own."""
        if s.trades:
            key = keys.trades(s.symbol)
            for fields in s.trades:
                pipe.xadd(key.name, fields, maxlen=TRADES_MAXLEN, approximate=True)
            self._expire(pipe, key)
        if s.bars:
            items = []
            for bar in s.bars:
                try:
                    items.append(bar.to_redis())
                except ENCODE_ERRORS as exc:
                    self._unencodable(s.symbol, "bars", exc)
            if items:
                key = keys.bars_1min(s.symbol)
                pipe.rpush(key.name, *items)
                pipe.ltrim(key.name, -BARS_KEEP, -1)
                self._expire(pipe, key)

    def _encode(self, s: SymbolState, item: str, encode: Callable[[], T]) -> T | None:
        """``encode()``, or None (the item dropped from this flush, counted, logged) when a value fails it."""
        try:
            return encode()
        except ENCODE_ERRORS as exc:
            self._unencodable(s.symbol, item, exc)
            s.pending.pop(item, None)
            s.handed.pop(item, None)
            return None

    def _unencodable(self, symbol: str, item: str, exc: Exception) -> None:
        surface = SURFACE_OF_ITEM[item]
        self.state.rejects[(surface, "unencodable", symbol)] += 1
        self.quiet.warn(f"unencodable:{item}", 1, f"stream: {symbol} {item} not written, a value cannot be encoded "
                                                  f"({type(exc).__name__}: {exc}); the rest of the flush goes on")

    def _stage_rejects(self, pipe: WriteBatch) -> Counter[Reject]:
        """Queue the refused-value counts (``monitoring:rejects``); they are forgotten once written."""
        taken = Counter(self.state.rejects)
        if not taken:
            return taken
        by_surface: dict[str, Counter[str]] = {}
        for (surface, reason, _), n in taken.items():
            by_surface.setdefault(surface, Counter())[reason] += n
        key = keys.input_rejects()
        for surface, reasons in by_surface.items():
            for name, n in InputRejects.counted(surface, reasons).increments.items():
                pipe.hincrby(key.name, name, n)
        if key.ttl_s is not None:
            pipe.expire(key.name, key.ttl_s)
        return taken

    def _counted(self, taken: Counter[Reject]) -> None:
        """The counts reached Redis: take them off the state and log them, at most once a minute per reason."""
        if not taken:
            return
        self.state.rejects.subtract(taken)
        for reject in [r for r, n in self.state.rejects.items() if n <= 0]:
            del self.state.rejects[reject]
        by_reason: dict[tuple[str, str], Counter[str]] = {}
        for (surface, reason, symbol), n in taken.items():
            by_reason.setdefault((surface, reason), Counter())[symbol] += n
        for (surface, reason), symbols in sorted(by_reason.items()):
            if reason == "unencodable":
                continue  # logged where it happened
            who = ", ".join(f"{sym} {n}" for sym, n in symbols.most_common(5))
            self.quiet.warn(f"{surface}:{reason}", sum(symbols.values()),
                            f"stream: refused from IB at {surface}: {reason} ({who}); counted in monitoring:rejects")

    def _merge_history(self, s: SymbolState) -> bool:
        """Backfill: read the bars list, merge IB's history under the live minutes, replace the list.

        A synchronous read-modify-write on the event loop, once per symbol and (re)connect (a few ms
        for two sessions of minutes, off the per-message path). Nothing else writes the key meanwhile:
        the loop runs one thing at a time, and the live minutes still in ``s.bars`` are appended after
        it by this same flush. One MULTI on one key: readers never see the list empty or half-built.
        """
        assert s.history is not None
        key = keys.bars_1min(s.symbol)
        try:
            stored, rejected = decode_bars(self.store.client.lrange(key.name, 0, -1), key=key.name)
            merged = merge_history(stored, s.history, now_epoch=self.state.clock.epoch(), keep=BARS_KEEP - len(s.bars),
                                   live_from=min((b.start for b in s.bars), default=None))
            pipe = self.store.client.pipeline(transaction=True)
            pipe.delete(key.name)
            if merged:
                pipe.rpush(key.name, *[b.to_redis() for b in merged])
                pipe.expire(key.name, key.ttl_s)
            pipe.execute()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return False
        log.info("%s: %d historical minutes merged into %s (%d minutes now%s)", s.symbol, len(s.history), key.name,
                 len(merged), f"; dropped unreadable {dict(rejected)}" if rejected else "")
        s.history = None
        return True

    def _hash(self, pipe: WriteBatch, key: Key, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Replace a hash of fixed field names without an empty moment: HSET what changed since the last write,
        HDEL what vanished."""
        _delta(pipe, key.name, self._written.get(key.name, {}), fields)
        self._expire(pipe, key)
        return key.name, fields

    def _owned(self, pipe: WriteBatch, key: Key, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Leave exactly ``fields`` in a hash whose field names vary (the book's levels, venue shares).

        The changed fields go into the batch when the hash is known to hold what this process last wrote;
        otherwise (first write, after ``rewrite_all`` or a failure, or the hash was or becomes empty) a full
        replacement goes in one MULTI/EXEC (inside the batch; its own round trip on a Cluster; see the module
        docstring).
        """
        last = self._written.get(key.name)
        if last is not None and not last and not fields:
            return key.name, fields  # still empty: the key is already gone
        if not last or not fields:
            if isinstance(pipe, Batch):
                pipe.replace_hash(key.name, fields, key.ttl_s)
            else:
                self._replace(key, fields)
            return key.name, fields
        _delta(pipe, key.name, last, fields)  # the TTL came with the replacement; rewrite_all renews it every 10 s
        return key.name, fields

    def _replace(self, key: Key, fields: dict[str, str]) -> None:
        """DEL + HSET + EXPIRE atomically (MULTI/EXEC on one key, which Redis Cluster accepts): no reader sees
        another writer's fields, a partial hash, or the key without its TTL."""
        tx = self.store.client.pipeline(transaction=True)
        tx.delete(key.name)
        if fields:
            tx.hset(key.name, mapping=fields)
            if key.ttl_s is not None:
                tx.expire(key.name, key.ttl_s)
        tx.execute()

    def _expire(self, pipe: WriteBatch, key: Key) -> None:
        """EXPIRE with the key's first write after each rewrite_all, not with every write."""
        if key.ttl_s is not None and key.name not in self._ttl_set:
            pipe.expire(key.name, key.ttl_s)
            self._ttl_staged.add(key.name)


def venue_fields(book: DepthBook) -> dict[str, str]:
    """The ``VenueShares`` hash: "{side}:{venue}" -> share of that side's displayed size, "{side}:herfindahl".

    A level without a venue (plain ``updateMktDepth`` has no market maker) counts as ``UNATTRIBUTED``.
    """
    bids, asks = book.levels(BID), book.levels(ASK)
    got = venue_attribution([lv.venue or UNATTRIBUTED for lv in bids], [lv.size for lv in bids],
                            [lv.venue or UNATTRIBUTED for lv in asks], [lv.size for lv in asks])
    return VenueShares(dict(got.bid.shares), dict(got.ask.shares),
                       float(got.bid.herfindahl) if got.bid.shares else None,
                       float(got.ask.herfindahl) if got.ask.shares else None).to_redis()


def _delta(pipe: WriteBatch, name: str, last: dict[str, str], fields: dict[str, str]) -> None:
    """HSET what changed since ``last`` was written, HDEL what vanished: the hash ends as ``fields``."""
    changed = {k: v for k, v in fields.items() if last.get(k) != v}
    if changed:
        pipe.hset(name, mapping=changed)
    gone = last.keys() - fields.keys()
    if gone:
        pipe.hdel(name, *sorted(gone))
