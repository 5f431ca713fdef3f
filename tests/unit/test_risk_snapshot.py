"""The exposure snapshot: P&L signs and the multiplier, usage percentages, the high-water mark, the codec."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.core.codec import Absent
from qc.risk.exposure import GREEKS, portfolio_exposure
from qc.risk.model import (
    BUCKETS,
    ContractKey,
    ContractQuote,
    Limits,
    MarketSnapshot,
    Position,
    UnderlyingQuote,
    stock,
)
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import (
    ExposureSnapshot,
    Usage,
    build_snapshot,
    mark_of,
    snapshot_from_redis,
    snapshot_to_redis,
    usage,
)

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=clock.NEW_YORK)  # 20:00 UTC, inside the regular session
EXPIRY = date(2026, 12, 4)
CALL = ContractKey("SPY", "OPT", EXPIRY, 600.0, "C")
PUT = ContractKey("SPY", "OPT", EXPIRY, 590.0, "P")
QQQ_CALL = ContractKey("QQQ", "OPT", date(2026, 12, 18), 520.0, "C")
MINI = ContractKey("SPY", "OPT", EXPIRY, 600.0, "C", multiplier=10)
UNQUOTED = ContractKey("SPY", "OPT", EXPIRY, 610.0, "C")
KEY = "risk:exposure:DU1"


def market(call_mark: float = 3.0, put_mark: float = 2.0, spot: float = 600.0) -> MarketSnapshot:
    def quote(mark: float, iv: float) -> ContractQuote:
        return ContractQuote(max(mark - 0.05, 0.0), mark + 0.05, mark, iv, 60.0)

    unds = {"SPY": UnderlyingQuote(spot, 1.0, 1.0, 1.0, 0.04, 0.01), "QQQ": UnderlyingQuote(520.0, 1.0, 1.0, 1.0)}
    return MarketSnapshot(unds, {CALL: quote(call_mark, 0.2), PUT: quote(put_mark, 0.22), MINI: quote(call_mark, 0.2),
                                 QQQ_CALL: quote(4.0, 0.25)})


def snap(records: list[PositionRecord], m: MarketSnapshot | None = None, limits: Limits | None = None,
         high_water: float = 0.0, states: dict[str, str] | None = None) -> ExposureSnapshot:
    m = m or market()
    exposure = portfolio_exposure([r.position for r in records], m, NOW)
    return build_snapshot(records, m, exposure, limits or Limits(), high_water,
                          {"account": "ACTIVE"} if states is None else states, NOW)


def rows(s: ExposureSnapshot) -> dict[tuple[str, str], Usage]:
    return {(u.name, u.scope): u for u in s.usage}


# --- P&L -------------------------------------------------------------------------------------------


def test_a_long_call_marked_up_gains_a_short_put_marked_up_loses_multiplier_once() -> None:
    long_call = PositionRecord(1, Position(CALL, 2, 2.50, "1dte"))       # bought 2 at 2.50, marked 3.00
    short_put = PositionRecord(2, Position(PUT, -3, 1.50, "1dte"), realised_today_usd=-40.0)  # sold 3 at 1.50, now 2
    s = snap([long_call, short_put])
    by_id = {p.con_id: p for p in s.positions}
    assert by_id[1].mark == 3.0 and by_id[1].unrealised_usd == 100.0    # 0.50 × 2 × 100: not 1.00, not 10,000
    assert by_id[2].mark == 2.0 and by_id[2].unrealised_usd == -150.0   # 0.50 × −3 × 100
    assert s.unrealised_usd == -50.0 and s.realised_today_usd == -40.0
    assert s.pnl_today_usd == -90.0


def test_the_contracts_own_multiplier_is_used_once() -> None:
    mini = PositionRecord(1, Position(MINI, 1, 2.0, "1dte"))        # a mini: 10 shares a contract
    shares = PositionRecord(2, Position(stock("SPY"), 100, 595.0))  # 100 shares, multiplier 1
    s = snap([mini, shares])
    by_id = {p.con_id: p for p in s.positions}
    assert by_id[1].unrealised_usd == 10.0     # (3 − 2) × 1 × 10
    assert by_id[2].mark == 600.0 and by_id[2].unrealised_usd == 500.0  # shares marked at spot: (600 − 595) × 100
    assert s.unrealised_usd == 510.0


def test_a_short_call_marked_down_gains_and_a_long_put_marked_down_loses() -> None:
    s = snap([PositionRecord(1, Position(CALL, -1, 4.0, "14dte")), PositionRecord(2, Position(PUT, 4, 2.5, "14dte"))])
    by_id = {p.con_id: p for p in s.positions}
    assert by_id[1].unrealised_usd == 100.0 and by_id[2].unrealised_usd == -200.0


def test_an_unquoted_option_has_no_mark_no_pnl_no_greeks_and_marks_its_scope_unpriced() -> None:
    priced = PositionRecord(1, Position(CALL, 1, 2.5, "1dte"))
    unquoted = PositionRecord(4, Position(UNQUOTED, 1, 1.0, "0dte"), realised_today_usd=7.0)
    s = snap([priced, unquoted])
    view = {p.con_id: p for p in s.positions}[4]
    assert view.mark is None and view.unrealised_usd is None and view.greeks is None
    assert s.unrealised_usd == 50.0 and s.realised_today_usd == 7.0   # the known part only; realised still counts
    assert s.unpriced_underlyings == ("SPY",) and s.unpriced_buckets == ("0dte",)
    assert "0dte" not in s.per_bucket


def test_marks_come_from_the_quote_and_shares_fall_back_to_spot() -> None:
    m = market()
    assert mark_of(CALL, m) == 3.0 and mark_of(UNQUOTED, m) is None
    assert mark_of(stock("SPY"), m) == 600.0 and mark_of(stock("IWM"), m) is None
    quoted = MarketSnapshot(m.underlyings, {stock("SPY"): ContractQuote(600.9, 601.1, 601.0, None, 1.0)})
    assert mark_of(stock("SPY"), quoted) == 601.0


def test_position_greeks_are_the_unit_greeks_times_qty_and_add_up_to_the_totals() -> None:
    records = [PositionRecord(1, Position(CALL, 2, 2.5, "1dte")), PositionRecord(2, Position(PUT, -3, 1.5, "14dte")),
               PositionRecord(3, Position(QQQ_CALL, 5, 3.0, "14dte")),
               PositionRecord(4, Position(stock("SPY"), 50, 599.0))]
    m = market()
    exposure = portfolio_exposure([r.position for r in records], m, NOW)
    s = build_snapshot(records, m, exposure, Limits(), 0.0, {}, NOW)
    for rec, view in zip(records, s.positions, strict=True):
        unit = exposure.unit[rec.position.contract]
        assert unit is not None and view.greeks == unit.scaled(rec.position.quantity)
    by_id = {p.con_id: p for p in s.positions}
    assert by_id[1].greeks is not None and by_id[1].greeks.delta > 0
    assert by_id[2].greeks is not None and by_id[2].greeks.delta > 0   # short a put: long delta
    assert by_id[4].greeks is not None and by_id[4].greeks.delta == 50 * 600.0 * 0.01  # $300 per 1 % move
    for g in GREEKS:
        spy = sum(getattr(by_id[i].greeks, g) for i in (1, 2, 4))
        assert getattr(s.per_underlying["SPY"], g) == pytest.approx(spy, rel=1e-12, abs=1e-9)
        fourteen = sum(getattr(by_id[i].greeks, g) for i in (2, 3))
        assert getattr(s.per_bucket["14dte"], g) == pytest.approx(fourteen, rel=1e-12, abs=1e-9)
    assert s.gross_per_underlying == {"QQQ": 5.0, "SPY": 5.5}  # 2 + 3 + 50 shares / 100


# --- usage -----------------------------------------------------------------------------------------


def test_usage_is_percent_of_the_limit_inf_disabled_zero_limit_infinite() -> None:
    assert usage("x", "a", 50.0, 50.0).pct == 100.0
    assert usage("x", "a", -25.0, 100.0).pct == 25.0
    assert usage("x", "a", 25.0, math.inf).pct == 0.0
    assert usage("x", "a", 1.0, 0.0).pct == math.inf and usage("x", "a", 0.0, 0.0).pct == 0.0
    assert usage("x", "a", -3.0, 6.0) == Usage("x", "a", -3.0, 6.0, 50.0)  # the value keeps its sign


def test_position_usage_at_the_limit_is_100_pct() -> None:
    s = snap([PositionRecord(1, Position(CALL, 20, 2.5, "1dte")), PositionRecord(2, Position(PUT, -5, 1.5, "1dte"))],
             limits=Limits(max_position_per_contract=20, max_position_per_underlying=math.inf))
    r = rows(s)
    assert r[("max_position_per_contract", CALL.describe())].pct == 100.0  # the largest |equivalents| only
    assert [u.scope for u in s.usage if u.name == "max_position_per_contract"] == [CALL.describe()]
    assert r[("max_position_per_underlying", "SPY")] == Usage("max_position_per_underlying", "SPY", 25.0, math.inf,
                                                              0.0)


def test_greek_usage_per_underlying_and_bucket_against_the_limits() -> None:
    records = [PositionRecord(1, Position(CALL, 2, 2.5, "1dte"))]
    first = snap(records)
    delta = first.per_underlying["SPY"].delta
    limits = Limits(delta_usd_per_pct_per_underlying=delta, vega_usd_per_vol_pt_per_underlying=0.0,
                    gamma_usd_per_pct_per_pct_per_bucket={"1dte": 2 * first.per_bucket["1dte"].gamma},
                    vega_usd_per_vol_pt_per_bucket={}, charm_usd_delta_per_day_per_bucket={"1dte": math.inf})
    r = rows(snap(records, limits=limits))
    assert r[("delta_usd_per_pct_per_underlying", "SPY")].pct == 100.0
    assert r[("vega_usd_per_vol_pt_per_underlying", "SPY")].pct == math.inf
    assert r[("gamma_usd_per_pct_per_pct_per_bucket", "1dte")].pct == pytest.approx(50.0)
    assert r[("charm_usd_delta_per_day_per_bucket", "1dte")].pct == 0.0
    assert ("vega_usd_per_vol_pt_per_bucket", "1dte") not in r      # no limit for the bucket: no row
    assert ("delta_usd_per_pct_per_bucket", "0dte") not in r        # nothing in the bucket: no current value
    assert r[("charm_usd_delta_per_day_per_underlying", "SPY")].value == first.per_underlying["SPY"].charm


def test_daily_loss_and_drawdown_usage() -> None:
    rec = [PositionRecord(1, Position(CALL, 10, 5.5, "1dte"))]                   # (3 − 5.5) × 10 × 100 = −2,500
    s = snap(rec, limits=Limits(daily_loss_limit_usd=5_000, drawdown_limit_usd=7_500), high_water=1_000.0)
    r = rows(s)
    assert s.pnl_today_usd == -2_500.0 and s.drawdown_usd == 3_500.0
    assert r[("daily_loss_limit_usd", "account")] == Usage("daily_loss_limit_usd", "account", 2_500.0, 5_000.0, 50.0)
    assert r[("drawdown_limit_usd", "account")].value == 3_500.0
    assert r[("drawdown_limit_usd", "account")].pct == pytest.approx(3_500 / 75)
    gain = rows(snap([PositionRecord(1, Position(CALL, 1, 2.5, "1dte"))]))
    assert gain[("daily_loss_limit_usd", "account")].pct == 0.0   # a gain uses none of the loss limit
    at_limit = rows(snap(rec, limits=Limits(daily_loss_limit_usd=2_500)))
    assert at_limit[("daily_loss_limit_usd", "account")].pct == 100.0


def test_an_empty_book_still_reports_the_account_limits() -> None:
    s = snap([], high_water=200.0)
    assert s.positions == () and s.pnl_today_usd == 0.0 and s.drawdown_usd == 200.0
    assert [u.name for u in s.usage] == ["daily_loss_limit_usd", "drawdown_limit_usd"]


# --- high-water mark -------------------------------------------------------------------------------


def test_the_high_water_mark_never_falls_and_drawdown_is_measured_from_it() -> None:
    rec = [PositionRecord(1, Position(CALL, 1, 2.5, "1dte"))]
    up = snap(rec, market(call_mark=4.0), high_water=0.0)
    assert up.pnl_high_water_usd == 150.0 and up.drawdown_usd == 0.0
    down = snap(rec, market(call_mark=2.0), high_water=up.pnl_high_water_usd)
    assert down.pnl_high_water_usd == 150.0 and down.drawdown_usd == 200.0


@given(marks=st.lists(st.floats(0.0, 50.0, allow_nan=False), min_size=1, max_size=15),
       realised=st.floats(-1e4, 1e4, allow_nan=False))
def test_the_high_water_mark_is_monotone_over_any_path(marks: list[float], realised: float) -> None:
    rec = [PositionRecord(1, Position(CALL, -3, 2.5, "1dte"), realised_today_usd=realised)]
    high_water = 0.0
    for mark in marks:
        s = snap(rec, market(call_mark=mark), high_water=high_water)
        assert s.pnl_high_water_usd >= high_water and s.pnl_high_water_usd >= s.pnl_today_usd
        assert s.drawdown_usd == s.pnl_high_water_usd - s.pnl_today_usd >= 0.0
        high_water = s.pnl_high_water_usd


# --- inputs refused --------------------------------------------------------------------------------


def test_programming_errors_raise_instead_of_publishing() -> None:
    m = market()
    exposure = portfolio_exposure([], m, NOW)
    with pytest.raises(ValueError, match="tz-aware"):
        build_snapshot([], m, exposure, Limits(), 0.0, {}, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="pnl_high_water_usd"):
        build_snapshot([], m, exposure, Limits(), math.nan, {}, NOW)
    with pytest.raises(ValueError, match="states"):
        build_snapshot([], m, exposure, Limits(), 0.0, {"account": "PAUSED"}, NOW)


# --- codec -----------------------------------------------------------------------------------------


def test_the_snapshot_round_trips_exactly_with_infinite_limits_and_usage() -> None:
    limits = Limits(max_position_per_contract=0.0, vega_usd_per_vol_pt_per_underlying=math.inf)
    s = snap([PositionRecord(1, Position(CALL, 2, 2.5, "1dte")), PositionRecord(2, Position(PUT, -1, 1.5, "14dte")),
              PositionRecord(3, Position(UNQUOTED, 1, 1.0, "0dte"))], limits=limits,
             states={"account": "ACTIVE", "SPY": "REDUCING"})
    raw = snapshot_to_redis(s)
    assert snapshot_from_redis(raw, key=KEY) == s
    doc = json.loads(raw)
    assert doc["v"] == 1 and doc["states"] == {"account": "ACTIVE", "SPY": "REDUCING"}
    r = {(u["name"], u["scope"]): u for u in doc["usage"]}
    assert r[("max_position_per_contract", CALL.describe())]["pct"] == "inf"
    assert r[("vega_usd_per_vol_pt_per_underlying", "SPY")]["limit"] == "inf"
    assert r[("vega_usd_per_vol_pt_per_underlying", "SPY")]["pct"] == 0.0
    assert doc["positions"][2]["mark"] is None and doc["positions"][2]["greeks"] is None
    assert doc["pnl_today_usd"] == s.pnl_today_usd and doc["drawdown_usd"] == s.drawdown_usd


books = st.lists(st.tuples(st.sampled_from([CALL, PUT, MINI, QQQ_CALL, UNQUOTED, stock("SPY")]),
                           st.integers(-500, 500), st.floats(0.0, 50.0, allow_nan=False), st.sampled_from(BUCKETS),
                           st.floats(-1e5, 1e5, allow_nan=False)), max_size=12)
limit_values = st.sampled_from([0.0, 1.0, 1e3, math.inf])


@given(book=books, mark=st.floats(0.0, 30.0, allow_nan=False), high_water=st.floats(-1e6, 1e6, allow_nan=False),
       per_contract=limit_values, delta=limit_values, loss=limit_values)
def test_any_snapshot_round_trips_exactly(book: list[tuple[ContractKey, int, float, str, float]], mark: float,
                                          high_water: float, per_contract: float, delta: float, loss: float) -> None:
    records = [PositionRecord(i + 1, Position(key, qty, cost, bucket), realised)  # type: ignore[arg-type]
               for i, (key, qty, cost, bucket, realised) in enumerate(book)]
    limits = Limits(max_position_per_contract=per_contract, delta_usd_per_pct_per_underlying=delta,
                    daily_loss_limit_usd=loss)
    s = snap(records, market(call_mark=mark), limits, high_water)
    assert snapshot_from_redis(snapshot_to_redis(s), key=KEY) == s


GOOD = snapshot_to_redis(snap([PositionRecord(1, Position(CALL, 2, 2.5, "1dte"))],
                              limits=Limits(max_position_per_contract=0.0)))


_DROP = object()


def _edit(path: list[str | int], value: object) -> str:
    """GOOD with the value at ``path`` replaced (or dropped)."""
    doc = json.loads(GOOD)
    target = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(("path", "value", "field"), [
    (["v"], 2, "v"), (["v"], _DROP, "v"), (["as_of"], "2026-12-02T15:00:00", "as_of"), (["as_of"], _DROP, "as_of"),
    (["positions"], {}, "positions"), (["positions", 0, "qty"], 2.0, "positions[0].qty"),
    (["positions", 0, "qty"], True, "positions[0].qty"), (["positions", 0, "con_id"], "1", "positions[0].con_id"),
    (["positions", 0, "mark"], "inf", "positions[0].mark"), (["positions", 0, "mark"], _DROP, "positions[0].mark"),
    (["positions", 0, "bucket"], "2dte", "positions[0].bucket"),
    (["positions", 0, "greeks", "delta"], None, "positions[0].greeks.delta"),
    (["per_underlying", "SPY"], None, "per_underlying[SPY]"),
    (["per_bucket"], {"2dte": {"delta": 0.0, "gamma": 0.0, "vega": 0.0, "charm": 0.0}}, "per_bucket"),
    (["gross_per_underlying", "SPY"], "inf", "gross_per_underlying[SPY]"),
    (["usage", 0, "limit"], "infinity", "usage[0].limit"), (["usage", 0, "pct"], None, "usage[0].pct"),
    (["usage", 0, "value"], "inf", "usage[0].value"), (["states", "account"], "PAUSED", "states[account]"),
    (["unpriced_buckets"], ["1dte", "2dte"], "unpriced_buckets"), (["realised_today_usd"], "0", "realised_today_usd"),
    (["pnl_today_usd"], 1.0, "pnl_today_usd"), (["drawdown_usd"], 5.0, "drawdown_usd"),
    (["pnl_high_water_usd"], -1e9, "pnl_high_water_usd"),
])
def test_a_garbled_snapshot_is_absent_naming_the_field(path: list[str | int], value: object, field: str) -> None:
    got = snapshot_from_redis(_edit(path, value), key=KEY)
    assert isinstance(got, Absent), (path, value)
    assert got.key == KEY and got.reason.startswith("malformed: ") and field in got.reason


@pytest.mark.parametrize("raw", [GOOD.replace('"unrealised_usd":100.0', '"unrealised_usd":NaN', 1),
                                 GOOD.replace('"unrealised_usd":100.0', '"unrealised_usd":Infinity', 1),
                                 "[]", "not json", "{}", '{"v":1}'])
def test_broken_json_is_absent(raw: str) -> None:
    got = snapshot_from_redis(raw, key=KEY)
    assert isinstance(got, Absent) and got.reason.startswith("malformed")


@pytest.mark.parametrize("raw", [None, ""])
def test_no_snapshot_yet_is_missing(raw: str | None) -> None:
    got = snapshot_from_redis(raw, key=KEY)
    assert isinstance(got, Absent) and got.reason == "missing"
