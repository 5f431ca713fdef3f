"""Fault switches for the simulated channels, set from `qc sim ctl`: fail the next N requests with a
status, hold the next N answers past the client's timeout, treat a Telegram chat as unknown.

Why: a sender's retry, backoff and "timed out but maybe delivered" paths only run when the channel
misbehaves on cue. Not thread-safe: the server's lock serialises every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qc.sim.channels.ledger import CHANNELS

FAIL, TIMEOUT = "fail", "timeout"
FAIL_STATUSES: dict[str, frozenset[int]] = {
    "telegram": frozenset({403, 429, 500, 502, 503}),  # 403: "bot was blocked by the user"
    "x": frozenset({429, 500, 502, 503}),
    "webhook": frozenset({410, 429, 500, 502, 503}),  # 410: the receiver asks to be disabled
}


@dataclass
class Switch:
    """``remaining`` more requests to ``channel`` (only to ``target`` when set) get this fault."""

    kind: str
    remaining: int
    target: str | None = None
    status: int = 0
    retry_after_s: float = 0.0
    delay_s: float = 0.0

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "remaining": self.remaining, "target": self.target, "status": self.status,
                "retry_after_s": self.retry_after_s, "delay_s": self.delay_s}


class Switches:
    """Pending faults per channel, first set first used, and the Telegram chats that are "not found"."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Switch]] = {ch: [] for ch in CHANNELS}
        self.missing_chats: set[str] = set()

    def add(self, channel: str, switch: Switch) -> None:
        """Queue a switch; ValueError naming the argument when it cannot apply to ``channel``."""
        if channel not in CHANNELS:
            raise ValueError(f"channel: unknown {channel!r}; known: {', '.join(CHANNELS)}")
        if switch.remaining < 1:
            raise ValueError(f"n: must be >= 1, got {switch.remaining}")
        if switch.kind == FAIL and switch.status not in FAIL_STATUSES[channel]:
            allowed = ", ".join(str(s) for s in sorted(FAIL_STATUSES[channel]))
            raise ValueError(f"status: {switch.status} is not a {channel} failure; one of {allowed}")
        if switch.retry_after_s < 0:
            raise ValueError(f"retry_after: must be >= 0, got {switch.retry_after_s}")
        if switch.kind == TIMEOUT and switch.delay_s <= 0:
            raise ValueError(f"seconds: a timeout holds the answer for > 0 s, got {switch.delay_s}")
        self._pending[channel].append(switch)

    def take(self, channel: str, kind: str, target: str) -> Switch | None:
        """Use up one request of the first pending ``kind`` switch for ``target`` (or for any target)."""
        for switch in self._pending[channel]:
            if switch.kind == kind and switch.target in (None, target):
                switch.remaining -= 1
                if switch.remaining == 0:
                    self._pending[channel].remove(switch)
                return switch
        return None

    def draw(self, channel: str, target: str) -> tuple[Switch | None, float]:
        """For one request: the failure switch it meets, if any; else the real seconds to hold its
        answer (0 unless a timeout switch applies). A failed request does not use up a timeout."""
        failure = self.take(channel, FAIL, target)
        if failure is not None:
            return failure, 0.0
        timeout = self.take(channel, TIMEOUT, target)
        return None, 0.0 if timeout is None else timeout.delay_s

    def clear(self) -> int:
        """Remove every switch and "not found" chat; return how many there were."""
        count = sum(len(p) for p in self._pending.values()) + len(self.missing_chats)
        for pending in self._pending.values():
            pending.clear()
        self.missing_chats.clear()
        return count

    def view(self) -> dict[str, Any]:
        return {"pending": {ch: [s.row() for s in p] for ch, p in self._pending.items()},
                "missing_chats": sorted(self.missing_chats)}
