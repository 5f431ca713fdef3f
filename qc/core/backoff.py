"""Capped, jittered exponential backoff: one rule for workers, the supervisor and the IB adapter.

Full jitter below a cap (as rq and arq do) so a fleet restarting after a Redis or gateway outage
does not reconnect in lockstep.
"""

from __future__ import annotations

import random


def backoff_s(attempt: int, base_s: float = 0.5, cap_s: float = 30.0, jitter: float = 0.5,
              rand: float | None = None) -> float:
    """Exponential backoff capped at ``cap_s``, minus up to ``jitter`` of it at random (attempt ≥ 1)."""
    ceiling = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    draw = random.random() if rand is None else rand
    return ceiling * (1.0 - jitter * draw)
