"""The monitoring values every qc process shares: one codec per Redis value `qc status` and `qc up` read.

Workers write through ``to_redis()`` (or, for counters, the increments a codec names); `qc status`,
`qc up` and the workers read through ``from_redis(raw, key=...)``, which returns the value or an
:class:`~qc.core.codec.Absent` with its reason, so a half-written, old or foreign value becomes a
finding with a reason, never a crash (see ``qc.core.codec`` for the conventions).

Formats stay the runbook's: ``heartbeat:{module}`` is a bare Unix time string (``redis-cli get
heartbeat:ibkr_ingestion``) and ``ibkr:connected`` is "1"/"0". Hashes with fixed field names carry
``v``; hashes keyed by module, child or feed version each JSON entry (registry, supervisor) or
hold plain numbers (errors, stale feeds, whose empty hash means "none" to the tests and operators).

Pure: imports only ``qc.core``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

from qc.core.clock import SimAnchor
from qc.core.codec import (
    MISSING,
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    fmt,
    loads_object,
    need,
    opt_int,
    req_epoch,
    req_flag,
    req_float,
    req_int,
    req_str,
)

T = TypeVar("T")
VERSION = 1
COUNT_MAX = 2**53
SPEED_MIN, SPEED_MAX = 0.01, 1e6  # `qc sim --speed` accepts ≥ 0.01
LAST_ERROR_CHARS = 300
OPTIONS_CHAIN_FEED = "options_chain"  # the feed `qc chains` marks stale in monitoring:data:stale


def _count(raw: Any, name: str) -> int:
    return req_int(raw, name, lo=0, hi=COUNT_MAX)


def _versioned(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    check_version(fields, VERSION)
    return fields


def _entries(key: str, fields: Mapping[str, str],
             parse: Callable[..., T | Absent]) -> tuple[dict[str, T], dict[str, Absent]]:
    """Split a hash of independent entries into readable ones and the rest, each with its reason."""
    good: dict[str, T] = {}
    bad: dict[str, Absent] = {}
    for name, raw in fields.items():
        value = parse(raw, key=f"{key}[{name}]")
        if isinstance(value, Absent):
            bad[name] = value
        else:
            good[name] = value
    return good, bad


def _symbol_feed(name: str) -> str:
    """A "{symbol}:{feed}" field name, checked (a bare word is not one of ours)."""
    symbol, sep, feed = name.partition(":")
    if not (sep and symbol and feed):
        raise Malformed(name, "is not a '{symbol}:{feed}' field")
    return name


@dataclass(frozen=True, slots=True)
class HashUpdate:
    """Fields to set and counters to add on one hash, sent in one round trip (``Store.hupdate``)."""

    fields: Mapping[str, str]
    increments: Mapping[str, int] = field(default_factory=dict)


# --- strings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``heartbeat:{module}``: wall-clock Unix time of the module's last beat, to the millisecond."""

    at_epoch: float

    def to_redis(self) -> str:
        return f"{self.at_epoch:.3f}"

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> Heartbeat | Absent:
        return decode(key, raw, lambda text: cls(req_epoch(text, "heartbeat")))


@dataclass(frozen=True, slots=True)
class IbkrConnected:
    """``ibkr:connected``: "1" while `qc stream`'s IB API socket is up, "0" otherwise."""

    connected: bool

    def to_redis(self) -> str:
        return "1" if self.connected else "0"

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> IbkrConnected | Absent:
        return decode(key, raw, lambda text: cls(req_flag(text, "value")))


# --- hashes of independent entries ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerEntry:
    """One ``monitoring:workers`` field: who runs the module, since when, how many cycles so far."""

    pid: int
    host: str
    started: float  # wall-clock Unix time the worker started
    cycles: int

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: VERSION, "pid": self.pid, "host": self.host, "started": self.started,
                      "cycles": self.cycles})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> WorkerEntry | Absent:
        def parse(text: str) -> WorkerEntry:
            doc = _versioned(loads_object(text, "entry"))
            return cls(req_int(need(doc, "pid"), "pid", lo=1), req_str(need(doc, "host"), "host", empty=False),
                       req_epoch(need(doc, "started"), "started"), _count(need(doc, "cycles"), "cycles"))

        return decode(key, raw, parse)


@dataclass(frozen=True, slots=True)
class WorkerRegistry:
    """``monitoring:workers``: module -> entry; ``unreadable`` holds the entries that failed, with why.

    A module whose entry is unreadable is still registered: its name is the field.
    """

    workers: Mapping[str, WorkerEntry]
    unreadable: Mapping[str, Absent] = field(default_factory=dict)

    @property
    def modules(self) -> set[str]:
        return set(self.workers) | set(self.unreadable)

    def to_redis(self) -> dict[str, str]:
        return {module: entry.to_redis() for module, entry in self.workers.items()}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> WorkerRegistry | Absent:
        return decode(key, raw, lambda fields: cls(*_entries(key, fields, WorkerEntry.from_redis)))


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """One ``monitoring:supervisor`` field: a `qc up` child as the supervisor sees it."""

    pid: int | None  # None while it waits for its (re)start
    state: str  # "waiting", "running" or "exited {code}"
    restarts: int
    last_exit: int | None = None

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: VERSION, "pid": self.pid, "state": self.state, "restarts": self.restarts,
                      "last_exit": self.last_exit})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> ChildStatus | Absent:
        def parse(text: str) -> ChildStatus:
            doc = _versioned(loads_object(text, "child"))
            pid, last_exit = need(doc, "pid"), doc.get("last_exit")
            return cls(None if pid is None else req_int(pid, "pid", lo=1),
                       req_str(need(doc, "state"), "state", empty=False), _count(need(doc, "restarts"), "restarts"),
                       None if last_exit is None else req_int(last_exit, "last_exit", lo=-255, hi=255))

        return decode(key, raw, parse)


@dataclass(frozen=True, slots=True)
class SupervisorChildren:
    """``monitoring:supervisor``: child name -> status; ``unreadable`` holds the entries that failed."""

    children: Mapping[str, ChildStatus]
    unreadable: Mapping[str, Absent] = field(default_factory=dict)

    def to_redis(self) -> dict[str, str]:
        return {name: status.to_redis() for name, status in self.children.items()}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> SupervisorChildren | Absent:
        return decode(key, raw, lambda fields: cls(*_entries(key, fields, ChildStatus.from_redis)))


# --- counters and marks -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerErrors:
    """``monitoring:errors``: module -> cycle errors logged and survived today (written by HINCRBY)."""

    counts: Mapping[str, int]

    @staticmethod
    def counted(module: str, n: int = 1) -> HashUpdate:
        """``n`` more errors of ``module``: an increment, as every worker counts into the same hash."""
        return HashUpdate({}, {module: n})

    def to_redis(self) -> dict[str, str]:
        return {module: str(n) for module, n in self.counts.items()}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> WorkerErrors | Absent:
        return decode(key, raw, lambda fields: cls({m: _count(n, m) for m, n in fields.items()}))


@dataclass(frozen=True, slots=True)
class InputRejects:
    """``monitoring:rejects``: "{surface}:{reason}" -> outside values refused today (HINCRBY).

    A surface is one boundary (``av.chain``, ``av.quote``, ``av.news``, ``av.intraday``, ``ib.depth``,
    ``ib.bar``, ``ib.tick``...); the reason is the codec's short class of refusal (``not_finite``,
    ``negative_size``, ``duplicate_contract``...). Every process counts into the same hash.
    """

    counts: Mapping[str, int]

    @staticmethod
    def counted(surface: str, reasons: Mapping[str, int]) -> HashUpdate:
        """Add ``reasons`` (reason -> n) refused at ``surface``: increments only, zero counts skipped."""
        return HashUpdate({}, {f"{surface}:{reason}": n for reason, n in reasons.items() if n})

    def by_surface(self) -> dict[str, dict[str, int]]:
        """{surface: {reason: n}} for ``qc status --json``."""
        out: dict[str, dict[str, int]] = {}
        for name, n in sorted(self.counts.items()):
            surface, _, reason = name.partition(":")
            out.setdefault(surface, {})[reason] = n
        return out

    def to_redis(self) -> dict[str, str]:
        return {name: str(n) for name, n in self.counts.items()}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> InputRejects | Absent:
        return decode(key, raw, lambda fields: cls({_symbol_feed(n): _count(v, n) for n, v in fields.items()}))


@dataclass(frozen=True, slots=True)
class StaleFeeds:
    """``monitoring:data:stale``: "{symbol}:{feed}" -> wall-clock time of its last data, stale feeds only."""

    since: Mapping[str, float]

    @staticmethod
    def field(symbol: str, feed: str) -> str:
        return f"{symbol}:{feed}"

    def to_redis(self) -> dict[str, str]:
        return {name: f"{at:.3f}" for name, at in self.since.items()}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> StaleFeeds | Absent:
        return decode(key, raw, lambda fields: cls(
            {_symbol_feed(name): req_epoch(at, name) for name, at in fields.items()}))


@dataclass(frozen=True, slots=True)
class IngestRecoveries:
    """``monitoring:ingest:recoveries``: IB reconnects, and "{symbol}:{feed}" -> resubscriptions."""

    reconnects: int
    resubscriptions: Mapping[str, int] = field(default_factory=dict)

    def to_redis(self) -> dict[str, str]:
        return {VERSION_FIELD: str(VERSION), "reconnects": str(self.reconnects),
                **{name: str(n) for name, n in self.resubscriptions.items()}}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> IngestRecoveries | Absent:
        def parse(fields: Mapping[str, str]) -> IngestRecoveries:
            rest = {k: v for k, v in _versioned(fields).items() if k not in (VERSION_FIELD, "reconnects")}
            return cls(_count(need(fields, "reconnects"), "reconnects"),
                       {_symbol_feed(name): _count(n, name) for name, n in rest.items()})

        return decode(key, raw, parse)


# --- latency ----------------------------------------------------------------------------------

LATENCY_STATS = ("p50_ms", "p99_ms", "max_ms", "n")


@dataclass(frozen=True, slots=True)
class FeedLatency:
    """Message-arrival-to-Redis-write latency of one feed over `qc stream`'s recent window."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    n: int


@dataclass(frozen=True, slots=True)
class IngestLatency:
    """``monitoring:ingest:latency``: ``writes`` and, per feed, ``{feed}_p50_ms`` … ``{feed}_n``."""

    writes: int
    feeds: Mapping[str, FeedLatency] = field(default_factory=dict)

    def to_redis(self) -> dict[str, str]:
        out = {VERSION_FIELD: str(VERSION), "writes": str(self.writes)}
        for feed, f in self.feeds.items():
            out |= {f"{feed}_p50_ms": fmt(f.p50_ms), f"{feed}_p99_ms": fmt(f.p99_ms),
                    f"{feed}_max_ms": fmt(f.max_ms), f"{feed}_n": str(f.n)}
        return out

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> IngestLatency | Absent:
        return decode(key, raw, lambda fields: cls._parse(_versioned(fields)))

    @classmethod
    def from_summary(cls, summary: Mapping[str, float], *, key: str) -> IngestLatency | Absent:
        """The writer's numbers checked as the reader will check them (a NaN is refused, not stored)."""
        return decode(key, dict(summary), cls._parse)

    @classmethod
    def _parse(cls, fields: Mapping[str, Any]) -> IngestLatency:
        stats: dict[str, dict[str, Any]] = {}
        for name, raw in fields.items():
            if name == VERSION_FIELD or name == "writes":
                continue
            feed, _, stat = name.rpartition("_")  # "depth_n"
            if stat == "ms":  # "depth_p99_ms"
                feed, _, stat = feed.rpartition("_")
                stat += "_ms"
            if not feed or stat not in LATENCY_STATS:
                raise Malformed(name, "is not a '{feed}_{p50_ms|p99_ms|max_ms|n}' field")
            stats.setdefault(feed, {})[stat] = raw
        feeds = {feed: _feed_latency(feed, s) for feed, s in stats.items()}
        return cls(_count(need(fields, "writes"), "writes"), feeds)


def _feed_latency(feed: str, stats: Mapping[str, Any]) -> FeedLatency:
    """One feed's four numbers (runs every second on `qc stream`'s event loop: kept lean)."""
    missing = [stat for stat in LATENCY_STATS if stat not in stats]
    if missing:
        raise Malformed(f"{feed}_{missing[0]}", "missing (partial value)")
    p50 = req_float(stats["p50_ms"], f"{feed}_p50_ms", lo=0.0)
    p99 = req_float(stats["p99_ms"], f"{feed}_p99_ms", lo=0.0)
    top = req_float(stats["max_ms"], f"{feed}_max_ms", lo=0.0)
    if not p50 <= p99 <= top:
        raise Malformed(feed, f"percentiles out of order (p50 {p50}, p99 {p99}, max {top})")
    return FeedLatency(p50, p99, top, req_int(stats["n"], f"{feed}_n", lo=1))


# Upper bounds (ms) of the latency histogram's buckets, finest where the targets are (5 ms); +Inf is implied.
LATENCY_BOUNDS_MS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 25.0, 50.0, 100.0, 250.0, 1000.0)
INF = "inf"


@dataclass(frozen=True, slots=True)
class FeedHistogram:
    """One feed's writes counted by latency: ``cumulative[i]`` took at most ``LATENCY_BOUNDS_MS[i]``, the last
    entry counts them all (+Inf), Prometheus's ``le`` buckets; ``sum_ms`` is their total latency."""

    cumulative: tuple[int, ...]
    sum_ms: float

    @property
    def count(self) -> int:
        return self.cumulative[-1]

    def minus(self, earlier: FeedHistogram) -> FeedHistogram:
        """The writes counted since ``earlier`` (the same process's counts taken before)."""
        return FeedHistogram(tuple(a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True)),
                             self.sum_ms - earlier.sum_ms)

    def share_within(self, bound_ms: float) -> float:
        """The share of writes that took at most ``bound_ms``, one of ``LATENCY_BOUNDS_MS`` (exact, no estimate)."""
        return self.cumulative[LATENCY_BOUNDS_MS.index(bound_ms)] / self.count if self.count else math.nan

    def quantile_ms(self, q: float) -> float:
        """The ``q`` quantile, interpolated inside its bucket as Prometheus's ``histogram_quantile`` does; a
        quantile in the +Inf bucket is reported as the last bound (a floor: it is at least that)."""
        if not self.count:
            return math.nan
        rank = q * self.count
        lower, below = 0.0, 0
        for bound, cum in zip(LATENCY_BOUNDS_MS, self.cumulative, strict=False):
            if cum >= rank:
                inside = cum - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cum
        return LATENCY_BOUNDS_MS[-1]


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """``monitoring:ingest:latency:hist``: `qc stream`'s writes counted by arrival-to-Redis latency since it
    started, per feed: ``{feed}_le_{bound}`` (cumulative, bound in ms or ``inf``) and ``{feed}_sum_ms``.

    Percentiles over any window come from two readings (``minus``), over every write in it: the
    percentiles of ``monitoring:ingest:latency`` cover only the last 4,096 writes, a sixth of a second
    at 100 symbols. ``started`` (the process's start, wall epoch) tells a restart (counts from zero) apart.
    """

    started: float
    feeds: Mapping[str, FeedHistogram] = field(default_factory=dict)

    def to_redis(self) -> dict[str, str]:
        out = {VERSION_FIELD: str(VERSION), "started": fmt(self.started)}
        for feed, h in self.feeds.items():
            names = [*(fmt(b) for b in LATENCY_BOUNDS_MS), INF]
            out |= {f"{feed}_le_{name}": str(n) for name, n in zip(names, h.cumulative, strict=True)}
            out[f"{feed}_sum_ms"] = fmt(h.sum_ms)
        return out

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> LatencyHistogram | Absent:
        return decode(key, raw, lambda fields: cls._parse(_versioned(fields)))

    @classmethod
    def _parse(cls, fields: Mapping[str, Any]) -> LatencyHistogram:
        names = [*(fmt(b) for b in LATENCY_BOUNDS_MS), INF]
        feeds = {name[: -len("_sum_ms")] for name in fields if name.endswith("_sum_ms")}
        known = {VERSION_FIELD, "started"} | {f"{f}_sum_ms" for f in feeds} | {
            f"{f}_le_{n}" for f in feeds for n in names}
        if stray := sorted(set(fields) - known):
            raise Malformed(stray[0], "is not a '{feed}_le_{bound}' or '{feed}_sum_ms' field of a known feed")
        out: dict[str, FeedHistogram] = {}
        for feed in sorted(feeds):
            counts = tuple(_count(need(fields, f"{feed}_le_{n}"), f"{feed}_le_{n}") for n in names)
            if any(a > b for a, b in pairwise(counts)):
                raise Malformed(f"{feed}_le_{INF}", f"cumulative counts decrease ({counts})")
            out[feed] = FeedHistogram(counts, req_float(need(fields, f"{feed}_sum_ms"), f"{feed}_sum_ms", lo=0.0))
        return cls(req_epoch(need(fields, "started"), "started"), out)


# --- cycle times ------------------------------------------------------------------------------

CYCLE_STATS = ("last_us", "sum_us", "count")


@dataclass(frozen=True, slots=True)
class TaskTime:
    """One task's run time in real microseconds: the last run, and the sum and count of every run counted."""

    last_us: int
    sum_us: int
    count: int


@dataclass(frozen=True, slots=True)
class CycleTimes:
    """``monitoring:cycle:{module}``: task -> its run times (``cycle`` is the whole cycle).

    Fields ``{task}:last_us`` (set) and ``{task}:sum_us``, ``{task}:count`` (HINCRBY): the sum and count
    only grow, so a scraper derives the mean of any window from two readings, whatever its own cadence.
    """

    tasks: Mapping[str, TaskTime]

    @staticmethod
    def ran(seconds: Mapping[str, float]) -> HashUpdate:
        """One run of each task in ``seconds`` (task -> real seconds it took)."""
        us = {task: min(COUNT_MAX, max(0, round(s * 1e6))) for task, s in seconds.items() if math.isfinite(s)}
        return HashUpdate({VERSION_FIELD: str(VERSION), **{f"{task}:last_us": str(n) for task, n in us.items()}},
                          {**{f"{task}:sum_us": n for task, n in us.items()}, **{f"{task}:count": 1 for task in us}})

    def to_redis(self) -> dict[str, str]:
        out = {VERSION_FIELD: str(VERSION)}
        for task, t in self.tasks.items():
            out |= {f"{task}:last_us": str(t.last_us), f"{task}:sum_us": str(t.sum_us), f"{task}:count": str(t.count)}
        return out

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> CycleTimes | Absent:
        def parse(fields: Mapping[str, str]) -> CycleTimes:
            stats: dict[str, dict[str, int]] = {}
            for name, value in _versioned(fields).items():
                if name == VERSION_FIELD:
                    continue
                task, _, stat = name.rpartition(":")
                if not task or stat not in CYCLE_STATS:
                    raise Malformed(name, "is not a '{task}:{last_us|sum_us|count}' field")
                stats.setdefault(task, {})[stat] = _count(value, name)
            return cls({task: _task_time(task, s) for task, s in stats.items()})

        return decode(key, raw, parse)


def _task_time(task: str, stats: Mapping[str, int]) -> TaskTime:
    missing = [stat for stat in CYCLE_STATS if stat not in stats]
    if missing:
        raise Malformed(f"{task}:{missing[0]}", "missing (partial value)")
    return TaskTime(stats["last_us"], stats["sum_us"], stats["count"])


# --- Alpha Vantage metrics --------------------------------------------------------------------

AV_TOTALS = ("requests", "chain_failures", "news_failures")
CHAIN_FIELDS = ("chain_ok_at", "chain_age_s", "rows", "divergent", "last_error")
DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class ChainHealth:
    """What `qc chains` last recorded for one symbol's option chain."""

    ok_at: float | None = None  # wall time of the last good chain
    age_s: int | None = None  # age of the chain kept after a failure (0 after a success; None: none kept)
    rows: int | None = None
    divergent: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class AlphaVantageMetrics:
    """``monitoring:alpha_vantage:metrics``, built up by `qc chains` one update at a time.

    ``tokens_left`` (requests the plan still allows this minute, what `qc status` alerts on),
    ``requests`` and one counter per response class, ``dropped:{reason}`` rows, ``chain_failures``,
    ``news_failures``, and per symbol ``chain_ok_at:``, ``chain_age_s:``, ``rows:``, ``divergent:``,
    ``last_error:``. Every update sets ``v``, so only ``v`` is required of the hash.
    """

    tokens_left: int | None = None
    requests: int = 0
    chain_failures: int = 0
    news_failures: int = 0
    responses: Mapping[str, int] = field(default_factory=dict)  # response class -> count (ok, throttled…)
    dropped: Mapping[str, int] = field(default_factory=dict)  # chain rows dropped, by reason
    chains: Mapping[str, ChainHealth] = field(default_factory=dict)

    # --- what the writers send ---

    @staticmethod
    def tokens(left: int) -> HashUpdate:
        return HashUpdate({VERSION_FIELD: str(VERSION), "tokens_left": str(left)})

    @staticmethod
    def response(kind: str) -> HashUpdate:
        """One HTTP attempt answered with response class ``kind``."""
        if kind in AV_TOTALS or kind in (VERSION_FIELD, "tokens_left") or ":" in kind:
            raise ValueError(f"{kind!r} cannot be a response class: it names another metrics field")
        return HashUpdate({VERSION_FIELD: str(VERSION)}, {"requests": 1, kind: 1})

    @staticmethod
    def chain_stamp_field(symbol: str) -> str:
        """The field `qc chains` rewrites right after it stores ``symbol``'s chain: a reader that finds it
        unchanged can skip GETting the chain (about 1 MB) again."""
        return f"chain_ok_at:{symbol}"

    @staticmethod
    def chain_refreshed(symbol: str, at_epoch: float, rows: int, divergent: int,
                        dropped: Mapping[str, int]) -> HashUpdate:
        stamp = AlphaVantageMetrics.chain_stamp_field(symbol)
        return HashUpdate({VERSION_FIELD: str(VERSION), stamp: f"{at_epoch:.3f}",
                           f"chain_age_s:{symbol}": "0", f"rows:{symbol}": str(rows),
                           f"divergent:{symbol}": str(divergent)},
                          {f"{DROPPED}:{reason}": n for reason, n in dropped.items() if n})

    @staticmethod
    def chain_kept(symbol: str, age_s: float | None, error: str) -> HashUpdate:
        """The chain was not refreshed: the kept one's age ("" when none is kept) and why."""
        age = None if age_s is None or not math.isfinite(age_s) else min(COUNT_MAX, max(0, round(age_s)))
        return HashUpdate({VERSION_FIELD: str(VERSION), f"chain_age_s:{symbol}": fmt(age),
                           f"last_error:{symbol}": error[:LAST_ERROR_CHARS]}, {"chain_failures": 1})

    @staticmethod
    def news_failed() -> HashUpdate:
        return HashUpdate({VERSION_FIELD: str(VERSION)}, {"news_failures": 1})

    # --- the whole value ---

    def chain_ok_at(self, symbol: str) -> float | None:
        """Wall time of ``symbol``'s last good chain, if one was recorded."""
        chain = self.chains.get(symbol)
        return None if chain is None else chain.ok_at

    def to_redis(self) -> dict[str, str]:
        out = {VERSION_FIELD: str(VERSION), "requests": str(self.requests),
               "chain_failures": str(self.chain_failures), "news_failures": str(self.news_failures)}
        if self.tokens_left is not None:
            out["tokens_left"] = str(self.tokens_left)
        out |= {kind: str(n) for kind, n in self.responses.items()}
        out |= {f"{DROPPED}:{reason}": str(n) for reason, n in self.dropped.items()}
        for symbol, c in self.chains.items():
            values = {"chain_ok_at": None if c.ok_at is None else f"{c.ok_at:.3f}", "chain_age_s": c.age_s,
                      "rows": c.rows, "divergent": c.divergent, "last_error": c.last_error}
            out |= {f"{name}:{symbol}": fmt(v) for name, v in values.items() if v is not None}
        return out

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> AlphaVantageMetrics | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, fields: Mapping[str, str]) -> AlphaVantageMetrics:
        _versioned(fields)
        totals = {name: _count(fields.get(name, "0"), name) for name in AV_TOTALS}
        tokens = fields.get("tokens_left")
        responses: dict[str, int] = {}
        dropped: dict[str, int] = {}
        per_symbol: dict[str, dict[str, str]] = {}
        for name, raw in fields.items():
            if name in (VERSION_FIELD, "tokens_left", *AV_TOTALS):
                continue
            prefix, sep, rest = name.partition(":")
            if not sep:
                responses[name] = _count(raw, name)
            elif not rest:
                raise Malformed(name, "names no symbol or reason")
            elif prefix == DROPPED:
                dropped[rest] = _count(raw, name)
            elif prefix in CHAIN_FIELDS:
                per_symbol.setdefault(rest, {})[prefix] = raw
            else:
                raise Malformed(name, "is not a metrics field")
        return cls(None if tokens is None else _count(tokens, "tokens_left"), totals["requests"],
                   totals["chain_failures"], totals["news_failures"], responses, dropped,
                   {symbol: _chain_health(symbol, f) for symbol, f in per_symbol.items()})


def _chain_health(symbol: str, f: Mapping[str, str]) -> ChainHealth:
    ok_at = f.get("chain_ok_at")
    age = f.get("chain_age_s")
    rows, divergent = (f.get(n) for n in ("rows", "divergent"))
    return ChainHealth(None if ok_at is None else req_epoch(ok_at, f"chain_ok_at:{symbol}"),
                       None if not age else _count(age, f"chain_age_s:{symbol}"),
                       None if rows is None else _count(rows, f"rows:{symbol}"),
                       None if divergent is None else _count(divergent, f"divergent:{symbol}"),
                       f.get("last_error"))


# --- the simulator's clock --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimClockAnchor:
    """``monitoring:sim:clock``: at wall time ``real_epoch`` simulated time was ``sim_epoch``, at ``speed``x.

    The anchor names its simulator's loopback listeners (``ib_port``, ``av_port``): a worker adopts
    the clock only when its own IB or Alpha Vantage settings point at one of them, so a simulator
    sharing a Redis with another stack never steers that stack. ``channels_port`` (the loopback
    Telegram, X and webhook stand-ins) is optional: an anchor without it, from a simulator that has no
    channels, still reads, as ``None``. No ``v``: a dead simulator's anchor lapses within seconds
    (TTL 10 s), so no old writer outlives a schema change.
    """

    real_epoch: float
    sim_epoch: float
    speed: float
    ib_port: int
    av_port: int
    channels_port: int | None = None

    @classmethod
    def of(cls, anchor: SimAnchor, *, ib_port: int, av_port: int,
           channels_port: int | None = None) -> SimClockAnchor:
        return cls(anchor.real_epoch, anchor.sim_epoch, anchor.speed, ib_port, av_port, channels_port)

    @property
    def anchor(self) -> SimAnchor:
        return SimAnchor(self.real_epoch, self.sim_epoch, self.speed)

    def to_redis(self) -> dict[str, str]:
        fields = {"real_epoch": repr(self.real_epoch), "sim_epoch": repr(self.sim_epoch), "speed": repr(self.speed),
                  "ib_port": str(self.ib_port), "av_port": str(self.av_port)}
        if self.channels_port is not None:
            fields["channels_port"] = str(self.channels_port)
        return fields

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> SimClockAnchor | Absent:
        return decode(key, raw, lambda f: cls(
            req_epoch(need(f, "real_epoch"), "real_epoch"), req_epoch(need(f, "sim_epoch"), "sim_epoch"),
            req_float(need(f, "speed"), "speed", lo=SPEED_MIN, hi=SPEED_MAX),
            req_int(need(f, "ib_port"), "ib_port", lo=1, hi=65535),
            req_int(need(f, "av_port"), "av_port", lo=1, hi=65535),
            opt_int(f.get("channels_port"), "channels_port", lo=1, hi=65535)))


def is_missing(value: object) -> bool:
    """True for an Absent that is simply not there (as opposed to unreadable)."""
    return isinstance(value, Absent) and value.reason == MISSING

