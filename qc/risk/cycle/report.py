"""`qc risk status`: what the operator needs at 3 a.m., read from Redis in one place.

The document (``--json``) and the tables hold the same facts: each scope's latched state with its
cause, who set it and why; the live exposure snapshot (P&L, drawdown, limit usage); breaches in
the last hour and the newest ones; the newest state transitions and pre-trade verdicts.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from datetime import datetime
from typing import Any

from qc.core import keys
from qc.core.codec import Absent
from qc.risk.codec import RiskVerdict, readings_from_redis, views
from qc.risk.cycle import latches
from qc.risk.snapshot import snapshot_from_redis, snapshot_to_redis
from qc.runtime.store import Store

log = logging.getLogger(__name__)
HOUR_S = 3600.0
USAGE_WARN_PCT = 80.0


def _breakers(store: Store, account: str) -> list[dict[str, Any]]:
    key = keys.risk_breaker_readings(account)
    raw = store.get(key)
    readings = readings_from_redis(raw, key=key.name)
    if isinstance(readings, Absent):
        if raw:
            log.warning("%s: breaker readings not shown", readings)
        return []
    return [asdict(r) for r in readings]


def risk_status(store: Store, account: str, now: datetime, limit: int) -> dict[str, Any]:
    states = latches.load(store, account)
    scopes = [{"scope": scope, "state": latch.state.name, "cause": latch.cause, "by": latch.by,
               "reason": latch.reason, "since": latch.since.isoformat() if latch.since else None}
              for scope, latch in sorted(states.items(), key=lambda kv: (kv[0] != latches.ACCOUNT_SCOPE, kv[0]))]
    if latches.ACCOUNT_SCOPE not in states:
        scopes.insert(0, {"scope": latches.ACCOUNT_SCOPE, "state": "ACTIVE", "cause": "", "by": "", "reason": "",
                          "since": None})
    exposure_key = keys.risk_exposure(account)
    raw = store.get(exposure_key)
    snap = snapshot_from_redis(raw, key=exposure_key.name)
    exposure: dict[str, Any] | None = None
    exposure_problem = ""
    if isinstance(snap, Absent):
        exposure_problem = f"{snap} (is `qc risk` running?)"
    else:
        exposure = json.loads(snapshot_to_redis(snap))  # what the codec read, nothing it did not
        exposure["age_s"] = round((now - snap.as_of).total_seconds(), 1)
    breaches_log = keys.risk_breaches_log()
    newest = store.client.zrevrange(breaches_log.name, 0, limit - 1)
    verdicts_key = keys.risk_verdicts().name
    verdicts = [fields.get("verdict", "") for _, fields in store.client.xrevrange(verdicts_key, count=limit)]
    return {
        "account": account, "at": now.isoformat(), "states": scopes,
        "exposure": exposure, "exposure_problem": exposure_problem, "breakers": _breakers(store, account),
        "breaches_last_hour": store.count_events(breaches_log, now.timestamp() - HOUR_S),
        "breaches": latches.views(newest, breaches_log.name),
        "transitions": latches.transitions(store, account, limit),
        "verdicts": views(verdicts, verdicts_key, lambda raw: RiskVerdict.from_redis(raw, key=verdicts_key)),
    }


def _amount(value: Any) -> str:
    if value in ("inf", "-inf"):
        return "off"
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:,.4g}"


def _pct(value: Any) -> str:
    if value is None:
        return "-"
    pct = math.inf if value == "inf" else float(value)
    if math.isinf(pct):
        return "inf %  !"
    mark = "  !" if pct >= USAGE_WARN_PCT else ""
    return f"{pct:.1f} %{mark}"


def tables(doc: dict[str, Any]) -> list[tuple[str, list[list[Any]], list[str]]]:
    """(title, rows, headers) for each section, in reading order."""
    out: list[tuple[str, list[list[Any]], list[str]]] = [(
        f"trading state — account {doc['account']}",
        [[s["scope"], s["state"], s["cause"] or "-", s["by"] or "-", s["since"] or "-", s["reason"] or "-"]
         for s in doc["states"]],
        ["scope", "state", "cause", "by", "since", "reason"])]
    exposure = doc["exposure"]
    if exposure is None:
        out.append(("exposure", [[doc["exposure_problem"]]], ["unavailable"]))
    else:
        out.append((f"exposure — as of {exposure['as_of']} ({exposure['age_s']} s ago)",
                    [["P&L today $", f"{exposure['pnl_today_usd']:,.0f}"],
                     ["high-water $", f"{exposure['pnl_high_water_usd']:,.0f}"],
                     ["drawdown $", f"{exposure['drawdown_usd']:,.0f}"],
                     ["positions", str(len(exposure['positions']))]],
                    ["figure", "value"]))
        out.append(("limit usage",
                    [[u["name"], u["scope"], _amount(u["value"]), _amount(u["limit"]), _pct(u["pct"])]
                     for u in exposure["usage"]],
                    ["limit", "scope", "value", "limit", "used"]))
    out.append(("breakers (now)",
                [[b.get("scope", "-"), b.get("breaker", "-"), b.get("value", "-"), b.get("trips_at", "-"),
                  b.get("clears_at", "-")] for b in doc["breakers"]],
                ["scope", "breaker", "reading", "trips at", "clears at"]))
    out.append((f"breaches — {doc['breaches_last_hour']} in the last hour (unhealthy above 3)",
                [[b.get("at", "-"), b.get("scope", "-"), b.get("to", "-"), b.get("cause", "-"), b.get("reason", "-")]
                 for b in doc["breaches"]],
                ["at", "scope", "to", "cause", "context"]))
    out.append(("transitions (newest first)",
                [[t.get("at", "-"), t.get("scope", "-"), f"{t.get('from', '-')} → {t.get('to', '-')}",
                  t.get("cause", "-"), t.get("by", "-"), t.get("reason", "-")] for t in doc["transitions"]],
                ["at", "scope", "change", "cause", "by", "reason"]))
    out.append(("pre-trade verdicts on new signals (newest first)",
                [[v.get("at", "-"), v.get("signal", "-"), v.get("symbol", "-"), v.get("strategy", "-"),
                  "approved" if v.get("approved") else "; ".join(v.get("reasons", []))] for v in doc["verdicts"]],
                ["at", "signal", "symbol", "strategy", "verdict"]))
    out.append(("limits (source)", [[lim["name"], lim["value"], lim["source"]] for lim in doc["limits"]],
                ["limit", "value", "source"]))
    return out
