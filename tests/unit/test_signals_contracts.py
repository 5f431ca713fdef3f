"""Contract choice: the expiry of each strategy from the calendar, every liquidity filter with its counted
reason, the delta-band pick, the shares for MOC and the limit price."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.clock import NEW_YORK
from qc.ingest.codec import ChainRow, OptionChain
from qc.signals.contracts import (
    REJECTIONS,
    choose,
    limit_price,
    share_contract,
    target_expiry,
)
from qc.signals.model import Choice, Contract, ContractFilter, NoContract, Quote, Right, StrategyName

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK)  # a Thursday morning
D0, D1 = date(2026, 12, 3), date(2026, 12, 4)
D14 = date(2026, 12, 17)
LISTED = (D0, D1, date(2026, 12, 7), date(2026, 12, 16), D14, date(2026, 12, 18), date(2026, 12, 31))
FLT = ContractFilter()  # band 0.40-0.55, spread 10 % and $0.05, OI 500, volume 100, age 900 s


def row(strike: float = 600.0, delta: float | None = 0.475, right: Right = "C", bid: float = 2.00,
        ask: float = 2.03, oi: int = 1000, volume: int = 500, expiry: date = D0, mark: float | None = None) -> ChainRow:
    return ChainRow(expiry=expiry, right=right, strike=strike, bid=bid, ask=ask,
                    mark=mark if mark is not None else round(0.5 * (bid + ask), 4), volume=volume, open_interest=oi,
                    t_years=0.001, iv=0.15, iv_source="mark", divergent=False, delta=delta, gamma=0.05, vega=0.1,
                    theta=-0.5, rho=0.01, vanna=0.0, charm=0.0)


def chain(*rows: ChainRow, symbol: str = "SPY", as_of: datetime = NOW - timedelta(seconds=60)) -> OptionChain:
    return OptionChain(symbol=symbol, as_of=as_of, spot=600.0, rate=0.04, div_yield=0.01,
                       expiries=tuple(sorted({r.expiry for r in rows})), rows=tuple(rows))


def chosen(result: Choice | NoContract) -> Choice:
    assert isinstance(result, Choice), result
    return result


def refused(result: Choice | NoContract) -> NoContract:
    assert isinstance(result, NoContract), result
    return result


# --- expiries -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "strategy", "expected"), [
    (NOW, "0dte", D0),
    (NOW, "1dte", D1),
    (datetime(2026, 12, 3, 9, 0, tzinfo=NEW_YORK), "0dte", D0),     # before the open: today
    (datetime(2026, 12, 3, 15, 59, tzinfo=NEW_YORK), "0dte", D0),
    (datetime(2026, 12, 3, 16, 0, tzinfo=NEW_YORK), "0dte", D1),    # settled at the close: the next session
    (datetime(2026, 12, 3, 16, 30, tzinfo=NEW_YORK), "1dte", date(2026, 12, 7)),
    (datetime(2026, 12, 5, 12, 0, tzinfo=NEW_YORK), "0dte", date(2026, 12, 7)),  # Saturday
    (datetime(2026, 12, 24, 17, 0, tzinfo=NEW_YORK), "0dte", date(2026, 12, 28)),  # over Christmas
    (datetime(2026, 11, 27, 12, 59, tzinfo=NEW_YORK), "0dte", date(2026, 11, 27)),  # the early close
    (datetime(2026, 11, 27, 13, 0, tzinfo=NEW_YORK), "0dte", date(2026, 11, 30)),
])
def test_target_expiry_by_the_calendar(now: datetime, strategy: StrategyName, expected: date) -> None:
    listed = [expected + timedelta(days=i) for i in range(-3, 4)]
    assert target_expiry(strategy, now, listed) == expected


def test_0dte_and_1dte_must_be_listed() -> None:
    assert target_expiry("0dte", NOW, [D1, D14]) is None
    assert target_expiry("1dte", NOW, [D0, D14]) is None
    assert target_expiry("0dte", NOW, []) is None


@pytest.mark.parametrize(("listed", "expected"), [
    (LISTED, D14),                                                     # exactly 14 days out
    ((D0, D1, date(2026, 12, 16), date(2026, 12, 18)), date(2026, 12, 18)),  # tie: the later one
    ((D0, date(2026, 12, 15), date(2026, 12, 18)), date(2026, 12, 18)),      # the nearer one
    ((D0, date(2026, 12, 10), date(2026, 12, 21)), date(2026, 12, 21)),      # 4 days beats 7
    ((D0, date(2026, 12, 24)), date(2026, 12, 24)),                          # 7 days: still a swing expiry
    ((D0, D1, date(2026, 12, 7)), None),                                     # nothing near two weeks
    ((D0, date(2026, 12, 28)), None),                                        # 11 days off
])
def test_14dte_picks_the_nearest_listed_expiry(listed: tuple[date, ...], expected: date | None) -> None:
    assert target_expiry("14dte", NOW, listed) == expected


def test_moc_has_no_expiry() -> None:
    with pytest.raises(ValueError, match="shares"):
        target_expiry("moc", NOW, LISTED)


# --- choosing a contract --------------------------------------------------------------------------

def test_the_delta_band_picks_the_closest_to_its_middle() -> None:
    rows = [row(590.0, 0.62), row(595.0, 0.54), row(600.0, 0.48), row(605.0, 0.41), row(610.0, 0.33),
            row(600.0, -0.52, "P")]
    got = chosen(choose(chain(*rows), "0dte", 1, FLT, NOW))
    assert got.contract == Contract("SPY", "OPT", D0, 600.0, "C", 100, "SMART", "ARCA")
    assert got.quote == Quote(2.00, 2.03, 2.015, 0.48, 1000, 500, 60.0)
    assert got.rejected == {"delta_band": 2}


def test_puts_use_absolute_delta() -> None:
    rows = [row(590.0, -0.30, "P"), row(595.0, -0.44, "P"), row(600.0, -0.49, "P"), row(605.0, -0.60, "P"),
            row(600.0, 0.475, "C")]
    got = chosen(choose(chain(*rows, symbol="QQQ"), "0dte", -1, FLT, NOW))
    assert (got.contract.right, got.contract.strike, got.contract.primary_exchange) == ("P", 600.0, "NASDAQ")
    assert got.rejected == {"delta_band": 2}


def test_ties_go_to_the_tighter_spread_then_the_lower_strike() -> None:
    tighter = chosen(choose(chain(row(600.0, 0.45, ask=2.04), row(605.0, 0.50, ask=2.02)), "0dte", 1, FLT, NOW))
    assert tighter.contract.strike == 605.0
    lower = chosen(choose(chain(row(605.0, 0.50), row(600.0, 0.45)), "0dte", 1, FLT, NOW))
    assert lower.contract.strike == 600.0


@pytest.mark.parametrize(("change", "reason"), [
    ({"delta": None}, "no_delta"),
    ({"delta": 0.39}, "delta_band"),
    ({"delta": 0.56}, "delta_band"),
    ({"bid": 0.0}, "no_quote"),
    ({"bid": 2.03, "ask": 2.03}, "no_quote"),
    ({"bid": 0.20, "ask": 0.24}, "spread"),   # 4 cents, but 18 % of the mid
    ({"bid": 5.00, "ask": 5.06}, "spread"),   # 1.2 % of the mid, but 6 cents
    ({"oi": 499}, "open_interest"),
    ({"volume": 99}, "volume"),
])
def test_each_filter_rejects_with_its_counted_reason(change: dict[str, Any], reason: str) -> None:
    bad = [row(600.0 + i, **change) for i in range(3)]
    got = refused(choose(chain(*bad), "0dte", 1, FLT, NOW))
    assert got.rejected == {reason: 3}
    assert got.reason == f"every 2026-12-03 C rejected: {reason} 3"
    ok = chosen(choose(chain(*bad, row(610.0)), "0dte", 1, FLT, NOW))
    assert ok.contract.strike == 610.0 and ok.rejected == {reason: 3}


def test_filter_edges_pass() -> None:
    edges = [row(600.0, 0.40), row(601.0, -0.55, "P"), row(602.0, bid=1.00, ask=1.05),
             row(603.0, oi=500, volume=100)]
    for edge in edges:
        direction = 1 if edge.right == "C" else -1
        assert isinstance(choose(chain(edge), "0dte", direction, FLT, NOW), Choice), edge


def test_rejections_count_the_first_failing_filter_in_order() -> None:
    rows = [row(600.0, None, bid=0.0), row(601.0, 0.9, oi=0), row(602.0, bid=0.0, oi=0),
            row(603.0, bid=0.20, ask=0.30, volume=0), row(604.0, oi=0, volume=0), row(605.0, volume=0)]
    got = refused(choose(chain(*rows), "0dte", 1, FLT, NOW))
    assert got.rejected == {"no_delta": 1, "delta_band": 1, "no_quote": 1, "spread": 1, "open_interest": 1,
                            "volume": 1}
    assert list(got.rejected) == [r for r in REJECTIONS if r != "stale_quote"]


def test_the_reason_names_the_decisive_filter_first() -> None:
    """Out-of-band strikes are always there: the in-band contracts' rejection is what decided."""
    far = [row(500.0 + i, 0.05) for i in range(30)]
    wide = [row(600.0 + i, bid=1.0, ask=1.5) for i in range(12)]
    got = refused(choose(chain(*far, *wide), "0dte", 1, FLT, NOW))
    assert got.reason == "every 2026-12-03 C rejected: spread 12, delta_band 30"
    only_far = refused(choose(chain(*far, row(600.0, None)), "0dte", 1, FLT, NOW))
    assert only_far.reason == "every 2026-12-03 C rejected: delta_band 30, no_delta 1"


def test_a_stale_chain_rejects_everything() -> None:
    rows = [row(600.0), row(601.0, 0.2), row(602.0, None)]
    old = chain(*rows, as_of=NOW - timedelta(seconds=901))
    got = refused(choose(old, "0dte", 1, FLT, NOW))
    assert got.rejected == {"stale_quote": 3}
    assert got.reason == "every 2026-12-03 C rejected: stale_quote 3 (chain is 901 s old > 900 s)"
    assert isinstance(choose(chain(*rows, as_of=NOW - timedelta(seconds=900)), "0dte", 1, FLT, NOW), Choice)


def test_the_absolute_spread_cap_is_off_at_zero() -> None:
    wide_in_dollars = row(600.0, bid=5.00, ask=5.40)  # 7.7 %: inside 10 %, 40 cents
    assert isinstance(choose(chain(wide_in_dollars), "0dte", 1, FLT, NOW), NoContract)
    loose = ContractFilter(max_spread_abs=0.0)
    assert chosen(choose(chain(wide_in_dollars), "0dte", 1, loose, NOW)).contract.strike == 600.0


def test_after_the_close_0dte_is_the_next_session() -> None:
    evening = datetime(2026, 12, 3, 16, 5, tzinfo=NEW_YORK)
    rows = [row(600.0, expiry=D0), row(601.0, expiry=D1)]
    got = chosen(choose(chain(*rows, as_of=evening - timedelta(seconds=10)), "0dte", 1, FLT, evening))
    assert got.contract.expiry == D1 and got.contract.strike == 601.0


def test_14dte_trades_the_nearest_listed_expiry() -> None:
    rows = [row(600.0, expiry=D0), row(601.0, expiry=date(2026, 12, 16)), row(602.0, expiry=date(2026, 12, 18))]
    assert chosen(choose(chain(*rows), "14dte", 1, FLT, NOW)).contract.expiry == date(2026, 12, 18)
    one = chosen(choose(chain(row(600.0, expiry=D0), row(603.0, expiry=D1)), "1dte", 1, FLT, NOW))
    assert one.contract.expiry == D1


def test_a_missing_expiry_is_named() -> None:
    got = refused(choose(chain(row(expiry=D1), row(expiry=D14)), "0dte", 1, FLT, NOW))
    assert got.reason == "no 0dte expiry in the chain (want 2026-12-03; listed: 2026-12-04, 2026-12-17)"
    assert got.rejected == {}
    swing = refused(choose(chain(row(expiry=D0)), "14dte", 1, FLT, NOW))
    assert swing.reason == "no 14dte expiry in the chain (want near 2026-12-17; listed: 2026-12-03)"
    empty = refused(choose(chain(), "1dte", 1, FLT, NOW))
    assert empty.reason == "no 1dte expiry in the chain (want 2026-12-04; listed: none)"


def test_no_rows_of_the_right() -> None:
    got = refused(choose(chain(row(right="C")), "0dte", -1, FLT, NOW))
    assert got.reason == "no 2026-12-03 P rows in the chain" and got.rejected == {}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="direction"):
        choose(chain(row()), "0dte", 0, FLT, NOW)
    with pytest.raises(ValueError, match="shares"):
        choose(chain(row()), "moc", 1, FLT, NOW)
    with pytest.raises(ValueError, match="tz-aware"):
        choose(chain(row()), "0dte", 1, FLT, datetime(2026, 12, 3, 10, 0))  # noqa: DTZ001


def test_share_contract() -> None:
    assert share_contract("SPY") == Contract("SPY", "STK", None, None, None, 1, "SMART", "ARCA")
    assert share_contract("QQQ").primary_exchange == "NASDAQ"
    assert share_contract("QQQ").describe() == "QQQ shares"


# --- the limit price ------------------------------------------------------------------------------

def quote(bid: float, ask: float) -> Quote:
    return Quote(bid, ask, 0.5 * (bid + ask), 0.5, 1000, 100, 0.0)


@pytest.mark.parametrize(("bid", "ask", "buy", "sell"), [
    (2.00, 2.04, 2.03, 2.01),   # mid 2.02 ± 1 cent
    (2.00, 2.02, 2.02, 2.00),   # 2.015 is a tie: towards the fill, inside the quote
    (2.00, 2.01, 2.01, 2.00),   # 2.0075 → 2.01, 2.0025 → 2.00
    (1.00, 1.00, 1.00, 1.00),   # locked
    (0.00, 0.05, 0.04, 0.01),   # no bid
    (1.05, 1.15, 1.13, 1.07),   # 1.125 is a tie
])
def test_limit_price(bid: float, ask: float, buy: float, sell: float) -> None:
    assert limit_price(quote(bid, ask)) == buy
    assert limit_price(quote(bid, ask), "SELL") == sell


def test_limit_price_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="side"):
        limit_price(quote(1.0, 1.1), "HOLD")
    with pytest.raises(ValueError, match="two-sided"):
        limit_price(quote(1.1, 1.0))
    with pytest.raises(ValueError, match="two-sided"):
        limit_price(quote(0.0, 0.0))


cents = st.integers(0, 100_000)


@given(bid_c=cents, width_c=st.integers(0, 500), side=st.sampled_from(("BUY", "SELL")))
def test_limit_price_lies_on_the_cent_inside_the_quote(bid_c: int, width_c: int, side: str) -> None:
    bid, ask = bid_c / 100, (bid_c + width_c) / 100
    if ask <= 0:
        return
    price = limit_price(quote(bid, ask), side)
    assert bid <= price <= ask
    assert abs(price * 100 - round(price * 100)) < 1e-6
    mid = 0.5 * (bid + ask)
    assert (price >= mid) if side == "BUY" else (price <= mid)


@given(bid=st.floats(0.0, 1e4), width=st.floats(0.0, 100.0))
def test_limit_price_never_leaves_any_quote(bid: float, width: float) -> None:
    ask = bid + width
    if ask <= 0:
        return
    for side in ("BUY", "SELL"):
        assert bid <= limit_price(quote(bid, ask), side) <= ask


# --- properties of the choice ---------------------------------------------------------------------

def passes(r: ChainRow, flt: ContractFilter) -> bool:
    """Every filter, written out independently of the module."""
    if r.delta is None or not flt.delta_lo <= abs(r.delta) <= flt.delta_hi:
        return False
    if r.bid <= 0 or r.ask <= r.bid:
        return False
    width = r.ask - r.bid
    if width / ((r.bid + r.ask) / 2) > flt.max_spread_pct + 1e-9:
        return False
    if flt.max_spread_abs > 0 and width > flt.max_spread_abs + 1e-9:
        return False
    return r.open_interest >= flt.min_open_interest and r.volume >= flt.min_volume


@st.composite
def chain_rows(draw: st.DrawFn) -> ChainRow:
    """Rows near every filter's edge, so that both choices and refusals come up often."""
    bid_c = draw(st.integers(0, 1000))
    kind = draw(st.integers(0, 9))  # 1 in 10 without a delta, 6 in 10 near the band
    magnitude = draw(st.floats(0.35, 0.60) if kind >= 4 else st.floats(0.0, 1.0))
    delta = None if kind == 0 else draw(st.sampled_from((magnitude, -magnitude)))
    return row(strike=float(draw(st.integers(500, 700))), delta=delta, right=draw(st.sampled_from(("C", "P"))),
               bid=bid_c / 100, ask=(bid_c + draw(st.integers(0, 8))) / 100, oi=draw(st.integers(400, 2000)),
               volume=draw(st.integers(50, 400)), expiry=draw(st.sampled_from((D0, D1, D14))))


@given(rows=st.lists(chain_rows(), min_size=4, max_size=30, unique_by=lambda r: r.contract),
       strategy=st.sampled_from(("0dte", "1dte", "14dte")), direction=st.sampled_from((1, -1)),
       age_s=st.floats(0.0, 1200.0))
def test_the_chosen_contract_passes_every_filter_and_is_the_closest(
        rows: list[ChainRow], strategy: StrategyName, direction: int, age_s: float) -> None:
    got = choose(chain(*rows, as_of=NOW - timedelta(seconds=age_s)), strategy, direction, FLT, NOW)
    expiry = {"0dte": D0, "1dte": D1, "14dte": D14}[strategy]
    right = "C" if direction > 0 else "P"
    candidates = [r for r in rows if r.expiry == expiry and r.right == right]
    fresh = age_s <= FLT.max_quote_age_s
    good = [r for r in candidates if passes(r, FLT)] if fresh else []
    if not good:
        assert isinstance(got, NoContract)
        assert sum(got.rejected.values()) == (len(candidates) if expiry in {r.expiry for r in rows} else 0)
        return
    assert isinstance(got, Choice)
    picked = next(r for r in good if r.strike == got.contract.strike)
    assert passes(picked, FLT) and got.contract.expiry == expiry and got.contract.right == right
    assert got.quote.age_s <= FLT.max_quote_age_s
    middle = (FLT.delta_lo + FLT.delta_hi) / 2
    assert picked.delta is not None
    distance = abs(abs(picked.delta) - middle)
    assert all(distance <= abs(abs(r.delta) - middle) + 1e-9 for r in good if r.delta is not None)
    assert sum(got.rejected.values()) == len(candidates) - len(good)
