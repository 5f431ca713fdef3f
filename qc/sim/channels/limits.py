"""Sliding-window send limits, pure: the arithmetic behind the simulated channels' 429s.

Kept apart and free of I/O because the promise "what was let through never exceeds a limit" is
proved with hypothesis over arbitrary send times; time is passed in (simulated seconds), so the same
code serves any ``--speed``.

A window of ``window_s`` at ``now`` holds the admitted times ``t`` with ``now - window_s < t <= now``:
an admission at ``t`` frees its slot at exactly ``t + window_s``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HISTORY = 100_000  # admitted times kept per scope for max_admitted(): a whole test burst and more


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` admissions per ``window_s`` seconds within one scope (a chat, a bot, a user)."""

    name: str
    count: int
    window_s: float

    def __post_init__(self) -> None:
        if self.count < 1 or not math.isfinite(self.window_s) or self.window_s <= 0:
            raise ValueError(f"limit {self.name}: need count >= 1 and a finite window_s > 0, "
                             f"got {self.count} per {self.window_s}")


@dataclass(frozen=True, slots=True)
class Admission:
    """One decision. ``wait_s``: when refused, seconds until every full window has a free slot (else 0).

    ``remaining`` and ``reset_at`` describe the tightest limit after the decision: slots left, and the
    time its oldest admission frees a slot (``now`` when its window is empty), as X's rate headers do.
    """

    admitted: bool
    violated: tuple[str, ...]
    wait_s: float
    remaining: int
    reset_at: float

    @property
    def retry_after(self) -> int:
        """``wait_s`` as the whole seconds a channel announces: rounded up, at least 1."""
        return max(1, math.ceil(self.wait_s))


class Windows:
    """Admitted times per (limit, scope). Not thread-safe: the caller serialises (the server's lock).

    Times that run backwards (a wall-clock step under the simulated clock) are clamped to the latest
    seen, so the windows stay ordered and a limit cannot be dodged by time going back.
    """

    def __init__(self, history: int = HISTORY) -> None:
        self._recent: dict[tuple[Limit, str], deque[float]] = {}
        self._log: dict[tuple[Limit, str], deque[float]] = {}
        self._history = history
        self._latest = -math.inf

    def admit(self, now: float, scopes: Sequence[tuple[Limit, str]]) -> Admission:
        """Admit at ``now`` when every (limit, scope) has room, recording it in all of them; else refuse."""
        if not scopes:
            raise ValueError("admit needs at least one (limit, scope)")
        now = max(now, self._latest)
        self._latest = now
        windows = [(limit, self._window(limit, scope, now)) for limit, scope in scopes]
        full = [(limit, q) for limit, q in windows if len(q) >= limit.count]
        if full:
            wait = max(q[len(q) - limit.count] + limit.window_s - now for limit, q in full)
            resets = [q[0] + limit.window_s for limit, q in full]
            return Admission(False, tuple(limit.name for limit, _ in full), max(0.0, wait), 0, max(resets))
        for (limit, scope), (_, q) in zip(scopes, windows, strict=True):
            q.append(now)
            self._log.setdefault((limit, scope), deque(maxlen=self._history)).append(now)
        limit, q = min(windows, key=lambda w: w[0].count - len(w[1]))
        return Admission(True, (), 0.0, limit.count - len(q), q[0] + limit.window_s)

    def max_admitted(self) -> dict[str, dict[str, int]]:
        """Per limit name and scope, the most admissions inside any one window: never above the count."""
        out: dict[str, dict[str, int]] = {}
        for (limit, scope), times in self._log.items():
            out.setdefault(limit.name, {})[scope] = max_in_window(times, limit.window_s)
        return out

    def _window(self, limit: Limit, scope: str, now: float) -> deque[float]:
        q = self._recent.setdefault((limit, scope), deque())
        while q and q[0] <= now - limit.window_s:
            q.popleft()
        return q


def max_in_window(times: Iterable[float], window_s: float) -> int:
    """The most of the (sorted) ``times`` inside any one half-open window of ``window_s`` (two pointers)."""
    ts, best, lo = list(times), 0, 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
