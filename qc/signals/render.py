"""Tables and JSON for `qc signals show | explain | stats` (pure: values in, rows and documents out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from qc.core import clock
from qc.core.codec import Absent
from qc.signals.codec import LastEvaluation, Outcome, Signal
from qc.signals.model import Contribution, Gate
from qc.signals.scorecard import Line


def _ny(t: datetime) -> str:
    return t.astimezone(clock.NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:+.1f}%"


def _num(x: float | None, spec: str = ".3f") -> str:
    return "" if x is None else format(x, spec)


def outcome_text(o: Outcome | None) -> str:
    return "open" if o is None else f"{o.exit_reason} {_pct(o.return_pct)}".strip()


SHOW_HEADERS = ["id", "created (NY)", "strategy", "contract", "side", "limit", "tp", "stop", "score", "outcome"]


def show_rows(items: Sequence[tuple[Signal, Outcome | None]]) -> list[list[str]]:
    return [[s.id, _ny(s.created_at), s.strategy, s.contract.describe(), s.side, f"{s.limit:.2f}",
             f"{s.take_profit:.2f}", f"{s.stop:.2f}", f"{s.score:+.3f}", outcome_text(o)] for s, o in items]


def signal_json(s: Signal, o: Outcome | None) -> dict[str, Any]:
    import json

    doc: dict[str, Any] = json.loads(s.to_redis())
    doc["outcome"] = None if o is None else json.loads(o.to_redis())
    return doc


def factor_rows(contributions: Sequence[Contribution], inputs: dict[str, Any] | Any) -> list[list[str]]:
    rows = []
    for c in contributions:
        used = inputs.get(c.name, {}) if isinstance(inputs, dict) else {}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in used.items())
        rows.append([c.name, _num(c.value) if c.value is not None else "abstains", _num(c.weight, ".2f"),
                     _num(c.contribution, "+.3f"), _num(c.age_s, ".1f"), c.reason or shown])
    return rows


FACTOR_HEADERS = ["factor", "value", "weight", "contribution", "age s", "inputs / why it abstains"]
GATE_HEADERS = ["gate", "open", "why"]


def gate_rows(gates: Sequence[Gate]) -> list[list[str]]:
    return [[g.name, "yes" if g.open else "NO", g.reason] for g in gates]


def explain_lines(s: Signal, o: Outcome | None) -> list[str]:
    c = s.contract
    lines = [f"signal {s.id}  {s.strategy}  {c.describe()}  ({c.sec_type}, {c.exchange}/{c.primary_exchange})",
             f"  created {_ny(s.created_at)} New York; {s.side} {s.order_type} limit {s.limit:.2f}; "
             f"take profit {s.take_profit:.2f}, stop {s.stop:.2f}, time stop {_ny(s.time_stop)}",
             f"  score {s.score:+.3f} vs threshold ±{s.threshold:.2f}; mode {s.mode}; size × {s.size_multiplier:.2f}",
             f"  quote bid {s.quote.bid:.2f} ask {s.quote.ask:.2f} mark {s.quote.mark:.2f} delta "
             f"{_num(s.quote.delta)} OI {s.quote.open_interest} volume {s.quote.volume} ({s.quote.age_s:.0f} s old)",
             f"  fingerprint {s.fingerprint}; outcome: {outcome_text(o)}"]
    if o is not None:
        lines.append(f"  exit {o.exit_reason} at {_num(o.exit_price, '.2f')} after {o.held_s / 60:.1f} min "
                     f"({_ny(o.decided_at)})")
    lines += [f"  note: {n}" for n in s.notes]
    lines += [f"  lineage: {', '.join(f'{k}={v}' for k, v in s.lineage.items())}"] if s.lineage else []
    return lines


def evaluation_lines(e: LastEvaluation | Absent) -> list[str]:
    if isinstance(e, Absent):
        return [f"{e.key}: {e.reason}"]
    score = "none" if e.score is None else f"{e.score:+.3f}"
    verdict = {1: "bullish", -1: "bearish"}.get(e.direction, "no trade")
    lines = [f"{e.strategy} on {e.symbol} at {_ny(e.at)} New York: {verdict}, score {score}, mode {e.mode}",
             f"  {e.reason or 'fired'}" + ("" if e.result == e.reason else f" -> {e.result}")]
    lines += [f"  note: {n}" for n in e.notes]
    return lines


STATS_HEADERS = ["strategy", "symbol", "signals", "decided", "hit rate", "mean ret", "median ret", "median held",
                 "blocked (top 3)"]


def stats_rows(lines: Sequence[Line]) -> list[list[str]]:
    rows = []
    for r in lines:
        top = sorted(r.blocked.items(), key=lambda kv: -kv[1])[:3]
        rows.append([r.strategy, r.symbol, str(r.count), str(r.decided),
                     "" if r.hit_rate is None else f"{100 * r.hit_rate:.0f}%", _pct(r.mean_return),
                     _pct(r.median_return), "" if r.median_held_s is None else f"{r.median_held_s / 60:.0f} min",
                     ", ".join(f"{k} {v}" for k, v in top)])
    return rows
