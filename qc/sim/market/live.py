"""The live process of one symbol, generated one simulated second at a time.

Each second draws everything it needs at once from its own stream, keyed by (seed, symbol, session
day, second of session), then runs a short loop that turns the draws into book operations, prints
and quotes in time order. Tick moves are Poisson with intensity set by the U-shaped profile, the
regime (volatile doubles the per-second vol) and the vol parameter; a move is a sweep (an aggressor
takes the front level) or a fade (the front level is pulled). Informed-flow bursts tilt both the
moves (drift) and the aggressor side of prints (one-sided flow), which is what raises VPIN. The
rest of the depth budget is in-place refreshes of sizes and venues, front-weighted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from qc.core import clock
from qc.sim.market import underlying as und
from qc.sim.market.book import Ladder
from qc.sim.market.events import ASK, BID, ImbalanceEvent, MarketEvent, QuoteEvent
from qc.sim.market.models import AuctionImbalance
from qc.sim.market.params import VENUES, SimParams, UnderlyingParams, rng_for

CHUNK, AUCTION = 6, 9
AUCTION_WINDOW_S = 600
SWEEP_SHARE, BURST_SWEEP_SHARE = 0.3, 0.9  # in a burst: moves with the flow are sweeps, against it fades
BURST_BUY_TILT = 0.4  # aggressor P(buy) = 0.5 ± tilt during a burst
BURST_DRIFT = 0.25  # burst drift per second, in units of the per-second tick vol
_POS_WEIGHTS = 1.0 / (1.0 + np.arange(64)) ** 0.7


@dataclass(frozen=True)
class DayPlan:
    session: clock.Session
    regimes: npt.NDArray[np.bool_]
    bursts: tuple[und.Burst, ...]
    tick_vol: float  # per-second std of the mid in ticks at profile 1, calm
    imbalance_base: float


class LiveSymbol:
    """One symbol's live state: the ladder, the current session's plan and injected bursts."""

    def __init__(self, params: SimParams, symbol: str) -> None:
        self.params, self.symbol = params, symbol
        self.up: UnderlyingParams = params.underlying(symbol)
        self.ladder = Ladder(symbol, self.up.tick, params.book_levels)
        self.plan: DayPlan | None = None
        self.injected: list[und.Burst] = []
        self.jumps: list[float] = []  # pending gap moves (fractions of mid), applied at the next second
        self.prints: list[tuple[float, float]] = []  # (price, size) of this second, for the bars

    def _plan(self, s: clock.Session) -> DayPlan:
        seed, up = self.params.seed, self.up
        n_sec = (s.close - s.open).total_seconds()
        ref = und.reference_price(seed, self.symbol, up, s.day)
        tick_vol = ref * und.daily_vol(up) / up.tick / math.sqrt(n_sec)
        base = float(rng_for(seed, self.symbol, AUCTION, s.day.toordinal()).standard_normal())
        imbalance = base * 0.3 * up.trade_rate_hz * up.avg_trade_size * 60.0
        return DayPlan(s, und.regime_schedule(seed, self.symbol, s.day, und.session_minutes(s)),
                       tuple(und.burst_schedule(seed, self.symbol, self.params, s)), tick_vol, imbalance)

    def burst_direction(self, t: datetime) -> int:
        assert self.plan is not None
        for b in (*self.plan.bursts, *self.injected):
            if b.start <= t < b.end:
                return b.direction
        return 0

    def second(self, t0: datetime, s: clock.Session, out: list[MarketEvent]) -> None:
        """Generate the events of [t0, t0 + 1 s), t0 whole-second and inside session ``s``."""
        self.advance(self.begin_second(t0, s, out), out, None)

    def begin_second(self, t0: datetime, s: clock.Session, out: list[MarketEvent]) -> SecondWork:
        """Draw everything second ``t0`` needs (the session's opening events go to ``out`` now); ``advance``
        turns the draws into events. Splitting the two lets the simulator spread a busy second's
        Python work over its pump ticks instead of stalling the feed for tens of milliseconds."""
        i = int((t0 - s.open).total_seconds())
        rng = rng_for(self.params.seed, self.symbol, CHUNK, s.day.toordinal(), i)
        if self.plan is None or self.plan.session != s:
            self.plan = self._plan(s)
            self._open_book(t0, s, rng, out)
        if self.jumps:
            self._jump(t0, out)
        if (s.close - t0).total_seconds() <= AUCTION_WINDOW_S and i % self.params.imbalance_every_s == 0:
            out.append(self._imbalance(t0, s, rng))
        return SecondWork(t0, self._draw(t0, s, i, rng))

    def _jump(self, t0: datetime, out: list[MarketEvent]) -> None:
        """Gap the whole ladder by the pending moves at once (news, a halt reopening): sizes and venues kept."""
        factor = math.prod(1.0 + f for f in self.jumps)
        self.jumps.clear()
        lad = self.ladder
        sizes = [*lad.sz[BID], *lad.sz[ASK]]
        venues = [*lad.venue[BID], *lad.venue[ASK]]
        lad.open_at(t0, lad.mid() * factor, sizes, venues, out)
        out.append(QuoteEvent(self.symbol, lad.quote(t0)))

    def advance(self, work: SecondWork, out: list[MarketEvent], budget: int | None) -> int:
        """Turn up to ``budget`` more draws of ``work`` into events (None: all); how many were turned."""
        order = work.draws.order
        end = len(order) if budget is None else min(len(order), work.done + max(budget, 0))
        self._apply(work.t0, work.draws, order[work.done:end], out)
        turned, work.done = end - work.done, end
        return turned

    def _open_book(self, t0: datetime, s: clock.Session, rng: np.random.Generator, out: list[MarketEvent]) -> None:
        up, seed = self.up, self.params.seed
        if t0 == s.open:
            price = und.reference_price(seed, self.symbol, up, s.day)
        else:
            price = float(und.minute_path(seed, self.symbol, up, s).open[int((t0 - s.open).total_seconds() // 60)])
        n = self.params.book_levels
        depth = np.tile(300.0 + 150.0 * np.arange(n), 2)
        sizes = np.round(depth * rng.lognormal(0.0, 0.5, 2 * n)).tolist()
        venues = [VENUES[v] for v in rng.integers(0, len(VENUES), 2 * n).tolist()]
        self.ladder.reset_session(price)
        self.ladder.open_at(t0, price, sizes, venues, out)

    def _imbalance(self, t0: datetime, s: clock.Session, rng: np.random.Generator) -> ImbalanceEvent:
        assert self.plan is not None
        left = (s.close - t0).total_seconds() / AUCTION_WINDOW_S
        base = self.plan.imbalance_base
        imb = round((base * (0.6 + 0.4 * left) + 0.1 * abs(base) * rng.standard_normal()) / 100.0) * 100.0
        paired = round(abs(base) * (3.0 + 7.0 * (1.0 - left)) / 100.0) * 100.0
        ticks = (1 + int(2 * abs(rng.standard_normal()))) * (1 if imb >= 0 else -1)
        price = round(self.ladder.mid() + ticks * self.up.tick, 2)
        return ImbalanceEvent(self.symbol, AuctionImbalance(t0, imb, paired, price))

    def _intensities(self, t0: datetime, s: clock.Session, i: int, direction: int) -> tuple[float, float]:
        assert self.plan is not None
        x = np.array([(i + 0.5) / (s.close - s.open).total_seconds()])
        u = float(und.intraday_profile(x)[0])
        volatile = bool(self.plan.regimes[min(i // 60, self.plan.regimes.size - 1)])
        vol = self.plan.tick_vol * math.sqrt(u) * (und.VOLATILE_VOL_MULT if volatile else 1.0)
        trades = self.up.trade_rate_hz * u * (und.VOLATILE_RATE_MULT if volatile else 1.0)
        return vol, trades * (2.0 if direction else 1.0)

    def _draw(self, t0: datetime, s: clock.Session, i: int, rng: np.random.Generator) -> _Draws:
        direction = self.burst_direction(t0)
        vol, trade_rate = self._intensities(t0, s, i, direction)
        lam_move = vol * vol
        p_up = 0.5 + direction * min(0.4, BURST_DRIFT / (2.0 * vol))
        n_mv, n_tr = int(rng.poisson(lam_move)), int(rng.poisson(trade_rate))
        n_fill = max(0, int(rng.poisson(self.params.depth_rate_hz)) - 4 * n_mv - n_tr)
        return _Draws(rng, n_mv, n_tr, n_fill, p_up, direction, self.up.avg_trade_size, self.params.book_levels)

    def _apply(self, t0: datetime, d: _Draws, ks: list[int], out: list[MarketEvent]) -> None:
        lad, n_mv, n_mt = self.ladder, d.n_mv, d.n_mv + d.n_tr
        for k in ks:
            ts = t0 + timedelta(microseconds=d.us[k])
            if k < n_mv:
                sizes, venues = (d.front[k], d.back[k]), (VENUES[d.venue_a[k]], VENUES[d.venue_b[k]])
                if d.sweep[k]:
                    lad.sweep(ts, d.up[k], sizes, venues, out)
                    self.prints.append((lad.last, lad.last_size))
                else:
                    lad.shift(ts, d.up[k], sizes, venues, out)
            elif k < n_mt:
                j = k - n_mv
                lad.trade(ts, d.side[j], d.size[j], d.refill[j], out)
                self.prints.append((lad.last, lad.last_size))
            else:
                j = k - n_mt
                lad.update(ts, d.fill_side[j], d.fill_pos[j], d.fill_size[j], VENUES[d.fill_venue[j]], out)


@dataclass
class SecondWork:
    """One symbol-second in the making: its draws, and how many of them are already events."""

    t0: datetime
    draws: _Draws
    done: int = 0

    @property
    def finished(self) -> bool:
        return self.done == len(self.draws.order)


class _Draws:
    """Every random number one second needs, drawn at once and turned into Python lists."""

    def __init__(self, rng: np.random.Generator, n_mv: int, n_tr: int, n_fill: int, p_up: float,
                 direction: int, avg_size: float, levels: int) -> None:
        self.n_mv, self.n_tr = n_mv, n_tr
        us = rng.integers(0, 1_000_000, n_mv + n_tr + n_fill)
        self.us: list[int] = us.tolist()
        self.order: list[int] = np.argsort(us, kind="stable").tolist()
        self.up: list[bool] = (rng.random(n_mv) < p_up).tolist()
        with_flow = np.asarray(self.up) == (direction > 0)
        share = np.where(with_flow, BURST_SWEEP_SHARE, 1.0 - BURST_SWEEP_SHARE) if direction else SWEEP_SHARE
        self.sweep: list[bool] = (rng.random(n_mv) < share).tolist()
        self.front: list[float] = np.round(300.0 * rng.lognormal(0.0, 0.5, n_mv)).tolist()
        self.back: list[float] = np.round((300.0 + 150.0 * levels) * rng.lognormal(0.0, 0.5, n_mv)).tolist()
        self.venue_a: list[int] = rng.integers(0, len(VENUES), n_mv).tolist()
        self.venue_b: list[int] = rng.integers(0, len(VENUES), n_mv).tolist()
        p_buy = 0.5 + BURST_BUY_TILT * direction
        self.side: list[int] = np.where(rng.random(n_tr) < p_buy, 1, -1).tolist()
        self.size: list[float] = np.maximum(1.0, np.round(rng.lognormal(math.log(avg_size) - 0.32, 0.8, n_tr))).tolist()
        self.refill: list[float] = np.round(300.0 * rng.lognormal(0.0, 0.5, n_tr) + 100.0).tolist()
        self.fill_side: list[int] = rng.integers(0, 2, n_fill).tolist()
        w = _POS_WEIGHTS[:levels] / _POS_WEIGHTS[:levels].sum()
        pos = rng.choice(levels, n_fill, p=w)
        self.fill_pos: list[int] = pos.tolist()
        self.fill_size: list[float] = np.round((300.0 + 150.0 * pos) * rng.lognormal(0.0, 0.6, n_fill) + 1.0).tolist()
        self.fill_venue: list[int] = rng.integers(0, len(VENUES), n_fill).tolist()
