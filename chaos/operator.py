"""The one operator action the chaos run plays: `qc risk resume` after a Redis restart, once it is safe.

Why: a Redis restart latches the account REDUCING (``redis_restarted``: "reconcile with IB, then
resume"), and nothing in qc lowers that latch by itself, so without an operator a session with a
Redis kill at 10:30 would open no position after it and the end checks would judge an idle
executor. The runbook's operator resumes once the executor has reconciled with the broker after
the restart; so does this thread, and only for that cause: any other latch (a HALT from the
rejects breaker, a loss limit) is left alone for the report to show. Every action is recorded.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qc.core import clock, keys
from qc.risk.codec import latch_from_redis
from qc.risk.state import Latch, TradingState
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

ACCOUNT = "default"
ACCOUNT_SCOPE = "account"  # qc.risk.cycle.latches.ACCOUNT_SCOPE
CAUSE = "redis_restarted"
GIVE_UP_S = 180.0


@dataclass(frozen=True)
class Action:
    t: float
    what: str


def latched_by_redis(latch: Latch) -> bool:
    """Pure: the account latch is the Redis-restart one (REDUCING, cause redis_restarted) and nothing stricter."""
    return latch.state is TradingState.REDUCING and latch.cause == CAUSE


def reconciled_after(status: Mapping[str, str], sim_epoch: float) -> bool:
    """Pure: the executor's status hash says it is trading and last reconciled at or after ``sim_epoch``."""
    last = status.get("last_reconcile")
    if not last or status.get("state") != "trading":
        return False
    return datetime.fromisoformat(last).timestamp() >= sim_epoch


class Operator:
    """After each Redis kill (``restarted(sim_epoch)``), resume the account once the executor reconciled."""

    def __init__(self, store: Store, root: Path, env: Mapping[str, str]) -> None:
        self.store, self.root, self.env = store, root, dict(env)
        self.actions: list[Action] = []
        self.stop = threading.Event()
        self._pending: list[tuple[float, float]] = []  # (sim epoch of the kill, wall deadline)
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="chaos-operator", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def restarted(self, sim_epoch: float) -> None:
        with self._lock:
            self._pending.append((sim_epoch, clock.monotonic() + GIVE_UP_S))

    def _run(self) -> None:
        while not clock.real_sleep(1.0, self.stop):
            with self._lock:
                pending = list(self._pending)
            if not pending:
                continue
            since, deadline = pending[-1]  # the latest kill is what must be reconciled past
            try:
                done = self._try(since)
            except REDIS_ERRORS as exc:
                log.info("chaos operator: Redis not answering yet (%s)", exc)
                done = False
            if done or clock.monotonic() > deadline:
                if not done:
                    self.actions.append(Action(clock.wall_epoch(), f"gave up after {GIVE_UP_S:g} s: the executor "
                                                                   "did not reconcile, or the latch is not Redis's"))
                with self._lock:
                    self._pending.clear()

    def _try(self, since: float) -> bool:
        """False: not yet (the executor has not reconciled since the kill); True: resumed, or nothing to resume."""
        if not reconciled_after(self.store.hgetall(keys.execution_status(ACCOUNT)), since):
            return False
        key = keys.trading_state(ACCOUNT)
        raw = self.store.client.hget(key.name, ACCOUNT_SCOPE)
        latch = latch_from_redis(raw, key=f"{key.name}[{ACCOUNT_SCOPE}]")
        if not isinstance(latch, Latch) or not latched_by_redis(latch):
            shown = f"{latch.state.name} {latch.cause}" if isinstance(latch, Latch) else str(latch)
            self.actions.append(Action(clock.wall_epoch(), f"nothing to resume: the account latch is {shown}"))
            return True
        done = subprocess.run([sys.executable, "-m", "qc", "risk", "resume", "--by", "chaos",
                               "--reason", "chaos operator: Redis restarted from its AOF, the executor reconciled"],
                              cwd=self.root, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        said = (done.stdout or done.stderr).strip().splitlines()
        self.actions.append(Action(clock.wall_epoch(), f"qc risk resume: exit {done.returncode}: "
                                                       f"{said[-1][:160] if said else ''}"))
        return done.returncode == 0

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
