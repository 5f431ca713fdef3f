"""Market-data message builders of the simulated gateway: L1 ticks, option greeks, 5-second bars.

Pure: each function turns one market state or event into the frames one subscription receives
(ref ib-api-protocol.md §3 "Market data"). Tick ids are IB's: 1 bid, 2 ask, 4 last, 9 close,
0/3/5 bid/ask/last size, 8 volume, 34 auction volume, 35 auction price, 36 auction imbalance,
61 regulatory imbalance; option computations 10 bid, 11 ask, 13 model.

An underlying's option statistics answer the generic ticks of its reqMktData, from the simulated
market's own figures: 100 → tick sizes 29/30 (the day's call/put volume summed over the chain), 101 →
27/28 (call/put open interest summed over the chain), 104 → tickGeneric 23 (30-day historical
volatility of the daily closes), 106 → tickGeneric 24 (30-day at-the-money implied volatility of the
chain). These are the tick types ib_async's wrapper maps to ``Ticker.callVolume``/``putVolume``,
``callOpenInterest``/``putOpenInterest``, ``histVolatility`` and ``impliedVolatility``.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from qc.core.clock import NEW_YORK
from qc.core.models import Bar, FiveSecondBar, Trade
from qc.sim.ib import encode as enc
from qc.sim.market.models import AuctionImbalance, OptionQuote, Quote

BAR_SECONDS = 5
MAX_EMPTY_GAP_S = 300  # a longer gap without prints (overnight) skips its empty bars
OPTION_SIZE = 10.0  # displayed option size: the model quotes prices, not sizes

GENERIC_OPTION_VOLUME = 100  # → tickSize 29 call volume, 30 put volume
GENERIC_OPTION_OPEN_INTEREST = 101  # → tickSize 27 call open interest, 28 put open interest
GENERIC_HIST_VOL = 104  # → tickGeneric 23 historical volatility
GENERIC_IMPLIED_VOL = 106  # → tickGeneric 24 implied volatility of the underlying
UNDERLYING_GENERIC_TICKS = frozenset({GENERIC_OPTION_VOLUME, GENERIC_OPTION_OPEN_INTEREST, GENERIC_HIST_VOL,
                                      GENERIC_IMPLIED_VOL})
CHAIN_GENERIC_TICKS = frozenset({GENERIC_OPTION_VOLUME, GENERIC_OPTION_OPEN_INTEREST, GENERIC_IMPLIED_VOL})
CALL_OPEN_INTEREST, PUT_OPEN_INTEREST, CALL_VOLUME, PUT_VOLUME = 27, 28, 29, 30  # tickSize types
HIST_VOLATILITY, IMPLIED_VOLATILITY = 23, 24  # tickGeneric types
VOL_DAYS = 30  # IB's historical and implied volatility ticks are 30-day figures
TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class Top:
    """What a symbol's L1 stream last carried."""

    bid: float
    ask: float
    bid_size: float
    ask_size: float
    volume: float


def top_of(q: Quote) -> Top:
    return Top(q.bid, q.ask, q.bid_size, q.ask_size, q.volume)


def l1_snapshot(req_id: int, q: Quote, prev_close: float | None) -> list[bytes]:
    """reqMktData's first answer for a stock: the whole top of book, last, volume and close."""
    out = [enc.tick_price(req_id, 1, q.bid, q.bid_size), enc.tick_size(req_id, 0, q.bid_size),
           enc.tick_price(req_id, 2, q.ask, q.ask_size), enc.tick_size(req_id, 3, q.ask_size)]
    if q.last > 0:
        out += [enc.tick_price(req_id, 4, q.last, q.last_size), enc.tick_size(req_id, 5, q.last_size)]
    out.append(enc.tick_size(req_id, 8, q.volume))
    if prev_close is not None:
        out.append(enc.tick_price(req_id, 9, prev_close))
    return out


def l1_quote_change(req_id: int, old: Top | None, new: Top) -> list[bytes]:
    """The ticks that tell a client ``old`` became ``new`` (only what changed)."""
    out = []
    if old is None or (old.bid, old.bid_size) != (new.bid, new.bid_size):
        out.append(enc.tick_price(req_id, 1, new.bid, new.bid_size))
        out.append(enc.tick_size(req_id, 0, new.bid_size))
    if old is None or (old.ask, old.ask_size) != (new.ask, new.ask_size):
        out.append(enc.tick_price(req_id, 2, new.ask, new.ask_size))
        out.append(enc.tick_size(req_id, 3, new.ask_size))
    if old is None or old.volume != new.volume:
        out.append(enc.tick_size(req_id, 8, new.volume))
    return out


def l1_trade(req_id: int, t: Trade) -> list[bytes]:
    return [enc.tick_price(req_id, 4, t.price, t.size), enc.tick_size(req_id, 5, t.size),
            enc.tick_string(req_id, 45, str(int(t.ts.timestamp())))]


def imbalance_ticks(req_id: int, a: AuctionImbalance) -> list[bytes]:
    """Generic tick 225: auction volume (paired), price, imbalance, and the regulatory imbalance."""
    return [enc.tick_size(req_id, 34, a.paired), enc.tick_price(req_id, 35, a.indicative_price),
            enc.tick_size(req_id, 36, a.imbalance), enc.tick_size(req_id, 61, a.imbalance)]


def option_ticks(req_id: int, q: OptionQuote, spot: float) -> list[bytes]:
    """An option's bid/ask/last plus IB's bid, ask and model computations (IV and greeks)."""
    out = [enc.tick_price(req_id, 1, q.bid, OPTION_SIZE), enc.tick_size(req_id, 0, OPTION_SIZE),
           enc.tick_price(req_id, 2, q.ask, OPTION_SIZE), enc.tick_size(req_id, 3, OPTION_SIZE)]
    if q.last > 0:
        out.append(enc.tick_price(req_id, 4, q.last, 1.0))
    out.append(enc.tick_size(req_id, 8, float(q.volume)))
    mid = round(0.5 * (q.bid + q.ask), 4)
    for tick_type, price in ((10, q.bid), (11, q.ask), (13, mid)):
        out.append(enc.tick_option_computation(req_id, tick_type, q.iv, q.delta, price, 0.0, q.gamma, q.vega,
                                               q.theta, spot))
    return out


@dataclass(frozen=True, slots=True)
class ChainStats:
    """What an underlying's option chain says at one moment (generic ticks 100, 101, 106)."""

    call_volume: int
    put_volume: int
    call_open_interest: int
    put_open_interest: int
    implied_vol: float | None


@dataclass(frozen=True, slots=True)
class UnderlyingStats:
    """The figures behind an underlying's generic ticks; None where not asked for or not known."""

    chain: ChainStats | None = None
    hist_vol: float | None = None


def atm_implied_vol(chain: Sequence[OptionQuote], spot: float, today: date, days: int = VOL_DAYS) -> float | None:
    """``days``-calendar-day at-the-money IV: per expiry the mean call/put IV at the strike nearest
    ``spot``, interpolated linearly in total variance between the expiries around ``days`` (the
    nearest one's IV when all lie on one side). None for an empty chain."""
    by_expiry: dict[date, list[OptionQuote]] = {}
    for q in chain:
        if (q.contract.expiry - today).days > 0:
            by_expiry.setdefault(q.contract.expiry, []).append(q)
    atm: list[tuple[int, float]] = []
    for expiry, quotes in sorted(by_expiry.items()):
        strike = min({q.contract.strike for q in quotes}, key=lambda k: abs(k - spot))
        ivs = [q.iv for q in quotes if q.contract.strike == strike and q.iv > 0]
        if ivs:
            atm.append(((expiry - today).days, sum(ivs) / len(ivs)))
    if not atm:
        return None
    below = [(d, iv) for d, iv in atm if d <= days]
    above = [(d, iv) for d, iv in atm if d >= days]
    if not above:
        return below[-1][1]
    if not below:
        return above[0][1]
    (d1, iv1), (d2, iv2) = below[-1], above[0]
    if d1 == d2:
        return iv1
    w = iv1 * iv1 * d1 + (iv2 * iv2 * d2 - iv1 * iv1 * d1) * (days - d1) / (d2 - d1)
    return math.sqrt(w / days)


def chain_stats(chain: Sequence[OptionQuote], spot: float, today: date) -> ChainStats:
    """Call/put volume and open interest summed over ``chain``, and its 30-day ATM IV."""
    cv = pv = coi = poi = 0
    for q in chain:
        if q.contract.right == "C":
            cv, coi = cv + q.volume, coi + q.open_interest
        else:
            pv, poi = pv + q.volume, poi + q.open_interest
    iv = atm_implied_vol(chain, spot, today)
    return ChainStats(cv, pv, coi, poi, None if iv is None else round(iv, 6))


def daily_closes(minute_bars: Sequence[Bar]) -> list[float]:
    """The last close of each New York day in ``minute_bars`` (oldest first)."""
    closes: dict[date, float] = {}
    for b in minute_bars:
        closes[b.ts.astimezone(NEW_YORK).date()] = b.close
    return [closes[d] for d in sorted(closes)]


def historical_vol(closes: Sequence[float]) -> float | None:
    """Annualised close-to-close volatility (sample stdev of log returns × √252); None below 2 returns."""
    rets = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]
    if len(rets) < 2:
        return None
    return round(statistics.stdev(rets) * math.sqrt(TRADING_DAYS), 6)


def underlying_ticks(req_id: int, generic: frozenset[int], new: UnderlyingStats,
                     old: UnderlyingStats | None) -> list[bytes]:
    """The generic-tick answers (100, 101, 104, 106) among ``generic`` whose value differs from ``old``."""
    def values(st: UnderlyingStats | None) -> dict[int, float]:
        """tick type → value (sizes and generic ticks share no tick type)."""
        out: dict[int, float] = {}
        c = None if st is None else st.chain
        if c is not None and GENERIC_OPTION_VOLUME in generic:
            out[CALL_VOLUME], out[PUT_VOLUME] = c.call_volume, c.put_volume
        if c is not None and GENERIC_OPTION_OPEN_INTEREST in generic:
            out[CALL_OPEN_INTEREST], out[PUT_OPEN_INTEREST] = c.call_open_interest, c.put_open_interest
        if st is not None and st.hist_vol is not None and GENERIC_HIST_VOL in generic:
            out[HIST_VOLATILITY] = st.hist_vol
        if c is not None and c.implied_vol is not None and GENERIC_IMPLIED_VOL in generic:
            out[IMPLIED_VOLATILITY] = c.implied_vol
        return out

    before = values(old)
    return [enc.tick_generic(req_id, t, value) if t in (HIST_VOLATILITY, IMPLIED_VOLATILITY)
            else enc.tick_size(req_id, t, float(value))
            for t, value in values(new).items() if before.get(t) != value]


def bar_frame(req_id: int, bar: FiveSecondBar) -> bytes:
    """One realtimeBar message (msg 50) for ``req_id``."""
    return enc.realtime_bar(req_id, bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count)


class BarBuilder:
    """5-second TRADES bars of one symbol, aligned to epoch multiples of 5 s of simulated time.

    A bar is complete once simulated time reaches its end; an interval without prints repeats the
    last close with zero volume (as IB does), unless nothing has printed yet.
    """

    def __init__(self) -> None:
        self.start: int | None = None
        self._ohlc: list[float] = []
        self._volume = 0.0
        self._pv = 0.0
        self._count = 0
        self.last_close: float | None = None

    def add(self, epoch: float, price: float, size: float) -> list[FiveSecondBar]:
        bucket = int(epoch // BAR_SECONDS) * BAR_SECONDS
        done = self.close_through(bucket)
        if self.start is None:
            self.start = bucket
        if not self._ohlc:
            self._ohlc = [price, price, price, price]
        o = self._ohlc
        o[1], o[2], o[3] = max(o[1], price), min(o[2], price), price
        self._volume += size
        self._pv += price * size
        self._count += 1
        return done

    def close_through(self, epoch: float) -> list[FiveSecondBar]:
        """Every bar that ended at or before ``epoch``."""
        if self.start is None:
            self.start = int(epoch // BAR_SECONDS) * BAR_SECONDS
            return []
        out: list[FiveSecondBar] = []
        if epoch - self.start > MAX_EMPTY_GAP_S and not self._ohlc:
            self.start = int(epoch // BAR_SECONDS) * BAR_SECONDS
        while self.start + BAR_SECONDS <= epoch:
            bar = self._finish()
            if bar is not None:
                out.append(bar)
            self.start += BAR_SECONDS
        return out

    def _finish(self) -> FiveSecondBar | None:
        assert self.start is not None
        if self._ohlc:
            o, h, lo, c = self._ohlc
            wap = self._pv / self._volume if self._volume else c
            bar = FiveSecondBar(self.start, o, h, lo, c, self._volume, round(wap, 4), self._count)
        elif self.last_close is not None and math.isfinite(self.last_close):
            c = self.last_close
            bar = FiveSecondBar(self.start, c, c, c, c, 0.0, c, 0)
        else:
            return None
        self.last_close = bar.close
        self._ohlc, self._volume, self._pv, self._count = [], 0.0, 0.0, 0
        return bar
