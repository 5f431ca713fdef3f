"""A whole stack for `qc signals`' integration tests: its own Redis, `qc sim`, and every worker as a process.

Each stack owns a redis-server (so a module can keep state across its tests without the shared
``store`` fixture's flush) and the simulator; workers are started and stopped by name. Reads go
through the signals codec, as an operator's `qc signals explain` would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.core.config import Settings
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import connect
from qc.signals.codec import LastEvaluation, Signal

from .conftest import RedisServer, eventually
from .stream_harness import SimProcess, start_sim, stop_process


class Stack:
    """Redis + `qc sim` + workers (`qc stream`, `chains`, `analytics`, `signals`) on loopback."""

    def __init__(self, tmp: Path, sim_args: Sequence[str], symbols: str = "SPY",
                 extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.redis = RedisServer(tmp / "redis")
        self.redis.start()
        self.store = connect(Settings(redis_url=self.redis.url))
        self.sim: SimProcess = start_sim(self.redis.url, tmp, ["--symbols", symbols, *sim_args])
        eventually(lambda: self.store.hgetall(keys.sim_clock()), timeout_s=10)
        self.env = {**os.environ, "QC_REDIS_URL": self.redis.url, "QC_IB_PORT": str(self.sim.port("ib")),
                    "QC_ALPHA_VANTAGE_URL": f"http://127.0.0.1:{self.sim.port('alpha vantage')}/query",
                    "QC_ALPHA_VANTAGE_API_KEY": "sim", "QC_SYMBOLS": symbols, "QC_DATA_DIR": str(tmp / "var"),
                    **(extra_env or {})}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._client_ids = iter(range(60, 200))

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """``qc <verb> args`` as ``name`` (the verb is the name's part before any ``#``)."""
        verb = name.split("#")[0]
        log = (self.tmp / f"{name.replace('#', '-')}.log").open("a")
        proc = subprocess.Popen([sys.executable, "-m", "qc", verb, *args], cwd=self.tmp, text=True,
                                env={**self.env, "QC_IB_CLIENT_ID": str(next(self._client_ids)), **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> int:
        return stop_process(self.procs.pop(name))

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        stop_process(self.sim.proc)
        self.store.close()
        self.redis.kill()

    # --- reads, through the signals codec ---------------------------------------------------

    def evaluation(self, strategy: str, symbol: str = "SPY") -> LastEvaluation | Absent:
        key = keys.signals_last(symbol).name
        return LastEvaluation.from_redis(self.store.client.hget(key, strategy), key=f"{key}[{strategy}]")

    def signals(self, symbol: str = "SPY") -> list[Signal]:
        """Every signal on the pending list, oldest first."""
        key = keys.signals_pending(symbol).name
        got = [Signal.from_redis(raw, key=key) for raw in self.store.client.lrange(key, 0, -1)]
        assert all(isinstance(s, Signal) for s in got), got
        return [s for s in reversed(got) if isinstance(s, Signal)]

    def sim_now(self) -> datetime:
        anchor = SimClockAnchor.from_redis(self.store.hgetall(keys.sim_clock()), key=keys.sim_clock().name)
        assert not isinstance(anchor, Absent), anchor
        return datetime.fromtimestamp(anchor.anchor.sim_at(clock.wall_epoch()), timezone.utc)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name.replace('#', '-')}.log").read_text()


def factor(e: LastEvaluation, name: str) -> float | None:
    return next((c.value for c in e.contributions if c.name == name), None)


def factor_reason(e: LastEvaluation, name: str) -> str:
    return next((c.reason for c in e.contributions if c.name == name), "")
