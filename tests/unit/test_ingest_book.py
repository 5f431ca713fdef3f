"""qc's L2 book: TWS insert/delete shifting, checked against a reference list and the simulator's book."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from qc.core.clock import NEW_YORK
from qc.core.models import DepthLevel
from qc.ingest.book import ASK, BID, DELETE, INSERT, UPDATE, DepthBook
from qc.sim.market.events import DepthOp
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

MAX_ROWS = 5
Op = tuple[int, int, int, float, float, str]


def reference(ops: list[Op], max_rows: int) -> tuple[list[DepthLevel], list[DepthLevel]]:
    """The same semantics by slicing, written independently of DepthBook."""
    sides: list[list[DepthLevel]] = [[], []]
    for side, pos, op, price, size, venue in ops:
        rows, lvl = sides[side], DepthLevel(price, size, venue)
        if op == INSERT and pos <= len(rows):
            sides[side] = [*rows[:pos], lvl, *rows[pos:]][:max_rows]
        elif op == UPDATE and pos < len(rows):
            sides[side] = [*rows[:pos], lvl, *rows[pos + 1:]]
        elif op == UPDATE and pos == len(rows) < max_rows:
            sides[side] = [*rows, lvl]
        elif op == DELETE and pos < len(rows):
            sides[side] = rows[:pos] + rows[pos + 1:]
    return sides[0], sides[1]


ops_strategy = st.lists(st.tuples(st.sampled_from([ASK, BID]), st.integers(0, MAX_ROWS + 1),
                                  st.sampled_from([INSERT, UPDATE, DELETE]),
                                  st.floats(1, 1000, allow_nan=False), st.floats(0, 1e6, allow_nan=False),
                                  st.sampled_from(["ARCA", "BATS", "IEX"])), max_size=80)


@settings(max_examples=300, deadline=None)
@given(ops_strategy)
def test_random_operations_match_the_reference(ops: list[Op]) -> None:
    book = DepthBook(max_rows=MAX_ROWS)
    for op in ops:
        book.apply(*op)
    asks, bids = reference(ops, MAX_ROWS)
    assert book.sides[ASK] == asks
    assert book.sides[BID] == bids
    assert book.level_count() == len(asks) + len(bids) == len(book.fields())


def test_insert_shifts_down_where_ib_async_overwrites() -> None:
    book = DepthBook()
    for i, px in enumerate([10.0, 9.9, 9.8]):
        book.apply(BID, i, INSERT, px, 100, "ARCA")
    book.apply(BID, 0, INSERT, 10.1, 50, "IEX")
    assert [lv.price for lv in book.sides[BID]] == [10.1, 10.0, 9.9, 9.8]
    book.apply(BID, 1, DELETE, 0, 0, "")
    assert [lv.price for lv in book.sides[BID]] == [10.1, 9.9, 9.8]  # no gap left behind


def test_out_of_range_operations_are_refused_not_applied() -> None:
    book = DepthBook(max_rows=2)
    assert not book.apply(ASK, 1, INSERT, 1.0, 1, "X")  # would leave a hole
    assert not book.apply(ASK, 0, DELETE, 0, 0, "")
    assert not book.apply(7, 0, INSERT, 1.0, 1, "X")
    assert book.level_count() == 0


def test_fields_are_what_hlen_counts_both_sides() -> None:
    book = DepthBook()
    book.apply(ASK, 0, INSERT, 10.01, 300, "ARCA")
    book.apply(BID, 0, INSERT, 10.0, 200, "IEX")
    assert book.fields() == {"ask:0": '{"price":10.01,"size":300,"venue":"ARCA"}',
                             "bid:0": '{"price":10.0,"size":200,"venue":"IEX"}'}


def test_replaying_the_simulators_depth_ops_rebuilds_its_book() -> None:
    start = datetime(2026, 3, 10, 10, 30, tzinfo=NEW_YORK).astimezone(timezone.utc)
    market = SimMarket(start, SimParams(seed=5, symbols=("SPY",), depth_rate_hz=200.0))
    book = DepthBook(max_rows=50)
    ops = [e for e in market.events_until(start + timedelta(seconds=30)) if isinstance(e, DepthOp)]
    assert len(ops) > 1000
    for e in ops:
        assert book.apply(e.side, e.position, e.operation, e.price, e.size, e.venue)
    bids, asks = market.book("SPY")
    assert book.sides[BID] == bids
    assert book.sides[ASK] == asks
