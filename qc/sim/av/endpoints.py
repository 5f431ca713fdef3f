"""One method per Alpha Vantage ``function``: query parameters + the market model → AV's JSON body.

Validation answers the way AV does (reference §1.9): a known function with a bad or missing
parameter gets ``Error Message: Invalid API call…``; GLOBAL_QUOTE answers an unknown symbol with an
empty ``{"Global Quote": {}}`` (no error key, as public clients record); NEWS_SENTIMENT answers bad
inputs with ``Information: Invalid inputs…``. Entitlement, keys and rate limits are the server's job.

Limits of the model, precisely: the model has regular-session bars only, so TIME_SERIES_INTRADAY
ignores ``extended_hours`` (always 09:30–16:00) and ``month``; OptionQuote has no displayed sizes
(see ``av_payloads._size``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone

from qc.core import clock
from qc.core.models import Bar
from qc.sim.av import news as av_news
from qc.sim.av import payloads as av_payloads
from qc.sim.av.payloads import Json
from qc.sim.market.events import MarketModel
from qc.sim.market.models import OptionQuote

Params = Mapping[str, str]
INTERVALS = {"1min": 1, "5min": 5, "15min": 15, "30min": 30, "60min": 60}
COMPACT_POINTS = 100
FULL_DAYS = 30
SESSION_MINUTES = 390
DELAY = timedelta(minutes=15)


class Endpoints:
    """AV's functions over one MarketModel; ``rate``/``div_yield`` are AV's own BSM inputs (§1.5)."""

    def __init__(self, model: MarketModel, rate: float, div_yield: float) -> None:
        self.model = model
        self.rate = rate
        self.div_yield = div_yield
        self._lock = threading.Lock()  # the model is not promised to be thread-safe
        self.table: dict[str, Callable[[Params, datetime], Json]] = {
            "REALTIME_OPTIONS": self.realtime_options, "HISTORICAL_OPTIONS": self.historical_options,
            "GLOBAL_QUOTE": self.global_quote, "TIME_SERIES_INTRADAY": self.intraday,
            "NEWS_SENTIMENT": self.news}

    def answer(self, function: str, params: Params, now: datetime) -> Json:
        """The body for one request; an unknown function gets AV's "does not exist" error."""
        handler = self.table.get(function)
        if handler is None:
            return av_payloads.unknown_function(function)
        with self._lock:
            return handler(params, now)

    def _symbol(self, params: Params) -> str | None:
        symbol = params.get("symbol", "").strip().upper()
        return symbol if symbol in self.model.symbols else None

    def realtime_options(self, params: Params, now: datetime) -> Json:
        """REALTIME_OPTIONS (§1.2): the model's chain now, AV-sorted, Greeks on request."""
        symbol = self._symbol(params)
        expiration = _date(params.get("expiration"))
        if symbol is None or expiration is False:
            return av_payloads.invalid_call("REALTIME_OPTIONS")
        quotes = self.model.option_chain(symbol, now)
        if expiration:
            quotes = [q for q in quotes if q.contract.expiry == expiration]
        want = params.get("contract", "").strip().upper()
        if want:
            quotes = [q for q in quotes if av_payloads.contract_id(q.contract) == want]
        day = clock.most_recent_session(now).day
        greeks = params.get("require_greeks", "false").strip().lower() == "true"
        spot = self.model.spot(symbol) if greeks else 0.0
        return self._chain("Realtime Options", quotes, day, spot if greeks else None)

    def historical_options(self, params: Params, now: datetime) -> Json:
        """HISTORICAL_OPTIONS (§1.3): the chain at ``date``'s settlement instant, Greeks always.

        Default date: the previous session. A day that is not a session, or whose close is still
        ahead of ``now``, has no chain: ``success`` with empty ``data``, as AV answers (§1.3).
        """
        symbol = self._symbol(params)
        prior = clock.session_on_or_before(clock.new_york_date(now) - timedelta(days=1)).day
        day = _date(params.get("date")) if params.get("date") else prior
        if symbol is None or not isinstance(day, date):
            return av_payloads.invalid_call("HISTORICAL_OPTIONS")
        session = clock.session(day)
        if session is None or session.close > now:
            return av_payloads.options_payload("Historical Options", [])
        quotes = self.model.option_chain(symbol, session.close)
        bars = self.model.history(symbol, session.close, 1)
        spot = bars[-1].close if bars else self.model.spot(symbol)
        return self._chain("Historical Options", quotes, day, spot)

    def _chain(self, endpoint: str, quotes: list[OptionQuote], day: date, spot: float | None) -> Json:
        quotes = sorted(quotes, key=av_payloads.av_sort_key)
        if spot is None:
            rows = [av_payloads.option_row(q, day, None) for q in quotes]
        else:
            greeks = av_payloads.av_greeks(quotes, spot, self.rate, self.div_yield, day)
            rows = [av_payloads.option_row(q, day, g) for q, g in zip(quotes, greeks, strict=True)]
        return av_payloads.options_payload(endpoint, rows)

    def global_quote(self, params: Params, now: datetime) -> Json:
        """GLOBAL_QUOTE (§1.6); ``entitlement=delayed`` renames the key and lags the price 15 min."""
        symbol = self._symbol(params)
        if not params.get("symbol", "").strip():
            return av_payloads.invalid_call("GLOBAL_QUOTE")
        if symbol is None:
            return {"Global Quote": {}}
        delayed = params.get("entitlement", "").strip().lower() == "delayed"
        at = now - DELAY if delayed else now
        session = clock.most_recent_session(at)
        today = [b for b in self._bars(symbol, min(at, session.close), session.open) if b.complete]
        prev = clock.session_on_or_before(session.day - timedelta(days=1))
        prev_bars = self.model.history(symbol, prev.close, 1)
        previous_close = prev_bars[-1].close if prev_bars else (today[0].open if today else 0.0)
        quote = self.model.quote(symbol)
        if delayed and today:
            volume = sum(b.volume for b in today)
            quote = dataclasses.replace(quote, ts=today[-1].ts, last=today[-1].close, volume=volume)
        return av_payloads.global_quote(symbol, quote, today, previous_close, session.day, delayed)

    def _bars(self, symbol: str, end: datetime, start: datetime) -> list[Bar]:
        minutes = max(1, int((end - start).total_seconds() // 60) + 1)
        return [b for b in self.model.history(symbol, end, minutes) if b.ts >= start]

    def intraday(self, params: Params, now: datetime) -> Json:
        """TIME_SERIES_INTRADAY (§1.7): complete 1-min bars from ``history`` rolled to ``interval``."""
        symbol = self._symbol(params)
        interval = params.get("interval", "")
        size = params.get("outputsize", "compact").strip().lower() or "compact"
        if symbol is None or interval not in INTERVALS or size not in ("compact", "full"):
            return av_payloads.invalid_call("TIME_SERIES_INTRADAY")
        width = INTERVALS[interval]
        delayed = params.get("entitlement", "").strip().lower() == "delayed"
        end = now - DELAY if delayed else now
        if size == "full":
            sessions = _sessions_between(end - timedelta(days=FULL_DAYS), end)
            minutes = sessions * SESSION_MINUTES
        else:
            minutes = (COMPACT_POINTS + 1) * width  # one extra bucket: the newest may be incomplete
        bars = [b for b in self.model.history(symbol, end, minutes) if b.complete]
        rolled = av_payloads.aggregate(bars, width)
        if size == "compact":
            rolled = rolled[-COMPACT_POINTS:]
        return av_payloads.intraday(symbol, rolled, interval, size == "full", delayed)

    def news(self, params: Params, now: datetime) -> Json:
        """NEWS_SENTIMENT (§1.8): seeded articles that mention every requested ticker."""
        tickers = [t.strip().upper() for t in params.get("tickers", "").split(",") if t.strip()]
        topics = [t.strip().lower() for t in params.get("topics", "").split(",") if t.strip()]
        sort = params.get("sort", "LATEST").strip().upper() or "LATEST"
        limit = params.get("limit", "50").strip() or "50"
        window = (_stamp(params.get("time_from")), _stamp(params.get("time_to")))
        if (any(t not in self.model.symbols for t in tickers) or any(t not in av_news.TOPICS for t in topics)
                or sort not in ("LATEST", "EARLIEST", "RELEVANCE") or not limit.isdigit() or False in window):
            return {"Information": av_news.INVALID_INPUTS}
        frm, to = (w if isinstance(w, datetime) else None for w in window)
        slots = av_news.slots(now, frm, to, min(int(limit), 1000), sort == "EARLIEST")
        feed = [av_news.article(k, tickers or list(self.model.symbols), topics) for k in slots]
        return av_news.news_payload(av_news.by_relevance(feed) if sort == "RELEVANCE" else feed)


def _date(text: str | None) -> date | bool | None:
    """None when absent, False when malformed (AV rejects it), else the date."""
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return False


def _stamp(text: str | None) -> datetime | bool | None:
    """AV's ``YYYYMMDDTHHMM``, read as UTC as public clients do (§1.8); False when malformed."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), "%Y%m%dT%H%M").replace(tzinfo=timezone.utc)
    except ValueError:
        return False


def _sessions_between(start: datetime, end: datetime) -> int:
    count, day = 0, clock.new_york_date(start)
    while day <= clock.new_york_date(end):
        count += clock.is_session(day)
        day += timedelta(days=1)
    return max(count, 1)
