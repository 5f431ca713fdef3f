"""The exposure snapshot: P&L signs and the multiplier, usage percentages, the high-water mark, the codecs."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.core.codec import Absent
from qc.risk.exposure import portfolio_exposure
from qc.risk.model import ContractKey, ContractQuote, Limits, MarketSnapshot, Position, UnderlyingQuote, stock
from qc.risk.position_codec import PositionRecord, position_from_redis, position_to_redis
from qc.risk.snapshot import ExposureSnapshot, build_snapshot, snapshot_from_redis, snapshot_to_redis, usage

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=clock.NEW_YORK)
EXPIRY = date(2026, 12, 4)
CALL = ContractKey("SPY", "OPT", EXPIRY, 600.0, "C")
PUT = ContractKey("SPY", "OPT", EXPIRY, 590.0, "P")


def market(call_mark: float = 3.0, put_mark: float = 2.0) -> MarketSnapshot:
    und = {"SPY": UnderlyingQuote(600.0, 1.0, 1.0, 1.0)}
    return MarketSnapshot(und, {CALL: ContractQuote(call_mark - 0.05, call_mark + 0.05, call_mark, 0.2, 60.0),
                                PUT: ContractQuote(put_mark - 0.05, put_mark + 0.05, put_mark, 0.22, 60.0)})


def snap(records: list[PositionRecord], m: MarketSnapshot | None = None, limits: Limits | None = None,
         high_water: float = 0.0) -> ExposureSnapshot:
    m = m or market()
    exposure = portfolio_exposure([r.position for r in records], m, NOW)
    return build_snapshot(records, m, exposure, limits or Limits(), high_water, {"account": "ACTIVE"}, NOW)


def test_a_long_call_marked_up_gains_a_short_put_marked_up_loses_multiplier_once() -> None:
    long_call = PositionRecord(1, Position(CALL, 2, 2.50, "1dte"))       # bought 2 at 2.50, marked 3.00
    short_put = PositionRecord(2, Position(PUT, -3, 1.50, "1dte"), realised_today_usd=-40.0)  # sold 3 at 1.50, now 2
    s = snap([long_call, short_put])
    by_id = {p.con_id: p for p in s.positions}
    assert by_id[1].unrealised_usd == pytest.approx(+100.0)   # 0.50 × 2 × 100: not 1.00, not 10,000
    assert by_id[2].unrealised_usd == pytest.approx(-150.0)   # 0.50 × −3 × 100
    assert s.unrealised_usd == pytest.approx(-50.0) and s.realised_today_usd == -40.0
    assert s.pnl_today_usd == pytest.approx(-90.0)
    assert by_id[1].greeks is not None and by_id[1].greeks.delta > 0
    assert by_id[2].greeks is not None and by_id[2].greeks.delta > 0  # short a put: long delta


def test_shares_are_marked_at_spot_and_unquoted_options_have_no_mark() -> None:
    shares = PositionRecord(3, Position(stock("SPY"), 100, 595.0))
    unquoted = PositionRecord(4, Position(ContractKey("SPY", "OPT", EXPIRY, 610.0, "C"), 1, 1.0, "1dte"))
    s = snap([shares, unquoted])
    by_id = {p.con_id: p for p in s.positions}
    assert by_id[3].mark == 600.0 and by_id[3].unrealised_usd == pytest.approx(500.0)
    assert by_id[4].mark is None and by_id[4].unrealised_usd is None and by_id[4].greeks is None
    assert s.unpriced_underlyings == ("SPY",) and s.unpriced_buckets == ("1dte",)


def test_usage_is_percent_of_the_limit_inf_disabled_zero_limit_infinite() -> None:
    assert usage("x", "a", 50.0, 50.0).pct == 100.0
    assert usage("x", "a", -25.0, 100.0).pct == 25.0
    assert usage("x", "a", 25.0, math.inf).pct == 0.0
    assert usage("x", "a", 1.0, 0.0).pct == math.inf and usage("x", "a", 0.0, 0.0).pct == 0.0
    s = snap([PositionRecord(1, Position(CALL, 10, 2.5, "1dte"))], limits=Limits(max_position_per_contract=20))
    rows = {(u.name, u.scope): u for u in s.usage}
    assert rows[("max_position_per_contract", CALL.describe())].pct == 50.0
    assert rows[("max_position_per_underlying", "SPY")].value == 10.0
    assert rows[("daily_loss_limit_usd", "account")].pct == 0.0  # a gain uses none of the loss limit


def test_the_high_water_mark_never_falls_and_drawdown_is_measured_from_it() -> None:
    rec = [PositionRecord(1, Position(CALL, 1, 2.5, "1dte"))]
    up = snap(rec, market(call_mark=4.0), high_water=0.0)
    assert up.pnl_high_water_usd == pytest.approx(150.0) and up.drawdown_usd == 0.0
    down = snap(rec, market(call_mark=2.0), high_water=up.pnl_high_water_usd)
    assert down.pnl_high_water_usd == pytest.approx(150.0) and down.drawdown_usd == pytest.approx(200.0)


def test_the_snapshot_round_trips_exactly_even_with_infinite_usage() -> None:
    limits = Limits(max_position_per_contract=0.0, vega_usd_per_vol_pt_per_underlying=math.inf)
    s = snap([PositionRecord(1, Position(CALL, 2, 2.5, "1dte")), PositionRecord(2, Position(PUT, -1, 1.5, "14dte"))],
             limits=limits)
    back = snapshot_from_redis(snapshot_to_redis(s), key="risk:exposure:x")
    assert back == s
    assert isinstance(snapshot_from_redis("{}", key="k"), Absent)
    assert isinstance(snapshot_from_redis(None, key="k"), Absent)


quantities = st.integers(-10_000, 10_000)
prices = st.floats(0.0, 1e5, allow_nan=False, allow_infinity=False)


@given(qty=quantities, cost=prices, realised=st.floats(-1e7, 1e7, allow_nan=False),
       strike=st.floats(1.0, 5000.0), right=st.sampled_from(["C", "P"]), days=st.integers(0, 900),
       bucket=st.sampled_from(["0dte", "1dte", "14dte", "other"]))
def test_a_position_round_trips(qty: int, cost: float, realised: float, strike: float, right: str, days: int,
                                bucket: str) -> None:
    key = ContractKey("QQQ", "OPT", EXPIRY + timedelta(days=days), strike, right)  # type: ignore[arg-type]
    rec = PositionRecord(123, Position(key, qty, cost, bucket), realised, NOW)  # type: ignore[arg-type]
    assert position_from_redis(position_to_redis(rec), key="positions:open:DU1:123") == rec


GOOD = position_to_redis(PositionRecord(9, Position(CALL, -2, 1.25, "0dte"), 12.5, NOW))


@pytest.mark.parametrize(("change", "field"), [
    ({"qty": "1.5"}, "qty"), ({"qty": "true"}, "qty"), ({"avg_cost": "nan"}, "avg_cost"),
    ({"avg_cost": "inf"}, "avg_cost"), ({"bucket": "2dte"}, "bucket"), ({"expiry": ""}, "expiry"),
    ({"expiry": "2026-13-01"}, "expiry"), ({"strike": "-5"}, "strike"), ({"right": "X"}, "right"),
    ({"sec_type": "FUT"}, "sec_type"), ({"multiplier": "0"}, "multiplier"), ({"con_id": "abc"}, "con_id"),
    ({"realised_today_usd": "1e999"}, "realised_today_usd"), ({"v": "2"}, "v"), ({"symbol": ""}, "symbol"),
])
def test_a_garbled_position_is_absent_naming_the_field(change: dict[str, str], field: str) -> None:
    got = position_from_redis({**GOOD, **change}, key="positions:open:DU1:9")
    assert isinstance(got, Absent) and field in got.reason and got.key == "positions:open:DU1:9"


def test_a_missing_field_or_an_empty_hash_is_absent() -> None:
    partial = {k: v for k, v in GOOD.items() if k != "avg_cost"}
    got = position_from_redis(partial, key="k")
    assert isinstance(got, Absent) and "avg_cost" in got.reason
    gone = position_from_redis({}, key="k")
    assert isinstance(gone, Absent) and gone.reason == "missing"
