"""Batch workers step back from the CPU so the latency-critical ones do not queue behind them.

`qc analytics` (a 1-s cycle over every symbol, positioning every 30 s) and `qc chains` (parsing
whole option chains) are throughput work: a few milliseconds of scheduling delay cost them
nothing. `qc stream` (L2 ingest, p99 < 5 ms), `qc execute`, `qc risk` and `qc signals` are on the
money path, where the same delay is the tail. On one box with two cores, 100 symbols kept every
process runnable at once; the kernel's fair scheduler then shares by weight, and a niceness of 5
gives a batch worker about a third of a default process's share while it competes, and all of an
idle CPU. (Measured by ``benchmarks/bench_scale.py``; see the README's performance table.)

Lowering one's own priority needs no privilege, so this works the same under `qc up`, systemd
(``Nice=`` in a drop-in does the same from outside) and cron. ``QC_BATCH_NICE=0`` turns it off.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def step_back(name: str, nice: int) -> int:
    """Add ``nice`` to this process's niceness (0: leave it); the niceness now. Failure is logged, not fatal."""
    if nice <= 0:
        return os.nice(0)
    try:
        now = os.nice(nice)
    except OSError as exc:  # a sandbox may refuse even this: run at the inherited priority
        log.warning("%s: could not lower its CPU priority by %d (%s); running at the inherited one", name, nice, exc)
        return os.nice(0)
    log.debug("%s: niceness %d (QC_BATCH_NICE)", name, now)
    return now
