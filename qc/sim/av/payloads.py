"""Alpha Vantage JSON bodies built from the simulated market: pure functions, no I/O, no clock.

Every shape, key name, key order and string/number quirk here is Alpha Vantage's own, as recorded
in reference ``alpha-vantage-and-dealer-positioning.md`` §1 (cited per function). The server
(``qc/sim/av/server.py``) decides *which* body to send; this module only spells it.

Error texts are AV's verbatim strings. The reference elides parts of them (``…``); the full
wording comes from the public captures the reference cites, e.g. the premium-sample message
quoted in full by public fixtures of REALTIME_OPTIONS answered to ``apikey=demo``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from qc.analytics.greeks import bsm
from qc.core.clock import NEW_YORK
from qc.core.models import Bar
from qc.sim.market.models import OptionContract, OptionQuote, Quote

Json = dict[str, Any]

DOCS = "https://www.alphavantage.co/documentation/"
MISSING_KEY = ("the parameter apikey is invalid or missing. Please claim your free API key on "
               "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.")
# What a premium key over its per-minute allowance gets (captured by many public clients).
RATE_LIMIT_RPM = ("Thank you for using Alpha Vantage! Please contact premium@alphavantage.co if you are "
                  "targeting a higher API call volume.")
# What a free key over its daily allowance gets (reference §1.9, first `Information` text).
RATE_LIMIT_DAILY = ("Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. "
                    "Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ "
                    "to instantly remove all daily rate limits.")
PREMIUM_INFORMATION = ("Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to "
                       "any of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock "
                       "all premium endpoints")
PREMIUM_SAMPLE_MESSAGE = (
    "This is a premium endpoint. ***THE SAMPLE DATA SCHEMA BELOW IS ARTIFICIAL AND FOR ILLUSTRATION "
    "PURPOSES ONLY***. To access the actual data, please subscribe to either the 600 requests per minute "
    "or the 1200 requests per minute premium plan at https://www.alphavantage.co/premium/ if you would "
    "like to access realtime US options data for personal non-professional use. For professional/commercial "
    "use, please contact support at support@alphavantage.co.")
GREEK_FIELDS = ("implied_volatility", "delta", "gamma", "theta", "vega", "rho")
SENTIMENT_DEFINITION = ("x <= -0.35: Bearish; -0.35 < x <= -0.15: Somewhat-Bearish; -0.15 < x < 0.15: "
                        "Neutral; 0.15 <= x < 0.35: Somewhat_Bullish; x >= 0.35: Bullish")
RELEVANCE_DEFINITION = "0 < x <= 1, with a higher score indicating higher relevance."


def error_message(text: str) -> Json:
    """A rejected request: ``{"Error Message": …}`` with HTTP 200 (§1.9)."""
    return {"Error Message": text}


def information(text: str) -> Json:
    """Throttled, not entitled or demo: ``{"Information": …}`` with HTTP 200 (§1.9)."""
    return {"Information": text}


def invalid_call(function: str) -> Json:
    """AV's answer to bad or missing parameters of a known function (§1.9)."""
    return error_message(f"Invalid API call. Please retry or visit the documentation ({DOCS}) for {function}.")


def unknown_function(function: str) -> Json:
    """AV's answer to a ``function`` it does not have."""
    return error_message(f"This API function ({function}) does not exist.")


def contract_id(contract: OptionContract) -> str:
    """AV's contractID: OCC root unpadded + YYMMDD + C|P + strike×1000 in 8 digits (§1.2)."""
    return f"{contract.underlying}{contract.expiry:%y%m%d}{contract.right}{round(contract.strike * 1000):08d}"


def av_greeks(quotes: Sequence[OptionQuote], spot: float, rate: float, div_yield: float,
              as_of: date) -> list[dict[str, str]]:
    """The six Greek fields as AV computes them: BSM with T = whole calendar days / 365 (§1.5).

    AV measures T from the quote's session ``date`` to ``expiration`` in whole days, so a contract
    expiring today has T = 0 however many hours remain: AV's 0DTE Greeks are degenerate, and we
    reproduce that on purpose (qc recomputes from IV with T in minutes, DESIGN.md §6). For T = 0 we
    send BSM's T→0 limit: delta 0 or ±1 by moneyness, gamma/theta/vega/rho 0. The reference shows
    T = 0 only as a consequence (§1.5, ThinkorSwim's zero 0DTE gamma), not an AV 0DTE row, so this
    limit is our inference of what AV sends.
    """
    if not quotes:
        return []
    strike = np.array([q.contract.strike for q in quotes])
    days = np.array([(q.contract.expiry - as_of).days for q in quotes], dtype=np.float64)
    vol = np.array([q.iv for q in quotes])
    is_call = np.array([q.contract.right == "C" for q in quotes])
    g = bsm(spot, strike, days / 365.0, rate, div_yield, vol, is_call)
    rows = []
    for i, q in enumerate(quotes):
        values = (q.iv, g.delta[i], g.gamma[i], g.theta[i], g.vega[i], g.rho[i])
        if not math.isfinite(float(g.delta[i])):
            values = (q.iv, _expiry_delta(spot, q.contract), 0.0, 0.0, 0.0, 0.0)
        rows.append({name: f"{float(v):.5f}" for name, v in zip(GREEK_FIELDS, values, strict=True)})
    return rows


def _expiry_delta(spot: float, contract: OptionContract) -> float:
    itm = spot > contract.strike if contract.right == "C" else spot < contract.strike
    return (1.0 if contract.right == "C" else -1.0) if itm else 0.0


def option_row(quote: OptionQuote, session_day: date, greeks: dict[str, str] | None) -> dict[str, str]:
    """One chain row, every value a string, in AV's field order (§1.2); Greeks only when asked."""
    c = quote.contract
    row = {
        "contractID": contract_id(c), "symbol": c.underlying, "expiration": c.expiry.isoformat(),
        "strike": f"{c.strike:.2f}", "type": "call" if c.right == "C" else "put",
        "last": f"{quote.last:.2f}", "mark": f"{quote.mark:.2f}",
        "bid": f"{quote.bid:.2f}", "bid_size": _size(quote, "bid"),
        "ask": f"{quote.ask:.2f}", "ask_size": _size(quote, "ask"),
        "volume": str(int(quote.volume)), "open_interest": str(int(quote.open_interest)),
        "date": session_day.isoformat(),
    }
    if greeks is not None:
        row.update(greeks)
    return row


def _size(quote: OptionQuote, side: str) -> str:
    # OptionQuote carries no displayed sizes; a two-sided market shows a nominal 10 lots, an empty side 0.
    price = quote.bid if side == "bid" else quote.ask
    return "10" if price > 0 else "0"


def av_sort_key(quote: OptionQuote) -> tuple[date, float, int]:
    """Expiration, then strike, then call before put (§1.2; AV's own chains list the call first)."""
    c = quote.contract
    return (c.expiry, c.strike, 0 if c.right == "C" else 1)


def options_payload(endpoint: str, rows: list[dict[str, str]]) -> Json:
    """``{"endpoint", "message": "success", "data"}``; no spot anywhere (§1.2, §1.3)."""
    return {"endpoint": endpoint, "message": "success", "data": rows}


def premium_sample() -> Json:
    """The artificial body AV gives a key not entitled to REALTIME_OPTIONS (§1.2, §1.9).

    Greeks appear regardless of ``require_greeks``, as in the captured sample. The call row is the
    captured one; the put row copies it with put-call-parity delta (captures quote the call row; the
    reference says "fake rows").
    """
    call = {"contractID": "XXYYZZ999999C00020000", "symbol": "XXYYZZ", "expiration": "2099-99-99",
            "strike": "20.00", "type": "call", "last": "100.00", "mark": "100.10", "bid": "100.05",
            "bid_size": "100", "ask": "100.15", "ask_size": "100", "volume": "100", "open_interest": "100",
            "date": "2049-99-99", "implied_volatility": "0.23766", "delta": "0.17818", "gamma": "0.00317",
            "theta": "-0.02015", "vega": "0.90231", "rho": "0.71615"}
    put = {**call, "contractID": "XXYYZZ999999P00020000", "type": "put", "delta": "-0.82182"}
    return {"endpoint": "Realtime Options", "message": PREMIUM_SAMPLE_MESSAGE, "data": [call, put]}


def global_quote(symbol: str, quote: Quote, today: Sequence[Bar], previous_close: float,
                 day: date, delayed: bool) -> Json:
    """GLOBAL_QUOTE: ten numbered string fields, `%` on the change (§1.6).

    ``entitlement=delayed`` renames the top-level key, which broke clients reading only
    ``"Global Quote"`` (§1.6); we reproduce the rename.
    """
    price = quote.last
    highs = [b.high for b in today] + [price]
    lows = [b.low for b in today] + [price]
    change = price - previous_close
    pct = 100.0 * change / previous_close if previous_close else 0.0
    body = {"01. symbol": symbol, "02. open": f"{today[0].open if today else price:.4f}",
            "03. high": f"{max(highs):.4f}", "04. low": f"{min(lows):.4f}", "05. price": f"{price:.4f}",
            "06. volume": str(int(quote.volume)), "07. latest trading day": day.isoformat(),
            "08. previous close": f"{previous_close:.4f}", "09. change": f"{change:.4f}",
            "10. change percent": f"{pct:.4f}%"}
    return {"Global Quote - DATA DELAYED BY 15 MINUTES" if delayed else "Global Quote": body}


def aggregate(bars: Iterable[Bar], minutes: int) -> list[Bar]:
    """Roll 1-minute bars into ``minutes``-wide bars aligned to the New York clock, oldest first."""
    out: list[Bar] = []
    for bar in bars:
        local = bar.ts.astimezone(NEW_YORK)
        start = local - timedelta(minutes=(local.hour * 60 + local.minute) % minutes, seconds=local.second)
        if out and out[-1].ts == start:
            last = out[-1]
            out[-1] = Bar(start, last.open, max(last.high, bar.high), min(last.low, bar.low), bar.close,
                          last.volume + bar.volume, 0.0, last.count + bar.count)
        else:
            out.append(Bar(start, bar.open, bar.high, bar.low, bar.close, bar.volume, 0.0, bar.count))
    return out


def intraday(symbol: str, bars: Sequence[Bar], interval: str, full: bool, delayed: bool) -> Json:
    """TIME_SERIES_INTRADAY: Meta Data + ``Time Series (<interval>)``, New York time, newest first (§1.7).

    ``bars`` are already aggregated to ``interval`` (see ``aggregate``), their ``ts`` in New York time.
    """
    info = f"Intraday ({interval}) open, high, low, close prices and volume"
    if delayed:
        info += " - DATA DELAYED BY 15 MINUTES"
    series = {_ny(b.ts): {"1. open": f"{b.open:.4f}", "2. high": f"{b.high:.4f}", "3. low": f"{b.low:.4f}",
                          "4. close": f"{b.close:.4f}", "5. volume": str(int(b.volume))}
              for b in reversed(bars)}
    meta = {"1. Information": info, "2. Symbol": symbol,
            "3. Last Refreshed": _ny(bars[-1].ts) if bars else "", "4. Interval": interval,
            "5. Output Size": "Full size" if full else "Compact", "6. Time Zone": "US/Eastern"}
    return {"Meta Data": meta, f"Time Series ({interval})": series}


def _ny(ts: datetime) -> str:
    return ts.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")
