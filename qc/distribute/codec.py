"""The typed shape of every Redis value `qc distribute` writes: the queued item, the delivery record kept on
the signal's lineage, and the metrics per tier × channel.

Strict like every qc codec: a missing field, another schema version, an unknown channel or outcome, a
time that is not finite, negative or in milliseconds, a negative latency read back as ``Absent`` naming
the key and the field, never as good data.

- **Queued item** (``distribution:{tier}:queue`` members and outbox entries): :func:`delivery_to_redis`
  is one compact JSON object whose text depends only on the item, so re-adding the same item after a
  crash finds the same sorted-set member instead of a second one.
- **Delivery record**: one :class:`DeliveryRecord` per (tier, channel, target) under the signal's
  ``lineage["distribution"]`` (:func:`with_delivery`, keyed so a later outcome replaces an earlier one).
- **Metrics** (``distribution:metrics``, one hash): counters ``{tier}:{channel}:{counter}`` (HINCRBY),
  ``{tier}:{channel}:retry_after_s`` (the last wait a 429 asked for) and ``v``; latencies (sent − due,
  qc seconds) live in a capped list per tier × channel (:func:`latency_to_redis`) and are summarised
  on read (:func:`summarize`: p50 and p99 by nearest rank over the last N).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    fmt,
    loads_object,
    need,
    opt_float,
    opt_int,
    req_epoch,
    req_float,
    req_int,
    req_str,
)
from qc.distribute.model import CHANNELS, MAX_ATTEMPTS_BOUND, NAME_RE, ChannelName, Delivery, channel_of

SCHEMA = 1
FinalOutcome = Literal["sent", "done", "failed", "disabled", "uncertain", "expired"]
FINAL_OUTCOMES: tuple[FinalOutcome, ...] = ("sent", "done", "failed", "disabled", "uncertain", "expired")
COUNTERS = ("sent", "failed", "retried", "rate_limited", "uncertain", "expired", "dead")
RETRY_AFTER_FIELD = "retry_after_s"
LINEAGE_KEY = "distribution"  # beside lineage["execution"], which `qc execute` writes
MAX_LATENCY_S = 86_400.0  # sent − due beyond a day is a unit error (milliseconds) or a clock jump
MAX_REASON = 300


def _channel(raw: Any, name: str) -> ChannelName:
    return channel_of(req_str(raw, name, choices=CHANNELS))


def _name(raw: Any, name: str) -> str:
    value = req_str(raw, name, empty=False)
    if not NAME_RE.fullmatch(value):
        raise Malformed(name, f"is {value[:40]!r}, not a tier or target name")
    return value


# --- the queued item -----------------------------------------------------------------------------------

def delivery_to_redis(d: Delivery) -> str:
    """The item's JSON (fields in a fixed order: equal items give equal text)."""
    return dumps({VERSION_FIELD: SCHEMA, "signal_id": d.signal_id, "symbol": d.symbol, "tier": d.tier,
                  "channel": d.channel, "target": d.target, "due": d.due, "published": d.published,
                  "attempt": d.attempt, "first_due": d.first_due})


def _parse_delivery(raw: str) -> Delivery:
    d = loads_object(raw, "delivery")
    check_version(d, SCHEMA)
    try:
        return Delivery(
            signal_id=req_str(need(d, "signal_id"), "signal_id", empty=False),
            symbol=req_str(need(d, "symbol"), "symbol", empty=False), tier=_name(need(d, "tier"), "tier"),
            channel=_channel(need(d, "channel"), "channel"), target=_name(need(d, "target"), "target"),
            due=req_epoch(need(d, "due"), "due"), published=req_epoch(need(d, "published"), "published"),
            attempt=req_int(need(d, "attempt"), "attempt", lo=1, hi=MAX_ATTEMPTS_BOUND),
            first_due=req_epoch(need(d, "first_due"), "first_due"))
    except ValueError as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed("delivery", str(exc)) from None


def delivery_from_redis(raw: str | None, *, key: str) -> Delivery | Absent:
    return decode(key, raw, _parse_delivery)


# --- the delivery record on the signal's lineage ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """How one delivery ended: where (tier, channel, target), the outcome and why, after how many attempts,
    the last attempt's ``due`` and when it was decided (``at``), all qc epoch seconds."""

    signal_id: str
    tier: str
    channel: ChannelName
    target: str
    outcome: FinalOutcome
    attempts: int
    first_due: float
    due: float
    at: float
    status: int | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in FINAL_OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not final: one of {', '.join(FINAL_OUTCOMES)}")
        channel_of(self.channel)
        for part in (self.tier, self.target):
            if not NAME_RE.fullmatch(part):
                raise ValueError(f"{part[:40]!r} is not a tier or target name")
        if not self.signal_id:
            raise ValueError("empty signal id")
        for what, value in (("first_due", self.first_due), ("due", self.due), ("at", self.at)):
            req_epoch(value, what)  # Malformed is a ValueError
        if self.due < self.first_due:
            raise ValueError("due before first_due")
        if not 1 <= self.attempts <= MAX_ATTEMPTS_BOUND:
            raise ValueError(f"attempts {self.attempts} outside [1, {MAX_ATTEMPTS_BOUND}]")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")

    @classmethod
    def of(cls, d: Delivery, outcome: FinalOutcome, at: float, *, status: int | None = None,
           reason: str = "") -> DeliveryRecord:
        """The record of ``d``'s last attempt ending in ``outcome`` at ``at``."""
        return cls(d.signal_id, d.tier, d.channel, d.target, outcome, d.attempt, d.first_due, d.due, at, status,
                   reason[:MAX_REASON])

    @property
    def field(self) -> str:
        """``{tier}:{channel}:{target}``: the record's place in ``lineage["distribution"]``."""
        return f"{self.tier}:{self.channel}:{self.target}"

    @property
    def latency_s(self) -> float | None:
        """sent − due of the attempt that delivered (None unless ``sent``)."""
        return self.at - self.due if self.outcome == "sent" else None

    def to_doc(self) -> dict[str, Any]:
        return {VERSION_FIELD: SCHEMA, "signal_id": self.signal_id, "tier": self.tier, "channel": self.channel,
                "target": self.target, "outcome": self.outcome, "attempts": self.attempts,
                "first_due": self.first_due, "due": self.due, "at": self.at, "status": self.status,
                "reason": self.reason}

    def to_redis(self) -> str:
        return dumps(self.to_doc())

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> DeliveryRecord:
        """A record from its JSON object (Malformed naming the field when it is not one)."""
        check_version(d, SCHEMA)
        outcome = req_str(need(d, "outcome"), "outcome", choices=FINAL_OUTCOMES)
        try:
            return cls(req_str(need(d, "signal_id"), "signal_id", empty=False), _name(need(d, "tier"), "tier"),
                       _channel(need(d, "channel"), "channel"), _name(need(d, "target"), "target"),
                       next(o for o in FINAL_OUTCOMES if o == outcome),
                       req_int(need(d, "attempts"), "attempts", lo=1, hi=MAX_ATTEMPTS_BOUND),
                       req_epoch(need(d, "first_due"), "first_due"), req_epoch(need(d, "due"), "due"),
                       req_epoch(need(d, "at"), "at"), opt_int(need(d, "status"), "status", lo=100, hi=599),
                       req_str(need(d, "reason"), "reason"))
        except ValueError as exc:
            if isinstance(exc, Malformed):
                raise
            raise Malformed("delivery record", str(exc)) from None

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> DeliveryRecord | Absent:
        def parse(text: str) -> DeliveryRecord:
            return cls.from_doc(loads_object(text, "delivery record"))

        return decode(key, raw, parse)


def with_delivery(lineage: Mapping[str, Any], record: DeliveryRecord) -> dict[str, Any]:
    """``lineage`` with ``record`` under ``lineage["distribution"][record.field]`` (replacing an earlier outcome
    there); the rest of the lineage is kept."""
    out = dict(lineage)
    existing = out.get(LINEAGE_KEY)
    deliveries = dict(existing) if isinstance(existing, Mapping) else {}
    deliveries[record.field] = record.to_doc()
    out[LINEAGE_KEY] = deliveries
    return out


def deliveries_of(lineage: Mapping[str, Any], *, key: str) -> tuple[DeliveryRecord, ...] | Absent:
    """Every delivery record on a signal's lineage (none yet: an empty tuple; one broken: Absent)."""
    def parse(doc: Mapping[str, Any]) -> tuple[DeliveryRecord, ...]:
        raw = doc.get(LINEAGE_KEY, {})
        if not isinstance(raw, Mapping):
            raise Malformed(LINEAGE_KEY, "is not an object")
        out = []
        for name, item in sorted(raw.items()):
            if not isinstance(item, Mapping):
                raise Malformed(f"{LINEAGE_KEY}.{name}", "is not an object")
            record = DeliveryRecord.from_doc(item)
            if record.field != name:
                raise Malformed(f"{LINEAGE_KEY}.{name}", f"holds the record of {record.field}")
            out.append(record)
        return tuple(out)

    if LINEAGE_KEY not in lineage:
        return ()
    return decode(key, dict(lineage), parse)


# --- metrics -----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Recent latencies (sent − due, qc seconds): how many, p50 and p99 by nearest rank, and the worst."""

    count: int
    p50: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank on sorted values: an observed value, never an interpolation (q in (0, 1])."""
    if not ordered or not 0.0 < q <= 1.0:
        raise ValueError(f"percentile {q!r} of {len(ordered)} values")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(latencies: Iterable[float]) -> LatencySummary | None:
    ordered = sorted(latencies)
    if not ordered:
        return None
    return LatencySummary(len(ordered), percentile(ordered, 0.50), percentile(ordered, 0.99), ordered[-1])


def latency_to_redis(latency_s: float) -> str:
    """One latency list item, in seconds (microsecond precision); a negative one means a send before its
    due time, which the design forbids: refused here, loudly, rather than stored."""
    value = req_float(latency_s, "latency_s", lo=0.0, hi=MAX_LATENCY_S)
    return f"{value:.6f}"


def latencies_from_redis(raw: Sequence[str | bytes] | None, *, key: str) -> tuple[float, ...] | Absent:
    """The latency list (newest first, as LPUSH leaves it); one bad item makes the whole list Absent."""
    def parse(items: Sequence[str | bytes]) -> tuple[float, ...]:
        out = []
        for n, item in enumerate(items):
            text = item.decode() if isinstance(item, bytes) else item
            out.append(req_float(text, f"latency[{n}]", lo=0.0, hi=MAX_LATENCY_S))
        return tuple(out)

    return decode(key, list(raw) if raw is not None else None, parse)


@dataclass(frozen=True, slots=True)
class ChannelMetrics:
    """One tier × channel: counters, the last ``retry_after`` seen, and (from the latency list) a summary."""

    tier: str
    channel: ChannelName
    sent: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    uncertain: int = 0
    expired: int = 0
    dead: int = 0
    retry_after_s: float | None = None
    latency: LatencySummary | None = None

    def count(self, name: str) -> int:
        if name not in COUNTERS:
            raise ValueError(f"unknown counter {name!r}")
        value: int = getattr(self, name)
        return value

    def with_latencies(self, latencies: Iterable[float]) -> ChannelMetrics:
        return ChannelMetrics(self.tier, self.channel, self.sent, self.failed, self.retried, self.rate_limited,
                              self.uncertain, self.expired, self.dead, self.retry_after_s, summarize(latencies))


def metric_field(tier: str, channel: ChannelName, name: str) -> str:
    """``{tier}:{channel}:{name}``, the hash field of one figure (names never hold ':')."""
    if not NAME_RE.fullmatch(tier) or channel not in CHANNELS or (name not in COUNTERS and name != RETRY_AFTER_FIELD):
        raise ValueError(f"no metric field {tier!r}:{channel!r}:{name!r}")
    return f"{tier}:{channel}:{name}"


def metrics_to_redis(rows: Iterable[ChannelMetrics]) -> dict[str, str]:
    """The whole hash (the glue usually HINCRBYs one field; this is the shape it adds to, with ``v``)."""
    out = {VERSION_FIELD: str(SCHEMA)}
    for row in rows:
        for name in COUNTERS:
            out[metric_field(row.tier, row.channel, name)] = fmt(row.count(name))
        if row.retry_after_s is not None:
            out[metric_field(row.tier, row.channel, RETRY_AFTER_FIELD)] = fmt(row.retry_after_s)
    return out


def _parse_metrics(raw: Mapping[str, str]) -> tuple[ChannelMetrics, ...]:
    check_version(raw, SCHEMA)
    figures: dict[tuple[str, ChannelName], dict[str, Any]] = {}
    for name, value in raw.items():
        if name == VERSION_FIELD:
            continue
        tier, _, rest = name.partition(":")
        channel, _, figure = rest.partition(":")
        if not NAME_RE.fullmatch(tier) or channel not in CHANNELS or \
                (figure not in COUNTERS and figure != RETRY_AFTER_FIELD):
            raise Malformed(name[:60], "is not a {tier}:{channel}:{counter} field")
        row = figures.setdefault((tier, channel_of(channel)), {})
        if figure == RETRY_AFTER_FIELD:
            row[figure] = opt_float(value, name, lo=0.0, hi=MAX_LATENCY_S)  # a day: as policy.MAX_RETRY_AFTER_S
        else:  # HINCRBY creates a counter on first use: an absent one was never counted (0)
            row[figure] = req_int(value, name, lo=0)
    return tuple(ChannelMetrics(tier, channel, **row) for (tier, channel), row in sorted(figures.items()))


def metrics_from_redis(raw: Mapping[str, str] | None, *, key: str) -> tuple[ChannelMetrics, ...] | Absent:
    """Every tier × channel row of the hash, sorted; latency summaries are added from the lists
    (:meth:`ChannelMetrics.with_latencies`)."""
    return decode(key, dict(raw) if raw is not None else None, _parse_metrics)
