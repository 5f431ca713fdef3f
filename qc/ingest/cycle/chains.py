"""One `qc chains` cycle: per symbol, spot → the traded expiries from Alpha Vantage → parse → Redis.

Glue only (the rules live in expiries, chain_parse, news and alphavantage). What it promises:

- Every HTTP attempt takes a token from the shared bucket first and is counted by class in
  ``monitoring:alpha_vantage:metrics`` (``requests``, ``ok``, ``throttled``…, ``tokens_left``).
- Spot: the IB quote ``qc stream`` keeps in ``market:{sym}:quote`` (mid of a two-sided quote, else
  last) when at most ``QUOTE_MAX_AGE_S`` old; otherwise GLOBAL_QUOTE (one more request).
- Budget per symbol and cycle: one REALTIME_OPTIONS call per traded expiry (3–4, with
  ``expiration=``: a few hundred rows each instead of a whole chain of thousands), at most one
  GLOBAL_QUOTE, one NEWS_SENTIMENT: ≤ 6, so SPY+QQQ+IWM every 5 min is ≤ 18 requests (≈ 4 rpm).
- All or nothing per symbol: the chain is written only when every expiry call ended ok or empty
  and some rows survived parsing. Otherwise the last good chain stays (its TTL still runs), the
  failure is logged in one line and counted, its age goes to the metrics hash
  (``chain_age_s:{sym}``) and the feed is marked in ``monitoring:data:stale``.
- A rejected key or a plan without REALTIME_OPTIONS is fatal: recorded in ``fatal`` and the worker
  is stopped, so the command can exit with one line naming the setting or the plan.

Rates: r = ``RATE`` (continuous; qc has no treasury curve yet) and q from ``DIV_YIELD`` (trailing
ETF yields, approximate); both are written into the chain so any consumer can reproduce the Greeks.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime
from typing import Any

from qc.core import clock, keys
from qc.core.config import Settings
from qc.core.errors import DataError
from qc.ingest import chain_parse, expiries, news
from qc.ingest.codec import Absent, OptionChain, Quote
from qc.ingest.cycle.alphavantage import AlphaVantageClient, ProviderError, RetryPolicy
from qc.ingest.cycle.ratelimit import BucketShape, BudgetExhausted, TokenBucket
from qc.runtime.codec import OPTIONS_CHAIN_FEED, AlphaVantageMetrics, StaleFeeds
from qc.runtime.store import Store

log = logging.getLogger(__name__)

SOURCE = "alpha_vantage_realtime"
RATE = 0.04
DIV_YIELD = {"SPY": 0.013, "QQQ": 0.006, "IWM": 0.012}
QUOTE_MAX_AGE_S = 30.0
ACQUIRE_MAX_WAIT_S = 60.0
UNITS = ("qc Greeks per analytics/greeks.py: delta/gamma per $1, vega and vanna per vol point, theta and charm "
         "per calendar day, T to the settlement instant; *_vendor: Alpha Vantage's, T in whole days / 365")


class ChainsCycle:
    """Callable as a Worker cycle; holds the client, the config and the last fatal provider error."""

    def __init__(self, store: Store, client: AlphaVantageClient, symbols: tuple[str, ...],
                 stop: threading.Event, with_news: bool = True) -> None:
        self.store = store
        self.client = client
        self.symbols = symbols
        self.stop = stop
        self.with_news = with_news
        self.fatal: ProviderError | None = None

    def __call__(self, now: datetime) -> None:
        traded = expiries.traded_expiries(now)
        for symbol in self.symbols:
            if self.stop.is_set():
                break
            if not self._chain_or_keep(symbol, now, traded):
                if self.fatal is not None:
                    break
                continue
            if self.with_news:
                self._news(symbol, now)

    # --- chain ---------------------------------------------------------------------------------

    def _chain_or_keep(self, symbol: str, now: datetime, traded: expiries.TradedExpiries) -> bool:
        try:
            doc = self._chain(symbol, now, traded)
        except (ProviderError, BudgetExhausted, DataError) as exc:
            self._keep_last(symbol, now, exc)
            return False
        self.store.set(keys.option_chain(symbol), doc.to_redis())
        self.store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.chain_refreshed(
            symbol, clock.wall_epoch(), len(doc.rows), doc.divergent, doc.dropped))
        self.store.hdel(keys.data_stale(), StaleFeeds.field(symbol, OPTIONS_CHAIN_FEED))
        log.info("%s chain: %d rows over %s (%d divergent from vendor, dropped %s), spot %.2f from %s", symbol,
                 len(doc.rows), ",".join(d.isoformat() for d in doc.expiries), doc.divergent,
                 dict(doc.dropped) or "none", doc.spot, doc.spot_source)
        return True

    def _chain(self, symbol: str, now: datetime, traded: expiries.TradedExpiries) -> OptionChain:
        spot, spot_source = self._spot(symbol, now)
        rows: list[Any] = []
        missing = []
        for expiry in traded.dates:
            got = self.client.get("REALTIME_OPTIONS", symbol=symbol, require_greeks="true",
                                  expiration=expiry.isoformat())
            data = got.body.get("data") if got.body is not None else None
            if got.kind == "no_data" or not data:
                missing.append(expiry.isoformat())
                continue
            if not isinstance(data, list):
                raise DataError(f"{symbol} REALTIME_OPTIONS: data is a {type(data).__name__}, expected a list")
            rows.extend(data)
        if not rows:
            raise ProviderError("no_data", f"Alpha Vantage REALTIME_OPTIONS {symbol}: no rows for any traded expiry")
        q = DIV_YIELD.get(symbol, 0.0)
        parsed = chain_parse.parse_chain(rows, spot, now, RATE, q, wanted=set(traded.dates))
        if len(parsed) == 0:
            raise DataError(f"{symbol}: all {len(rows)} rows dropped ({dict(parsed.dropped)})")
        return OptionChain(symbol=symbol, as_of=now, spot=spot, rate=RATE, div_yield=q, expiries=tuple(traded.dates),
                           rows=tuple(chain_parse.chain_rows(parsed)), source=SOURCE, spot_source=spot_source,
                           expiry_roles=traded.roles(), missing_expiries=tuple(missing), units=UNITS,
                           dropped={k: n for k, n in sorted(parsed.dropped.items()) if n})

    def _keep_last(self, symbol: str, now: datetime, exc: Exception) -> None:
        kind = exc.kind if isinstance(exc, ProviderError) else type(exc).__name__
        metrics = keys.alpha_vantage_metrics()
        key = keys.option_chain(symbol)
        last = OptionChain.from_redis(self.store.get(key), key=key.name)
        age_s = now.timestamp() - last.as_of_epoch if isinstance(last, OptionChain) else None
        age = "none" if age_s is None else f"{age_s:.0f}"
        self.store.hupdate(metrics, AlphaVantageMetrics.chain_kept(symbol, age_s, str(exc)))
        recorded = AlphaVantageMetrics.from_redis(self.store.hgetall(metrics), key=metrics.name)
        ok_at = recorded.chain_ok_at(symbol) if isinstance(recorded, AlphaVantageMetrics) else None
        stale = StaleFeeds({StaleFeeds.field(symbol, OPTIONS_CHAIN_FEED): ok_at or clock.wall_epoch()})
        self.store.hset(keys.data_stale(), stale.to_redis())
        if isinstance(exc, ProviderError) and exc.fatal:
            self.fatal = exc
            self.stop.set()
            log.error("%s", exc)
            return
        log.warning("%s chain not refreshed (%s: %s); keeping the last good one (age %s s)", symbol, kind, exc, age)

    # --- spot and news -------------------------------------------------------------------------

    def _spot(self, symbol: str, now: datetime) -> tuple[float, str]:
        key = keys.quote(symbol)
        ib = ib_spot(Quote.from_redis(self.store.hgetall(key), key=key.name), now)
        if ib is not None:
            return ib, "ib_quote"
        got = self.client.get("GLOBAL_QUOTE", symbol=symbol)
        body = got.body or {}
        quote = next((v for k, v in body.items() if k.startswith("Global Quote")), None) or {}
        try:
            price = float(quote["05. price"])
        except (KeyError, TypeError, ValueError):
            raise ProviderError("no_data", f"Alpha Vantage GLOBAL_QUOTE {symbol}: no price") from None
        if not price > 0:
            raise DataError(f"Alpha Vantage GLOBAL_QUOTE {symbol}: price {price}")
        return price, "alpha_vantage_global_quote"

    def _news(self, symbol: str, now: datetime) -> None:
        try:
            got = self.client.get("NEWS_SENTIMENT", tickers=symbol, sort="LATEST", limit="50")
        except (ProviderError, BudgetExhausted) as exc:
            self.store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.news_failed())
            log.warning("%s news not refreshed: %s", symbol, exc)
            return
        self.store.hset(keys.news_sentiment(symbol), news.aggregate(got.body or {}, symbol, now).to_redis())


def ib_spot(quote: Quote | Absent, now: datetime) -> float | None:
    """Mid of a fresh two-sided IB quote, else its last; None when absent, malformed or stale."""
    if isinstance(quote, Absent) or not -5.0 <= quote.age_s(now.timestamp()) <= QUOTE_MAX_AGE_S:
        if isinstance(quote, Absent):
            log.debug("no IB quote for spot: %s", quote)
        return None
    return quote.spot


def tokens_left(store: Store, shape: BucketShape, now_epoch: float) -> int:
    """Requests the plan still allows in the trailing window after this one (every process counted).

    This, not the bucket's momentary burst tokens, is what `qc status` alerts on (< 10): the burst
    empties after every cycle and refills in seconds, so it would page on every healthy cycle.
    """
    log_key = keys.av_requests_log()
    store.record_event(None, log_key, now_epoch, member=f"{now_epoch!r}:{uuid.uuid4().hex[:8]}")
    used = store.count_events(log_key, now_epoch - shape.window_s)
    return max(0, shape.budget - used)


def build(store: Store, settings: Settings, symbols: tuple[str, ...], stop: threading.Event,
          window_s: float = 60.0, retry: RetryPolicy | None = None) -> ChainsCycle:
    """Wire the shared bucket and the metrics counters into a client and a cycle."""
    metrics = keys.alpha_vantage_metrics()
    bucket = TokenBucket(store, BucketShape(settings.alpha_vantage_rpm, window_s), stop=stop)

    def acquire() -> None:
        bucket.acquire(ACQUIRE_MAX_WAIT_S)
        store.hupdate(metrics, AlphaVantageMetrics.tokens(tokens_left(store, bucket.shape, clock.wall_epoch())))

    def observe(kind: str) -> None:
        store.hupdate(metrics, AlphaVantageMetrics.response(kind))

    client = AlphaVantageClient(settings.alpha_vantage_url, settings.alpha_vantage_api_key, acquire, observe,
                                retry=retry, stop=stop)
    return ChainsCycle(store, client, symbols, stop)

