"""The dashboard's pure helpers: the freshness envelope, JSON-safe numbers, secret scrubbing, the session series,
a signal's lineage status and the risk figures (no Redis)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from qc.dashboard import docs
from qc.dashboard.panels_risk import figures
from qc.dashboard.panels_signals import lineage
from qc.dashboard.series import MAX_POINTS, SessionSeries
from qc.execute.model import Intent, State
from qc.risk.codec import RiskVerdict
from qc.risk.model import ContractKey
from qc.signals.codec import Outcome, Signal
from qc.signals.model import Contract, Quote

NOW = 1_795_534_335.0


def test_envelope_ages_and_staleness() -> None:
    fresh = docs.envelope(NOW - 4.4, NOW, 15.0)
    assert fresh == {"as_of": "2026-11-24T15:32:10.600000+00:00", "age_s": 4.0, "stale": False, "stale_after_s": 15.0}
    assert docs.envelope(NOW - 15.4, NOW, 15.0)["stale"] is False  # rounds to 15: not past the limit
    assert docs.envelope(NOW - 16, NOW, 15.0)["stale"] is True
    flagged = docs.envelope(NOW, NOW, 15.0, "no trades for 130 s")
    assert flagged["stale"] is True and flagged["stale_reason"] == "no trades for 130 s"
    none = docs.envelope(None, NOW, 15.0)
    assert (none["as_of"], none["age_s"], none["stale"]) == (None, None, True)
    assert docs.missing("start `qc stream`", 10) == {"as_of": None, "age_s": None, "stale": True,
                                                     "stale_after_s": 10.0, "missing": "start `qc stream`"}


def test_numbers_never_become_zero_or_nan() -> None:
    assert docs.num(None) is None and docs.num(math.nan) is None and docs.num(math.inf) is None
    assert docs.num(True) is None and docs.num(3) == 3 and docs.num(0.0) == 0.0
    assert docs.nums([1.5, None, math.nan]) == [1.5, None, None]
    assert docs.inf_or_num("inf") is None and docs.inf_or_num(12) == 12.0 and docs.inf_or_num("12") is None
    assert docs.newest(None, 3.0, 2.0) == 3.0 and docs.newest(None) is None
    assert docs.iso(None) is None and docs.iso(0.0) == "1970-01-01T00:00:00+00:00"


def test_scrub_masks_secrets_everywhere_and_leaves_clean_documents_alone() -> None:
    secret = "tok-" + "q" * 16
    doc: dict[str, Any] = {"a": [f"url?key={secret}", 1.5, None], f"k{secret}": {"b": (secret,)}, "n": 3}
    got = docs.scrub(doc, docs.usable_secrets([secret, "ab"]))
    assert got == {"a": ["url?key=***", 1.5, None], "k***": {"b": ["***"]}, "n": 3}
    clean = {"a": "nothing here"}
    assert docs.scrub(clean, [secret]) is clean
    assert docs.usable_secrets(["ab", "abc", "abcd"]) == ["abcd", "abc"]  # 1-2 characters protect nothing


def test_series_is_ordered_bounded_and_keeps_the_latest() -> None:
    s = SessionSeries()
    assert s.add(100.0, "2026-11-24", 0.1, 0.2) and s.add(101.0, "2026-11-24", 0.2, None)
    assert not s.add(101.0, "2026-11-24", 0.9, 0.9) and not s.add(50.0, "2026-11-24", 0.9, 0.9)
    assert (s.t, s.vpin, s.imbalance) == ([100.0, 101.0], [0.1, 0.2], [0.2, None])
    for i in range(2, 30_000):
        s.add(100.0 + i, "2026-11-24", i / 30_000, 0.0)
    assert len(s.t) <= MAX_POINTS and s.t[-1] == 100.0 + 29_999 and s.vpin[-1] == pytest.approx(29_999 / 30_000)
    assert s.t == sorted(s.t) and s.step_s > 1.0
    gaps = [b - a for a, b in zip(s.t, s.t[1:], strict=False)]
    assert min(gaps[:-1]) >= s.step_s / 2  # thinned evenly, only the provisional newest may sit closer
    s.add(200_000.0, "2026-11-25", 0.5, 0.5)  # a new session starts a new series
    assert (s.t, s.day, s.step_s) == ([200_000.0], "2026-11-25", 1.0)
    assert s.to_doc() == {"t": [200_000.0], "vpin": [0.5], "imbalance": [0.5], "step_s": 1.0, "day": "2026-11-25"}


def test_a_provisional_point_is_replaced_until_the_spacing_holds() -> None:
    s = SessionSeries(day="d", step_s=2.0)
    for t in (0.0, 2.0, 3.0, 4.0, 5.0):
        s.add(t, "d", t, t)
    assert s.t == [0.0, 2.0, 4.0, 5.0] and s.vpin == [0.0, 2.0, 4.0, 5.0]


def a_signal(lineage_doc: dict[str, Any]) -> Signal:
    created = datetime.fromtimestamp(NOW, UTC)
    return Signal("1795534335000abcdef01", created, "0dte", Contract("SPY", "OPT", date(2026, 11, 24), 520.0, "C"),
                  "BUY", 1, "LMT", 2.0, 3.0, 1.5, created + timedelta(hours=1), 0.5, 0.3, "momentum", 1.0,
                  Quote(1.9, 2.1, 2.0, 0.5, 100, 100, 1.0), (), {}, (), "fp", lineage=lineage_doc)


def test_lineage_status_is_the_furthest_step() -> None:
    s = a_signal({"execution": {"state": "rejected"}})
    assert lineage(s, None, None, None)["status"] == "rejected"  # from the lineage entry, without the intent
    bare = a_signal({})
    assert lineage(bare, None, None, None)["status"] == "emitted"
    judged = lineage(bare, None, RiskVerdict(bare.id, "SPY", "0dte", False, ("QTY",), ("too big",), bare.created_at),
                     None)
    assert (judged["status"], judged["risk"], judged["risk_reasons"]) == ("risk rejected", "rejected", ["too big"])
    key = ContractKey("SPY", "OPT", date(2026, 11, 24), 520.0, "C")
    intent = Intent(bare.id, "default", "SPY", "0dte", "0dte", key, "BUY", 1, 2.0, 3.0, 1.5, 0.0, bare.time_stop, None,
                    bare.created_at, state=State.PROTECTED, filled_qty=1, entry_avg=2.05)
    held = lineage(bare, None, RiskVerdict(bare.id, "SPY", "0dte", True, (), (), bare.created_at), intent)
    assert (held["status"], held["execution"], held["filled"], held["entry_avg"]) == ("protected", "protected", 1, 2.05)
    done = lineage(bare, Outcome(bare.id, "SPY", "0dte", "take_profit", 2.0, 3.0, 0.5, 600.0, bare.time_stop), None,
                   intent)
    assert (done["status"], done["return_pct"]) == ("take_profit", 0.5)
    broken = lineage(a_signal({"distribution": {"x": 1}}), None, None, None)
    assert broken["deliveries"] == {} and "not an object" in (broken["deliveries_unreadable"] or "")


def test_risk_figures_are_numbers_or_none() -> None:
    assert figures(None)["pnl_today_usd"] is None and figures(None)["usage"] == []
    exposure = {"pnl_today_usd": -10.0, "realised_today_usd": -5.0, "unrealised_usd": -5.0, "pnl_high_water_usd": 0.0,
                "drawdown_usd": 10.0, "positions": [{}], "usage": [
                    {"name": "a", "scope": "account", "value": 10.0, "limit": 100.0, "pct": 10.0},
                    {"name": "b", "scope": "SPY", "value": 1.0, "limit": "inf", "pct": 0.0},
                    {"name": "c", "scope": "SPY", "value": 90.0, "limit": 100.0, "pct": 90.0},
                    {"name": "d", "scope": "SPY", "value": 1.0, "limit": 0.0, "pct": "inf"}]}
    got = figures(exposure)
    assert (got["pnl_today_usd"], got["drawdown_usd"], got["positions"]) == (-10.0, 10.0, 1)
    assert [u["name"] for u in got["usage"]] == ["d", "c", "a", "b"]  # the most used first, ∞ on top
    by = {u["name"]: u for u in got["usage"]}
    assert (by["b"]["limit"], by["b"]["off"]) == (None, True)
    assert (by["c"]["warn"], by["c"]["breached"]) == (True, False)
    assert (by["d"]["pct"], by["d"]["breached"]) == (None, True)
