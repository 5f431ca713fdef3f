"""The pre-trade check as the executor runs it: `qc risk`'s checks on IB's live quote, the latched states, the book.

Every intent passes ``qc.risk.pretrade.check`` (all checks, including quote freshness and the price
band that `qc risk`'s own verdicts leave to the executor) with:

- the order: the intent's contract, side, quantity and limit, as a 3-message bracket;
- the market: spots, ages and chains as `qc risk` reads them (``RiskInputs``, refreshed by
  :meth:`Pricing.refresh` off the order path, every second), with the instrument's quote replaced
  by IB's live bid/ask and its age;
- the portfolio: positions from Redis, working orders and messages per second from the executor's
  memory, today's P&L from `qc risk`'s exposure snapshot, and the latched trading states.

Without a live quote the check sees none and refuses with STALE_QUOTE: qc never prices an order on
the chain's minutes-old quotes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from qc.core import keys
from qc.execute.model import Intent
from qc.ingest.codec import OptionChain, Quote
from qc.risk import pretrade
from qc.risk.cycle import latches
from qc.risk.cycle.inputs import RiskInputs
from qc.risk.exposure import portfolio_exposure
from qc.risk.market import UnderlyingInputs
from qc.risk.market import snapshot as market_snapshot
from qc.risk.model import ContractKey, ContractQuote, Limits, MarketSnapshot, OrderIntent, Portfolio, Side, Verdict
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import ExposureSnapshot, snapshot_from_redis
from qc.risk.state import Latch
from qc.runtime.store import Store

log = logging.getLogger(__name__)
RowKey = tuple[date | None, str | None, float | None]  # (expiry, right, strike) of a chain row


class Pricing:
    """Holds the slowly changing inputs (underlyings, chains, P&L) between checks."""

    def __init__(self, store: Store, account: str, symbols: Sequence[str], limits: Limits) -> None:
        self.store, self.account, self.symbols, self.limits = store, account, tuple(symbols), limits
        self.inputs = RiskInputs(store, account)
        self.underlyings: Mapping[str, UnderlyingInputs] = {}
        self.exposure: ExposureSnapshot | None = None
        self._base: tuple[MarketSnapshot, datetime | None] = (MarketSnapshot(), None)  # spots and ages, as of
        self._rows: dict[str, tuple[OptionChain, dict[RowKey, ContractQuote]]] = {}

    def refresh(self, now: datetime, extra_symbols: Sequence[str] = ()) -> bool:
        """Re-read spots, positioning, VPIN, chains (decoded only when changed), the exposure snapshot and
        index each chain's quotes by contract once per decoded chain.

        May run in another thread than :meth:`check`: it builds every value first and then replaces each
        attribute in one assignment, so a check sees either the old or the new value, never half of one.
        True when a chain was decoded anew (a burst of long-lived objects).
        """
        underlyings = self.inputs.underlyings({*self.symbols, *extra_symbols})
        key = keys.risk_exposure(self.account)
        got = snapshot_from_redis(self.store.get(key), key=key.name)
        rows = dict(self._rows)
        fresh = False
        for symbol, inputs in underlyings.items():
            chain = inputs.chain
            if not isinstance(chain, OptionChain):
                rows.pop(symbol, None)
            elif symbol not in rows or rows[symbol][0] is not chain:
                fresh = True
                rows[symbol] = (chain, {(r.expiry, r.right, r.strike): ContractQuote(r.bid, r.ask, r.mark, r.iv, 0.0)
                                        for r in chain.rows})
        self.underlyings = underlyings
        self.exposure = got if isinstance(got, ExposureSnapshot) else None
        self._rows = rows
        self._base = (market_snapshot(underlyings, (), now), now)
        return fresh

    def market(self, contracts: Sequence[ContractKey], now: datetime, spot_of: str = "") -> MarketSnapshot:
        """What ``risk.market.snapshot`` gives, from the last refresh with every age carried forward to ``now``;
        ``spot_of``'s spot is read from Redis now (its freshness is a 10-s check: a carried age would not do)."""
        base, base_at = self._base
        dt = 0.0 if base_at is None else max(0.0, (now - base_at).total_seconds())
        underlyings = {s: replace(u, spot_age_s=u.spot_age_s + dt, analytics_age_s=u.analytics_age_s + dt,
                                  chain_age_s=u.chain_age_s + dt) for s, u in base.underlyings.items()}
        if spot_of:
            quote_key = keys.quote(spot_of)
            quote = Quote.from_redis(self.store.hgetall(quote_key) or None, key=quote_key.name)
            und_now = underlyings.get(spot_of)
            if isinstance(quote, Quote) and und_now is not None and quote.spot is not None and quote.spot > 0:
                underlyings[spot_of] = replace(und_now, spot=quote.spot, spot_age_s=quote.age_s(now.timestamp()))
        quotes: dict[ContractKey, ContractQuote] = {}
        rows = self._rows
        for key in contracts:
            if key.sec_type != "OPT" or key.underlying not in rows:
                continue
            row = rows[key.underlying][1].get((key.expiry, key.right, key.strike))
            und = underlyings.get(key.underlying)
            if row is not None:
                quotes[key] = replace(row, age_s=und.chain_age_s if und is not None else math.inf)
        return MarketSnapshot(underlyings, quotes)

    def check(self, intent: Intent, quote: tuple[float, float, float] | None, positions: Sequence[PositionRecord],
              open_orders: Mapping[tuple[str, str], int], msgs_last_s: int, now: datetime) -> Verdict:
        order = OrderIntent(intent.contract, intent.side, intent.quantity, intent.limit, intent.bucket,
                            f"qc:{intent.id}:entry:0", messages=3)
        held = [r.position for r in positions]
        market = with_live_quote(self.market([intent.contract, *(p.contract for p in held)], now, intent.symbol),
                                 intent, quote)
        exposure = portfolio_exposure(held, market, now, extra=[intent.contract])
        states = latches.load(self.store, self.account)  # read now: a halt must never wait for a refresh
        snap = self.exposure
        portfolio = Portfolio(
            positions=tuple(held),
            open_orders={(u, _side(s)): n for (u, s), n in open_orders.items()},
            msgs_last_s=msgs_last_s,
            realised_pnl_today_usd=snap.realised_today_usd if snap else sum(r.realised_today_usd for r in positions),
            unrealised_pnl_today_usd=snap.unrealised_usd if snap else 0.0,
            equity_usd=snap.pnl_today_usd if snap else 0.0,
            equity_high_water_usd=snap.pnl_high_water_usd if snap else 0.0,
            account_state=states.get(latches.ACCOUNT_SCOPE, Latch()).state,
            underlying_states={s: latch.state for s, latch in states.items() if s != latches.ACCOUNT_SCOPE})
        return pretrade.check(order, portfolio, market, self.limits, now, exposure=exposure)


def with_live_quote(market: MarketSnapshot, intent: Intent, quote: tuple[float, float, float] | None) -> MarketSnapshot:
    """The snapshot with the instrument's quote replaced by IB's (or removed when IB gave none)."""
    quotes = dict(market.quotes)
    chain_quote = quotes.pop(intent.contract, None)
    if quote is not None:
        bid, ask, age = quote
        quotes[intent.contract] = ContractQuote(bid, ask, (bid + ask) / 2.0,
                                                chain_quote.iv if chain_quote else None, age)
    return replace(market, quotes=quotes)


def _side(raw: str) -> Side:
    return "BUY" if raw == "BUY" else "SELL"
