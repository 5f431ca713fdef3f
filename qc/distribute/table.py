"""`qc distribute status` formatted, pure: the tiers × channels table, the queues, the dead letters, and
the same as one JSON document (numbers as numbers, times ISO-8601 UTC, latencies in seconds of qc's
clock, simulated under `qc sim`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from qc.distribute import codec
from qc.distribute.model import ChannelName

LANE_HEADERS = ("tier", "channel", "targets", "sent", "failed", "retried", "rate limited (last wait s)",
                "uncertain", "expired", "dead", "latency p50 / p99 s", "outbox (pending)")
TIER_HEADERS = ("tier", "delay s", "queued", "next due in s")
DEAD_HEADERS = ("id", "tier", "channel", "target", "signal", "reason", "detail")


@dataclass(frozen=True)
class Lane:
    """One tier × channel: its targets, counters and latency, and its outbox."""

    tier: str
    channel: ChannelName
    targets: tuple[str, ...]
    metrics: codec.ChannelMetrics
    outbox_length: int
    outbox_pending: int


@dataclass(frozen=True)
class TierQueue:
    name: str
    delay_s: float
    depth: int
    next_due: float | None


@dataclass(frozen=True)
class Status:
    """Everything `qc distribute status` shows, at qc time ``now`` (simulated under `qc sim`)."""

    now: float
    simulated: bool
    tiers: tuple[TierQueue, ...]
    lanes: tuple[Lane, ...]
    metrics_problem: str
    dead_count: int
    dead: tuple[dict[str, Any], ...]  # report.dead_doc of each
    disabled: tuple[str, ...]
    worker: str  # "pid 123 on host, heartbeat 0.4 s ago" or why none


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def _latency(m: codec.ChannelMetrics) -> str:
    return "-" if m.latency is None else f"{m.latency.p50:.2f} / {m.latency.p99:.2f} ({m.latency.count})"


def lane_rows(status: Status) -> list[Sequence[Any]]:
    rows: list[Sequence[Any]] = []
    for lane in status.lanes:
        m = lane.metrics
        wait = f" ({m.retry_after_s:g})" if m.retry_after_s is not None else ""
        rows.append([lane.tier, lane.channel, ",".join(lane.targets) or "?", m.sent, m.failed, m.retried,
                     f"{m.rate_limited}{wait}", m.uncertain, m.expired, m.dead, _latency(m),
                     f"{lane.outbox_length} ({lane.outbox_pending})"])
    return rows


def tier_rows(status: Status) -> list[Sequence[Any]]:
    return [[t.name, f"{t.delay_s:g}", t.depth, "-" if t.next_due is None else f"{t.next_due - status.now:+.1f}"]
            for t in status.tiers]


def dead_rows(status: Status) -> list[Sequence[Any]]:
    out: list[Sequence[Any]] = []
    for doc in status.dead:
        out.append([doc["id"], doc["tier"], doc["channel"], doc["target"] or "?", doc["signal_id"] or "?",
                    doc["reason"], doc["detail"][:80]])
    return out


def summary_lines(status: Status) -> list[str]:
    clock = "simulated (qc sim)" if status.simulated else "system"
    lines = [f"qc distribute — {_iso(status.now)} ({clock} clock) — {status.worker}"]
    if status.metrics_problem:
        lines.append(f"metrics unreadable: {status.metrics_problem}")
    lines.append(f"dead letters: {status.dead_count}; disabled targets: {', '.join(status.disabled) or 'none'}")
    if any(not lane.targets for lane in status.lanes):
        lines.append("targets ?: this shell's settings do not route that tier x channel (the worker's do; under "
                     "`qc up` with no channel configured, the simulator's)")
    return lines


def to_json(status: Status) -> dict[str, Any]:
    def lane(x: Any) -> dict[str, Any]:
        m: codec.ChannelMetrics = x.metrics
        latency = None if m.latency is None else {"count": m.latency.count, "p50": m.latency.p50,
                                                  "p99": m.latency.p99, "max": m.latency.max}
        return {"tier": x.tier, "channel": x.channel, "targets": list(x.targets),
                **{name: m.count(name) for name in codec.COUNTERS}, "retry_after_s": m.retry_after_s,
                "latency_s": latency, "outbox": {"length": x.outbox_length, "pending": x.outbox_pending}}

    return {
        "as_of": _iso(status.now), "simulated_clock": status.simulated, "worker": status.worker,
        "metrics_problem": status.metrics_problem or None,
        "tiers": [{"name": t.name, "delay_s": t.delay_s, "queued": t.depth,
                   "next_due": None if t.next_due is None else _iso(t.next_due)} for t in status.tiers],
        "channels": [lane(x) for x in status.lanes],
        "dead_letters": {"count": status.dead_count, "latest": list(status.dead)},
        "disabled": list(status.disabled),
    }
