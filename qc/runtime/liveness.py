"""Is a long-running worker of this name alive right now? The guard `--once` runs consult.

A `--once` run beside the live worker of the same verb must never clobber its state (the live VPIN,
the connection flag, the heartbeat). A worker is live when it is registered (a long-running worker
registers; a `--once` run never does) and its heartbeat is younger than the status alert threshold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qc.core import keys
from qc.runtime.codec import Heartbeat, WorkerEntry, WorkerRegistry
from qc.runtime.store import Store

LIVE_HEARTBEAT_S = 30.0  # the same age `qc status` alerts past


@dataclass(frozen=True)
class LiveWorker:
    """The registered entry of a live worker and its heartbeat's age."""

    name: str
    entry: WorkerEntry
    age_s: float

    def describe(self) -> str:
        return f"pid {self.entry.pid} on {self.entry.host}, heartbeat {self.age_s:.1f} s ago"


def live_worker(store: Store, name: str, now_epoch: float) -> LiveWorker | None:
    """The live long-running worker called ``name``, or None (unregistered, silent, or unreadable)."""
    registry_key, beat_key = keys.worker_registry(), keys.heartbeat(name)
    registry = WorkerRegistry.from_redis(store.hgetall(registry_key), key=registry_key.name)
    if not isinstance(registry, WorkerRegistry) or name not in registry.workers:
        return None
    beat = Heartbeat.from_redis(store.get(beat_key), key=beat_key.name)
    if not isinstance(beat, Heartbeat):
        return None
    age = now_epoch - beat.at_epoch
    return LiveWorker(name, registry.workers[name], max(0.0, age)) if age <= LIVE_HEARTBEAT_S else None


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs on this host (a zombie awaiting its parent counts as gone: its
    sockets are closed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")
