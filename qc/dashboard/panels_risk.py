"""The ``risk`` panel: the latched trading state per scope, P&L and drawdown, limit usage, breakers, breaches.

The same facts as `qc risk status` (``qc.risk.cycle.report.risk_status``), as numbers: a disabled limit
(the snapshot's ``"inf"``) is ``None`` with ``off`` true, a usage against a limit of 0 is ``None`` with
``breached`` true. The trading state is read from its latch and never goes stale (a HALTED latch holds
until an operator resumes); the figures are as fresh as `qc risk`'s last snapshot. The halt, resume
and flatten buttons act through the server; nothing here writes.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from qc.core.config import Settings
from qc.core.errors import ConfigError
from qc.dashboard.docs import Doc, envelope, inf_or_num, missing, num
from qc.risk.cycle.report import USAGE_WARN_PCT, risk_status
from qc.risk.settings import describe
from qc.runtime.store import Store

SHOWN = 10
START_RISK = "no exposure snapshot: start `qc risk` (or `qc up`)"


def stale_after(settings: Settings) -> float:
    """Ten of `qc risk`'s cycles, at least 30 s."""
    return max(30.0, 10 * settings.risk_interval_s)


def build(store: Store, settings: Settings, account: str, now: float) -> Doc:
    status = risk_status(store, account, datetime.fromtimestamp(now, timezone.utc), SHOWN)
    exposure = status["exposure"]
    limit_s = stale_after(settings)
    if exposure is None:
        doc = missing(status["exposure_problem"] or START_RISK, limit_s)
        del doc["missing"]
        doc["stale_reason"] = status["exposure_problem"] or START_RISK
    else:
        at = datetime.fromisoformat(exposure["as_of"]).timestamp()
        doc = envelope(at, now, limit_s)
    account_state = next((s for s in status["states"] if s["scope"] == "account"), None)
    doc |= {"account": account, "trading_state": account_state["state"] if account_state else "ACTIVE",
            "states": status["states"], "breakers": status["breakers"],
            "breaches_last_hour": status["breaches_last_hour"], "breaches": status["breaches"],
            "transitions": status["transitions"], "verdicts": status["verdicts"], "limits": limits(settings)}
    doc |= figures(exposure)
    return doc


def figures(exposure: dict[str, Any] | None) -> Doc:
    """P&L, drawdown and usage rows, or ``None`` for each when there is no snapshot (never a zero)."""
    if exposure is None:
        return {"pnl_today_usd": None, "realised_today_usd": None, "unrealised_usd": None,
                "pnl_high_water_usd": None, "drawdown_usd": None, "positions": None, "usage": []}
    usage = []
    for u in exposure["usage"]:
        pct = inf_or_num(u["pct"])
        infinite = u["pct"] == "inf"
        usage.append({"name": u["name"], "scope": u["scope"], "value": num(u["value"]),
                      "limit": inf_or_num(u["limit"]), "off": u["limit"] == "inf", "pct": pct,
                      "warn": infinite or (pct is not None and pct >= USAGE_WARN_PCT),
                      "breached": infinite or (pct is not None and pct >= 100.0)})
    usage.sort(key=lambda u: -(math.inf if u["pct"] is None and u["breached"] else (u["pct"] or 0.0)))
    money = ("pnl_today_usd", "realised_today_usd", "unrealised_usd", "pnl_high_water_usd", "drawdown_usd")
    return {name: num(exposure[name]) for name in money} | {
        "positions": len(exposure["positions"]), "usage": usage,
        "unpriced_underlyings": exposure.get("unpriced_underlyings", [])}


def limits(settings: Settings) -> list[Doc] | Doc:
    """Every limit and breaker threshold with its source (``off`` for a disabled one), or why they are invalid."""
    try:
        rows = describe(settings)
    except ConfigError as exc:
        return {"error": str(exc)}
    out = []
    for name, value, source in rows:
        try:
            number: float | None = float(value)
        except ValueError:
            number = None
        out.append({"name": name, "value": number, "off": value == "off", "source": source})
    return out
