"""The simulated market: determinism, the book as IB depth ops, trades, sessions, bursts, bars."""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime, timedelta, timezone

import pytest

from qc.core.clock import NEW_YORK
from qc.core.models import DepthLevel
from qc.sim.market.events import ASK, BID, DELETE, INSERT, UPDATE, DepthOp, ImbalanceEvent, MarketEvent, TradeEvent
from qc.sim.market.market import SimMarket, event_ts
from qc.sim.market.params import VENUES, SimParams

SPY_ONLY = SimParams(symbols=("SPY",), depth_rate_hz=60.0, bursts_per_session=0.0)


def ny(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=NEW_YORK).astimezone(timezone.utc)


def poll(m: SimMarket, start: datetime, seconds: float, step: float) -> list[MarketEvent]:
    out: list[MarketEvent] = []
    t, end = start, start + timedelta(seconds=seconds)
    while t < end:
        t = min(end, t + timedelta(seconds=step))
        out += m.events_until(t)
    return out


def digest(events: list[MarketEvent]) -> str:
    return hashlib.sha256("\n".join(repr(e) for e in events).encode()).hexdigest()


class Replay:
    """An independent IB depth-op applier (insert shifts down, delete shifts up)."""

    def __init__(self) -> None:
        self.side: dict[int, list[DepthLevel]] = {BID: [], ASK: []}

    def apply(self, op: DepthOp) -> None:
        levels = self.side[op.side]
        if op.operation == INSERT:
            assert 0 <= op.position <= len(levels)
            levels.insert(op.position, DepthLevel(op.price, op.size, op.venue))
        elif op.operation == UPDATE:
            levels[op.position] = DepthLevel(op.price, op.size, op.venue)
        else:
            assert op.operation == DELETE
            del levels[op.position]


def test_same_seed_same_events_whatever_the_polling_and_another_seed_differs() -> None:
    start = ny(2026, 3, 10, 10, 0)
    params = SimParams(depth_rate_hz=200.0)
    fine = poll(SimMarket(start, params), start, 20, 0.37)
    coarse = poll(SimMarket(start, params), start, 20, 4.0)
    assert len(fine) > 1000
    assert digest(fine) == digest(coarse)
    other = poll(SimMarket(start, SimParams(seed=1, depth_rate_hz=200.0)), start, 20, 4.0)
    assert digest(other) != digest(fine)
    assert [event_ts(e) for e in fine] == sorted(event_ts(e) for e in fine)


@pytest.mark.parametrize("start", [ny(2026, 3, 10, 9, 29, 55), ny(2026, 3, 10, 12, 0), ny(2026, 3, 10, 15, 59, 50)],
                         ids=["across the open", "midday", "across the close"])
@pytest.mark.parametrize("budget", [1, 37, 500])
def test_preparing_ahead_in_slices_changes_no_event(start: datetime, budget: int) -> None:
    params = SimParams(depth_rate_hz=300.0)
    reference = SimMarket(start, params)
    plain = poll(reference, start, 15, 0.37)
    m, sliced = SimMarket(start, params), []
    t, end = start, start + timedelta(seconds=15)
    while t < end:
        t = min(end, t + timedelta(seconds=0.37))
        sliced += m.events_until(t)
        for _ in range(40):  # a pump's ticks between two polls, each making a slice of the next second
            m.prepare_ahead(t, budget)
    assert len(plain) > 1000
    assert digest(sliced) == digest(plain)
    for sym in m.symbols:  # the book and quote are of revealed events only, never of the prepared second
        assert m.book(sym) == reference.book(sym)
        assert m.quote(sym) == reference.quote(sym)


def test_replaying_depth_ops_rebuilds_the_book_and_trades_print_at_the_touch() -> None:
    start = ny(2026, 3, 10, 11, 0, 0)
    m = SimMarket(start, SimParams(depth_rate_hz=400.0))
    replays = {s: Replay() for s in m.symbols}
    trades = 0
    for k in range(1, 9):
        for e in m.events_until(start + timedelta(seconds=1.3 * k)):
            if isinstance(e, DepthOp):
                replays[e.symbol].apply(e)
            elif isinstance(e, TradeEvent):
                book = replays[e.symbol].side[ASK if e.trade.side > 0 else BID]
                assert e.trade.side in (1, -1)
                assert e.trade.price == book[0].price
                assert e.trade.venue in VENUES
                trades += 1
        for sym in m.symbols:
            bids, asks = m.book(sym)
            assert (bids, asks) == (replays[sym].side[BID], replays[sym].side[ASK])
            assert len(bids) == len(asks) == 10
            assert all(a.price > b.price for a, b in itertools.pairwise(bids))
            assert all(a.price < b.price for a, b in itertools.pairwise(asks))
            assert bids[0].price < asks[0].price
            assert {lv.venue for lv in bids + asks} <= set(VENUES)
            assert all(lv.size > 0 for lv in bids + asks)
            q = m.quote(sym)
            assert (q.bid, q.ask, q.bid_size) == (bids[0].price, asks[0].price, bids[0].size)
    assert trades > 50


def test_depth_rate_is_a_parameter() -> None:
    start = ny(2026, 3, 10, 12, 0)
    ops = [e for e in poll(SimMarket(start, SimParams(symbols=("QQQ",), depth_rate_hz=2000.0)), start, 5, 5)
           if isinstance(e, DepthOp)]
    assert 1800 * 5 < len(ops) < 2200 * 5


def test_nothing_outside_sessions_and_imbalance_only_in_the_last_ten_minutes() -> None:
    start = ny(2026, 3, 10, 15, 49, 30)
    m = SimMarket(start, SPY_ONLY)
    events = poll(m, start, 17 * 3600 + 41 * 60 + 30, 600)  # through the night to 09:31 next morning
    close, next_open = ny(2026, 3, 10, 16, 0), ny(2026, 3, 11, 9, 30)
    assert all(start <= event_ts(e) < close or next_open <= event_ts(e) for e in events)
    assert any(event_ts(e) >= next_open for e in events)
    imbalances = [e for e in events if isinstance(e, ImbalanceEvent)]
    assert [e.imbalance.ts for e in imbalances] == [ny(2026, 3, 10, 15, 50) + timedelta(seconds=5 * k)
                                                   for k in range(120)]
    assert all(e.imbalance.paired > 0 for e in imbalances)


def test_early_close_ends_at_one_and_its_auction_starts_at_twelve_fifty() -> None:
    start = ny(2026, 11, 27, 12, 49, 50)  # the day after Thanksgiving
    events = poll(SimMarket(start, SPY_ONLY), start, 20 * 60, 300)
    assert max(event_ts(e) for e in events) < ny(2026, 11, 27, 13, 0)
    imb = [e.imbalance.ts for e in events if isinstance(e, ImbalanceEvent)]
    assert min(imb) == ny(2026, 11, 27, 12, 50)
    assert max(imb) < ny(2026, 11, 27, 13, 0)


def test_a_holiday_has_no_events() -> None:
    start = ny(2026, 11, 26, 10, 0)  # Thanksgiving
    events = poll(SimMarket(start, SPY_ONLY), start, 3 * 3600, 3600)
    assert events == []


def _volume(start: datetime, minutes: int) -> float:
    events = poll(SimMarket(start, SPY_ONLY), start, minutes * 60, 60)
    return sum(e.trade.size for e in events if isinstance(e, TradeEvent))


def test_volume_is_u_shaped() -> None:
    first, mid, last = (_volume(ny(2026, 3, 10, h, m), 5) for h, m in ((9, 30), (12, 30), (15, 54)))
    assert first > 1.5 * mid
    assert last > 1.5 * mid


def _flow(events: list[MarketEvent], t0: datetime, t1: datetime) -> tuple[float, float, float]:
    trades = [e.trade for e in events if isinstance(e, TradeEvent) and t0 <= e.trade.ts < t1]
    buy = sum(t.size for t in trades if t.side > 0)
    sell = sum(t.size for t in trades if t.side < 0)
    return buy, sell, trades[-1].price - trades[0].price


def test_an_injected_burst_is_one_sided_drifting_flow_that_raises_vpin() -> None:
    start = ny(2026, 3, 10, 11, 0)
    m = SimMarket(start, SPY_ONLY)
    burst = start + timedelta(minutes=5)
    m.inject_informed_flow("SPY", burst, 240, +1)
    events = poll(m, start, 9 * 60, 30)
    buy0, sell0, _ = _flow(events, start, burst)
    buy1, sell1, drift = _flow(events, burst, burst + timedelta(seconds=240))
    calm, informed = abs(buy0 - sell0) / (buy0 + sell0), abs(buy1 - sell1) / (buy1 + sell1)
    assert buy1 > sell1
    assert informed > 0.5
    assert informed > 3 * calm
    assert drift > 0
    vpin = pytest.importorskip("qc.analytics.vpin")
    trades = [e.trade for e in events if isinstance(e, TradeEvent)]
    ts = [int(t.ts.timestamp() * 1e9) for t in trades]
    buys = [t.size if t.side > 0 else 0.0 for t in trades]
    sells = [t.size if t.side < 0 else 0.0 for t in trades]
    bucket = (sum(buys) + sum(sells)) / 90
    ends, values = vpin.vpin_true_sign(ts, buys, sells, bucket, n_buckets=5)
    burst_end_ns = int((burst + timedelta(seconds=240)).timestamp() * 1e9)
    in_burst = values[(ends > int(burst.timestamp() * 1e9) + 60 * 10**9) & (ends <= burst_end_ns)]
    before = values[ends <= int(burst.timestamp() * 1e9)]
    assert in_burst.size and before.size
    assert in_burst.min() > before.max()


def test_unknown_symbols_get_plausible_stable_prices() -> None:
    start = ny(2026, 3, 10, 10, 0)
    params = SimParams(symbols=("ZZZT", "SPY"), depth_rate_hz=100.0)
    a, b = SimMarket(start, params), SimMarket(start, params)
    a.events_until(start + timedelta(seconds=3))
    assert 5.0 < a.spot("ZZZT") < 2000.0
    assert a.start_price("ZZZT") == b.start_price("ZZZT")
    assert len(a.book("ZZZT")[0]) == 10
    with pytest.raises(KeyError):
        a.book("NOPE")


def test_a_jump_gaps_the_whole_book_at_the_next_second_and_the_depth_ops_replay_it() -> None:
    start = ny(2026, 3, 10, 11, 0, 0)
    m = SimMarket(start, SimParams(symbols=("SPY",)))
    replay = Replay()
    for e in m.events_until(start + timedelta(seconds=3)):
        if isinstance(e, DepthOp):
            replay.apply(e)
    before = m.quote("SPY")
    m.jump("SPY", -0.012)
    for e in m.events_until(start + timedelta(seconds=4)):
        if isinstance(e, DepthOp):
            replay.apply(e)
    after = m.quote("SPY")
    assert after.bid / before.bid - 1 == pytest.approx(-0.012, abs=0.002)  # one second of noise on top
    bids, asks = m.book("SPY")
    assert (bids, asks) == (replay.side[BID], replay.side[ASK])
    assert bids[0].price < asks[0].price and len(bids) == len(asks) == 10
    with pytest.raises(ValueError, match="fraction"):
        m.jump("SPY", 0.6)
