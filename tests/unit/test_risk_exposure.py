"""Dollar Greeks by hand: one option a year from settlement, shares, sums per underlying and per bucket."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from qc.analytics.greeks import years_to_expiry
from qc.core import clock
from qc.risk.exposure import (
    VECTORISE_FROM,
    ZERO,
    DollarGreeks,
    dollar_greeks,
    portfolio_exposure,
    post_trade,
    unit_greeks,
    years_to_settlement,
)
from qc.risk.model import ContractKey, ContractQuote, MarketSnapshot, Position, UnderlyingQuote, stock

EXPIRY = date(2026, 12, 3)
SETTLES = datetime(2026, 12, 3, 16, 0, tzinfo=clock.NEW_YORK)
YEAR_BEFORE = SETTLES - timedelta(days=365)   # T = 1.0 exactly
NOW = datetime(2026, 12, 3, 11, 0, tzinfo=clock.NEW_YORK)

# S = K = 100, σ = 0.2, r = q = 0, T = 1: d1 = 0.1, d2 = -0.1
N_D1 = 0.5 * (1.0 + math.erf(0.1 / math.sqrt(2.0)))       # Φ(0.1) = 0.5398278372770290
PHI_D1 = math.exp(-0.005) / math.sqrt(2.0 * math.pi)        # φ(0.1) = 0.3969525474770118

CALL = ContractKey("SPY", "OPT", EXPIRY, 100.0, "C")
PUT = ContractKey("SPY", "OPT", EXPIRY, 100.0, "P")
QQQ_CALL = ContractKey("QQQ", "OPT", EXPIRY, 100.0, "C")


def market(**und: UnderlyingQuote) -> MarketSnapshot:
    quote = ContractQuote(bid=7.9, ask=8.0, mark=7.95, iv=0.2, age_s=1.0)
    unds = und or {"SPY": UnderlyingQuote(100.0, 1.0, 1.0, 1.0), "QQQ": UnderlyingQuote(100.0, 1.0, 1.0, 1.0)}
    return MarketSnapshot(unds, {CALL: quote, PUT: quote, QQQ_CALL: quote})


def approx(got: DollarGreeks | None, want: DollarGreeks, rel: float = 1e-9) -> None:
    assert got is not None
    for name in ("delta", "gamma", "vega", "charm"):
        assert getattr(got, name) == pytest.approx(getattr(want, name), rel=rel, abs=1e-12), name


def test_one_atm_call_a_year_out_by_hand() -> None:
    # $delta per 1 % = Δ × m × q × S × 0.01 = 0.539828 × 100 × 1 × 100 × 0.01 = 53.98 $
    # $gamma = Γ × m × q × (S × 0.01)² with Γ = φ(d1) / (S σ √T) = 0.019848: 1.9848 $ of delta per 1 %
    # $vega = vega(per point) × m × q = S φ(d1) √T × 0.01 × 100 = 39.70 $ per vol point
    # $charm: with r = q = 0, charm = φ(d1) d2 / (2T) / 365 per day → × m × S × 0.01 = -0.005438 $/day
    want = DollarGreeks(delta=N_D1 * 100.0, gamma=PHI_D1 / 20.0 * 100.0, vega=PHI_D1 * 100.0,
                        charm=PHI_D1 * -0.1 / 2.0 / 365.0 * 100.0)
    approx(dollar_greeks(CALL, 1, market(), YEAR_BEFORE), want)
    assert want.delta == pytest.approx(53.98278372770290)
    assert want.vega == pytest.approx(39.69525474770118)


def test_short_puts_have_positive_dollar_delta_and_negative_gamma_and_vega() -> None:
    got = dollar_greeks(PUT, -3, market(), YEAR_BEFORE)
    # put Δ = Φ(d1) - 1 = -0.460172; short 3 → +0.460172 × 3 × 100 × 100 × 0.01 = +138.05 $ per 1 %
    approx(got, DollarGreeks(delta=(1.0 - N_D1) * 300.0, gamma=-3 * PHI_D1 / 20.0 * 100.0,
                             vega=-3 * PHI_D1 * 100.0, charm=-3 * PHI_D1 * -0.1 / 2.0 / 365.0 * 100.0))
    assert got is not None and got.delta == pytest.approx(138.0516511)


def test_shares_have_delta_one_and_nothing_else() -> None:
    spy = MarketSnapshot({"SPY": UnderlyingQuote(600.0, 1.0, 1.0, 1.0)}, {})
    assert dollar_greeks(stock("SPY"), 50, spy, NOW) == DollarGreeks(delta=300.0)  # 50 × 600 × 0.01
    assert dollar_greeks(stock("SPY"), -50, spy, NOW) == DollarGreeks(delta=-300.0)


def test_time_runs_to_the_settlement_instant_of_the_calendar() -> None:
    assert years_to_settlement(YEAR_BEFORE, EXPIRY) == 1.0
    assert years_to_settlement(NOW, EXPIRY) == years_to_expiry(NOW, EXPIRY) == 5.0 / (365 * 24)
    early = datetime(2026, 11, 27, 11, 0, tzinfo=clock.NEW_YORK)  # the day after Thanksgiving: 13:00 close
    assert years_to_settlement(early, date(2026, 11, 27)) == pytest.approx(2.0 / (365 * 24), rel=1e-12)
    with pytest.raises(ValueError, match="tz-aware"):
        years_to_settlement(datetime(2026, 12, 3, 11, 0), EXPIRY)  # noqa: DTZ001 (the naive instant under test)


def test_a_settled_contract_has_zero_greeks_and_an_unpriceable_one_none() -> None:
    after_close = SETTLES + timedelta(seconds=1)
    assert unit_greeks([CALL], market(), after_close)[CALL] == ZERO
    no_iv = MarketSnapshot(market().underlyings, {CALL: ContractQuote(1.0, 1.1, 1.05, None, 1.0)})
    assert unit_greeks([CALL], no_iv, NOW)[CALL] is None
    assert unit_greeks([CALL], MarketSnapshot(market().underlyings, {}), NOW)[CALL] is None  # no quote
    assert unit_greeks([CALL, stock("SPY")], MarketSnapshot({}, market().quotes), NOW) == {
        CALL: None, stock("SPY"): None}  # no spot


def test_portfolio_sums_per_underlying_and_per_bucket() -> None:
    positions = (Position(CALL, 2, 7.0, "0dte"), Position(PUT, -1, 7.0, "14dte"),
                 Position(QQQ_CALL, 4, 7.0, "0dte"), Position(CALL, 1, 7.0, "14dte"))
    m = market()
    e = portfolio_exposure(positions, m, YEAR_BEFORE)
    call, put = unit_greeks([CALL], m, YEAR_BEFORE)[CALL], unit_greeks([PUT], m, YEAR_BEFORE)[PUT]
    assert call is not None and put is not None
    approx(e.underlying("SPY"), call.scaled(3) + put.scaled(-1))
    approx(e.underlying("QQQ"), call.scaled(4))  # same strike, spot and vol: the same unit Greeks
    approx(e.bucket("0dte"), call.scaled(6))
    approx(e.bucket("14dte"), call.scaled(1) + put.scaled(-1))
    assert e.bucket("1dte") == ZERO and e.underlying("IWM") == ZERO
    assert e.position == {CALL: 3, PUT: -1, QQQ_CALL: 4}
    assert e.gross_per_underlying == {"SPY": 4.0, "QQQ": 4.0}
    assert e.unpriced_underlyings == frozenset() and e.as_of == YEAR_BEFORE
    # the numbers themselves: SPY's delta = 3 × 53.98 - 1 × (-46.02) = 207.97 $ per 1 %
    assert e.underlying("SPY").delta == pytest.approx(3 * N_D1 * 100 + (1 - N_D1) * 100)


def test_unpriced_positions_mark_their_underlying_and_bucket_and_add_nothing() -> None:
    iwm = ContractKey("IWM", "OPT", EXPIRY, 230.0, "C")  # no quote
    e = portfolio_exposure((Position(CALL, 1, 7.0, "0dte"), Position(iwm, 2, 1.0, "1dte")), market(), NOW)
    assert e.unpriced_underlyings == {"IWM"} and e.unpriced_buckets == {"1dte"}
    assert e.underlying("IWM") == ZERO and e.bucket("1dte") == ZERO
    assert e.unit[iwm] is None


def test_post_trade_adds_the_order_to_its_underlying_and_its_bucket() -> None:
    m = market()
    e = portfolio_exposure((Position(CALL, 3, 7.0, "0dte"),), m, YEAR_BEFORE, extra=[PUT])
    closing = post_trade(e, CALL, -3, "0dte", m, YEAR_BEFORE)
    assert closing.underlying_after is not None and closing.bucket_after is not None
    assert closing.underlying_after.delta == pytest.approx(0.0, abs=1e-9)
    assert closing.bucket_after.vega == pytest.approx(0.0, abs=1e-9)
    hedge = post_trade(e, PUT, 2, "1dte", m, YEAR_BEFORE)  # priced from ``extra``: no BSM call of its own
    assert hedge.bucket_before == ZERO and hedge.order is not None
    assert hedge.order.delta == pytest.approx(-2 * (1 - N_D1) * 100)
    assert hedge.underlying_after is not None
    assert hedge.underlying_after.delta == pytest.approx(3 * N_D1 * 100 - 2 * (1 - N_D1) * 100)
    unpriced = post_trade(e, ContractKey("IWM", "OPT", EXPIRY, 230.0, "C"), 1, "0dte", m, YEAR_BEFORE)
    assert unpriced.order is None and unpriced.underlying_after is None
    with pytest.raises(ValueError, match="bucket"):
        post_trade(e, CALL, 1, "7dte", m, YEAR_BEFORE)  # type: ignore[arg-type]


def test_few_contracts_priced_one_by_one_match_the_vectorised_batch() -> None:
    strikes = [90.0 + i for i in range(VECTORISE_FROM + 4)]
    keys = [ContractKey("SPY", "OPT", EXPIRY, k, "C" if i % 2 else "P") for i, k in enumerate(strikes)]
    quote = ContractQuote(bid=1.0, ask=1.1, mark=1.05, iv=0.25, age_s=1.0)
    m = MarketSnapshot({"SPY": UnderlyingQuote(100.0, 1.0, 1.0, 1.0, 0.04, 0.01)}, dict.fromkeys(keys, quote))
    batch = unit_greeks(keys, m, NOW)  # one vectorised call
    for key in keys:
        single = unit_greeks([key], m, NOW)[key]  # plain floats
        want = batch[key]
        assert want is not None
        approx(single, want, rel=1e-9)
