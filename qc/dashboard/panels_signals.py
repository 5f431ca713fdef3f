"""The ``signals`` panel (recent signals with their lineage, each strategy's last verdict, the scorecard) and
the detail behind a click on one signal (:func:`explain`).

A signal's status is read along its lineage, each step from its writer's record: emitted (the signal),
judged by risk (``risk:verdict:{id}``), executed (the intent ``orders:intent:{id}``, whose id is the
signal's, else the ``execution`` entry `qc execute` put on the lineage), delivered (the ``distribution``
records on the lineage), and finally decided (``signals:outcomes``). The panel is as fresh as the
newest evaluation `qc signals` wrote (``signals:last:{sym}``, every cycle): signals may be rare, the
worker's verdicts are not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.core.errors import QcError
from qc.dashboard import memo
from qc.dashboard.docs import Doc, envelope, epoch_of, newest, num
from qc.distribute.codec import deliveries_of
from qc.execute.codec import intent_from_redis
from qc.execute.model import Intent
from qc.execute.render import detail_json
from qc.execute.report import intent_detail
from qc.risk.codec import RiskVerdict
from qc.runtime.store import Store
from qc.signals import report
from qc.signals.codec import LastEvaluation, Outcome, Signal
from qc.signals.model import STRATEGIES
from qc.signals.render import signal_json

SIGNALS_STALE_S = 30.0
RECENT = 25
SCORECARD_EVERY_S = 5.0  # the scorecard reads every signal of the day: not at every poll
START_SIGNALS = "no evaluation yet: start `qc signals` (or `qc up`)"


def build(store: Store, symbols: Sequence[str], now: float) -> Doc:
    last = last_evaluations(store, symbols, now)
    as_of = newest(*(epoch_of(e["at_dt"]) for e in last))
    recent = report.recent(store, None, RECENT)
    doc = envelope(as_of, now, SIGNALS_STALE_S)
    if as_of is None:
        doc["stale_reason"] = START_SIGNALS
        if not recent:
            doc["missing"] = START_SIGNALS
    rows = lineage_rows(store, recent)
    now_dt = datetime.fromtimestamp(now, timezone.utc)
    doc |= {"recent": rows, "last": [{k: v for k, v in e.items() if k != "at_dt"} for e in last],
            "scorecard": memo.every(store, "scorecard", SCORECARD_EVERY_S, lambda: scorecard(store, now_dt))}
    return doc


def last_evaluations(store: Store, symbols: Sequence[str], now: float) -> list[dict[str, Any]]:
    """Each symbol × strategy's last verdict (``signals:last:{sym}``): when (and how long ago), the score, what
    became of it."""
    pipe = store.client.pipeline(transaction=False)
    for sym in symbols:
        pipe.hgetall(keys.signals_last(sym).name)
    out: list[dict[str, Any]] = []
    for sym, fields in zip(symbols, pipe.execute(), strict=True):
        for strategy in STRATEGIES:
            raw = fields.get(strategy)
            if raw is None:
                continue
            got = LastEvaluation.from_redis(raw, key=f"{keys.signals_last(sym).name}[{strategy}]")
            if isinstance(got, Absent):
                out.append({"symbol": sym, "strategy": strategy, "at": None, "at_dt": None, "age_s": None,
                            "score": None, "direction": 0, "result": str(got), "signal_id": None})
                continue
            out.append({"symbol": sym, "strategy": strategy, "at": got.at.isoformat(), "at_dt": got.at,
                        "age_s": float(round(now - got.at.timestamp())), "score": num(got.score),
                        "direction": got.direction, "mode": got.mode, "result": got.result,
                        "signal_id": got.signal_id or None})
    return out


def scorecard(store: Store, now: datetime) -> dict[str, Any]:
    """`qc signals stats` since the start of today's New York date: per strategy and symbol."""
    day = clock.new_york_date(now)
    since = datetime(day.year, day.month, day.day, tzinfo=clock.NEW_YORK)
    return {"since": since.isoformat(), "lines": [line.as_dict() for line in report.stats(store, since, now)]}


# --- lineage -----------------------------------------------------------------------------------------


def _verdict(raw: str | None, signal_id: str) -> RiskVerdict | None:
    """Risk's verdict on the signal, read through its codec (none yet, or unreadable: None)."""
    got = RiskVerdict.from_redis(raw, key=keys.risk_verdict(signal_id).name)
    return got if isinstance(got, RiskVerdict) else None


def verdict_doc(v: RiskVerdict | None) -> Doc | None:
    if v is None:
        return None
    return {"signal": v.signal, "symbol": v.symbol, "strategy": v.strategy, "approved": v.approved,
            "codes": list(v.codes), "reasons": list(v.reasons), "at": v.at.isoformat()}


def lineage_rows(store: Store, items: Sequence[tuple[Signal, Outcome | None]]) -> list[Doc]:
    """One row per signal, newest first: what, score, and where it got to (verdicts and intents in two MGETs)."""
    if not items:
        return []
    ids = [s.id for s, _ in items]
    verdicts = store.mget([keys.risk_verdict(i).name for i in ids])
    intents = store.mget([keys.order_intent(i).name for i in ids])
    rows = []
    for (signal, outcome), verdict_raw, intent_raw in zip(items, verdicts, intents, strict=True):
        intent = intent_from_redis(intent_raw, key=keys.order_intent(signal.id).name)
        held = intent if isinstance(intent, Intent) else None
        steps = lineage(signal, outcome, _verdict(verdict_raw, signal.id), held)
        c = signal.contract
        rows.append({"id": signal.id, "created_at": signal.created_at.isoformat(), "symbol": signal.symbol,
                     "strategy": signal.strategy, "contract": c.describe(), "side": signal.side,
                     "direction": signal.direction, "limit": signal.limit, "take_profit": signal.take_profit,
                     "stop": signal.stop, "score": signal.score, "threshold": signal.threshold,
                     "mode": signal.mode, "status": steps["status"], "lineage": steps})
    return rows


def lineage(signal: Signal, outcome: Outcome | None, verdict: RiskVerdict | None,
            intent: Intent | None) -> Doc:
    """Each step of the signal's way and ``status``: the furthest step it reached, in words."""
    risk = None if verdict is None else ("approved" if verdict.approved else "rejected")
    execution_entry = signal.lineage.get("execution")
    execution = intent.state.value if intent is not None else (
        str(execution_entry.get("state")) if isinstance(execution_entry, Mapping) and execution_entry.get("state")
        else None)
    deliveries = deliveries_of(signal.lineage, key=keys.signal_record(signal.id).name)
    counts: dict[str, int] = {}
    if not isinstance(deliveries, Absent):
        for d in deliveries:
            counts[d.outcome] = counts.get(d.outcome, 0) + 1
    status = "emitted"
    if risk is not None:
        status = f"risk {risk}"
    if execution is not None:
        status = execution
    if outcome is not None:
        status = f"{outcome.exit_reason}"
    return {"status": status, "risk": risk,
            "risk_reasons": list(verdict.reasons) if verdict is not None else [],
            "execution": execution, "filled": intent.filled_qty if intent is not None else None,
            "entry_avg": num(intent.entry_avg) if intent is not None and intent.filled_qty else None,
            "deliveries": counts, "deliveries_unreadable": str(deliveries) if isinstance(deliveries, Absent) else None,
            "outcome": None if outcome is None else outcome.exit_reason,
            "return_pct": None if outcome is None else num(outcome.return_pct)}


# --- the detail on click -------------------------------------------------------------------------------


def explain(store: Store, signal_id: str) -> Doc:
    """`qc signals explain ID` as one document: the signal whole (factors, gates, exits, quote, lineage), its
    outcome, risk's verdict, the intent with its orders, history and fills, and each delivery.

    An id that is malformed or not stored gives ``{"id": …, "missing": why, "hint": what to do}``.
    """
    try:
        got = report.explain(store, signal_id)
    except QcError as exc:
        return {"id": signal_id[:64], "missing": exc.message, "hint": exc.hint}
    s, o = got.signal, got.outcome
    verdict = _verdict(store.client.get(keys.risk_verdict(s.id).name), s.id)
    intent_raw = store.client.get(keys.order_intent(s.id).name)
    intent = intent_from_redis(intent_raw, key=keys.order_intent(s.id).name)
    detail: Doc | None = None
    if isinstance(intent, Intent):
        detail = detail_json(intent_detail(store, s.id))
        del detail["signal"]  # the signal is the document's own
    deliveries = deliveries_of(s.lineage, key=keys.signal_record(s.id).name)
    return {"id": s.id, "describe": s.contract.describe(), "signal": signal_json(s, o),
            "lineage": lineage(s, o, verdict, intent if isinstance(intent, Intent) else None),
            "verdict": verdict_doc(verdict), "intent": detail,
            "intent_missing": None if isinstance(intent, Intent) else str(intent),
            "deliveries": [] if isinstance(deliveries, Absent) else [d.to_doc() for d in deliveries]}
