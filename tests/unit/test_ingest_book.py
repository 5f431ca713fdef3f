"""qc's L2 book: TWS insert/delete shifting, checked against a reference list and the simulator's book;
refused values keep IB's row numbering (holes), size-0 rows are not levels, crossed books are marked."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.core.clock import NEW_YORK
from qc.core.models import DepthLevel
from qc.ingest.book import ASK, BID, DELETE, INSERT, UPDATE, DepthBook
from qc.ingest.codec import Book, book_fields
from qc.sim.market.events import DepthOp
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

MAX_ROWS = 5
Op = tuple[int, int, int, float, float, str]


def reference(ops: list[Op], max_rows: int) -> tuple[list[DepthLevel], list[DepthLevel]]:
    """The same semantics by slicing, written independently of DepthBook: IB's rows, then the written view."""
    sides: list[list[DepthLevel]] = [[], []]
    for side, pos, op, price, size, venue in ops:
        rows, lvl = sides[side], DepthLevel(price, size, venue)
        if pos >= max_rows:
            continue
        if op == INSERT and pos <= len(rows):
            sides[side] = [*rows[:pos], lvl, *rows[pos:]][:max_rows]
        elif op == UPDATE and pos < len(rows):
            sides[side] = [*rows[:pos], lvl, *rows[pos + 1:]]
        elif op == UPDATE and pos == len(rows):
            sides[side] = [*rows, lvl]
        elif op == DELETE and pos < len(rows):
            sides[side] = rows[:pos] + rows[pos + 1:]

    def written(rows: list[DepthLevel]) -> list[DepthLevel]:
        return [lv for lv in rows if 0 < lv.price < math.inf and 0 < lv.size < math.inf]

    return written(sides[0]), written(sides[1])


prices = st.floats(1, 1000, allow_nan=False) | st.sampled_from([0.0, -1.0, math.nan, math.inf])
sizes = st.floats(0, 1e6, allow_nan=False) | st.sampled_from([0.0, -5.0, math.nan, math.inf])
ops_strategy = st.lists(st.tuples(st.sampled_from([ASK, BID]), st.integers(0, MAX_ROWS + 1),
                                  st.sampled_from([INSERT, UPDATE, DELETE]), prices, sizes,
                                  st.sampled_from(["ARCA", "BATS", "IEX"])), max_size=80)


@settings(max_examples=300, deadline=None)
@given(ops_strategy)
def test_random_operations_match_the_reference(ops: list[Op]) -> None:
    book = DepthBook(max_rows=MAX_ROWS)
    for op in ops:
        book.apply(*op)
    asks, bids = reference(ops, MAX_ROWS)
    assert book.levels(ASK) == asks
    assert book.levels(BID) == bids
    assert book.level_count() == len(asks) + len(bids) == len(book.fields())


@settings(max_examples=300, deadline=None)
@given(ops_strategy, st.lists(st.booleans(), min_size=80, max_size=80))
def test_fields_with_cached_level_json_are_always_the_codecs_encoding(ops: list[Op], look: list[bool]) -> None:
    """The per-row JSON cache never serves a stale level: asked at random moments of a random sequence (so
    rows shift under cached texts), ``fields`` is exactly ``book_fields`` of the levels, marks included."""
    book = DepthBook(max_rows=MAX_ROWS)
    for op, now in zip(ops, look, strict=False):
        book.apply(*op)
        if now:
            assert book.fields() == book_fields(book.levels(ASK), book.levels(BID))
    assert book.fields() == book_fields(book.levels(ASK), book.levels(BID))


# steps for ``changes``: operations whose sides mostly stay apart (bids below 500, asks above), so the
# incremental path runs long between crossings, with clears and both ways of asking in between; positions mostly
# rows that exist
apart = st.tuples(st.sampled_from([ASK, BID]), st.integers(0, 2) | st.integers(0, MAX_ROWS + 1),
                  st.sampled_from([INSERT, INSERT, UPDATE, UPDATE, DELETE]),
                  st.floats(1, 400, allow_nan=False) | st.sampled_from([0.0, math.nan, 450.0, 550.0]),
                  sizes, st.sampled_from(["ARCA", "BATS", "IEX"])).map(
    lambda op: (op[0], op[1], op[2], op[3] + 500 if op[0] == ASK and 1 <= op[3] <= 400 else op[3], *op[4:]))
steps = st.lists(st.one_of(*[apart.map(lambda op: ("op", op))] * 3,
                           st.sampled_from([("changes", None)] * 3 + [("fields", None), ("clear", None)])),
                 min_size=10, max_size=150)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_changes_applied_to_the_last_write_always_give_the_codecs_encoding(plan: list[tuple[str, Op | None]]) -> None:
    """What the writer does: ``fields`` once, then HSET ``changes``' changed levels and HDEL its gone names
    over what it wrote. The hash it keeps is exactly ``book_fields`` of the levels after every step, and no
    change is redundant (a field HSET to the value it has, or HDEL of a field it does not have)."""
    book = DepthBook(max_rows=MAX_ROWS)
    written = book.fields()
    for step, op in plan:
        if op is not None:
            book.apply(*op)
        elif step == "clear":
            book.clear()
        elif step == "fields":
            written = book.fields()
        else:
            changed, gone = book.changes()
            assert all(written.get(k) != v for k, v in changed.items()) and set(gone) <= written.keys() - changed.keys()
            written.update(changed)
            for name in gone:
                del written[name]
            assert written == book_fields(book.levels(ASK), book.levels(BID))
    changed, gone = book.changes()
    written.update(changed)
    for name in gone:
        del written[name]
    assert written == book_fields(book.levels(ASK), book.levels(BID))


def test_changes_name_only_what_changed() -> None:
    book = DepthBook()
    for i, px in enumerate([10.0, 9.99, 9.98]):
        book.apply(BID, i, INSERT, px, 100, "ARCA")
    book.apply(ASK, 0, INSERT, 10.01, 100, "IEX")
    book.fields()
    assert book.changes() == ({}, [])
    book.apply(BID, 1, UPDATE, 9.99, 300, "ARCA")  # one level's size: one field
    assert book.changes() == ({"bid:1": '{"price":9.99,"size":300,"venue":"ARCA"}'}, [])
    book.apply(BID, 0, DELETE, 0, 0, "")  # the rest move up: every bid renumbers, the last name goes
    assert book.changes() == ({"bid:0": '{"price":9.99,"size":300,"venue":"ARCA"}',
                               "bid:1": '{"price":9.98,"size":100,"venue":"ARCA"}'}, ["bid:2"])
    book.apply(BID, 0, UPDATE, 9.99, 0, "ARCA")  # size 0: no longer a level, the one below becomes bid:0
    assert book.changes() == ({"bid:0": '{"price":9.98,"size":100,"venue":"ARCA"}'}, ["bid:1"])
    book.apply(BID, 0, UPDATE, 10.01, 5, "BATS")  # locks the book: both tops are marked
    changed, gone = book.changes()
    assert json.loads(changed["bid:0"])["crossed"] and json.loads(changed["ask:0"])["crossed"] and not gone
    book.apply(BID, 0, UPDATE, 10.0, 5, "BATS")  # unlocked: the marks go
    assert book.changes() == ({"bid:0": '{"price":10.0,"size":5,"venue":"BATS"}',
                               "ask:0": '{"price":10.01,"size":100,"venue":"IEX"}'}, [])


def test_fields_follow_rows_changed_behind_applys_back() -> None:
    book = DepthBook()
    book.apply(BID, 0, INSERT, 10.0, 100, "ARCA")
    book.apply(BID, 1, INSERT, 9.99, 200, "IEX")
    assert book.fields()["bid:0"] == '{"price":10.0,"size":100,"venue":"ARCA"}'
    book.sides[BID][0] = DepthLevel(10.01, 5, "BATS")  # same length, another object: the cache must notice
    del book.sides[BID][1]
    assert book.fields() == {"bid:0": '{"price":10.01,"size":5,"venue":"BATS"}'}


def test_insert_shifts_down_where_ib_async_overwrites() -> None:
    book = DepthBook()
    for i, px in enumerate([10.0, 9.9, 9.8]):
        book.apply(BID, i, INSERT, px, 100, "ARCA")
    book.apply(BID, 0, INSERT, 10.1, 50, "IEX")
    assert [lv.price for lv in book.levels(BID)] == [10.1, 10.0, 9.9, 9.8]
    book.apply(BID, 1, DELETE, 0, 0, "")
    assert [lv.price for lv in book.levels(BID)] == [10.1, 9.9, 9.8]  # no gap left behind


def test_structurally_impossible_operations_are_refused_with_a_reason() -> None:
    book = DepthBook(max_rows=2)
    assert book.apply(ASK, 1, INSERT, 1.0, 1, "X") == "position_out_of_range"  # would leave a hole
    assert book.apply(ASK, 0, DELETE, 0, 0, "") == "position_out_of_range"
    assert book.apply(ASK, 2, INSERT, 1.0, 1, "X") == "position_out_of_range"  # past numRows
    assert book.apply(ASK, -1, INSERT, 1.0, 1, "X") == "position_out_of_range"
    assert book.apply(7, 0, INSERT, 1.0, 1, "X") == "unknown_side"
    assert book.apply(ASK, 0, 3, 1.0, 1, "X") == "unknown_operation"
    assert book.level_count() == 0 and book.sides == ([], [])


@pytest.mark.parametrize(("price", "size", "why"), [
    (math.nan, 100.0, "price_not_finite"), (math.inf, 100.0, "price_not_finite"), (0.0, 100.0, "price_not_positive"),
    (-1.0, 100.0, "price_not_positive"), (10.0, math.nan, "size_not_finite"), (10.0, -math.inf, "size_not_finite"),
    (10.0, -1.0, "negative_size"),
])
def test_a_bad_value_takes_its_row_as_a_hole_so_later_operations_stay_on_their_rows(price: float, size: float,
                                                                                   why: str) -> None:
    book = DepthBook()
    book.apply(BID, 0, INSERT, 10.0, 100, "ARCA")
    book.apply(BID, 1, INSERT, 9.9, 100, "ARCA")
    assert book.apply(BID, 1, INSERT, price, size, "BAD") == why  # IB's rows: 10.0, <bad>, 9.9
    assert [lv.price for lv in book.levels(BID)] == [10.0, 9.9]  # never written
    assert book.apply(BID, 2, UPDATE, 9.8, 70, "IEX") is None  # IB's row 2 is 9.9: updated, not the wrong row
    assert [(lv.price, lv.size) for lv in book.levels(BID)] == [(10.0, 100), (9.8, 70)]
    assert book.apply(BID, 1, UPDATE, 9.95, 20, "BATS") is None  # IB fills the bad row
    assert [lv.price for lv in book.levels(BID)] == [10.0, 9.95, 9.8]


def test_a_size_zero_row_keeps_its_position_but_is_not_a_level() -> None:
    book = DepthBook()
    book.apply(ASK, 0, INSERT, 10.01, 100, "ARCA")
    book.apply(ASK, 1, INSERT, 10.02, 100, "IEX")
    assert book.apply(ASK, 0, UPDATE, 10.01, 0, "ARCA") is None  # not refused: IB's row, nothing resting
    assert [lv.price for lv in book.levels(ASK)] == [10.02]
    assert book.best(ASK) == DepthLevel(10.02, 100, "IEX")
    assert book.fields() == {"ask:0": '{"price":10.02,"size":100,"venue":"IEX"}'}
    book.apply(ASK, 0, DELETE, 0, 0, "")  # IB deletes its row 0: the 10.02 row moves up
    assert book.sides[ASK] == [DepthLevel(10.02, 100, "IEX")]


def test_fields_are_what_hlen_counts_both_sides() -> None:
    book = DepthBook()
    book.apply(ASK, 0, INSERT, 10.01, 300, "ARCA")
    book.apply(BID, 0, INSERT, 10.0, 200, "IEX")
    assert book.fields() == {"ask:0": '{"price":10.01,"size":300,"venue":"ARCA"}',
                             "bid:0": '{"price":10.0,"size":200,"venue":"IEX"}'}
    assert not book.crossed()


def test_a_crossed_book_is_kept_and_its_crossing_levels_marked() -> None:
    book = DepthBook()
    for i, px in enumerate([10.00, 10.01, 10.03]):
        book.apply(ASK, i, INSERT, px, 100, "ARCA")
    for i, px in enumerate([10.02, 10.01, 9.99]):
        book.apply(BID, i, INSERT, px, 100, "IEX")
    assert book.crossed()
    fields = book.fields()
    marked = {name for name, raw in fields.items() if json.loads(raw).get("crossed") is True}
    assert marked == {"ask:0", "ask:1", "bid:0", "bid:1"}  # at or through the opposite best price
    got = Book.from_redis(fields, key="book")
    assert isinstance(got, Book) and got.crossed and len(got.bids) == len(got.asks) == 3


def test_a_locked_book_counts_as_crossed() -> None:
    book = DepthBook()
    book.apply(ASK, 0, INSERT, 10.0, 100, "ARCA")
    book.apply(BID, 0, INSERT, 10.0, 100, "IEX")
    assert book.crossed()


def test_clear_marks_the_book_resetting_until_ib_sends_again() -> None:
    book = DepthBook()
    book.apply(BID, 0, INSERT, 10.0, 100, "ARCA")
    book.clear()
    assert book.resetting and book.level_count() == 0
    assert book.apply(BID, 3, INSERT, 10.0, 100, "ARCA") == "position_out_of_range"
    assert book.resetting  # nothing applied yet
    book.apply(BID, 0, INSERT, 10.0, 100, "ARCA")
    assert not book.resetting


def test_replaying_the_simulators_depth_ops_rebuilds_its_book() -> None:
    start = datetime(2026, 3, 10, 10, 30, tzinfo=NEW_YORK).astimezone(timezone.utc)
    market = SimMarket(start, SimParams(seed=5, symbols=("SPY",), depth_rate_hz=200.0))
    book = DepthBook(max_rows=50)
    ops = [e for e in market.events_until(start + timedelta(seconds=30)) if isinstance(e, DepthOp)]
    assert len(ops) > 1000
    for e in ops:
        assert book.apply(e.side, e.position, e.operation, e.price, e.size, e.venue) is None
    bids, asks = market.book("SPY")
    assert book.levels(BID) == bids
    assert book.levels(ASK) == asks
    assert not book.crossed()
