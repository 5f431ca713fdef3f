"""Fuzzing `qc stream`'s IB boundary: random depth operations, 5-s bars, level-one ticks and prints go
through the real book, bar roller, aggressor and state code and the writer's encoders.

For every example: nothing raises; nothing non-finite, non-positive (prices) or negative (sizes) is
encoded; a locked/crossed book is never encoded unmarked; every refusal is counted under its reason
(checked against a reference written from the rules); and the valid values IB sent are all kept,
at the rows IB gave them. ``QC_FUZZ_EXAMPLES=10000`` runs 10,000 examples per surface (the
``qc-fuzz`` hypothesis profile); run with ``-s`` to see the tallies.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import TickData

from qc.core.clock import FakeClock
from qc.core.codec import Absent
from qc.core.models import Bar, DepthLevel, FiveSecondBar, decode_trade_fields
from qc.ingest.book import ASK, BID, DELETE, INSERT, UPDATE
from qc.ingest.codec import Book, Quote, VenueShares, quote_fields
from qc.ingest.cycle.ib_events import quote_fields_of
from qc.ingest.cycle.stream_writer import venue_fields
from qc.ingest.state import StreamState

EXAMPLES = int(os.environ.get("QC_FUZZ_EXAMPLES", "300"))
settings.register_profile("qc-fuzz", settings(), max_examples=EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile("qc-fuzz")
pytestmark = pytest.mark.timeout(120 + EXAMPLES // 10)  # 10,000 examples take minutes on a loaded machine
ROWS = 5
T0 = 1_773_153_000  # a minute boundary
TALLY: Counter[str] = Counter()
T = TypeVar("T")



def mostly(good: st.SearchStrategy[T], bad: st.SearchStrategy[T], one_in: int = 5) -> st.SearchStrategy[T]:
    """``good``, and ``bad`` about once in ``one_in`` draws: garbage is rare, as on a real feed gone wrong."""
    return st.integers(1, one_in).flatmap(lambda k: bad if k == 1 else good)


garbage = st.floats() | st.sampled_from([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e308])
prices = mostly(st.floats(9.0, 11.0), garbage, 2)
sizes = mostly(st.floats(1.0, 1e6) | st.just(0.0), garbage, 2)
venues = st.sampled_from(["ARCA", "BATS", "IEX", ""]) | st.text(max_size=4)
DepthOp = tuple[int, int, int, float, float, str]
sides = mostly(st.sampled_from([ASK, BID]), st.sampled_from([-1, 2]), 20)
operations = mostly(st.sampled_from([INSERT, INSERT, UPDATE, DELETE]), st.sampled_from([-1, 3]), 20)
positions = mostly(st.integers(0, 2), st.integers(-2, ROWS + 1), 5)
depth_prices = mostly(st.floats(9.9, 10.1), garbage)  # one range for both sides: books lock and cross
depth_ops = st.tuples(sides, positions, operations, depth_prices, mostly(st.floats(1.0, 1e5), sizes), venues)
reads = st.lists(st.tuples(st.lists(depth_ops, max_size=12), st.lists(st.integers(0, 12), max_size=1)),
                 min_size=1, max_size=8)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """Print what the module's examples exercised (run with -s)."""
    yield
    print(f"\nfuzz tallies ({EXAMPLES} examples per test):")
    for name, n in sorted(TALLY.items()):
        print(f"  {name}: {n}")


# --- depth ------------------------------------------------------------------------------------


def value_reason(price: float, size: float) -> str | None:
    if not math.isfinite(price):
        return "price_not_finite"
    if price <= 0:
        return "price_not_positive"
    if not math.isfinite(size):
        return "size_not_finite"
    return "negative_size" if size < 0 else None


class IBRows:
    """IB's book as the rules define it (the rows with whatever values IB sent), kept by slicing."""

    def __init__(self) -> None:
        self.sides: list[list[DepthLevel]] = [[], []]

    def apply(self, side: int, pos: int, op: int, price: float, size: float, venue: str) -> str | None:
        if side not in (ASK, BID):
            return "unknown_side"
        if op not in (INSERT, UPDATE, DELETE):
            return "unknown_operation"
        rows = self.sides[side]
        if pos < 0 or pos >= ROWS or pos > len(rows) or (op == DELETE and pos == len(rows)):
            return "position_out_of_range"
        level = DepthLevel(price, size, venue)
        if op == DELETE:
            self.sides[side] = rows[:pos] + rows[pos + 1:]
            return None
        if op == INSERT:
            self.sides[side] = [*rows[:pos], level, *rows[pos:]][:ROWS]
        else:
            self.sides[side] = [*rows[:pos], level, *rows[pos + 1:]]
        return value_reason(price, size)

    def written(self, side: int) -> list[DepthLevel]:
        """The valid, resting levels: what must be kept (and nothing else)."""
        return [lv for lv in self.sides[side] if value_reason(lv.price, lv.size) is None and lv.size > 0]

    def crossed(self) -> bool:
        bids, asks = self.written(BID), self.written(ASK)
        return bool(bids and asks) and bids[0].price >= asks[0].price


def refuse_token(token: str) -> float:
    raise AssertionError(f"non-JSON token {token} written")


def check_encoded_book(fields: dict[str, str], crossed: bool) -> None:
    """What the writer would store: strict JSON, finite positive levels, crossing marked exactly when crossed."""
    for raw in fields.values():
        doc = json.loads(raw, parse_constant=refuse_token)
        assert math.isfinite(doc["price"]) and doc["price"] > 0 and math.isfinite(doc["size"]) and doc["size"] > 0
    got = Book.from_redis(fields, key="market:SPY:book")
    if not fields:
        assert isinstance(got, Absent)
        return
    assert isinstance(got, Book), got
    assert got.crossed == crossed
    if crossed:
        assert '"crossed":true' in fields["bid:0"] and '"crossed":true' in fields["ask:0"]
    else:
        assert not any('"crossed"' in raw for raw in fields.values())


@FUZZ
@given(reads)
def test_depth_operations_never_store_garbage_and_keep_every_valid_level(
        read_list: list[tuple[list[DepthOp], list[int]]]) -> None:
    state = StreamState(["SPY", "QQQ"], FakeClock(), rows=ROWS)
    ref, expected, was_crossed = IBRows(), Counter[str](), False
    written = state.by_symbol["SPY"].book.fields()  # the hash as the writer keeps it: whole once, then changes
    for i, (ops, resets) in enumerate(read_list):
        state.depth("SPY", ops, resets, float(i))
        for j, op in enumerate(ops):
            if j in resets:
                ref = IBRows()
            why = ref.apply(*op)
            if why is not None:
                expected[why] += 1
        if any(r >= len(ops) for r in resets):
            ref = IBRows()
        crossed = ref.crossed()
        expected["crossed"] += crossed and not was_crossed
        was_crossed = crossed
        book = state.by_symbol["SPY"].book
        assert book.levels(BID) == ref.written(BID) and book.levels(ASK) == ref.written(ASK)
        assert book.crossed() == crossed
        changed, gone = book.changes()
        written.update(changed)
        for name in gone:
            del written[name]
        assert written == book.fields()
        check_encoded_book(written, crossed)
        venues_hash = VenueShares.from_redis(venue_fields(book), key="market:SPY:venues")
        assert isinstance(venues_hash, VenueShares), venues_hash
        assert ("book" in state.by_symbol["SPY"].pending) == (not book.resetting)
        TALLY["ib.depth levels written (summed over reads)"] += book.level_count()
    got = Counter({reason: n for (surface, reason, symbol), n in state.rejects.items()
                   if surface == "ib.depth" and symbol == "SPY"})
    assert got == +expected
    assert set(state.rejects) <= {("ib.depth", reason, "SPY") for reason in expected}
    TALLY["ib.depth examples"] += 1
    TALLY["ib.depth operations"] += sum(len(ops) for ops, _ in read_list)
    TALLY.update({f"ib.depth refused {r}": n for r, n in got.items()})


# --- 5-s bars ---------------------------------------------------------------------------------


def bar_reason(b: FiveSecondBar) -> str | None:
    """The rules for a 5-s bar, written out again."""
    ohlc = (b.open, b.high, b.low, b.close)
    if not all(math.isfinite(x) for x in ohlc):
        return "price_not_finite"
    if min(ohlc) <= 0:
        return "price_not_positive"
    if b.high < b.low:
        return "high_below_low"
    if not (b.low <= b.open <= b.high and b.low <= b.close <= b.high):
        return "open_close_outside_range"
    if not math.isfinite(b.volume):
        return "volume_not_finite"
    if b.volume < 0:
        return "negative_volume"
    if not math.isfinite(b.wap):
        return "wap_not_finite"
    return "negative_wap" if b.wap < 0 else ("negative_count" if b.count < 0 else None)


@st.composite
def five_second_bars(draw: st.DrawFn) -> list[FiveSecondBar]:
    out, start = [], T0
    for _ in range(draw(st.integers(1, 40))):
        start += 5 * draw(st.integers(1, 4))
        if draw(st.booleans()):  # a plausible bar
            lo = draw(st.floats(1.0, 500.0))
            hi = lo + draw(st.floats(0.0, 5.0))
            o, c = draw(st.floats(lo, hi)), draw(st.floats(lo, hi))
            out.append(FiveSecondBar(start, o, hi, lo, c, draw(st.floats(0.0, 1e6)), draw(st.floats(lo, hi)),
                                     draw(st.integers(0, 1000))))
        else:
            out.append(FiveSecondBar(start, draw(prices), draw(prices), draw(prices), draw(prices), draw(sizes),
                                     draw(prices), draw(st.integers(-2, 1000))))
    return out


def exact_sum(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf


@FUZZ
@given(five_second_bars())
def test_five_second_bars_never_make_a_minute_the_codec_refuses(bars: list[FiveSecondBar]) -> None:
    state = StreamState(["SPY"], FakeClock(), rows=ROWS)
    expected, by_minute = Counter[str](), dict[int, list[FiveSecondBar]]()
    for b in bars:
        state.bar("SPY", b, 1.0)
        why = bar_reason(b)
        if why is None:
            by_minute.setdefault(b.start - b.start % 60, []).append(b)
        else:
            expected[why] += 1
    state.close_minutes(bars[-1].start + 3600.0, 2.0)
    minutes = {m.start: m for m in state.by_symbol["SPY"].bars}
    for start, parts in by_minute.items():
        volume = exact_sum([p.volume for p in parts])
        if not math.isfinite(volume):
            expected["volume_not_finite"] += 1  # the finished minute is refused by the codec check
            assert start not in minutes
            continue
        m = minutes.pop(start)
        assert m.volume == volume and m.five_second_bars == len(parts)
        assert (m.open, m.close, m.high, m.low) == (parts[0].open, parts[-1].close, max(p.high for p in parts),
                                                   min(p.low for p in parts))
        assert Bar.from_redis(m.to_redis(), key="market:SPY:bars:1min") == m  # strict JSON, decodes as written
    assert not minutes  # no minute without a valid 5-s bar
    got = Counter({reason: n for (surface, reason, _), n in state.rejects.items() if surface == "ib.bar"})
    assert got == +expected
    TALLY["ib.bar examples"] += 1
    TALLY["ib.bar 5-s bars"] += len(bars)
    TALLY["ib.bar minutes kept"] += len(state.by_symbol["SPY"].bars)
    TALLY.update({f"ib.bar refused {r}": n for r, n in got.items()})


# --- prints -----------------------------------------------------------------------------------

prints = st.lists(st.tuples(prices, sizes, venues), min_size=1, max_size=30)
book_ops = st.lists(st.tuples(st.sampled_from([ASK, BID]), st.integers(0, 2), st.just(INSERT),
                              st.floats(9.0, 11.0), st.floats(1.0, 1e4), venues), max_size=6)


@FUZZ
@given(book_ops, prints)
def test_prints_are_stored_only_when_valid_and_always_signed(ops: list[DepthOp],
                                                              batch: list[tuple[float, float, str]]) -> None:
    state = StreamState(["SPY"], FakeClock(), rows=ROWS)
    state.depth("SPY", ops, [], 0.0)
    state.rejects.clear()  # the book may be crossed: that count is not what this test is about
    state.trades("SPY", batch, 1.0)
    valid = [(p, s) for p, s, _ in batch if value_reason(p, s) is None]
    stored = [decode_trade_fields(f) for f in state.by_symbol["SPY"].trades]
    assert [(p, s) for _, p, s, _ in stored] == valid
    assert all(side in (-1, 0, 1) for *_, side in stored)
    expected = Counter(r for p, s, _ in batch if (r := value_reason(p, s)) is not None)
    got = Counter({reason: n for (surface, reason, _), n in state.rejects.items() if surface == "ib.trade"})
    assert got == expected
    TALLY["ib.trade examples"] += 1
    TALLY["ib.trade prints"] += len(batch)
    TALLY["ib.trade prints kept"] += len(stored)
    TALLY.update({f"ib.trade refused {r}": n for r, n in got.items()})


# --- level-one ticks --------------------------------------------------------------------------

AT = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
ticks = st.lists(st.builds(TickData, st.just(AT), st.sampled_from([0, 1, 2, 3, 4, 5, 8]), prices, sizes),
                 min_size=1, max_size=20)


@FUZZ
@given(st.lists(ticks, min_size=1, max_size=5))
def test_level_one_ticks_never_leave_garbage_in_the_quote(reads_: list[list[TickData]]) -> None:
    state = StreamState(["SPY"], FakeClock(), rows=ROWS)
    refused_total = Counter[str]()
    for i, read in enumerate(reads_):
        fields, refused = quote_fields_of(read)
        refused_total += refused
        if refused:
            state.refuse("SPY", "ib.tick", refused)
        if fields:
            state.quote("SPY", fields, float(i))
        quote = state.by_symbol["SPY"].quote
        for name in ("bid", "ask", "last"):
            assert name not in quote or (math.isfinite(quote[name]) and quote[name] > 0)
        for name in ("bid_size", "ask_size", "volume"):
            assert name not in quote or (math.isfinite(quote[name]) and quote[name] >= 0)
        if quote:
            encoded = quote_fields(quote)
            got = Quote.from_redis(encoded, key="market:SPY:quote")
            assert isinstance(got, Quote), got
            assert all(getattr(got, n) == quote.get(n) for n in ("bid", "ask", "last", "bid_size", "ask_size",
                                                                    "volume"))
    counted = Counter({reason: n for (surface, reason, _), n in state.rejects.items() if surface == "ib.tick"})
    assert counted == +refused_total
    TALLY["ib.tick examples"] += 1
    TALLY["ib.tick ticks"] += sum(map(len, reads_))
    TALLY.update({f"ib.tick refused {r}": n for r, n in counted.items()})
