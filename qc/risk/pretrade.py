"""The pre-trade check: may this order be sent now? Every check runs; the verdict lists every failing one.

Pure: ``check(intent, portfolio, market, limits, now)``; ``now`` is tz-aware and passed in, every
open, close and settlement comes from ``qc.core.clock``'s XNYS calendar (an early close moves the
0DTE cutoff with it). The checks are independent functions of one precomputed
:class:`CheckContext` (:data:`CHECKS`), so the order they run in never changes the verdict.

**Reducing**, precisely. An order *reduces the position* when the instrument's net position is
non-zero and the order moves it toward zero without crossing it: opposite sign and
``quantity ≤ |position|`` (a close or a partial close). A position-reducing order is exempt from
TRADING_REDUCING, the 0DTE cutoff, PREMIUM_EXCEEDS_MAX, DAILY_LOSS_LIMIT, DRAWDOWN_LIMIT,
STALE_ANALYTICS, STALE_CHAIN and GREEKS_UNAVAILABLE: none of them guards against taking risk off.
The size and Greek limits are judged by what the order does to the limited quantity itself: a
limit fails only when the post-trade amount is over the limit **and** larger in magnitude than
before (|after| > limit and |after| > |before|), so an order is never blocked by a limit it
reduces, whether or not it reduces the position (a hedge that cuts an over-limit delta passes).

What applies to every order, reducing or not, and why:

- TRADING_HALTED: HALTED means no new orders at all (cancels are not orders, protective stops
  stay at the broker).
- OUTSIDE_SESSION: options trade in the regular session only; an order outside it would rest
  unpriced until the open.
- EXPIRY_CUTOFF for a settled expiry (now ≥ its settlement instant): the contract no longer trades.
  The 0DTE cutoff (no new risk in a contract settling today after close − ``zero_dte_cutoff_min``)
  lets a closing order through: it takes risk off.
- STALE_QUOTE, SPREAD_TOO_WIDE, PRICE_BAND, QTY_EXCEEDS_MAX: they guard the price and the size of
  the order (a fat finger or a bad quote), which closing does not make safer.
- OPEN_ORDERS_PER_SIDE, RATE_LIMIT: the broker's own limits, whatever the order does.

Boundaries: a limit ``L`` on an amount fails at ``amount > L`` (at ``L`` it passes); ages fail
above the limit; the loss and drawdown limits fail *at* the limit (``pnl ≤ −L``, ``drawdown ≥ L``,
as ``qc.risk.breakers`` trips); the open-order and message limits count the new order
(``open + 1 > max``, ``sent + messages > max``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from qc.core import clock
from qc.risk.exposure import GREEKS, PortfolioExposure, PostTrade, portfolio_exposure, post_trade, settles
from qc.risk.model import (
    ContractQuote,
    Limits,
    MarketSnapshot,
    OrderIntent,
    Portfolio,
    Reason,
    UnderlyingQuote,
    Verdict,
    signed,
)
from qc.risk.state import TradingState

TRADING_HALTED = "TRADING_HALTED"
TRADING_REDUCING = "TRADING_REDUCING"
OUTSIDE_SESSION = "OUTSIDE_SESSION"
EXPIRY_CUTOFF = "EXPIRY_CUTOFF"
STALE_QUOTE = "STALE_QUOTE"
STALE_ANALYTICS = "STALE_ANALYTICS"
STALE_CHAIN = "STALE_CHAIN"
SPREAD_TOO_WIDE = "SPREAD_TOO_WIDE"
PRICE_BAND = "PRICE_BAND"
QTY_EXCEEDS_MAX = "QTY_EXCEEDS_MAX"
PREMIUM_EXCEEDS_MAX = "PREMIUM_EXCEEDS_MAX"
POSITION_LIMIT = "POSITION_LIMIT"
OPEN_ORDERS_PER_SIDE = "OPEN_ORDERS_PER_SIDE"
RATE_LIMIT = "RATE_LIMIT"
DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
DRAWDOWN_LIMIT = "DRAWDOWN_LIMIT"
GREEKS_UNAVAILABLE = "GREEKS_UNAVAILABLE"
GREEKS_DELTA_LIMIT = "GREEKS_DELTA_LIMIT"
GREEKS_GAMMA_LIMIT = "GREEKS_GAMMA_LIMIT"
GREEKS_VEGA_LIMIT = "GREEKS_VEGA_LIMIT"
GREEKS_CHARM_LIMIT = "GREEKS_CHARM_LIMIT"

REASON_CODES: tuple[str, ...] = (
    TRADING_HALTED, TRADING_REDUCING, OUTSIDE_SESSION, EXPIRY_CUTOFF, STALE_QUOTE, STALE_ANALYTICS, STALE_CHAIN,
    SPREAD_TOO_WIDE, PRICE_BAND, QTY_EXCEEDS_MAX, PREMIUM_EXCEEDS_MAX, POSITION_LIMIT, OPEN_ORDERS_PER_SIDE,
    RATE_LIMIT, DAILY_LOSS_LIMIT, DRAWDOWN_LIMIT, GREEKS_UNAVAILABLE, GREEKS_DELTA_LIMIT, GREEKS_GAMMA_LIMIT,
    GREEKS_VEGA_LIMIT, GREEKS_CHARM_LIMIT,
)

# greek -> (reason code, Limits field per underlying, Limits field per bucket)
_GREEK_LIMITS: dict[str, tuple[str, str, str]] = {
    "delta": (GREEKS_DELTA_LIMIT, "delta_usd_per_pct_per_underlying", "delta_usd_per_pct_per_bucket"),
    "gamma": (GREEKS_GAMMA_LIMIT, "gamma_usd_per_pct_per_pct_per_underlying", "gamma_usd_per_pct_per_pct_per_bucket"),
    "vega": (GREEKS_VEGA_LIMIT, "vega_usd_per_vol_pt_per_underlying", "vega_usd_per_vol_pt_per_bucket"),
    "charm": (GREEKS_CHARM_LIMIT, "charm_usd_delta_per_day_per_underlying", "charm_usd_delta_per_day_per_bucket"),
}
assert tuple(_GREEK_LIMITS) == GREEKS


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything the checks read, derived once per order: the checks themselves only compare."""

    intent: OrderIntent
    portfolio: Portfolio
    market: MarketSnapshot
    limits: Limits
    now: datetime
    exposure: PortfolioExposure
    state: TradingState                 # the stricter of the account's and the underlying's
    position_before: int                # the instrument's net signed quantity
    position_after: int
    reduces: bool                       # moves the position toward zero without crossing it
    underlying_quote: UnderlyingQuote | None
    quote: ContractQuote | None
    session: clock.Session | None       # today's regular session (New York date of now)
    post: PostTrade


Check = Callable[[CheckContext], tuple[Reason, ...]]
_NONE: tuple[Reason, ...] = ()


def reduces_position(before: float, change: float) -> bool:
    """True when ``change`` moves a non-zero ``before`` toward zero without crossing it."""
    return before != 0 and change != 0 and (before > 0) != (change > 0) and abs(change) <= abs(before)


def context(intent: OrderIntent, portfolio: Portfolio, market: MarketSnapshot, limits: Limits, now: datetime,
            exposure: PortfolioExposure | None = None) -> CheckContext:
    """Derive what every check needs (pricing the order once); ``exposure`` defaults to a fresh one."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be tz-aware, got naive {now!r}")
    if exposure is None:
        exposure = portfolio_exposure(portfolio.positions, market, now)
    key = intent.contract
    before = exposure.position.get(key, 0)
    change = intent.signed_quantity
    return CheckContext(
        intent, portfolio, market, limits, now, exposure,
        state=portfolio.state_for(key.underlying),
        position_before=before,
        position_after=before + change,
        reduces=reduces_position(before, change),
        underlying_quote=market.underlyings.get(key.underlying),
        quote=market.quotes.get(key),
        session=clock.session(clock.new_york_date(now)),
        post=post_trade(exposure, key, change, intent.bucket, market, now),
    )


def check(intent: OrderIntent, portfolio: Portfolio, market: MarketSnapshot, limits: Limits, now: datetime, *,
          exposure: PortfolioExposure | None = None, checks: Sequence[Check] | None = None) -> Verdict:
    """Run every check on ``intent``; approved only when none fails.

    Pass the cached ``exposure`` of ``portfolio.positions`` (``exposure.portfolio_exposure``) to
    keep a check within its time budget; ``checks`` defaults to :data:`CHECKS` (tests permute it).
    """
    ctx = context(intent, portfolio, market, limits, now, exposure)
    reasons = tuple(r for run in (CHECKS if checks is None else checks) for r in run(ctx))
    return Verdict(not reasons, reasons)


def _ny(instant: datetime) -> str:
    return instant.astimezone(clock.NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")


def _where(c: CheckContext) -> dict[str, str | float]:
    return {"underlying": c.intent.contract.underlying, "contract": c.intent.contract.describe()}


# --- the checks ---------------------------------------------------------------------------------


def halted(c: CheckContext) -> tuple[Reason, ...]:
    if c.state is not TradingState.HALTED:
        return _NONE
    scope = "account" if c.portfolio.account_state is TradingState.HALTED else c.intent.contract.underlying
    return (Reason(TRADING_HALTED, {"scope": scope, "underlying": c.intent.contract.underlying}),)


def reducing_only(c: CheckContext) -> tuple[Reason, ...]:
    if c.state is not TradingState.REDUCING or c.reduces:
        return _NONE
    scope = "account" if c.portfolio.account_state is TradingState.REDUCING else c.intent.contract.underlying
    return (Reason(TRADING_REDUCING, {"scope": scope, **_where(c), "before": signed(c.position_before),
                                      "after": signed(c.position_after)}),)


def in_session(c: CheckContext) -> tuple[Reason, ...]:
    s = c.session
    if s is not None and s.open <= c.now < s.close:
        return _NONE
    why = "no session today" if s is None else ("before the open" if c.now < s.open else "after the close")
    return (Reason(OUTSIDE_SESSION, {"now": _ny(c.now), "why": why}),)


def expiry_cutoff(c: CheckContext) -> tuple[Reason, ...]:
    key = c.intent.contract
    if key.expiry is None:
        return _NONE
    settles_at = settles(key.expiry)
    if c.now >= settles_at:
        return (Reason(EXPIRY_CUTOFF, {**_where(c), "why": "settled", "settled": _ny(settles_at)}),)
    s = c.session
    if c.reduces or s is None or settles_at != s.close:
        return _NONE
    cutoff = s.close - timedelta(minutes=c.limits.zero_dte_cutoff_min)
    if c.now < cutoff:
        return _NONE
    return (Reason(EXPIRY_CUTOFF, {**_where(c), "why": "0dte_cutoff", "cutoff": _ny(cutoff),
                                   "close": _ny(s.close)}),)


def fresh_quotes(c: CheckContext) -> tuple[Reason, ...]:
    limit = c.limits.stale_quote_s
    out: list[Reason] = []
    if c.quote is None:
        out.append(Reason(STALE_QUOTE, {**_where(c), "what": "quote", "age_s": "missing"}))
    elif not c.quote.age_s <= limit:
        out.append(Reason(STALE_QUOTE, {**_where(c), "what": "quote", "age_s": c.quote.age_s, "limit": limit}))
    und = c.underlying_quote
    if und is None:
        out.append(Reason(STALE_QUOTE, {**_where(c), "what": "spot", "age_s": "missing"}))
    elif not und.spot_age_s <= limit:
        out.append(Reason(STALE_QUOTE, {**_where(c), "what": "spot", "age_s": und.spot_age_s, "limit": limit}))
    return tuple(out)


def fresh_analytics(c: CheckContext) -> tuple[Reason, ...]:
    if c.reduces:
        return _NONE
    limit = c.limits.stale_analytics_s
    out: list[Reason] = []
    und = c.underlying_quote
    if und is None:
        out.append(Reason(STALE_ANALYTICS, {**_where(c), "what": "analytics", "age_s": "missing"}))
    elif not und.analytics_age_s <= limit:
        out.append(Reason(STALE_ANALYTICS, {**_where(c), "what": "analytics", "age_s": und.analytics_age_s,
                                            "limit": limit}))
    exposure_age = (c.now - c.exposure.as_of).total_seconds()
    if not exposure_age <= limit:
        out.append(Reason(STALE_ANALYTICS, {**_where(c), "what": "exposure", "age_s": exposure_age, "limit": limit}))
    return tuple(out)


def fresh_chain(c: CheckContext) -> tuple[Reason, ...]:
    if c.reduces or c.intent.contract.sec_type != "OPT":
        return _NONE
    und = c.underlying_quote
    if und is None:
        return (Reason(STALE_CHAIN, {**_where(c), "age_s": "missing"}),)
    if und.chain_age_s <= c.limits.stale_chain_s:
        return _NONE
    return (Reason(STALE_CHAIN, {**_where(c), "age_s": und.chain_age_s, "limit": c.limits.stale_chain_s}),)


def spread(c: CheckContext) -> tuple[Reason, ...]:
    q = c.quote
    if q is None:
        return _NONE  # STALE_QUOTE already refuses an unquoted instrument
    if not (0.0 <= q.bid <= q.ask and q.ask > 0.0 and q.ask < float("inf")):
        return (Reason(SPREAD_TOO_WIDE, {**_where(c), "bid": q.bid, "ask": q.ask, "why": "no two-sided quote"}),)
    mid = (q.ask + q.bid) / 2.0
    if (q.ask - q.bid) * 100.0 <= c.limits.max_spread_pct * mid:  # multiplied out: exact at the boundary
        return _NONE
    return (Reason(SPREAD_TOO_WIDE, {**_where(c), "bid": q.bid, "ask": q.ask,
                                     "spread_pct": round((q.ask - q.bid) / mid * 100.0, 4),
                                     "limit": c.limits.max_spread_pct}),)


def price_band(c: CheckContext) -> tuple[Reason, ...]:
    q = c.quote
    if q is None:
        return _NONE  # STALE_QUOTE already refuses an unquoted instrument
    price = c.intent.limit_price
    if not (q.mark > 0.0 and q.mark < float("inf")):
        return (Reason(PRICE_BAND, {**_where(c), "limit_price": price, "mark": q.mark, "why": "no mark"}),)
    if abs(price - q.mark) * 100.0 <= c.limits.price_band_pct * q.mark:  # multiplied out: exact at the boundary
        return _NONE
    return (Reason(PRICE_BAND, {**_where(c), "limit_price": price, "mark": q.mark,
                                "off_pct": round(abs(price / q.mark - 1.0) * 100.0, 4),
                                "limit": c.limits.price_band_pct}),)


def order_size(c: CheckContext) -> tuple[Reason, ...]:
    size = c.intent.contract.equivalents(c.intent.quantity)
    if size <= c.limits.max_qty_per_order:
        return _NONE
    return (Reason(QTY_EXCEEDS_MAX, {**_where(c), "qty": size, "limit": c.limits.max_qty_per_order}),)


def premium(c: CheckContext) -> tuple[Reason, ...]:
    if c.reduces:
        return _NONE
    usd = c.intent.quantity * c.intent.limit_price * c.intent.contract.multiplier
    if usd <= c.limits.max_premium_per_order_usd:
        return _NONE
    return (Reason(PREMIUM_EXCEEDS_MAX, {**_where(c), "premium_usd": round(usd, 2),
                                         "limit": c.limits.max_premium_per_order_usd}),)


def position_limits(c: CheckContext) -> tuple[Reason, ...]:
    key = c.intent.contract
    before, after = abs(key.equivalents(c.position_before)), abs(key.equivalents(c.position_after))
    out: list[Reason] = []
    if after > before and after > c.limits.max_position_per_contract:
        out.append(Reason(POSITION_LIMIT, {"scope": "contract", **_where(c), "before": signed(before),
                                           "after": signed(key.equivalents(c.position_after)),
                                           "limit": c.limits.max_position_per_contract}))
    gross_before = c.exposure.gross_per_underlying.get(key.underlying, 0.0)
    gross_after = gross_before + (after - before)
    if after > before and gross_after > c.limits.max_position_per_underlying:
        out.append(Reason(POSITION_LIMIT, {"scope": "underlying", "underlying": key.underlying,
                                           "before": gross_before, "after": gross_after,
                                           "limit": c.limits.max_position_per_underlying}))
    return tuple(out)


def open_orders(c: CheckContext) -> tuple[Reason, ...]:
    working = c.portfolio.open_orders.get((c.intent.contract.underlying, c.intent.side), 0)
    if working + 1 <= c.limits.max_open_orders_per_side:
        return _NONE
    return (Reason(OPEN_ORDERS_PER_SIDE, {"underlying": c.intent.contract.underlying, "side": c.intent.side,
                                          "open": working, "limit": c.limits.max_open_orders_per_side}),)


def message_rate(c: CheckContext) -> tuple[Reason, ...]:
    sent = c.portfolio.msgs_last_s
    if sent + c.intent.messages <= c.limits.max_msgs_per_s:
        return _NONE
    return (Reason(RATE_LIMIT, {"sent_last_s": sent, "messages": c.intent.messages,
                                "limit": c.limits.max_msgs_per_s}),)


def daily_loss(c: CheckContext) -> tuple[Reason, ...]:
    pnl = c.portfolio.pnl_today_usd
    if c.reduces or pnl > -c.limits.daily_loss_limit_usd:
        return _NONE
    return (Reason(DAILY_LOSS_LIMIT, {"pnl": signed(pnl), "limit": -c.limits.daily_loss_limit_usd}),)


def drawdown(c: CheckContext) -> tuple[Reason, ...]:
    down = c.portfolio.drawdown_usd
    if c.reduces or down < c.limits.drawdown_limit_usd:
        return _NONE
    return (Reason(DRAWDOWN_LIMIT, {"drawdown": down, "limit": c.limits.drawdown_limit_usd}),)


def greeks_known(c: CheckContext) -> tuple[Reason, ...]:
    """No new risk on top of risk that cannot be seen: the order or a position in its scope is unpriced."""
    if c.reduces:
        return _NONE
    key, bucket = c.intent.contract, c.intent.bucket
    missing = [what for what, gone in (("order", c.post.order is None),
                                       ("underlying", key.underlying in c.exposure.unpriced_underlyings),
                                       ("bucket", bucket in c.exposure.unpriced_buckets)) if gone]
    if not missing:
        return _NONE
    return (Reason(GREEKS_UNAVAILABLE, {**_where(c), "bucket": bucket, "unpriced": ",".join(missing)}),)


def _greek_check(greek: str) -> Check:
    code, per_underlying, per_bucket = _GREEK_LIMITS[greek]

    def run(c: CheckContext) -> tuple[Reason, ...]:
        post = c.post
        und_after, bucket_after = post.underlying_after, post.bucket_after
        if und_after is None or bucket_after is None:
            return _NONE  # unpriced: GREEKS_UNAVAILABLE speaks for a risk-adding order
        underlying, bucket = c.intent.contract.underlying, c.intent.bucket
        out: list[Reason] = []
        scopes = (("underlying", getattr(post.underlying_before, greek), getattr(und_after, greek),
                   getattr(c.limits, per_underlying)),
                  ("bucket", getattr(post.bucket_before, greek), getattr(bucket_after, greek),
                   getattr(c.limits, per_bucket).get(bucket)))
        for scope, before, after, limit in scopes:
            if limit is not None and abs(after) > limit and abs(after) > abs(before):
                out.append(Reason(code, {"scope": scope, "underlying": underlying, "bucket": bucket,
                                         "before": signed(before), "after": signed(after), "limit": limit}))
        return tuple(out)

    run.__name__ = run.__qualname__ = f"greek_{greek}"
    run.__doc__ = f"Post-trade dollar {greek} within its per-underlying and per-bucket limits."
    return run


CHECKS: tuple[Check, ...] = (
    halted, reducing_only, in_session, expiry_cutoff, fresh_quotes, fresh_analytics, fresh_chain, spread,
    price_band, order_size, premium, position_limits, open_orders, message_rate, daily_loss, drawdown,
    greeks_known, *(_greek_check(g) for g in GREEKS),
)
