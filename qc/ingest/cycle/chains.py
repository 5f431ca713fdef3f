"""One `qc chains` cycle: per symbol, the traded expiries from Alpha Vantage → spot → parse → Redis.

Glue only (the rules live in expiries, chain_parse, news and alphavantage). What it promises:

- Every HTTP attempt takes a token from the shared bucket first and is counted by class in
  ``monitoring:alpha_vantage:metrics`` (``requests``, ``ok``, ``throttled``…); ``tokens_left`` is kept
  current by :class:`~qc.ingest.cycle.ratelimit.TokenGauge`.
- Nothing Alpha Vantage sends is trusted: every refused row, value or body is counted in
  ``monitoring:rejects`` under ``av.chain``, ``av.quote`` or ``av.news`` and its reason, and one bad
  symbol or function never costs the rest of the cycle: each is caught on its own, logged in one
  line, counted, and the cycle goes on (a Redis outage alone propagates, to the worker's backoff).
- News is asked for after the chain, also when the chain failed on bad data, but not when Alpha
  Vantage itself failed (HTTP error, network, throttled, no token): that call would only pile on.
- Budget per symbol and cycle: one REALTIME_OPTIONS call per traded expiry (3–4, with
  ``expiration=``: a few hundred rows each instead of a whole chain of thousands), at most one
  GLOBAL_QUOTE, one NEWS_SENTIMENT: ≤ 6, so SPY+QQQ+IWM every 5 min is ≤ 18 requests (≈ 4 rpm).
- All or nothing per symbol: the chain is written only when every expiry call ended ok or empty
  and some rows survived parsing. Otherwise the last good chain stays (its TTL still runs), the
  failure is logged in one line and counted, its age goes to the metrics hash
  (``chain_age_s:{sym}``) and the feed is marked in ``monitoring:data:stale``.
- A rejected key or a plan without REALTIME_OPTIONS is fatal: recorded in ``fatal`` and the worker
  is stopped, so the command can exit with one line naming the setting or the plan.
- ``report`` says what the last cycle stored and what failed, for `qc chains --once`'s exit code.

Spot, decided: the chain's rows are fetched first, then its spot, and the spot must match them.
The IB quote ``qc stream`` keeps in ``market:{sym}:quote`` (mid of a two-sided quote, else last)
is used only when it is at most ``QUOTE_MAX_AGE_S`` old *and* the live stream rewrote it since this
process last looked (at start, then each cycle): after a restart, a quote the previous market's
stream left behind (still under 30 s old) once priced the first chain (0DTE skew +20 vol points,
346 rows dropped, for up to 5 minutes). Otherwise this cycle's own GLOBAL_QUOTE (one more
request). Either must pass :func:`~qc.ingest.chain_parse.spot_problem`: finite, > 0.01, within 2x
of the chain's median strike, and within 0.5 % of the spot the chain's own near-the-money prices
imply by put-call parity. An IB spot that fails falls back to GLOBAL_QUOTE; a GLOBAL_QUOTE that
fails keeps the last good chain (``av.quote`` reject).

Rates: r = ``RATE`` (continuous; qc has no treasury curve yet) and q from ``DIV_YIELD`` (trailing
ETF yields, approximate); both are written into the chain so any consumer can reproduce the Greeks.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from qc.core import clock, keys
from qc.core.config import Settings
from qc.core.errors import DataError
from qc.ingest import chain_parse, expiries, news
from qc.ingest.codec import Absent, OptionChain, PayloadRefused, Quote
from qc.ingest.cycle.alphavantage import AlphaVantageClient, ProviderError, RetryPolicy
from qc.ingest.cycle.ratelimit import BucketShape, BudgetExhausted, TokenBucket, TokenGauge
from qc.runtime.codec import OPTIONS_CHAIN_FEED, AlphaVantageMetrics, StaleFeeds
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

SOURCE = "alpha_vantage_realtime"
RATE = 0.04
DIV_YIELD = {"SPY": 0.013, "QQQ": 0.006, "IWM": 0.012}
QUOTE_MAX_AGE_S = 30.0
ACQUIRE_MAX_WAIT_S = 60.0
REASON_CHARS = 160
UNITS = ("qc Greeks per analytics/greeks.py: delta/gamma per $1, vega and vanna per vol point, theta and charm "
         "per calendar day, T to the settlement instant; *_vendor: Alpha Vantage's, T in whole days / 365")


@dataclass
class CycleReport:
    """What one cycle did: chains stored, what failed and why, and how its HTTP attempts were answered."""

    stored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # "SPY chain" / "SPY news" -> why
    answers: Counter[str] = field(default_factory=Counter)  # response class -> attempts

    def failure_line(self, symbols: tuple[str, ...]) -> str:
        """One line naming what failed ("" when the cycle did its whole job)."""
        if not self.failed:
            return ""
        attempts = sum(self.answers.values())
        answered = self.answers["ok"] + self.answers["no_data"]
        what = "; ".join(f"{name}: {' '.join(why.split())[:REASON_CHARS]}" for name, why in self.failed.items())
        if not self.stored:
            head = f"no chain stored for {', '.join(symbols)}"
        else:
            lost = [s for s in symbols if s not in self.stored]
            head = (f"chains stored for {', '.join(self.stored)}, not for {', '.join(lost)}" if lost
                    else f"chains stored for {', '.join(self.stored)}, but not everything")
        if attempts and not answered:
            unreachable = set(self.answers) <= {"http_error", "network"}
            head += (f"; every one of {attempts} Alpha Vantage requests failed"
                     + (" (is QC_ALPHA_VANTAGE_URL right?)" if unreachable else ""))
        return f"{head} ({what})"


class ChainsCycle:
    """Callable as a Worker cycle; holds the client, the config, the last fatal error and the last report."""

    def __init__(self, store: Store, client: AlphaVantageClient, symbols: tuple[str, ...],
                 stop: threading.Event, with_news: bool = True, gauge: TokenGauge | None = None) -> None:
        self.store = store
        self.client = client
        self.symbols = symbols
        self.stop = stop
        self.with_news = with_news
        self.gauge = gauge
        self.fatal: ProviderError | None = None
        self.report = CycleReport()
        self._quote_seen = {s: self._quote_as_of(s) for s in symbols}  # the quotes as this process found them

    def __call__(self, now: datetime) -> None:
        self.report = CycleReport()
        traded = expiries.traded_expiries(now)
        for symbol in self.symbols:
            if self.stop.is_set():
                break
            failure = self._chain_or_keep(symbol, now, traded)
            if self.fatal is not None:
                break
            if self.with_news and not provider_down(failure):
                self._news_or_keep(symbol, now)

    def observe(self, kind: str) -> None:
        """One HTTP attempt answered with class ``kind``: counted in Redis and in this cycle's report."""
        self.report.answers[kind] += 1
        self.store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.response(kind))

    def refuse(self, surface: str, reason: str) -> None:
        self.store.count_rejects(surface, {reason: 1})

    def watch_tokens(self) -> None:
        """Keep ``tokens_left`` current between cycles (a long-running worker; `--once` needs none)."""
        if self.gauge is not None:
            self.gauge.start()

    def close(self) -> None:
        if self.gauge is not None:
            self.gauge.close()
        self.client.close()

    # --- chain ---------------------------------------------------------------------------------

    def _chain_or_keep(self, symbol: str, now: datetime, traded: expiries.TradedExpiries) -> Exception | None:
        """Store ``symbol``'s chain, or keep the last one and return why not."""
        try:
            doc = self._chain(symbol, now, traded)
        except REDIS_ERRORS:
            raise
        except Exception as exc:  # one symbol's failure, whatever it is, must not cost the others
            if isinstance(exc, PayloadRefused):
                self.refuse(exc.surface, exc.reason)
            self._keep_last(symbol, now, exc)
            return exc
        self.store.set(keys.option_chain(symbol), doc.to_redis())
        self.store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.chain_refreshed(
            symbol, clock.wall_epoch(), len(doc.rows), doc.divergent, doc.dropped))
        self.store.hdel(keys.data_stale(), StaleFeeds.field(symbol, OPTIONS_CHAIN_FEED))
        self.report.stored.append(symbol)
        log.info("%s chain: %d rows over %s (%d divergent from vendor, dropped %s), spot %.2f from %s", symbol,
                 len(doc.rows), ",".join(d.isoformat() for d in doc.expiries), doc.divergent,
                 dict(doc.dropped) or "none", doc.spot, doc.spot_source)
        return None

    def _fetch_rows(self, symbol: str, traded: expiries.TradedExpiries) -> tuple[list[Any], list[date], list[str]]:
        """Every traded expiry's rows, the expiry each row was asked for, and the expiries AV had none of."""
        rows: list[Any] = []
        requested: list[date] = []
        missing = []
        for expiry in traded.dates:
            got = self.client.get("REALTIME_OPTIONS", symbol=symbol, require_greeks="true",
                                  expiration=expiry.isoformat())
            data = [] if got.kind == "no_data" else chain_parse.payload_rows(got.body)
            if not data:
                missing.append(expiry.isoformat())
                continue
            rows.extend(data)
            requested.extend([expiry] * len(data))
        return rows, requested, missing

    def _chain(self, symbol: str, now: datetime, traded: expiries.TradedExpiries) -> OptionChain:
        rows, requested, missing = self._fetch_rows(symbol, traded)
        if not rows:
            raise ProviderError("no_data", f"Alpha Vantage REALTIME_OPTIONS {symbol}: no rows for any traded expiry")
        q = DIV_YIELD.get(symbol, 0.0)
        dropped: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        try:
            cols = chain_parse.read_rows(rows, set(traded.dates), dropped, symbol=symbol, requested=requested)
            spot, spot_source = self._spot(symbol, now, cols, q)
            parsed = chain_parse.price_chain(cols, spot, now, RATE, q, dropped)
            refused = parsed.vendor_refused
        finally:
            self.store.count_rejects(chain_parse.SURFACE_CHAIN, dropped + refused)
        if len(parsed) == 0:
            raise DataError(f"{symbol}: all {len(rows)} rows dropped ({dict(parsed.dropped)})")
        return chain_document(symbol, now, spot, spot_source, traded, missing, parsed)

    def _keep_last(self, symbol: str, now: datetime, exc: Exception) -> None:
        kind = exc.kind if isinstance(exc, ProviderError) else type(exc).__name__
        why = str(exc) if isinstance(exc, (ProviderError, DataError)) else f"{kind}: {exc}"
        self.report.failed[f"{symbol} chain"] = why
        metrics = keys.alpha_vantage_metrics()
        key = keys.option_chain(symbol)
        last = OptionChain.from_redis(self.store.get(key), key=key.name)
        age_s = now.timestamp() - last.as_of_epoch if isinstance(last, OptionChain) else None
        age = "none" if age_s is None else f"{age_s:.0f}"
        self.store.hupdate(metrics, AlphaVantageMetrics.chain_kept(symbol, age_s, why))
        recorded = AlphaVantageMetrics.from_redis(self.store.hgetall(metrics), key=metrics.name)
        ok_at = recorded.chain_ok_at(symbol) if isinstance(recorded, AlphaVantageMetrics) else None
        stale = StaleFeeds({StaleFeeds.field(symbol, OPTIONS_CHAIN_FEED): ok_at or clock.wall_epoch()})
        self.store.hset(keys.data_stale(), stale.to_redis())
        if isinstance(exc, ProviderError) and exc.fatal:
            self.fatal = exc
            self.stop.set()
            log.error("%s", exc)
            return
        log.warning("%s chain not refreshed (%s: %s); keeping the last good one (age %s s)", symbol, kind, why, age)

    # --- spot ----------------------------------------------------------------------------------

    def _quote_as_of(self, symbol: str) -> float | None:
        key = keys.quote(symbol)
        quote = Quote.from_redis(self.store.hgetall(key), key=key.name)
        return quote.as_of if isinstance(quote, Quote) else None

    def _live_ib_spot(self, symbol: str, now: datetime) -> float | None:
        """The IB spot when the live stream rewrote the quote since this process last looked, else None."""
        key = keys.quote(symbol)
        quote = Quote.from_redis(self.store.hgetall(key), key=key.name)
        as_of = quote.as_of if isinstance(quote, Quote) else None
        seen, self._quote_seen[symbol] = self._quote_seen.get(symbol), as_of
        if as_of is not None and as_of == seen:
            log.debug("%s: the IB quote is unchanged since this process last looked (as of %.3f)", symbol, as_of)
            return None
        return ib_spot(quote, now)

    def _spot(self, symbol: str, now: datetime, cols: chain_parse.Columns, q: float) -> tuple[float, str]:
        ib = self._live_ib_spot(symbol, now)
        if ib is not None:
            why = chain_parse.spot_problem(ib, cols, now, RATE, q)
            if not why:
                return ib, "ib_quote"
            log.warning("%s: IB spot %.4f does not fit the chain (%s); asking GLOBAL_QUOTE", symbol, ib, why)
        got = self.client.get("GLOBAL_QUOTE", symbol=symbol)
        if got.kind == "no_data":
            raise ProviderError("no_data", f"Alpha Vantage GLOBAL_QUOTE {symbol}: no price")
        price = chain_parse.global_quote_price(got.body, symbol)
        why = chain_parse.spot_problem(price, cols, now, RATE, q)
        if why:
            raise PayloadRefused(chain_parse.SURFACE_QUOTE, why,
                                 f"Alpha Vantage GLOBAL_QUOTE {symbol}: price {price!r} cannot price the chain")
        return price, "alpha_vantage_global_quote"

    # --- news ----------------------------------------------------------------------------------

    def _news_or_keep(self, symbol: str, now: datetime) -> None:
        rejected: Counter[str] = Counter()
        try:
            got = self.client.get("NEWS_SENTIMENT", tickers=symbol, sort="LATEST", limit="50")
            body = got.body if got.kind == "ok" and got.body is not None else {"feed": []}
            value = news.aggregate(body, symbol, now, rejected)
            self.store.hset(keys.news_sentiment(symbol), value.to_redis())
        except REDIS_ERRORS:
            raise
        except Exception as exc:  # a bad news body must not cost the next symbol's chain
            if isinstance(exc, PayloadRefused):
                rejected[exc.reason] += 1
            why = str(exc) if isinstance(exc, (ProviderError, DataError)) else f"{type(exc).__name__}: {exc}"
            self.report.failed[f"{symbol} news"] = why
            self.store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.news_failed())
            log.warning("%s news not refreshed: %s", symbol, why)
        finally:
            self.store.count_rejects(news.SURFACE, rejected)


def provider_down(failure: Exception | None) -> bool:
    """Alpha Vantage unreachable, erroring or throttling us: the symbol's news call would only pile on."""
    if isinstance(failure, BudgetExhausted):
        return True
    return isinstance(failure, ProviderError) and failure.kind in ("throttled", "network", "http_error")


def chain_document(symbol: str, now: datetime, spot: float, spot_source: str, traded: expiries.TradedExpiries,
                   missing: list[str], parsed: chain_parse.ParsedChain) -> OptionChain:
    """The value written to ``options:{sym}:chain`` (the fuzz suite stores and re-reads exactly this)."""
    return OptionChain(symbol=symbol, as_of=now, spot=spot, rate=RATE, div_yield=DIV_YIELD.get(symbol, 0.0),
                       expiries=tuple(traded.dates), rows=tuple(chain_parse.chain_rows(parsed)), source=SOURCE,
                       spot_source=spot_source, expiry_roles=traded.roles(), missing_expiries=tuple(missing),
                       units=UNITS, dropped={k: n for k, n in sorted(parsed.dropped.items()) if n})


def ib_spot(quote: Quote | Absent, now: datetime) -> float | None:
    """Mid of a fresh two-sided IB quote, else its last; None when absent, malformed or stale."""
    if isinstance(quote, Absent) or not -5.0 <= quote.age_s(now.timestamp()) <= QUOTE_MAX_AGE_S:
        if isinstance(quote, Absent):
            log.debug("no IB quote for spot: %s", quote)
        return None
    return quote.spot


def build(store: Store, settings: Settings, symbols: tuple[str, ...], stop: threading.Event,
          window_s: float = 60.0, retry: RetryPolicy | None = None) -> ChainsCycle:
    """Wire the shared bucket, the token gauge and the metrics and rejects counters into a client and a cycle."""
    shape = BucketShape(settings.alpha_vantage_rpm, window_s)
    bucket = TokenBucket(store, shape, stop=stop)
    gauge = TokenGauge(store, shape)

    def acquire() -> None:
        bucket.acquire(ACQUIRE_MAX_WAIT_S)
        gauge.taken()

    def observe(kind: str) -> None:
        cycle.observe(kind)

    def refuse(surface: str, reason: str) -> None:
        cycle.refuse(surface, reason)

    client = AlphaVantageClient(settings.alpha_vantage_url, settings.alpha_vantage_api_key, acquire, observe,
                                retry=retry, stop=stop, refuse=refuse)
    cycle = ChainsCycle(store, client, symbols, stop, gauge=gauge)
    return cycle
