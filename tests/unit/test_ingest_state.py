"""StreamState: a 317 RESET inside a read clears the book at that point; prints are signed against the book;
IB values refused at the boundary are counted by surface and reason and never stored."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timezone

from ib_async import TickData

from qc.core.clock import FakeClock
from qc.core.models import FiveSecondBar
from qc.ingest.book import ASK, BID, DELETE, INSERT, UPDATE
from qc.ingest.cycle.ib_events import quote_fields_of
from qc.ingest.state import StreamState

T0 = 1_773_153_000  # a minute boundary


def state() -> StreamState:
    return StreamState(["SPY", "QQQ"], FakeClock(), rows=10)


def test_a_reset_mid_read_drops_what_came_before_it_only() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA"), (ASK, 0, INSERT, 10.01, 100, "ARCA")], [], 1.0)
    stale_then_snapshot = [(BID, 0, UPDATE, 9.98, 50, "IEX"),  # before the RESET: discarded with the book
                           (BID, 0, INSERT, 9.97, 70, "BATS"), (ASK, 0, INSERT, 10.02, 80, "BATS")]
    s.depth("SPY", stale_then_snapshot, [1], 2.0)
    book = s.by_symbol["SPY"].book
    assert [lv.price for lv in book.levels(BID)] == [9.97]
    assert [lv.price for lv in book.levels(ASK)] == [10.02]
    assert s.by_symbol["SPY"].pending["book"] == 1.0  # latency counts from the first unwritten message


def test_a_reset_at_the_end_of_a_read_empties_the_book_without_writing_it_empty() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA")], [], 1.0)
    s.depth("SPY", [], [0], 2.0)
    assert s.by_symbol["SPY"].book.level_count() == 0
    assert "book" not in s.by_symbol["SPY"].pending  # IB re-sends it: readers keep the last one meanwhile
    s.depth("SPY", [(BID, 0, INSERT, 9.98, 100, "ARCA")], [], 3.0)
    assert s.by_symbol["SPY"].pending["book"] == 3.0


def test_a_resubscription_does_not_ask_for_an_empty_book_to_be_written() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA")], [], 1.0)
    s.clear_book("SPY", 2.0)
    assert "book" not in s.by_symbol["SPY"].pending and s.by_symbol["SPY"].book.resetting


def test_ib_deleting_every_level_is_written_as_an_empty_book() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA")], [], 1.0)
    s.by_symbol["SPY"].pending.clear()
    s.depth("SPY", [(BID, 0, DELETE, 0.0, 0.0, "")], [], 2.0)
    assert s.by_symbol["SPY"].pending["book"] == 2.0 and s.by_symbol["SPY"].book.level_count() == 0


def test_prints_are_signed_against_the_book_and_kept_in_a_bounded_buffer() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA"), (ASK, 0, INSERT, 10.01, 100, "ARCA")], [], 1.0)
    s.trades("SPY", [(10.01, 100, "ARCA"), (9.99, 200, "IEX"), (10.00, 50, "IEX")], 1.5)
    assert [t["side"] for t in s.by_symbol["SPY"].trades] == ["1", "-1", "1"]  # last: uptick inside the spread
    assert s.by_symbol["SPY"].trades.maxlen is not None


def test_refused_depth_operations_are_counted_by_reason_and_symbol() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, math.nan, "ARCA"), (BID, 0, INSERT, 9.98, -3, "ARCA"),
                    (ASK, 4, INSERT, 10.0, 1, "X"), (2, 0, INSERT, 10.0, 1, "X"), (ASK, 0, 9, 10.0, 1, "X")], [], 1.0)
    assert dict(s.rejects) == {("ib.depth", "size_not_finite", "SPY"): 1, ("ib.depth", "negative_size", "SPY"): 1,
                               ("ib.depth", "position_out_of_range", "SPY"): 1,
                               ("ib.depth", "unknown_side", "SPY"): 1, ("ib.depth", "unknown_operation", "SPY"): 1}
    assert s.by_symbol["SPY"].book.level_count() == 0


def test_a_crossed_book_is_counted_once_per_episode() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 10.02, 100, "ARCA"), (ASK, 0, INSERT, 10.01, 100, "IEX")], [], 1.0)
    s.depth("SPY", [(BID, 1, INSERT, 10.00, 100, "ARCA")], [], 2.0)  # still crossed: the same episode
    assert s.rejects == {("ib.depth", "crossed", "SPY"): 1}
    s.depth("SPY", [(ASK, 0, UPDATE, 10.03, 100, "IEX")], [], 3.0)  # uncrossed
    s.depth("SPY", [(ASK, 0, UPDATE, 10.02, 100, "IEX")], [], 4.0)  # locked: a new episode
    assert s.rejects == {("ib.depth", "crossed", "SPY"): 2}


def test_bad_prints_are_refused_and_counted_the_good_ones_kept() -> None:
    s = state()
    s.trades("QQQ", [(math.nan, 1, "X"), (0.0, 1, "X"), (10.0, -1, "X"), (10.0, math.inf, "X"), (10.0, 5, "X")], 1.0)
    assert [t["price"] for t in s.by_symbol["QQQ"].trades] == ["10.0"]
    assert dict(s.rejects) == {("ib.trade", r, "QQQ"): 1 for r in ("price_not_finite", "price_not_positive",
                                                                     "negative_size", "size_not_finite")}


def test_bad_five_second_bars_are_refused_and_counted_and_never_rolled_up() -> None:
    s = state()
    good = FiveSecondBar(T0, 10.0, 10.2, 9.9, 10.1, 100.0, 10.05, 3)
    bad = [FiveSecondBar(T0 + 5, math.nan, 10.2, 9.9, 10.1, 100.0, 10.0, 1),
           FiveSecondBar(T0 + 5, 10.0, 9.0, 9.9, 10.1, 100.0, 10.0, 1),
           FiveSecondBar(T0 + 5, 10.0, 10.2, 9.9, 10.1, -1.0, 10.0, 1),
           FiveSecondBar(T0 + 5, 10.0, 10.2, 9.9, 10.3, 1.0, 10.0, 1)]
    s.bar("SPY", good, 1.0)
    for b in bad:
        s.bar("SPY", b, 1.0)
    s.bar("SPY", FiveSecondBar(T0 + 60, 10.0, 10.2, 9.9, 10.1, 1.0, 10.0, 1), 2.0)
    (minute,) = s.by_symbol["SPY"].bars
    assert (minute.volume, minute.high, minute.five_second_bars) == (100.0, 10.2, 1)
    assert dict(s.rejects) == {("ib.bar", r, "SPY"): 1 for r in ("price_not_finite", "high_below_low",
                                                                  "negative_volume", "open_close_outside_range")}


def test_a_quote_field_ib_emptied_is_dropped_not_kept_stale() -> None:
    s = state()
    s.quote("SPY", {"bid": 9.99, "bid_size": 100.0, "ask": 10.01}, 1.0)
    s.quote("SPY", {"bid": None, "bid_size": None}, 2.0)
    assert set(s.by_symbol["SPY"].quote) == {"ask", "as_of"}


def tick(kind: int, price: float, size: float) -> TickData:
    return TickData(datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc), kind, price, size)


def test_level_one_ticks_are_judged_one_by_one_and_ib_async_empty_sides_blank_the_field() -> None:
    fields, refused = quote_fields_of([
        tick(1, 9.99, 100.0), tick(2, math.inf, 50.0), tick(2, 10.01, -5.0), tick(4, 10.0, 3.0),
        tick(8, math.nan, 12345.0), tick(3, math.nan, 0.0),  # ib_async: ask size 0 -> the ask side is empty
        tick(4, -1.0, 3.0), tick(5, 10.0, math.nan), tick(0, 9.99, -1.0)])
    assert fields == {"bid": 9.99, "bid_size": 100.0, "last": 10.0, "volume": 12345.0, "ask": None, "ask_size": None}
    assert dict(refused) == {"price_not_finite": 1, "negative_size": 2, "price_not_positive": 1, "size_not_finite": 1}
    assert quote_fields_of([tick(4, math.nan, math.nan)]) == ({}, Counter())  # IB's "no last yet"
