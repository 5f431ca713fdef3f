"""The one chain → ``Chain`` conversion (worker and `qc gex --expiries`): the live spot, its source and age."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.analytics.chain_input import (
    QUOTE_MAX_AGE_S,
    chain_for_positioning,
    live_spot,
    positioning_at_live_spot,
)
from qc.core.codec import Absent
from qc.ingest.codec import ChainRow, OptionChain, Quote

NOW = datetime(2026, 11, 24, 20, 59, tzinfo=timezone.utc)  # 15:59 New York
CHAIN_AS_OF = NOW - timedelta(seconds=240)
TODAY, LATER = date(2026, 11, 24), date(2026, 12, 18)


def row(expiry: date, right: str, strike: float, iv: float | None, oi: int = 1000) -> ChainRow:
    return ChainRow(expiry=expiry, right="C" if right == "C" else "P", strike=strike, bid=1.0, ask=1.1, mark=1.05,
                    volume=10, open_interest=oi, t_years=0.01, iv=iv, iv_source="mark", divergent=False, delta=0.5,
                    gamma=0.01, vega=0.1, theta=-0.1, rho=0.01, vanna=0.0, charm=0.0, gamma_vendor=0.02,
                    delta_vendor=None)


def option_chain(spot: float = 600.0) -> OptionChain:
    rows = tuple(row(e, r, k, None if (k, r) == (610.0, "P") else 0.2)
                 for e in (TODAY, LATER) for k in (590.0, 600.0, 610.0) for r in ("C", "P"))
    return OptionChain("SPY", CHAIN_AS_OF, spot, 0.04, 0.013, (TODAY, LATER), rows)


def quote(age_s: float, **prices: float) -> Quote:
    return Quote(NOW.timestamp() - age_s, **prices)


def test_a_fresh_two_sided_quote_gives_its_mid_and_age() -> None:
    s = live_spot(quote(2.0, bid=605.0, ask=605.2, last=604.0), option_chain(), NOW)
    assert s.source == "quote" and s.reason == ""
    assert s.value == pytest.approx(605.1) and s.age_s == pytest.approx(2.0)


def test_a_one_sided_quote_falls_back_to_its_last() -> None:
    s = live_spot(quote(1.0, bid=605.0, last=604.5), option_chain(), NOW)
    assert (s.source, s.value) == ("quote", 604.5)


@pytest.mark.parametrize(("got", "why"), [
    (quote(QUOTE_MAX_AGE_S + 1, bid=605.0, ask=605.2), "s old"),
    (quote(-60.0, bid=605.0, ask=605.2), "in the future"),
    (quote(1.0), "neither a two-sided market nor a last price"),
    (Absent("market:SPY:quote", "missing"), "no usable quote (market:SPY:quote: missing)"),
])
def test_without_a_fresh_price_the_chain_spot_is_used_with_the_reason(got: Quote | Absent, why: str) -> None:
    s = live_spot(got, option_chain(spot=600.0), NOW)
    assert s.source == "chain" and s.value == 600.0 and why in s.reason
    assert s.age_s == pytest.approx(240.0)  # the chain's spot is as old as the chain


@given(st.floats(min_value=0.0, max_value=60.0))
def test_the_quote_is_used_exactly_while_it_is_fresh(age: float) -> None:
    s = live_spot(quote(age, bid=605.0, ask=605.2), option_chain(), NOW)
    assert (s.source == "quote") == (age <= QUOTE_MAX_AGE_S)


def test_the_chain_is_valued_now_at_the_given_spot_with_vendor_greeks_beside() -> None:
    chain = chain_for_positioning(option_chain(spot=600.0), 606.0, NOW)
    assert chain.spot == 606.0 and chain.valuation_date == np.datetime64("2026-11-24")
    assert chain.rate == 0.04 and chain.div_yield == 0.013 and chain.strike.size == 12
    today = chain.expiry == np.datetime64(TODAY)
    assert np.all(chain.t_years[today] < 1.0 / 365.0)  # 4:15 pm settlement is an hour and a quarter away
    assert math.isnan(chain.iv[(chain.strike == 610.0) & ~chain.is_call][0])  # None → NaN, never 0
    assert chain.vendor_gamma is not None and np.all(chain.vendor_gamma == 0.02)
    assert chain.vendor_delta is not None and np.all(np.isnan(chain.vendor_delta))
    later = chain_for_positioning(option_chain(), 606.0, NOW + timedelta(minutes=30))
    assert np.all(later.t_years < chain.t_years)


def test_positioning_moves_with_the_quote_not_with_the_chain_fetch() -> None:
    oc = option_chain(spot=600.0)
    at_chain = positioning_at_live_spot(oc, Absent("market:SPY:quote", "missing"), NOW)
    at_quote = positioning_at_live_spot(oc, quote(1.0, bid=606.0, ask=606.0), NOW)
    assert at_chain.pos.spot == 600.0 and at_quote.pos.spot == 606.0 and at_quote.spot.source == "quote"
    assert at_quote.pos.gex_usd_per_1pct != at_chain.pos.gex_usd_per_1pct
    narrowed = positioning_at_live_spot(oc, quote(1.0, bid=606.0, ask=606.0), NOW, max_dte=0)
    assert [str(d) for d in narrowed.pos.expiries_used] == ["2026-11-24"]
