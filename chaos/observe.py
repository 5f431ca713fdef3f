"""Watching the stack during the run: a health sample every half second, and a steady pump of signals.

Why in-process rather than spawning `qc status --json` twice a second: each `qc` start costs most of
a second of CPU on this 2-core machine, which would itself slow the stack under test. A sample reads
exactly what `qc status --json` reads, through the same functions (``qc.runtime.health.read`` and
``evaluate``, ``qc.distribute.report.health``), plus the counters that show faults `qc status` has no
row for (Alpha Vantage responses, delivery retries, IB reconnects). Redis unreachable is a sample
too (``reachable`` False): that is how a killed Redis is seen.

The pump publishes a signal every ``every_s`` real seconds through ``qc.signals.cycle.publish.Publisher``,
built from the chain in Redis as ``tests.integration.test_dashboard_browser.a_signal`` builds one, so
execution and distribution have work all session even when `qc signals` fires rarely.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.distribute import codec as distribute_codec
from qc.distribute import report as distribute_report
from qc.risk.codec import latch_from_redis
from qc.risk.cycle.latches import ACCOUNT_SCOPE
from qc.risk.state import REDIS_RESTARTED, Latch, TradingState
from qc.runtime import health
from qc.runtime.codec import AlphaVantageMetrics
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 0.5
ACCOUNT = "default"  # `qc up`'s account when none is configured


@dataclass(frozen=True)
class Child:
    pid: int | None
    state: str
    restarts: int


@dataclass(frozen=True)
class Sample:
    """What the stack looked like at wall time ``t``; ``reachable`` False: Redis did not answer."""

    t: float
    reachable: bool
    state: str = "unreachable"  # healthy | warning | unhealthy | unreachable
    failing: tuple[str, ...] = ()  # checks not ok (`qc status` ALERT rows)
    beats: dict[str, float] = field(default_factory=dict)  # module -> wall epoch of its last heartbeat
    children: dict[str, Child] = field(default_factory=dict)
    ibkr: bool | None = None
    stale: tuple[str, ...] = ()  # "{SYM}:{feed}" in monitoring:data:stale (any age)
    reconnects: int = 0  # monitoring:ingest:recoveries "reconnects"
    av_bad: int = 0  # Alpha Vantage responses not "ok", plus chain failures
    av_ok_at: float = 0.0  # newest good chain (wall epoch)
    dist_bad: dict[str, int] = field(default_factory=dict)  # channel -> retried + rate_limited + failed + uncertain
    dist_sent: dict[str, int] = field(default_factory=dict)  # channel -> sent
    redis_latched: bool = False  # the account is latched REDUCING by a Redis restart (``redis_restarted``)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Sample:
        children = {k: Child(**v) for k, v in doc.get("children", {}).items()}
        return cls(**{**doc, "children": children, "failing": tuple(doc.get("failing", ())),
                      "stale": tuple(doc.get("stale", ()))})


def _int(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        return 0


def take_sample(store: Store, now: float) -> Sample:
    """One reading of the monitoring keys (Redis errors: an unreachable sample)."""
    try:
        readings = health.read(store, now, ACCOUNT)
        checks = health.evaluate(readings) + distribute_report.health(store)
        recoveries = store.hgetall(keys.ingest_recoveries())
        av_key = keys.alpha_vantage_metrics()
        av = AlphaVantageMetrics.from_redis(store.hgetall(av_key), key=av_key.name)
        dist_key = keys.distribution_metrics()
        dist = distribute_codec.metrics_from_redis(store.hgetall(dist_key), key=dist_key.name)
        latch_key = keys.trading_state(ACCOUNT)
        latch = latch_from_redis(store.client.hget(latch_key.name, ACCOUNT_SCOPE), key=latch_key.name)
    except REDIS_ERRORS:
        return Sample(now, False)
    av_bad, av_ok_at = 0, 0.0
    if isinstance(av, AlphaVantageMetrics):
        av_bad = av.chain_failures + sum(n for kind, n in av.responses.items() if kind != "ok")
        av_ok_at = max((c.ok_at or 0.0 for c in av.chains.values()), default=0.0)
    bad: dict[str, int] = {}
    sent: dict[str, int] = {}
    if not isinstance(dist, Absent):
        for row in dist:
            bad[row.channel] = bad.get(row.channel, 0) + row.retried + row.rate_limited + row.failed + row.uncertain
            sent[row.channel] = sent.get(row.channel, 0) + row.sent
    return Sample(
        t=now, reachable=True, state=health.state_of(checks), failing=tuple(c.check for c in checks if not c.ok),
        beats={m: b for m, b in readings.heartbeats.items() if isinstance(b, float)},
        children={n: Child(c.pid, c.state, c.restarts) for n, c in readings.children.items()},
        ibkr=readings.ibkr_connected if isinstance(readings.ibkr_connected, bool) else None,
        stale=tuple(sorted(readings.stale)) if not isinstance(readings.stale, Absent) else (),
        reconnects=_int(recoveries.get("reconnects", 0)), av_bad=av_bad, av_ok_at=av_ok_at, dist_bad=bad,
        dist_sent=sent, redis_latched=isinstance(latch, Latch) and latched_by_redis(latch))


def latched_by_redis(latch: Latch) -> bool:
    """Pure: the account latch is the Redis-restart one (REDUCING, cause ``redis_restarted``), which the executor
    lowers itself once it has reconciled cleanly against the new server (no operator is played)."""
    return latch.state is TradingState.REDUCING and latch.cause == REDIS_RESTARTED


class Poller:
    """Samples every ``SAMPLE_EVERY_S`` in a thread; every sample also goes to ``path`` as a JSON line."""

    def __init__(self, store: Store, path: Path) -> None:
        self.store, self.path = store, path
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="chaos-poller", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self.stop.is_set():
                began = clock.monotonic()
                sample = take_sample(self.store, clock.wall_epoch())
                with self._lock:
                    self.samples.append(sample)
                out.write(json.dumps(sample.to_json()) + "\n")
                out.flush()
                clock.real_sleep(max(0.0, SAMPLE_EVERY_S - (clock.monotonic() - began)), self.stop)

    def last(self) -> Sample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@dataclass(frozen=True)
class Pumped:
    """One attempt of the pump: when, the claim's result (emitted, duplicate, healed) or the error."""

    t: float
    signal_id: str
    result: str


class SignalPump:
    """Publishes ``make()``'s signal every ``every_s`` real seconds, as `qc signals` would (Publisher.claim)."""

    def __init__(self, publish: Callable[[], tuple[str, str]], every_s: float) -> None:
        self.publish, self.every_s = publish, every_s
        self.pumped: list[Pumped] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chaos-pump", daemon=True)

    def start(self) -> None:
        if self.every_s > 0:
            self.thread.start()

    def _run(self) -> None:
        while not clock.real_sleep(self.every_s, self.stop):
            now = clock.wall_epoch()
            try:
                signal_id, result = self.publish()
            except (*REDIS_ERRORS, AssertionError, ValueError) as exc:  # Redis down, no chain yet: next time
                log.info("chaos pump: no signal this time: %s", exc)
                self.pumped.append(Pumped(now, "", f"skipped: {type(exc).__name__}: {str(exc)[:120]}"))
                continue
            self.pumped.append(Pumped(now, signal_id, result))

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=30)

    def emitted(self) -> list[str]:
        return [p.signal_id for p in self.pumped if p.result.split(" ")[0] in ("emitted", "healed") and p.signal_id]
