"""What each simulated channel received: every request with its target, text or body, webhook id,
simulated and wall receive time and the status answered; and the counters over them.

Why at the receiver: the delivery promises (each target gets each signal exactly once, no limit is
ever exceeded) are proved by counting where the messages land, not by trusting the sender's metrics.
Not thread-safe: the server's lock serialises every call.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHANNELS = ("telegram", "x", "webhook")
DELIVERED = "delivered"
HISTORY = 100_000  # requests kept per channel for the query; the counters count every one


@dataclass(frozen=True)
class Received:
    """One request as the channel saw it. ``outcome`` is ``delivered`` or why not (``too_long``,
    ``rate_limited``, ``injected_503``, …); ``timed_out``: delivered, then answered too late on purpose."""

    target: str
    status: int
    outcome: str
    sim_time: float
    wall_time: float
    text: str | None = None
    body: str | None = None
    webhook_id: str | None = None
    timed_out: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return self.outcome == DELIVERED

    def row(self) -> dict[str, Any]:
        return {"target": self.target, "text": self.text, "body": self.body, "webhook_id": self.webhook_id,
                "sim_time": self.sim_time, "wall_time": self.wall_time, "status": self.status,
                "outcome": self.outcome, "delivered": self.delivered, "timed_out": self.timed_out,
                **self.details}


@dataclass
class _Counts:
    requests: int = 0
    accepted: int = 0
    timeouts: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    delivered: dict[str, Counter[str]] = field(default_factory=dict)


class Ledger:
    """Per channel: the last ``history`` requests and exact counters since start."""

    def __init__(self, history: int = HISTORY) -> None:
        self._rows: dict[str, deque[Received]] = {ch: deque(maxlen=history) for ch in CHANNELS}
        self._counts = {ch: _Counts() for ch in CHANNELS}

    def record(self, channel: str, item: Received, violated: Sequence[str] = ()) -> None:
        """Count one request; ``violated`` names the limits it tried to exceed (it was refused)."""
        counts = self._counts[channel]
        self._rows[channel].append(item)
        counts.requests += 1
        counts.timeouts += item.timed_out
        counts.violations.update(violated)
        if item.delivered:
            counts.accepted += 1
            key = item.webhook_id if channel == "webhook" else item.text
            counts.delivered.setdefault(item.target, Counter())[key or ""] += 1
        else:
            counts.refused[item.outcome] += 1

    def summary(self, channel: str) -> dict[str, Any]:
        """The counters: requests, accepted, refused (total and by reason), limit violations, timeouts."""
        c = self._counts[channel]
        return {"requests": c.requests, "accepted": c.accepted, "refused": sum(c.refused.values()),
                "timeouts": c.timeouts, "refused_by_reason": dict(c.refused),
                "limit_violations": dict(c.violations)}

    def view(self, channel: str) -> dict[str, Any]:
        """The counters, the dedupe view (per target, how often each text, or for webhooks each
        ``webhook-id``, was delivered) and every request kept."""
        c = self._counts[channel]
        return {**self.summary(channel),
                "delivered": {target: dict(keys) for target, keys in c.delivered.items()},
                "received": [item.row() for item in self._rows[channel]]}
