"""Time to detect and to heal each fault, and the compressed health timeline. Pure: samples in, figures out.

Why these definitions: *detected* is the first health sample after the injection in which a signal
an operator watches shows the fault (a `qc status` row or the key behind it: a `qc up` child not
running or restarted, ``ibkr:connected`` 0, a stale feed, Redis unreachable, error counters of Alpha
Vantage or a channel); *healed* is the first later sample in which the things that fault touched
are well again (the child runs under a new pid and has beaten since; IB connected with no stale
feed and a fresh ingestion heartbeat; every worker has written to the restarted Redis; a good chain
or a sent delivery after the errors). Detection is timed from the injection, healing from the end
of the fault (injection + its hold), so a 10-s refusal is not counted as 10 s of healing.
A fault no signal shows within ``SEEN_WITHIN_S`` of its end counts as unseen (a later signal belongs to
another event); one seen and not healed within ``HORIZON_S`` of its end is a failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from chaos.observe import Sample
from chaos.schedule import IB_KINDS, Fault

HORIZON_S = 180.0  # real seconds after the end of a fault within which it must heal
SEEN_WITHIN_S = 60.0  # real seconds after the end of a fault within which a signal must show it (else: unseen;
# a later signal is another event's: the pump's next delivery is at most 20 s away, a 10-s send timeout on top)
INGESTION = "ibkr_ingestion"
MODULE_OF = {"stream": INGESTION}  # `qc up` child -> its heartbeat's module (qc.runtime.health.CHILD_MODULES)
STALE_FEED = {"ticks": "trades"}  # `qc sim ctl silence` feed -> the feed `qc stream` marks stale
# a worker whose heartbeat was this fresh before Redis died must write to the new one to heal it (`qc chains`
# beats once per chain cycle, tens of seconds apart at 30x: its next cycle is no measure of Redis)
BEATING_S = 5.0


@dataclass(frozen=True)
class Injected:
    """A fault as it was applied: wall time, whether the injection itself worked, and what it did."""

    fault: Fault
    t: float
    ok: bool
    detail: str = ""
    pid: int | None = None  # the process killed, for the kills

    @property
    def end(self) -> float:
        return self.t + self.fault.hold_s


@dataclass(frozen=True)
class Outcome:
    """Per injected fault: what showed it and when (s after injection), and when it healed (s after its end)."""

    index: int
    fault_class: str
    detected_by: str | None
    detect_s: float | None
    heal_s: float | None

    @property
    def seen(self) -> bool:
        return self.detected_by is not None

    @property
    def healed(self) -> bool:
        return self.heal_s is not None


def _stale_key(fault: Fault) -> str:
    sym, _, feed = fault.target.partition(":")
    return f"{sym}:{STALE_FEED.get(feed, feed)}"


def _detect_redis(s: Sample, base: Sample | None) -> str | None:
    if not s.reachable:
        return "redis unreachable"
    went_back = base is not None and any(s.beats.get(m, 0.0) < b - 1.0 for m, b in base.beats.items() if m in s.beats)
    return "heartbeats went back (Redis restarted from its AOF)" if went_back else None


def _detect_kill(f: Fault, s: Sample, base: Sample | None) -> str | None:
    child, before = s.children.get(f.target), base.children.get(f.target) if base else None
    if f"qc up child {f.target}" in s.failing and child is not None:
        return f"qc status: qc up child {f.target} {child.state}"
    if child is not None and before is not None and child.restarts > before.restarts:
        return f"supervisor: {f.target} restarts {before.restarts} -> {child.restarts}"
    return None


def _detect_ib(s: Sample, base: Sample | None) -> str | None:
    if s.ibkr is False:
        return "ibkr:connected 0"
    if s.stale:
        return f"stale feed {s.stale[0]}"
    if base is not None and s.reconnects > base.reconnects:
        return "ingest reconnects +1"
    return None


def _detect_counters(f: Fault, s: Sample, base: Sample | None) -> str | None:
    if f.kind in ("av_fail", "av_malformed"):
        grew = s.av_bad - (base.av_bad if base else 0)
        return f"alpha vantage errors +{grew}" if grew > 0 else None
    if f.kind in ("channel_fail", "channel_timeout"):
        grew = s.dist_bad.get(f.target, 0) - (base.dist_bad.get(f.target, 0) if base else 0)
        return f"{f.target} retried/rate-limited/failed/uncertain +{grew}" if grew > 0 else None
    raise ValueError(f"no detector for fault kind {f.kind!r}")


def detect(inj: Injected, s: Sample, base: Sample | None) -> str | None:
    """The signal in ``s`` that shows ``inj``'s fault, or None."""
    f = inj.fault
    if f.kind == "redis_kill":
        return _detect_redis(s, base)
    if not s.reachable:
        return None
    if f.kind == "kill":
        return _detect_kill(f, s, base)
    if f.kind in IB_KINDS:
        return _detect_ib(s, base)
    if f.kind == "silence":
        key = _stale_key(f)
        return f"stale feed {key}" if key in s.stale else None
    return _detect_counters(f, s, base)


def healed(inj: Injected, s: Sample, base: Sample | None, seen: Sample) -> bool:
    """Is what ``inj`` broke well again in ``s``? ``seen`` is the sample that detected it."""
    f = inj.fault
    if not s.reachable or s.t < inj.end:
        return False
    if f.kind == "redis_kill":
        back = seen.t if not seen.reachable else inj.t
        running = {MODULE_OF.get(n, n) for n, c in s.children.items() if c.state == "running"}
        beating = [m for m, b in (base.beats if base else {}).items() if base is not None and base.t - b <= BEATING_S]
        # and trading again: the executor lowered the restart's REDUCING latch after a clean reconciliation
        return not s.redis_latched and not [m for m in beating if m in running and s.beats.get(m, 0.0) <= back]
    if f.kind == "kill":
        child = s.children.get(f.target)
        if child is None or child.state != "running" or child.pid in (None, inj.pid):
            return False
        module = MODULE_OF.get(f.target, f.target)
        return base is None or module not in base.beats or s.beats.get(module, 0.0) > inj.t
    if f.kind in IB_KINDS:
        return s.ibkr is True and not s.stale and s.beats.get(INGESTION, 0.0) > inj.end
    if f.kind == "silence":
        return _stale_key(f) not in s.stale
    if f.kind in ("av_fail", "av_malformed"):
        return s.av_ok_at > seen.t
    if f.kind in ("channel_fail", "channel_timeout"):
        return s.dist_sent.get(f.target, 0) > seen.dist_sent.get(f.target, 0)
    raise ValueError(f"no heal rule for fault kind {f.kind!r}")


def outcome(inj: Injected, samples: Sequence[Sample], horizon_s: float = HORIZON_S) -> Outcome:
    """Detection and healing of one fault, from the samples (in time order) of the whole run."""
    f = inj.fault
    base = next((s for s in reversed(samples) if s.t < inj.t and s.reachable), None)
    after = [s for s in samples if inj.t <= s.t <= inj.end + horizon_s]
    for i, s in enumerate(after):
        if s.t > inj.end + SEEN_WITHIN_S:
            break
        why = detect(inj, s, base)
        if why is None:
            continue
        heal = next((h for h in after[i:] if healed(inj, h, base, s)), None)
        return Outcome(f.index, f.fault_class, why, round(s.t - inj.t, 3),
                       None if heal is None else round(max(0.0, heal.t - inj.end), 3))
    return Outcome(f.index, f.fault_class, None, None, None)


def p50(values: Sequence[float]) -> float | None:
    """The median by nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True)
class ClassFigures:
    """One fault class: how many injected, seen and healed; detect and heal p50 and max (seconds)."""

    fault_class: str
    injected: int
    seen: int
    healed: int
    detect_p50: float | None
    detect_max: float | None
    heal_p50: float | None
    heal_max: float | None

    @property
    def ok(self) -> bool:
        """Every fault that was seen healed within the horizon."""
        return self.healed == self.seen


def by_class(outcomes: Sequence[Outcome]) -> list[ClassFigures]:
    out = []
    for name in sorted({o.fault_class for o in outcomes}):
        group = [o for o in outcomes if o.fault_class == name]
        detects = [o.detect_s for o in group if o.detect_s is not None]
        heals = [o.heal_s for o in group if o.heal_s is not None]
        out.append(ClassFigures(name, len(group), sum(o.seen for o in group), sum(o.healed for o in group),
                                p50(detects), max(detects, default=None), p50(heals), max(heals, default=None)))
    return out


def calm(samples: Sequence[Sample], injected: Sequence[Injected], outcomes: Sequence[Outcome],
         margin_s: float = 60.0) -> tuple[int, Counter[str]]:
    """How the stack fared with no fault in play: the samples outside every fault's window (injection to
    its heal, or ``margin_s`` past its end when it did not heal or was not seen), and how often each check
    failed in them (a stack that does not cope with the speed shows here)."""
    heal = {o.index: o.heal_s for o in outcomes}
    windows = [(i.t, i.end + (heal.get(i.fault.index) or margin_s)) for i in injected if i.ok]
    quiet = [s for s in samples if not any(a <= s.t <= b for a, b in windows)]
    failing: Counter[str] = Counter()
    for s in quiet:
        failing.update(s.failing if s.reachable else ("redis unreachable",))
    return len(quiet), failing


@dataclass(frozen=True)
class Change:
    """The health state entered at wall time ``t`` and the checks failing then."""

    t: float
    state: str
    failing: tuple[str, ...]


def timeline(samples: Sequence[Sample]) -> list[Change]:
    """Only the samples where the state or the set of failing checks changed."""
    out: list[Change] = []
    for s in samples:
        if not out or (s.state, s.failing) != (out[-1].state, out[-1].failing):
            out.append(Change(s.t, s.state, s.failing))
    return out
