"""StreamState: a 317 RESET inside a read clears the book at that point; prints are signed against the book."""

from __future__ import annotations

from qc.core.clock import FakeClock
from qc.ingest.book import ASK, BID, INSERT, UPDATE
from qc.ingest.state import StreamState


def state() -> StreamState:
    return StreamState(["SPY"], FakeClock(), rows=10)


def test_a_reset_mid_read_drops_what_came_before_it_only() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA"), (ASK, 0, INSERT, 10.01, 100, "ARCA")], [], 1.0)
    stale_then_snapshot = [(BID, 0, UPDATE, 9.98, 50, "IEX"),  # before the RESET: discarded with the book
                           (BID, 0, INSERT, 9.97, 70, "BATS"), (ASK, 0, INSERT, 10.02, 80, "BATS")]
    s.depth("SPY", stale_then_snapshot, [1], 2.0)
    book = s.by_symbol["SPY"].book
    assert [lv.price for lv in book.sides[BID]] == [9.97]
    assert [lv.price for lv in book.sides[ASK]] == [10.02]
    assert s.by_symbol["SPY"].pending["book"] == 1.0  # latency counts from the first unwritten message


def test_a_reset_at_the_end_of_a_read_empties_the_book() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA")], [], 1.0)
    s.depth("SPY", [], [0], 2.0)
    assert s.by_symbol["SPY"].book.level_count() == 0


def test_prints_are_signed_against_the_book_and_kept_in_a_bounded_buffer() -> None:
    s = state()
    s.depth("SPY", [(BID, 0, INSERT, 9.99, 100, "ARCA"), (ASK, 0, INSERT, 10.01, 100, "ARCA")], [], 1.0)
    s.trades("SPY", [(10.01, 100, "ARCA"), (9.99, 200, "IEX"), (10.00, 50, "IEX")], 1.5)
    assert [t["side"] for t in s.by_symbol["SPY"].trades] == ["1", "-1", "1"]  # last: uptick inside the spread
    assert s.by_symbol["SPY"].trades.maxlen is not None
