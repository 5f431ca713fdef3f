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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from qc.core import keys
from qc.execute.model import Intent
from qc.risk import pretrade
from qc.risk.cycle import latches
from qc.risk.cycle.inputs import RiskInputs
from qc.risk.exposure import portfolio_exposure
from qc.risk.market import UnderlyingInputs
from qc.risk.market import snapshot as market_snapshot
from qc.risk.model import ContractQuote, Limits, MarketSnapshot, OrderIntent, Portfolio, Side, Verdict
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import ExposureSnapshot, snapshot_from_redis
from qc.risk.state import Latch
from qc.runtime.store import Store

log = logging.getLogger(__name__)


class Pricing:
    """Holds the slowly changing inputs (underlyings, chains, P&L) between checks."""

    def __init__(self, store: Store, account: str, symbols: Sequence[str], limits: Limits) -> None:
        self.store, self.account, self.symbols, self.limits = store, account, tuple(symbols), limits
        self.inputs = RiskInputs(store, account)
        self.underlyings: Mapping[str, UnderlyingInputs] = {}
        self.exposure: ExposureSnapshot | None = None

    def refresh(self, extra_symbols: Sequence[str] = ()) -> None:
        """Re-read spots, positioning, VPIN, chains (decoded only when changed) and the exposure snapshot."""
        self.underlyings = self.inputs.underlyings({*self.symbols, *extra_symbols})
        key = keys.risk_exposure(self.account)
        got = snapshot_from_redis(self.store.get(key), key=key.name)
        self.exposure = got if isinstance(got, ExposureSnapshot) else None

    def check(self, intent: Intent, quote: tuple[float, float, float] | None, positions: Sequence[PositionRecord],
              open_orders: Mapping[tuple[str, str], int], msgs_last_s: int, now: datetime) -> Verdict:
        order = OrderIntent(intent.contract, intent.side, intent.quantity, intent.limit, intent.bucket,
                            f"qc:{intent.id}:entry:0", messages=3)
        held = [r.position for r in positions]
        market = market_snapshot(self.underlyings, [intent.contract, *(p.contract for p in held)], now)
        market = with_live_quote(market, intent, quote)
        exposure = portfolio_exposure(held, market, now, extra=[intent.contract])
        states = latches.load(self.store, self.account)
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
