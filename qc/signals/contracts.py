"""Which contract a signal trades: the option of the strategy's expiry and delta band that passes every
liquidity filter, or the shares for MOC, and the limit price to bid for it.

Pure: ``now`` is passed in and every expiry comes from ``qc.core.clock``'s XNYS calendar. The chain is
what `qc chains` stored, read through ingestion's codec (:class:`~qc.ingest.codec.OptionChain`).

Expiries by strategy (each one not yet settled at ``now``):

- 0DTE: the first session whose settlement instant (its close, 13:00 New York on an early close) is
  after ``now``: today until the close, the next session after it.
- 1DTE: the session after the 0DTE one.
- 14DTE: the listed expiry nearest 14 calendar days after the 0DTE session (the later one on a tie),
  no more than ``SWING_TOLERANCE_DAYS`` from that target: a chain without anything near two weeks
  out has no 14DTE, rather than a 0DTE or a monthly passed off as one.

Each candidate (a row of that expiry and right) is rejected for the first filter it fails, in the
order of ``REJECTIONS``, and every rejection is counted. The chain's age is one number for every row,
so a stale chain rejects every candidate as ``stale_quote`` (its counts then say nothing else: the
delta band of a stale quote is not worth reporting). Both spread caps apply when set: the relative one
always, the absolute one only when ``max_spread_abs > 0``; a contract must pass both, i.e. its spread
is at most ``min(max_spread_pct * mid, max_spread_abs)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal

from qc.core import clock
from qc.ingest.codec import ChainRow, OptionChain
from qc.signals.gates import primary_exchange
from qc.signals.model import Choice, Contract, ContractFilter, NoContract, Quote, Right, StrategyName

SWING_DTE = 14
SWING_TOLERANCE_DAYS = 7
OPTION_MULTIPLIER = 100
SHARE_MULTIPLIER = 1
ROUTE = "SMART"

NO_DELTA = "no_delta"
DELTA_BAND = "delta_band"
STALE_QUOTE = "stale_quote"
NO_QUOTE = "no_quote"
SPREAD = "spread"
OPEN_INTEREST = "open_interest"
VOLUME = "volume"
REJECTIONS: tuple[str, ...] = (NO_DELTA, DELTA_BAND, STALE_QUOTE, NO_QUOTE, SPREAD, OPEN_INTEREST, VOLUME)
BAND_REJECTIONS = frozenset({NO_DELTA, DELTA_BAND})  # expected for far strikes: never the decisive filter
EPS = 1e-9  # float slack: 1.05 - 1.00 is 0.050000000000000044, which is a 5-cent spread
CENT = Decimal("0.01")
LISTED_SHOWN = 8


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be tz-aware, got naive {now!r}")


def first_live_session(now: datetime) -> date:
    """The first session whose settlement instant is still ahead of ``now``: the 0DTE expiry."""
    day = clock.session_on_or_before(clock.new_york_date(now)).day
    while clock.settlement_instant(day) <= now:
        day = clock.next_session_after(day).day
    return day


def target_expiry(strategy: StrategyName, now: datetime, listed: Iterable[date]) -> date | None:
    """The expiry ``strategy`` trades at ``now``, or None when the chain does not list it."""
    _require_aware(now)
    if strategy == "moc":
        raise ValueError("MOC trades shares, not options: it has no expiry (use share_contract)")
    available = set(listed)
    dte0 = first_live_session(now)
    if strategy == "0dte":
        return dte0 if dte0 in available else None
    if strategy == "1dte":
        dte1 = clock.next_session_after(dte0).day
        return dte1 if dte1 in available else None
    if strategy == "14dte":
        target = dte0 + timedelta(days=SWING_DTE)
        near = [d for d in available if d >= dte0 and abs((d - target).days) <= SWING_TOLERANCE_DAYS]
        if not near:
            return None
        return min(near, key=lambda d: (abs((d - target).days), -d.toordinal()))
    raise ValueError(f"unknown strategy {strategy!r}")


def _rejection(row: ChainRow, flt: ContractFilter, stale: bool) -> str | None:
    """The first filter ``row`` fails (see ``REJECTIONS``), or None when it passes them all."""
    if stale:
        return STALE_QUOTE
    if row.delta is None or not math.isfinite(row.delta):
        return NO_DELTA
    if not flt.delta_lo <= abs(row.delta) <= flt.delta_hi:
        return DELTA_BAND
    if not (row.bid > 0 and row.ask > row.bid):
        return NO_QUOTE
    width = row.ask - row.bid
    if width / (0.5 * (row.bid + row.ask)) > flt.max_spread_pct + EPS:
        return SPREAD
    if flt.max_spread_abs > 0 and width > flt.max_spread_abs + EPS:
        return SPREAD
    if row.open_interest < flt.min_open_interest:
        return OPEN_INTEREST
    if row.volume < flt.min_volume:
        return VOLUME
    return None


def _rank(row: ChainRow, middle: float) -> tuple[float, float, float]:
    """Closest |delta| to the band's middle, then the tighter relative spread, then the lower strike."""
    assert row.delta is not None
    relative = (row.ask - row.bid) / (0.5 * (row.bid + row.ask))
    return round(abs(abs(row.delta) - middle), 9), round(relative, 9), row.strike


def _counts(counter: Counter[str]) -> dict[str, int]:
    """Rejection counts in ``REJECTIONS`` order, zeros left out."""
    return {name: counter[name] for name in REJECTIONS if counter[name]}


def _listed_text(listed: Sequence[date]) -> str:
    if not listed:
        return "none"
    shown = ", ".join(d.isoformat() for d in listed[:LISTED_SHOWN])
    return shown + (f", … ({len(listed)} in all)" if len(listed) > LISTED_SHOWN else "")


def _decisive_order(rejected: dict[str, int]) -> list[str]:
    """Reasons, the decisive one first: the most frequent rejection of contracts inside the delta band
    (out-of-band strikes are always there and explain nothing), else the most frequent overall."""
    in_band = [n for n in rejected if n not in BAND_REJECTIONS]
    first = max(in_band or list(rejected), key=lambda n: rejected[n])  # ties: earlier in REJECTIONS
    rest = sorted((n for n in rejected if n != first), key=lambda n: -rejected[n])
    return [first, *rest]


def choose(chain: OptionChain, strategy: StrategyName, direction: int, flt: ContractFilter,
           now: datetime) -> Choice | NoContract:
    """The option ``strategy`` buys for a ``direction`` signal (+1 calls, -1 puts), or why there is none."""
    _require_aware(now)
    if direction not in (1, -1):
        raise ValueError(f"direction is {direction!r}, not +1 (calls) or -1 (puts)")
    right: Right = "C" if direction > 0 else "P"
    listed = sorted({row.expiry for row in chain.rows})
    expiry = target_expiry(strategy, now, listed)
    if expiry is None:
        want = first_live_session(now)
        if strategy == "1dte":
            want = clock.next_session_after(want).day
        wanted = (f"near {want + timedelta(days=SWING_DTE)}" if strategy == "14dte" else want.isoformat())
        return NoContract(f"no {strategy} expiry in the chain (want {wanted}; listed: {_listed_text(listed)})", {})
    candidates = [row for row in chain.rows if row.expiry == expiry and row.right == right]
    if not candidates:
        return NoContract(f"no {expiry} {right} rows in the chain", {})
    age_s = (now - chain.as_of).total_seconds()
    stale = age_s > flt.max_quote_age_s
    counter: Counter[str] = Counter()
    survivors: list[ChainRow] = []
    for row in candidates:
        why = _rejection(row, flt, stale)
        if why is None:
            survivors.append(row)
        else:
            counter[why] += 1
    rejected = _counts(counter)
    if not survivors:
        detail = ", ".join(f"{name} {rejected[name]}" for name in _decisive_order(rejected))
        reason = f"every {expiry} {right} rejected: {detail}"
        if stale:
            reason += f" (chain is {age_s:.0f} s old > {flt.max_quote_age_s:g} s)"
        return NoContract(reason, rejected)
    middle = 0.5 * (flt.delta_lo + flt.delta_hi)
    best = min(survivors, key=lambda row: _rank(row, middle))
    contract = Contract(chain.symbol, "OPT", best.expiry, best.strike, best.right, OPTION_MULTIPLIER, ROUTE,
                        primary_exchange(chain.symbol))
    quote = Quote(best.bid, best.ask, best.mark, best.delta, best.open_interest, best.volume, age_s)
    return Choice(contract, quote, rejected)


def share_contract(symbol: str) -> Contract:
    """The shares MOC trades, routed SMART with the primary exchange set (IB routes the auction order there)."""
    return Contract(symbol, "STK", None, None, None, SHARE_MULTIPLIER, ROUTE, primary_exchange(symbol))


def limit_price(quote: Quote, side: str = "BUY") -> float:
    """A limit a quarter of the spread through the mid, on the cent, inside [bid, ask].

    BUY: mid + spread / 4, a tie rounded up (towards the fill); SELL: mid − spread / 4, a tie rounded
    down. SPY, QQQ and IWM options are in the penny program, so a quote on the cent gives a price on
    the cent; it never goes above the ask (BUY) or below the bid (SELL). Decimal arithmetic on the
    quotes' shortest reprs: 1.015 is a tie, not 1.01499999….
    """
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side is {side!r}, not BUY or SELL")
    if not (math.isfinite(quote.bid) and math.isfinite(quote.ask) and 0 <= quote.bid <= quote.ask and quote.ask > 0):
        raise ValueError(f"no two-sided quote to price against (bid {quote.bid!r}, ask {quote.ask!r})")
    bid, ask = Decimal(repr(quote.bid)), Decimal(repr(quote.ask))
    if side == "BUY":
        price = ((bid + 3 * ask) / 4).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        price = ((3 * bid + ask) / 4).quantize(CENT, rounding=ROUND_HALF_DOWN)
    return float(min(max(price, bid), ask))
