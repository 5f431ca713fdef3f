"""Ingestion's Redis codecs: round trips, the writers' fast encoders agreeing with them, and every
way a stored value can be unusable (missing, partial, old version, malformed, out of range)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.codec import Absent, Malformed
from qc.core.models import checked_trade_fields, decode_trade_fields
from qc.ingest.book import ASK, BID, INSERT, DepthBook
from qc.ingest.codec import (
    OPTIONAL_ROW_FIELDS,
    QC_GREEKS,
    ROW_FIELDS,
    VENDOR_FIELDS,
    AuctionImbalance,
    Bar,
    Book,
    ChainRow,
    DepthLevel,
    NewsSentiment,
    OptionChain,
    Quote,
    Trade,
    VenueShares,
    auction_fields,
    decode_bars,
    decode_trades,
    fast_row,
    quote_fields,
    trade_fields,
)

K = "market:SPY:x"
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=timezone.utc)
prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
sizes = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False)
opt = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False))
counts = st.integers(min_value=0, max_value=2**53 - 1)
venues = st.text(min_size=1, max_size=8)
epochs = st.floats(min_value=1.0, max_value=4.1e9, allow_nan=False)
instants = st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: datetime.fromtimestamp(s, timezone.utc))


def reason(got: object) -> str:
    assert isinstance(got, Absent), got
    return got.reason


# --- quote ----------------------------------------------------------------------------------------

quotes = st.builds(Quote, as_of=epochs, bid=st.none() | prices, ask=st.none() | prices, bid_size=st.none() | sizes,
                   ask_size=st.none() | sizes, last=st.none() | prices, volume=st.none() | sizes)


@given(quotes)
def test_quote_round_trips_and_the_writers_encoder_agrees(q: Quote) -> None:
    assert Quote.from_redis(q.to_redis(), key=K) == q
    live = {n: v for n, v in (("bid", q.bid), ("ask", q.ask), ("bid_size", q.bid_size), ("ask_size", q.ask_size),
                              ("last", q.last), ("volume", q.volume), ("as_of", q.as_of)) if v is not None}
    assert quote_fields(live) == q.to_redis()  # what `qc stream` writes from its partial dict


def test_quote_spot_is_the_mid_of_a_two_sided_quote_else_the_last() -> None:
    assert Quote(1.0, bid=10.0, ask=10.2, last=9.0).spot == pytest.approx(10.1)
    assert Quote(1.0, bid=10.3, ask=10.2, last=9.0).spot == 9.0  # crossed: no mid
    assert Quote(1.0, ask=10.2).spot is None


def test_quote_writer_blanks_prices_ib_did_not_quote() -> None:
    fields = quote_fields({"bid": 0.0, "ask": math.nan, "last": 5.0, "volume": -1.0, "as_of": 2.0})
    assert (fields["bid"], fields["ask"], fields["volume"], fields["last"]) == ("", "", "", "5.0")


@pytest.mark.parametrize(("fields", "why"), [
    (None, "missing"),
    ({}, "missing"),
    ({"bid": "1.0", "as_of": "5.0"}, "v absent"),  # written before the schema had a version
    ({"v": "2", "bid": "1.0", "as_of": "5.0"}, "v is '2'"),
    ({"v": "1", "bid": "1.0"}, "as_of missing"),  # partial
    ({"v": "1", "bid": "abc", "as_of": "5.0"}, "bid is not a number"),
    ({"v": "1", "bid": "nan", "as_of": "5.0"}, "bid is not finite"),
    ({"v": "1", "ask": "inf", "as_of": "5.0"}, "ask is not finite"),
    ({"v": "1", "bid": "-1.0", "as_of": "5.0"}, "bid is -1.0"),
    ({"v": "1", "bid_size": "-3", "as_of": "5.0"}, "bid_size is -3.0"),
    ({"v": "1", "as_of": "1e12"}, "as_of is 1000000000000.0, after 2100"),
])
def test_quote_reader_returns_absent_naming_the_field(fields: dict[str, str] | None, why: str) -> None:
    assert why in reason(Quote.from_redis(fields, key=K))


# --- book and venues ------------------------------------------------------------------------------

levels = st.lists(st.builds(DepthLevel, prices, sizes, venues), max_size=12).map(tuple)


@given(levels, levels)
def test_book_round_trips_and_matches_the_depth_book_writer(bids: tuple[DepthLevel, ...],
                                                           asks: tuple[DepthLevel, ...]) -> None:
    book = Book(bids, asks)
    fields = book.to_redis()
    assert len(fields) == len(bids) + len(asks)  # HLEN stays the level count: no version field
    assert Book.from_redis(fields, key=K) == book or (not fields and reason(Book.from_redis(fields, key=K)))
    back = Book.from_redis(fields, key=K)
    if isinstance(back, Book):
        assert back.crossed == (bool(bids and asks) and bids[0].price >= asks[0].price)
    depth = DepthBook(max_rows=12)
    for side, rows in ((BID, bids), (ASK, asks)):
        for i, lv in enumerate(rows):
            depth.apply(side, i, INSERT, lv.price, lv.size, lv.venue)
    resting = Book(tuple(lv for lv in bids if lv.size > 0), tuple(lv for lv in asks if lv.size > 0))
    assert depth.fields() == resting.to_redis()  # a size-0 row is IB's row, not a level


def test_depth_book_refuses_levels_the_codec_would_refuse() -> None:
    book = DepthBook()
    assert book.apply(BID, 0, INSERT, 0.0, 100, "ARCA") == "price_not_positive"
    assert book.apply(BID, 0, INSERT, math.nan, 100, "ARCA") == "price_not_finite"
    assert book.apply(BID, 0, INSERT, 10.0, -1, "ARCA") == "negative_size"
    assert book.level_count() == 0 and book.fields() == {}


@pytest.mark.parametrize(("price", "size"), [(math.nan, 1.0), (1.0, math.nan), (math.inf, 1.0), (1.0, -math.inf)])
def test_the_book_encoder_never_writes_a_non_finite_token(price: float, size: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        Book((DepthLevel(price, size, "X"),), ()).to_redis()


def test_a_crossed_book_marks_its_crossing_levels_and_keeps_hlen_the_level_count() -> None:
    book = Book(bids=(DepthLevel(10.02, 1, "A"), DepthLevel(10.0, 1, "B"), DepthLevel(9.9, 1, "C")),
                asks=(DepthLevel(10.0, 1, "D"), DepthLevel(10.05, 1, "E")))
    fields = book.to_redis()
    assert len(fields) == 5
    assert {n for n, raw in fields.items() if '"crossed":true' in raw} == {"bid:0", "bid:1", "ask:0"}
    back = Book.from_redis(fields, key=K)
    assert back == book and isinstance(back, Book) and back.crossed
    assert not Book((DepthLevel(9.99, 1, "A"),), (DepthLevel(10.0, 1, "B"),)).crossed


LEVEL = '{"price":10.0,"size":100,"venue":"ARCA"}'


@pytest.mark.parametrize(("fields", "why"), [
    ({}, "missing"),
    ({"bid:0": LEVEL, "bid:2": LEVEL}, "bid levels [0, 2] have a gap"),
    ({"bid:0": '{"price":10.0,"size":100}'}, "bid:0.venue missing"),
    ({"bid:0": '{"price":"NaN","size":100,"venue":"X"}'}, "bid:0.price is not finite"),
    ({"bid:0": '{"price":-10.0,"size":100,"venue":"X"}'}, "bid:0.price is -10.0"),
    ({"bid:0": '{"price":10.0,"size":-1,"venue":"X"}'}, "bid:0.size is -1.0"),
    ({"bid:0": "[1, 2]"}, "bid:0 is a JSON list"),
    ({"bid:0": "{not json"}, "JSONDecodeError"),
    ({"bid:0": '{"v":2,"price":10.0,"size":100,"venue":"X"}'}, "bid:0.v is 2"),
    ({"middle:0": LEVEL}, "middle:0 is not a {bid|ask}:{level} field"),
])
def test_book_reader_returns_absent_naming_the_field(fields: dict[str, str], why: str) -> None:
    assert why in reason(Book.from_redis(fields, key=K))


def test_book_level_json_without_a_version_is_version_1() -> None:
    got = Book.from_redis({"bid:0": LEVEL, "ask:0": '{"v":1,"price":10.1,"size":5,"venue":"IEX"}'}, key=K)
    assert got == Book((DepthLevel(10.0, 100.0, "ARCA"),), (DepthLevel(10.1, 5.0, "IEX"),))


shares = st.dictionaries(venues.filter(lambda v: v != "herfindahl"), st.floats(0.0, 1.0), max_size=5)


@given(shares, shares, st.none() | st.floats(0.0, 1.0), st.none() | st.floats(0.0, 1.0))
def test_venue_shares_round_trip(bid: dict[str, float], ask: dict[str, float], hb: float | None,
                                 ha: float | None) -> None:
    v = VenueShares(bid, ask, hb, ha)
    assert VenueShares.from_redis(v.to_redis(), key=K) == v


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, math.inf])
def test_venue_shares_refuse_to_encode_what_the_reader_would_refuse(bad: float) -> None:
    with pytest.raises(ValueError, match="not in"):
        VenueShares({"ARCA": bad}, {}).to_redis()
    with pytest.raises(ValueError, match="not in"):
        VenueShares({}, {"ARCA": 1.0}, None, bad).to_redis()


@pytest.mark.parametrize(("fields", "why"), [
    ({"bid:ARCA": "0.5"}, "v absent"),
    ({"v": "1", "bid:ARCA": "1.5"}, "bid:ARCA is 1.5"),
    ({"v": "1", "ARCA": "0.5"}, "ARCA is not a {bid|ask}:{venue} field"),
])
def test_venue_shares_reader_returns_absent(fields: dict[str, str], why: str) -> None:
    assert why in reason(VenueShares.from_redis(fields, key=K))


# --- auction, news --------------------------------------------------------------------------------

auctions = st.builds(AuctionImbalance, as_of=epochs, imbalance=opt, paired=st.none() | sizes,
                     indicative_price=st.none() | prices, regulatory_imbalance=opt)


@given(auctions)
def test_auction_round_trips_and_the_writers_encoder_agrees(a: AuctionImbalance) -> None:
    assert AuctionImbalance.from_redis(a.to_redis(), key=K) == a
    live = {n: getattr(a, n) for n in ("as_of", "imbalance", "paired", "indicative_price", "regulatory_imbalance")}
    assert auction_fields({n: v for n, v in live.items() if v is not None}) == a.to_redis()


def test_auction_reader_refuses_old_and_bad_values() -> None:
    assert "v absent" in reason(AuctionImbalance.from_redis({"as_of": "1.0"}, key=K))
    assert "paired is -5.0" in reason(AuctionImbalance.from_redis({"v": "1", "as_of": "1", "paired": "-5"}, key=K))


news = st.builds(NewsSentiment, score=st.none() | st.floats(-1.0, 1.0), label=st.text(max_size=20), articles=counts,
                 relevance_sum=st.floats(0.0, 1e6), skipped=counts, latest_published=st.text(max_size=20),
                 as_of=instants)


@given(news)
def test_news_round_trips(n: NewsSentiment) -> None:
    assert NewsSentiment.from_redis(n.to_redis(), key=K) == n


@pytest.mark.parametrize(("change", "why"), [
    ({"v": None}, "v absent"),
    ({"score": "1.5"}, "score is 1.5"),
    ({"articles": "-1"}, "articles is -1"),
    ({"articles": "2.5"}, "articles is not an integer"),
    ({"as_of": "2026-03-02T15:30:00"}, "as_of has no time zone"),
    ({"label": None}, "label missing"),
])
def test_news_reader_returns_absent(change: dict[str, str | None], why: str) -> None:
    fields = NewsSentiment(0.2, "Neutral", 3, 1.5, 0, "20260302T150000", NOW).to_redis()
    fields = {k: v for k, v in ({**fields, **change}).items() if v is not None}
    assert why in reason(NewsSentiment.from_redis(fields, key=K))


# --- bars -----------------------------------------------------------------------------------------


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    lo = draw(prices)
    hi = lo + draw(st.floats(0.0, 100.0))
    o, c = draw(st.floats(lo, hi)), draw(st.floats(lo, hi))
    start = draw(st.integers(0, 60_000_000)) * 60
    return Bar(datetime.fromtimestamp(start, timezone.utc), o, hi, lo, c, draw(sizes), draw(prices),
               draw(st.integers(0, 10**9)), draw(st.booleans()), draw(st.none() | st.integers(1, 12)))


@given(bars())
def test_bar_round_trips(b: Bar) -> None:
    assert Bar.from_redis(b.to_redis(), key=K) == b


GOOD_BAR = {"v": 1, "start": 1_772_465_400, "open": 10.0, "high": 10.5, "low": 9.5, "close": 10.2, "volume": 100.0,
            "vwap": 10.1, "count": 5, "bars": 12, "complete": True}


@pytest.mark.parametrize(("change", "why"), [
    ({"v": None}, "v absent"),
    ({"v": 2}, "v is 2"),
    ({"close": None}, "close missing"),
    ({"start": 1_772_465_401}, "start 1772465401 is not on a minute boundary"),
    ({"high": 9.0}, "high 9.0 / low 9.5 do not bracket"),
    ({"low": -1.0}, "low is -1.0"),
    ({"volume": -1.0}, "volume is -1.0"),
    ({"count": 1.5}, "count is not an integer"),
    ({"complete": "yes"}, "complete is 'yes'"),
])
def test_bar_reader_returns_absent_naming_the_field(change: dict[str, Any], why: str) -> None:
    doc = {k: v for k, v in ({**GOOD_BAR, **change}).items() if v is not None}
    assert why in reason(Bar.from_redis(json.dumps(doc), key=K))


def test_bar_reader_refuses_nan_and_broken_json() -> None:
    assert "not finite" in reason(Bar.from_redis(json.dumps({**GOOD_BAR, "open": float("nan")}), key=K))
    assert "malformed" in reason(Bar.from_redis("{", key=K))
    assert reason(Bar.from_redis(None, key=K)) == "missing"


def test_decode_bars_keeps_good_ones_once_per_start_in_order() -> None:
    early = {**GOOD_BAR, "start": GOOD_BAR["start"] - 60}
    later_copy = {**GOOD_BAR, "close": 10.4}
    items = [json.dumps(GOOD_BAR), "junk", json.dumps(early), json.dumps(later_copy), json.dumps({"start": 0})]
    got, rejected = decode_bars(items, key=K)
    assert [b.start for b in got] == [early["start"], GOOD_BAR["start"]] and got[1].close == 10.4
    assert sum(rejected.values()) == 2


# --- trades ---------------------------------------------------------------------------------------

trades = st.builds(Trade, st.integers(0, 4_000_000_000_000).map(lambda ms: datetime.fromtimestamp(ms / 1000,
                                                                                                   timezone.utc)),
                   prices, sizes, venues, st.sampled_from((-1, 0, 1)))


@given(trades)
def test_trade_round_trips_and_the_bulk_decoder_agrees(t: Trade) -> None:
    fields = t.to_redis()
    back = Trade.from_redis(fields, key=K)
    assert isinstance(back, Trade)
    assert abs((back.ts - t.ts).total_seconds()) < 1e-6  # stored to the millisecond, as generated
    assert (back.price, back.size, back.venue, back.side) == (t.price, t.size, t.venue, t.side)
    (row,), rejected = decode_trades([("1-0", fields)], key=K)
    assert row == (back.ts.timestamp(), t.price, t.size, t.side) and not rejected
    assert trade_fields(fields["ts"], t.price, t.size, t.venue, t.side) == fields


@pytest.mark.parametrize(("change", "why"), [
    ({"v": None}, "v absent"),
    ({"price": "0"}, "price is 0.0, not > 0"),
    ({"price": "inf"}, "price is not finite"),
    ({"size": "-1"}, "size is -1.0"),
    ({"side": "2"}, "side is 2"),
    ({"ts": None}, "ts missing"),
])
def test_trade_reader_returns_absent_and_the_bulk_decoder_counts_it(change: dict[str, str | None], why: str) -> None:
    fields = {k: v for k, v in ({**trade_fields("1.5", 10.0, 5.0, "ARCA", 1), **change}).items() if v is not None}
    assert why in reason(Trade.from_redis(fields, key=K))
    rows, rejected = decode_trades([("1-0", fields), ("2-0", trade_fields("2.0", 10.0, 5.0, "X", -1))], key=K)
    assert rows == [(2.0, 10.0, 5.0, -1)] and sum(rejected.values()) == 1


# --- option chain ---------------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False)
rows = st.builds(
    ChainRow, expiry=st.dates(date(2026, 1, 1), date(2030, 12, 31)), right=st.sampled_from(("C", "P")),
    strike=prices, bid=st.just(0.0) | st.floats(0.0, 10.0), ask=st.floats(10.0, 20.0), mark=st.floats(0.0, 20.0),
    volume=counts, open_interest=counts, t_years=st.floats(0.0, 5.0), iv=st.none() | st.floats(0.01, 3.0),
    iv_source=st.sampled_from(("mark", "vendor")), divergent=st.booleans(), delta=finite, gamma=finite,
    vega=finite, theta=finite, rho=finite, vanna=finite, charm=finite, iv_vendor=st.none() | st.floats(0.0, 5.0),
    delta_vendor=st.none() | finite, gamma_vendor=st.none() | finite, theta_vendor=st.none() | finite,
    vega_vendor=st.none() | finite, rho_vendor=st.none() | finite)
chains = st.builds(
    OptionChain, symbol=st.sampled_from(("SPY", "QQQ")), as_of=instants, spot=prices, rate=st.floats(-0.1, 0.2),
    div_yield=st.floats(0.0, 0.1), expiries=st.lists(st.dates(date(2026, 1, 1), date(2030, 12, 31))).map(tuple),
    rows=st.lists(rows, min_size=1, max_size=6, unique_by=lambda r: r.contract).map(tuple),
    source=st.text(max_size=10), spot_source=st.text(max_size=10),
    expiry_roles=st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3),
    missing_expiries=st.lists(st.text(max_size=10), max_size=2).map(tuple), units=st.text(max_size=20),
    dropped=st.dictionaries(st.text(min_size=1, max_size=10), st.integers(1, 100), max_size=3))


@given(chains)
def test_chain_round_trips(chain: OptionChain) -> None:
    assert OptionChain.from_redis(chain.to_redis(), key=K) == chain



json_values = (st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=True)
               | st.text(max_size=12) | st.sampled_from(("C", "P", "mark", "vendor", "2026-03-20", "2026-02-30", "")))


@given(rows, st.dictionaries(st.sampled_from(ROW_FIELDS), json_values, max_size=3),
       st.lists(st.sampled_from(ROW_FIELDS), max_size=2))
def test_the_fast_row_path_agrees_with_the_checked_one(row: ChainRow, change: dict[str, Any],
                                                       drop: list[str]) -> None:
    """fast_row accepts only what ChainRow.from_json accepts, with the same values; else it defers."""
    doc = {**row.to_json(), **change}
    for name in drop:
        doc.pop(name, None)
    fast = fast_row(doc)
    try:
        checked: ChainRow | None = ChainRow.from_json(doc)
    except Malformed:
        checked = None
    if fast is not None:
        assert checked is not None and tuple(fast) == tuple(checked)
        assert all(type(a) is type(b) for a, b in zip(fast, checked, strict=True))
    if not change and not drop:
        assert fast is not None  # a well-formed row takes the fast path


def test_fast_row_builds_rows_in_field_order() -> None:
    doc = chain_doc()["rows"][0]
    assert fast_row(doc) == ChainRow.from_json(doc)
    assert ROW_FIELDS[:12] == ("expiry", "right", "strike", "bid", "ask", "mark", "volume", "open_interest",
                               "t_years", "iv", "iv_source", "divergent")
    assert OPTIONAL_ROW_FIELDS == QC_GREEKS + VENDOR_FIELDS

def chain_doc(**change: Any) -> dict[str, Any]:
    row = ChainRow(date(2026, 3, 20), "C", 500.0, 1.0, 1.2, 1.1, 10, 100, 0.05, 0.2, "mark", False,
                   0.5, 0.01, 0.2, -0.1, 0.02, 0.0, 0.0)
    doc: dict[str, Any] = json.loads(OptionChain("SPY", NOW, 500.0, 0.04, 0.01, (date(2026, 3, 20),),
                                                 (row, ChainRow(**{**row.to_json(), "strike": 505.0,
                                                                   "expiry": row.expiry}))).to_redis())
    return {k: v for k, v in ({**doc, **change}).items() if v is not None}


@pytest.mark.parametrize(("change", "why"), [
    ({"v": None}, "v absent: written before schema v1 (old version)"),
    ({"v": 0}, "v is 0"),
    ({"spot": None}, "spot missing"),
    ({"spot": -1}, "spot is -1"),
    ({"as_of": "yesterday"}, "as_of is not an ISO-8601 instant"),
    ({"rows": {}}, "rows is a JSON dict"),
    ({"expiries": ["2026-02-30"]}, "expiries is not a valid date"),
    ({"rows": [{"strike": "x"}]}, "rows: all 1 rejected"),
])
def test_chain_reader_returns_absent_naming_the_field(change: dict[str, Any], why: str) -> None:
    assert why in reason(OptionChain.from_redis(json.dumps(chain_doc(**change)), key=K))


@pytest.mark.parametrize(("bad", "counted"), [
    ({"strike": float("inf")}, "malformed:strike"),
    ({"strike": 0}, "malformed:strike"),
    ({"open_interest": -1}, "malformed:open_interest"),
    ({"open_interest": 2**53}, "malformed:open_interest"),
    ({"volume": 2.5}, "malformed:volume"),
    ({"right": "X"}, "malformed:right"),
    ({"expiry": "2026-13-01"}, "malformed:expiry"),
    ({"ask": 0.5}, "malformed:ask"),  # below the bid: crossed
    ({"iv": 50.0}, "malformed:iv"),
    ({"delta": "NaN"}, "malformed:delta"),
    ({"strike": 500.0}, "duplicate_contract"),  # the first row's contract again
])
def test_a_bad_chain_row_is_dropped_and_counted_and_the_rest_kept(bad: dict[str, Any], counted: str) -> None:
    doc = chain_doc()
    doc["rows"][1].update(bad)
    raw = json.dumps(doc).replace("Infinity", "1e999")
    got = OptionChain.from_redis(raw, key=K)
    assert isinstance(got, OptionChain)
    assert [r.strike for r in got.rows] == [500.0] and dict(got.rejected) == {counted: 1}


def test_chain_accessors() -> None:
    doc = chain_doc()
    got = OptionChain.from_redis(json.dumps(doc), key=K)
    assert isinstance(got, OptionChain)
    assert got.as_of_epoch == NOW.timestamp() and got.divergent == 0 and got.expiries == (date(2026, 3, 20),)
    assert got.rows[0].contract == (date(2026, 3, 20), 500.0, "C")
    assert OptionChain.from_redis(json.dumps(doc).encode(), key=K) == got  # a bytes client reads the same
    assert got.as_of - timedelta(seconds=1) < NOW


trade_values = st.none() | st.sampled_from(("", "nan", "inf", "-1", "0", "1", "-2", "1.0", "1e400", "abc", "2",
                                            "9999999999", "1700000000.5", "5e-324"))


@given(st.dictionaries(st.sampled_from(("ts", "price", "size", "side", "v", "venue")), trade_values),
       st.booleans())
def test_the_plain_trade_path_agrees_with_the_checked_one(change: dict[str, str | None], drop_v: bool) -> None:
    fields = {**trade_fields("1700000000.5", 10.0, 5.0, "ARCA", 1), **change}
    if drop_v:
        fields.pop("v")
    entry = {k: v for k, v in fields.items() if v is not None}
    try:
        checked: tuple[float, float, float, int] | None = checked_trade_fields(entry)
    except Malformed:
        checked = None
    try:
        got: tuple[float, float, float, int] | None = decode_trade_fields(entry)
    except Malformed:
        got = None
    assert got == checked
