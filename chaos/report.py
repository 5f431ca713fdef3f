"""The chaos run's report: the tables an operator reads (tabulate), and the JSON and text files kept for it.

Why one module: the printed table, the text file and the JSON must say the same thing, so they are
made from one :class:`Report`; the files go under ``var/chaos/`` (gitignored), named by seed and time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tabulate import tabulate

from chaos.healing import Change, ClassFigures, Injected, Outcome
from chaos.invariants import Verdict
from chaos.schedule import Fault, render
from qc.core.clock import NEW_YORK

TIMELINE_SHOWN = 120  # changes printed; the files hold them all


@dataclass
class Report:
    seed: int
    replay: str
    start: datetime  # simulated start (New York)
    run_started: float  # wall epoch
    speed: float
    schedule: Sequence[Fault]
    injected: Sequence[Injected]
    outcomes: Sequence[Outcome]
    classes: Sequence[ClassFigures]
    verdicts: Sequence[Verdict]
    restarts: Mapping[str, int]  # child -> restarts the supervisor counted
    kills: Mapping[str, int]  # child -> kills the schedule injected
    timeline: Sequence[Change]
    sim_at: Callable[[float], float] | None = None  # wall epoch -> simulated epoch
    notes: list[str] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _sim_clock(r: Report, t: float) -> str:
    if r.sim_at is None:
        return ""
    return datetime.fromtimestamp(r.sim_at(t), timezone.utc).astimezone(NEW_YORK).strftime("%H:%M:%S")


def header(seed: int, replay: str, start: datetime, schedule: Sequence[Fault]) -> str:
    """What is printed before the run: the seed, how to replay it, and the schedule."""
    table = tabulate(render(schedule, start), headers=["#", "sim time", "fault", "hold s", "injected by"])
    return f"chaos seed {seed}\nreplay: {replay}\n\nfault schedule ({len(schedule)} faults):\n{table}\n"


def text(r: Report) -> str:
    """The whole report as printed."""
    parts = [header(r.seed, r.replay, r.start, r.schedule)]
    rows: list[list[Any]] = [[v.name, v.want, v.got, "ok" if v.ok else "FAIL"] for v in r.verdicts]
    parts.append("invariants:\n" + tabulate(rows, headers=["check", "want", "got", ""]))
    offenders = [f"  {v.name}: {o}" for v in r.verdicts if not v.ok for o in v.offenders]
    if offenders:
        parts.append("offenders:\n" + "\n".join(offenders))
    rows = [[c.fault_class, c.injected, c.seen, c.healed, _s(c.detect_p50), _s(c.detect_max), _s(c.heal_p50),
             _s(c.heal_max)] for c in r.classes]
    parts.append("time to detect (s after injection) and heal (s after the fault ended), per fault class:\n"
                 + tabulate(rows, headers=["fault class", "injected", "seen", "healed", "detect p50", "detect max",
                                           "heal p50", "heal max"]))
    by_index = {o.index: o for o in r.outcomes}
    rows = []
    for inj in r.injected:
        o = by_index.get(inj.fault.index)
        rows.append([inj.fault.index, _sim_clock(r, inj.t), f"+{inj.t - r.run_started:.0f}", inj.fault.fault_class,
                     "ok" if inj.ok else "NOT INJECTED", (o.detected_by if o else None) or "-",
                     _s(o.detect_s if o else None), _s(o.heal_s if o else None)])
    parts.append("faults as injected:\n" + tabulate(rows, headers=["#", "sim time", "real s", "fault", "injected",
                                                                   "detected by", "detect s", "heal s"]))
    rows = [[name, n, r.kills.get(name, 0), n - r.kills.get(name, 0)] for name, n in sorted(r.restarts.items())]
    parts.append("worker restarts (the supervisor's count):\n"
                 + tabulate(rows, headers=["child", "restarts", "killed by chaos", "other exits"]))
    rows = [[_sim_clock(r, c.t), f"+{c.t - r.run_started:.1f}", c.state, ", ".join(c.failing)]
            for c in r.timeline[:TIMELINE_SHOWN]]
    more = len(r.timeline) - TIMELINE_SHOWN
    parts.append(f"health timeline ({len(r.timeline)} changes" + (f"; {more} more in the files" if more > 0 else "")
                 + "):\n" + tabulate(rows, headers=["sim time", "real s", "state", "failing checks"]))
    parts += [f"note: {n}" for n in r.notes]
    parts.append(f"seed {r.seed}: {'every invariant holds' if r.ok else 'INVARIANTS VIOLATED'}  (replay: {r.replay})")
    return "\n\n".join(parts) + "\n"


def to_json(r: Report) -> dict[str, Any]:
    return {
        "seed": r.seed, "replay": r.replay, "start": r.start.isoformat(), "speed": r.speed, "ok": r.ok,
        "run_started": r.run_started,
        "schedule": [f.to_json(r.start) for f in r.schedule],
        "injected": [{"index": i.fault.index, "class": i.fault.fault_class, "t": i.t, "ok": i.ok, "detail": i.detail,
                      "pid": i.pid} for i in r.injected],
        "outcomes": [asdict(o) for o in r.outcomes],
        "classes": [asdict(c) for c in r.classes],
        "invariants": [asdict(v) for v in r.verdicts],
        "restarts": dict(r.restarts), "kills": dict(r.kills),
        "timeline": [asdict(c) for c in r.timeline],
        "notes": r.notes,
        "records": r.records,
    }


def write(r: Report, directory: Path) -> tuple[Path, Path]:
    """``chaos-{seed}-{UTC time}.json`` and ``.txt`` in ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(r.run_started, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = directory / f"chaos-{r.seed}-{stamp}"
    as_json, as_text = base.with_suffix(".json"), base.with_suffix(".txt")
    as_json.write_text(json.dumps(to_json(r), indent=1, default=str))
    as_text.write_text(text(r))
    return as_json, as_text
