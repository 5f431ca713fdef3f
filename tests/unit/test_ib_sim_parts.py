"""Pure parts of the simulated gateway: 5-second bars, historical durations and pacing, the catalogue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from qc.core.clock import NEW_YORK
from qc.sim.ib import history as hist
from qc.sim.ib.catalog import Catalog
from qc.sim.ib.ticks import BarBuilder
from qc.sim.ib.wire_types import WireContract
from qc.sim.market.market import SimMarket
from qc.sim.market.models import OptionContract
from qc.sim.market.params import SimParams

T0 = 1_773_153_000  # a multiple of 5


def test_bars_are_aligned_complete_and_carry_the_close_over_empty_intervals() -> None:
    b = BarBuilder()
    assert b.close_through(T0 + 2) == []
    assert b.add(T0 + 1.0, 10.0, 100) == []
    b.add(T0 + 3.5, 10.5, 50)
    b.add(T0 + 4.9, 9.5, 50)
    [bar] = b.add(T0 + 5.2, 11.0, 10)  # the first print of the next interval closes the previous bar
    assert (bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.count) == (T0, 10.0, 10.5, 9.5, 9.5,
                                                                                         200, 3)
    assert bar.wap == pytest.approx((10.0 * 100 + 10.5 * 50 + 9.5 * 50) / 200)
    assert b.close_through(T0 + 9.99) == []  # not over yet
    done = b.close_through(T0 + 20)
    assert [x.start for x in done] == [T0 + 5, T0 + 10, T0 + 15]
    assert [(x.close, x.volume) for x in done] == [(11.0, 10), (11.0, 0), (11.0, 0)]


def test_durations_end_times_and_pacing() -> None:
    assert hist.parse_duration("3600 S") == (60, None)
    assert hist.parse_duration("61 S") == (2, None)
    assert hist.parse_duration("2 D") == (780, 2)
    assert hist.parse_duration("1 W") == (1950, 5)
    with pytest.raises(hist.HistoryError):
        hist.parse_duration("2 Q")
    now = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
    assert hist.parse_end("", now) == now
    assert hist.parse_end("20260310-14:00:00", now) == datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc)
    assert hist.parse_end("20260310 10:00:00 US/Eastern", now) == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    assert hist.parse_end("20260310 10:00:00", now) == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    log: list[tuple[float, str]] = []
    assert [hist.paced(log, "SPY", 100.0 + 0.1 * i) for i in range(6)] == [False] * 5 + [True]
    assert not hist.paced(log, "QQQ", 100.6)  # another contract
    assert not hist.paced(log, "SPY", 102.5)  # the 2-second window has passed
    many: list[tuple[float, str]] = []
    assert not any(hist.paced(many, f"C{i}", float(i)) for i in range(60))
    assert hist.paced(many, "C60", 60.0)  # the 61st within 10 minutes
    assert not hist.paced(many, "C61", 601.0)


def test_catalogue_ids_are_stable_and_resolve_both_ways() -> None:
    start = datetime(2026, 3, 10, 11, 0, tzinfo=NEW_YORK).astimezone(timezone.utc)
    model = SimMarket(start, SimParams(symbols=("SPY", "ABC")))
    model.events_until(start + timedelta(seconds=1))
    cat, other = Catalog(model), Catalog(model)
    assert cat.stock_con_id("SPY") == 756733 and cat.stock_con_id("ABC") == other.stock_con_id("ABC")
    opt = model.option_chain("SPY", start)[100].contract
    con_id = cat.option_con_id(opt)
    assert con_id == other.option_con_id(opt) and cat.option_con_id(opt) == con_id
    found = cat.resolve(WireContract(con_id=con_id), start)
    assert found is not None and found.option == opt and found.wire.local_symbol == opt.occ_symbol
    by_fields = cat.resolve(WireContract(symbol="SPY", sec_type="OPT", last_trade_date=f"{opt.expiry:%Y%m%d}",
                                         strike=opt.strike, right=opt.right), start)
    assert by_fields is not None and by_fields.key.con_id == con_id and by_fields.key.multiplier == 100
    assert cat.resolve(WireContract(symbol="NOPE", sec_type="STK"), start) is None
    assert cat.details(WireContract(symbol="SPY", sec_type="OPT", last_trade_date="19990101"), start) == []
    unlisted = OptionContract("SPY", opt.expiry, 0.5, "C")
    assert cat.resolve(WireContract(symbol="SPY", sec_type="OPT", last_trade_date=f"{unlisted.expiry:%Y%m%d}",
                                    strike=0.5, right="C"), start) is None
