"""One `qc risk` cycle: positions and market → live exposure → breakers → latches → verdicts on new signals.

Every cycle (``QC_RISK_INTERVAL_S``, 1 s by default):

1. Read the open positions, each underlying's quote, positioning, VPIN and chain, and the signals
   published since the last cycle (``inputs.py``).
2. Price the positions with qc's own Greeks at the live spot (``qc.risk.exposure``) and publish the
   exposure snapshot (marks, P&L, dollar Greeks, limit usage) for `qc execute`, the dashboard and
   `qc risk status`. Today's P&L high-water mark is kept in Redis so a restart keeps the drawdown.
3. Run the breakers (account: loss, drawdown, rejects, IB down, Redis restarted; per underlying:
   zero gamma, VPIN) and move the latches (``latches.py``): clears first, then trips, so a scope
   held by two conditions never reads ACTIVE between cycles when one of them ends.
4. Judge each new signal with the pre-trade check as one contract (100 shares for MOC) against the
   live exposure and the states just latched, and publish the verdict. Quote freshness and the
   price band are left to `qc execute`, which prices the order on IB's live quote and runs the
   whole check again before it sends anything: the chain's quotes risk sees are minutes old.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from qc.core import clock, keys
from qc.core.order_ref import OrderRef
from qc.risk import pretrade
from qc.risk.breakers import (
    ACCOUNT,
    BreakerLimits,
    Clear,
    Trip,
    account_breakers,
    account_readings,
    broker_breaker,
    redis_breaker,
    side_of_flip,
    underlying_readings,
    vpin_breaker,
    zero_gamma_breaker,
)
from qc.risk.codec import RiskVerdict, readings_to_redis
from qc.risk.cycle import latches
from qc.risk.cycle.inputs import RiskInputs
from qc.risk.exposure import PortfolioExposure, portfolio_exposure
from qc.risk.market import UnderlyingInputs
from qc.risk.market import snapshot as market_snapshot
from qc.risk.model import Bucket, ContractKey, Limits, MarketSnapshot, OrderIntent, Portfolio, Verdict
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import ExposureSnapshot, build_snapshot, snapshot_to_redis
from qc.risk.state import Latch, clear, escalate
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)

NAME = "risk"
VERDICTS_MAXLEN = 1000
VERDICT_CHECKS: tuple[pretrade.Check, ...] = tuple(
    c for c in pretrade.CHECKS if c not in (pretrade.fresh_quotes, pretrade.price_band))
_BUCKETS: dict[str, Bucket] = {"0dte": "0dte", "1dte": "1dte", "14dte": "14dte"}


def signal_contract(signal: Signal) -> ContractKey:
    c = signal.contract
    if c.sec_type == "STK":
        return ContractKey(c.symbol, "STK", multiplier=1)
    return ContractKey(c.symbol, "OPT", c.expiry, c.strike, c.right, c.multiplier)


def signal_intent(signal: Signal) -> OrderIntent:
    """The smallest order a signal stands for: one contract, or 100 shares for MOC."""
    key = signal_contract(signal)
    return OrderIntent(key, signal.side, 1 if key.sec_type == "OPT" else 100, signal.limit,
                       _BUCKETS.get(signal.strategy, "other"), str(OrderRef(signal.id, "entry")),
                       messages=3)


def verdict_json(signal: Signal, verdict: Verdict, now: datetime) -> str:
    return RiskVerdict(signal.id, signal.symbol, signal.strategy, verdict.approved, tuple(verdict.codes),
                       tuple(str(r) for r in verdict.reasons), now).to_redis()


class RiskCycle:
    """The worker's cycle: called with the clock's ``now``; keeps breaker memory between calls."""

    def __init__(self, store: Store, account: str, symbols: Sequence[str], limits: Limits,
                 breaker_limits: BreakerLimits) -> None:
        self.store, self.account, self.symbols = store, account, tuple(symbols)
        self.limits, self.breaker_limits = limits, breaker_limits
        self.inputs = RiskInputs(store, account)
        regime = store.hgetall(keys.risk_regime(account))
        self.sides: dict[str, int] = {s: int(v) for s, v in regime.items() if v in ("1", "-1")}
        self.last: ExposureSnapshot | None = None
        self._unreadable_counted = 0
        self.redis_ids: frozenset[str] = frozenset()  # the Redis servers' (Store.server_ids), as last seen
        self.broker_seen_up = False

    def __call__(self, now: datetime) -> None:
        records = self.inputs.positions()
        signals = self.inputs.new_signals(self.symbols)
        underlyings = set(self.symbols) | {r.position.contract.underlying for r in records}
        inputs = self.inputs.underlyings(underlyings)
        candidates = [signal_contract(s) for s in signals]
        market = market_snapshot(inputs, [*(r.position.contract for r in records), *candidates], now)
        exposure = portfolio_exposure([r.position for r in records], market, now, extra=candidates)
        day = clock.new_york_date(now).isoformat()
        hwm_key = keys.risk_pnl_high_water(self.account)
        high_water = self._high_water(self.store.hget(hwm_key, day))
        states = latches.load(self.store, self.account)
        snap = build_snapshot(records, market, exposure, self.limits, high_water,
                              {scope: latch.state.name for scope, latch in states.items()}, now)
        if snap.pnl_high_water_usd != high_water:
            self.store.hset(hwm_key, {day: repr(snap.pnl_high_water_usd)})

        changes = self._breakers(snap, inputs, market, now)
        self._apply([c for c in changes if isinstance(c, Clear)], now)
        self._apply([c for c in changes if isinstance(c, Trip)], now)

        self.store.set(keys.risk_exposure(self.account), snapshot_to_redis(snap))
        self.last = snap
        if signals:
            self._judge(signals, records, snap, market, exposure, now)
        if self.inputs.unreadable > self._unreadable_counted:  # logged where found; counted for `qc status`
            self.store.hincrby(keys.worker_errors(), NAME, self.inputs.unreadable - self._unreadable_counted)
            self._unreadable_counted = self.inputs.unreadable

    def _high_water(self, raw: str | None) -> float:
        """Today's stored P&L high-water mark; 0 before the first (P&L starts at 0), and for garbage (logged)."""
        if raw is None:
            return 0.0
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.inputs.unreadable += 1
            log.error("P&L high-water mark unreadable (%.40r): restarted from today's P&L", raw)
            return 0.0
        return value

    def _breakers(self, snap: ExposureSnapshot, inputs: Mapping[str, UnderlyingInputs], market: MarketSnapshot,
                  now: datetime) -> list[Trip | Clear]:
        """Every breaker's verdict this cycle; their readings are published for `qc risk status`."""
        limits = self.breaker_limits
        connected = self.inputs.broker_connected()
        self.broker_seen_up = self.broker_seen_up or connected is True
        # a disconnect, not a stack still connecting: until IB was seen up once nothing is reported
        changes: list[Trip | Clear | None] = [broker_breaker(connected if self.broker_seen_up else None),
                                              self._redis_check()]
        rejects = self.inputs.reject_times(now - timedelta(minutes=limits.rejects_window_min))
        changes += account_breakers(snap.pnl_today_usd, snap.pnl_high_water_usd, snap.pnl_today_usd, rejects, now,
                                    limits)
        readings = account_readings(snap.pnl_today_usd, snap.drawdown_usd, len(rejects), connected, limits)
        for sym in self.symbols:
            got, und = inputs[sym], market.underlyings.get(sym)
            zero_gamma = got.zero_gamma
            if und is not None and zero_gamma is not None:
                changes.append(zero_gamma_breaker(sym, self.sides.get(sym, 0), und.spot, zero_gamma, limits))
                side = side_of_flip(und.spot, zero_gamma)
                if side and side != self.sides.get(sym):
                    self.sides[sym] = side
                    self.store.hset(keys.risk_regime(self.account), {sym: str(side)})
            changes.append(vpin_breaker(sym, got.vpin_value, limits))
            readings += underlying_readings(sym, None if und is None else und.spot, zero_gamma, got.vpin_value, limits)
        self.store.set(keys.risk_breaker_readings(self.account), readings_to_redis(readings))
        return [c for c in changes if c is not None]

    def _redis_check(self) -> Trip | None:
        """Trip when the server (any primary of a Cluster) differs from the one this worker saw last (a restart
        or a failover under a running stack; a whole-stack start is the executor's startup reconciliation)."""
        seen, now = self.redis_ids, self.store.server_ids()
        self.redis_ids = now
        if not seen or seen == now:
            return None
        return redis_breaker(",".join(sorted(seen - now)) or "-", ",".join(sorted(now - seen)) or "-")

    def _apply(self, changes: Sequence[Trip | Clear], now: datetime) -> None:
        for change in changes:
            scope = latches.ACCOUNT_SCOPE if change.scope == ACCOUNT else change.scope
            if isinstance(change, Trip):
                trip = change

                def raise_to(current: Latch, t: Trip = trip) -> Latch:
                    return escalate(current, t.state, t.cause, f"breaker:{t.cause}", t.context, now)

                latches.update(self.store, self.account, scope, raise_to, now)
            else:
                done = change

                def lift(current: Latch, c: Clear = done) -> Latch:
                    return clear(current, c.cause, now)

                latches.update(self.store, self.account, scope, lift, now)

    def _judge(self, signals: Sequence[Signal], records: Sequence[PositionRecord], snap: ExposureSnapshot,
               market: MarketSnapshot, exposure: PortfolioExposure, now: datetime) -> None:
        states = latches.load(self.store, self.account)
        account_state = states.get(latches.ACCOUNT_SCOPE, Latch()).state
        portfolio = Portfolio(
            positions=tuple(r.position for r in records),
            realised_pnl_today_usd=snap.realised_today_usd, unrealised_pnl_today_usd=snap.unrealised_usd,
            equity_usd=snap.pnl_today_usd, equity_high_water_usd=snap.pnl_high_water_usd,
            account_state=account_state,
            underlying_states={s: latch.state for s, latch in states.items() if s != latches.ACCOUNT_SCOPE})
        pipe = self.store.client.pipeline(transaction=False)
        stream = keys.risk_verdicts()
        for signal in signals:
            try:
                intent = signal_intent(signal)
            except ValueError as exc:  # a signal no order can be built from (a zero limit): named, counted
                self.inputs.unreadable += 1
                log.error("signal %s %s: no order can be built from it: %s", signal.id, signal.symbol, exc)
                continue
            verdict = pretrade.check(intent, portfolio, market, self.limits, now, exposure=exposure,
                                     checks=VERDICT_CHECKS)
            doc = verdict_json(signal, verdict, now)
            key = keys.risk_verdict(signal.id)
            pipe.set(key.name, doc, ex=key.ttl_s)
            pipe.xadd(stream.name, {"verdict": doc}, maxlen=VERDICTS_MAXLEN, approximate=True)
            log.log(logging.INFO if verdict.approved else logging.WARNING, "signal %s %s: %s", signal.id,
                    signal.symbol, verdict)
        if stream.ttl_s:
            pipe.expire(stream.name, stream.ttl_s)
        pipe.execute()

