"""The ``symbol:<SYM>`` panel: dealer positioning, toxicity, the book by venue, regime, skew, flow, the chain's age.

Every value is read through its writer's codec (``qc.analytics.codec``, ``qc.ingest.codec``,
``qc.runtime.codec``) in one pipelined round trip, and each section carries its own freshness
(``as_of``, ``age_s``, ``stale``, ``stale_after_s``; ``missing`` with what to start when there is
nothing): a dead `qc analytics` greys the GEX section while the live book stays lit. The panel
itself is as fresh as its live market data (the quote `qc stream` stamps on every update).

Thresholds: the feeds' (`qc status` alerts on a feed silent over 10 s; a little more here so a
simulator at speed does not flicker), `qc gex`'s 120 s for positioning, the chain's own 600 s.
The chain (about 1 MB) is decoded only when `qc chains`' stamp in the Alpha Vantage metrics moves.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from qc.analytics import report as gex_report
from qc.analytics.codec import (
    FlowClusters,
    GexPending,
    GexProfile,
    GexSnapshot,
    GexStrikes,
    Imbalance,
    Regime,
    ToxSample,
    Vpin,
    gex_from_redis,
)
from qc.core import clock, keys
from qc.core.codec import Absent
from qc.dashboard import memo
from qc.dashboard.docs import Doc, envelope, missing, num, nums
from qc.dashboard.series import SessionSeries
from qc.ingest.codec import Book, OptionChain, Quote, VenueShares
from qc.runtime.codec import AlphaVantageMetrics, ChainHealth
from qc.runtime.store import Store

QUOTE_STALE_S = 15.0
ANALYTICS_STALE_S = 30.0  # VPIN and imbalance are rewritten every second
GEX_STALE_S = gex_report.MAX_AGE_S
REGIME_STALE_S = gex_report.MAX_AGE_S  # written with positioning, every 30 s
FLOW_STALE_S = 240.0  # refit every 60 s
CHAIN_STALE_S = OptionChain.MAX_AGE_S
BOOK_LEVELS = 10
SERIES_DIGITS = 4
START_STREAM = "no data yet: start `qc stream` (or `qc up`)"
START_ANALYTICS = "start `qc analytics` (or `qc up`)"
START_CHAINS = "start `qc chains` (or `qc up`)"


def _reads(symbol: str) -> list[tuple[str, keys.Key, str]]:
    """(name, key, command) of every value the panel reads, in pipeline order."""
    return [("quote", keys.quote(symbol), "hgetall"), ("book", keys.book(symbol), "hgetall"),
            ("venues", keys.venue_shares(symbol), "hgetall"), ("vpin", keys.vpin(symbol), "hgetall"),
            ("imbalance", keys.book_imbalance(symbol), "hgetall"), ("gex", keys.gex(symbol), "hgetall"),
            ("strikes", keys.gex_by_strike(symbol), "get"), ("profile", keys.gex_profile(symbol), "get"),
            ("regime", keys.regime(symbol), "hgetall"), ("flow", keys.flow_clusters(symbol), "get"),
            ("av", keys.alpha_vantage_metrics(), "hgetall")]


def read_raw(store: Store, symbol: str) -> dict[str, Any]:
    """Every raw value of the panel in one round trip (empty hashes read as None, as the codecs expect)."""
    reads = _reads(symbol)
    pipe = store.client.pipeline(transaction=False)
    for _, key, command in reads:
        getattr(pipe, command)(key.name)
    return {name: (raw or None) for (name, _, _), raw in zip(reads, pipe.execute(), strict=True)}


def build(store: Store, symbol: str, now: float) -> Doc:
    raw = read_raw(store, symbol)
    quote = Quote.from_redis(raw["quote"], key=keys.quote(symbol).name)
    vpin = Vpin.from_redis(raw["vpin"], key=keys.vpin(symbol).name)
    imbalance = Imbalance.from_redis(raw["imbalance"], key=keys.book_imbalance(symbol).name)
    av = AlphaVantageMetrics.from_redis(raw["av"], key=keys.alpha_vantage_metrics().name)
    doc: Doc = {"symbol": symbol}
    doc["quote"] = quote_section(quote, now)
    doc["book"] = book_section(symbol, raw["book"], raw["venues"], quote, now)
    doc["vpin"] = vpin_section(vpin, now)
    doc["imbalance"] = imbalance_section(imbalance, now)
    doc["series"] = record_series(store, symbol)
    doc.update(positioning_sections(symbol, raw, now))
    doc["regime"] = regime_section(Regime.from_redis(raw["regime"], key=keys.regime(symbol).name), now)
    doc["flow"] = flow_section(FlowClusters.from_redis(raw["flow"], key=keys.flow_clusters(symbol).name), now)
    doc["chain"] = chain_section(store, symbol, av, now)
    live = quote.as_of if isinstance(quote, Quote) else None
    head = envelope(live, now, QUOTE_STALE_S)
    sections = ("quote", "vpin", "imbalance", "gex", "regime", "flow", "chain")
    if all("missing" in doc[s] for s in sections):
        head["missing"] = f"no data for {symbol}: start `qc stream`, `qc chains` and `qc analytics` (or `qc up`)"
    elif live is None:
        head["stale_reason"] = doc["quote"]["missing"]
    return head | doc


# --- market data ---------------------------------------------------------------------------------


def quote_section(quote: Quote | Absent, now: float) -> Doc:
    if isinstance(quote, Absent):
        return missing(_why(quote, START_STREAM), QUOTE_STALE_S)
    spread = None if quote.mid is None or quote.ask is None or quote.bid is None else quote.ask - quote.bid
    return envelope(quote.as_of, now, QUOTE_STALE_S) | {
        "bid": num(quote.bid), "ask": num(quote.ask), "last": num(quote.last), "mid": num(quote.mid),
        "spot": num(quote.spot), "spread": num(spread), "bid_size": num(quote.bid_size),
        "ask_size": num(quote.ask_size), "volume": num(quote.volume)}


def book_section(symbol: str, raw_book: Any, raw_venues: Any, quote: Quote | Absent, now: float) -> Doc:
    """The L2 book by level with each level's venue (IB's market maker or exchange), as `qc stream` stored it.

    The book hash has no stamp of its own: `qc stream` writes it with the quote, whose ``as_of`` dates it.
    """
    book = Book.from_redis(raw_book, key=keys.book(symbol).name)
    if isinstance(book, Absent):
        return missing(_why(book, START_STREAM), QUOTE_STALE_S)
    venues = VenueShares.from_redis(raw_venues, key=keys.venue_shares(symbol).name)
    as_of = quote.as_of if isinstance(quote, Quote) else None
    out = envelope(as_of, now, QUOTE_STALE_S, "" if as_of is not None else "the quote that dates the book is missing")
    out |= {"levels": len(book.bids) + len(book.asks), "bid_levels": len(book.bids), "ask_levels": len(book.asks),
            "crossed": book.crossed,
            "bids": [{"price": lv.price, "size": lv.size, "venue": lv.venue} for lv in book.bids[:BOOK_LEVELS]],
            "asks": [{"price": lv.price, "size": lv.size, "venue": lv.venue} for lv in book.asks[:BOOK_LEVELS]],
            "venues": None if isinstance(venues, Absent) else {
                "bid": dict(venues.bid), "ask": dict(venues.ask), "bid_herfindahl": num(venues.bid_herfindahl),
                "ask_herfindahl": num(venues.ask_herfindahl)}}
    return out


# --- toxicity --------------------------------------------------------------------------------------


def vpin_section(vpin: Vpin | Absent, now: float) -> Doc:
    if isinstance(vpin, Absent):
        return missing(_why(vpin, START_ANALYTICS), ANALYTICS_STALE_S)
    return envelope(vpin.as_of.timestamp(), now, ANALYTICS_STALE_S, vpin.stale_reason) | {
        "value": num(vpin.value), "bucket_volume": num(vpin.bucket_volume), "buckets": vpin.buckets_in_window,
        "mode": vpin.mode, "reason": vpin.reason or None, "input_age_s": num(vpin.input_age_s)}


def imbalance_section(imb: Imbalance | Absent, now: float) -> Doc:
    if isinstance(imb, Absent):
        return missing(_why(imb, START_ANALYTICS), ANALYTICS_STALE_S)
    return envelope(imb.as_of.timestamp(), now, ANALYTICS_STALE_S, imb.stale_reason) | {
        "value": num(imb.imbalance), "microprice": num(imb.microprice), "spread": num(imb.spread),
        "levels": imb.levels, "input_age_s": num(imb.input_age_s)}


def record_series(store: Store, symbol: str) -> dict[str, object]:
    """The session's VPIN and imbalance series from `qc analytics`' stream, read incrementally.

    The first build reads the whole stream (a session at most); later builds read only the entries after
    the last one seen, so every second `qc analytics` wrote is in the series, watched or not, and a
    dashboard restarted mid-session shows the session from its start.
    """
    memory = memo.state(store)
    series: SessionSeries = memory.setdefault(("series", symbol), SessionSeries())
    key = keys.toxicity_series(symbol)
    last = memory.get(("series_id", symbol))
    entries = store.client.xrange(key.name, min=f"({last}" if last else "-", max="+")
    for entry_id, fields in entries:
        sample = ToxSample.from_redis(fields, key=f"{key.name}#{entry_id}")
        if isinstance(sample, ToxSample):  # chart precision: a smaller document for every push
            day = clock.new_york_date(datetime.fromtimestamp(sample.t, timezone.utc)).isoformat()
            series.add(round(sample.t, 2), day, _rounded(sample.vpin), _rounded(sample.imbalance))
    if entries:
        memory[("series_id", symbol)] = entries[-1][0]
    return series.to_doc()


def _rounded(value: float | None) -> float | None:
    figure = num(value)
    return None if figure is None else round(float(figure), SERIES_DIGITS)


# --- dealer positioning, skew ----------------------------------------------------------------------


def positioning_sections(symbol: str, raw: dict[str, Any], now: float) -> Doc:
    """``gex`` (headline figures, levels, regime labels), ``skew``, ``by_strike`` and ``profile``."""
    gex_key = keys.gex(symbol).name
    stored = gex_from_redis(raw["gex"], key=gex_key)
    if not isinstance(stored, GexSnapshot):
        why = (f"no positioning yet: {stored.reason}" if isinstance(stored, GexPending)
               else _why(stored, "start `qc chains` and `qc analytics` (or `qc up`)"))
        return {"gex": missing(why, GEX_STALE_S), "skew": missing(why, GEX_STALE_S), "by_strike": None,
                "profile": None}
    strikes = GexStrikes.from_redis(raw["strikes"], key=keys.gex_by_strike(symbol).name)
    profile = GexProfile.from_redis(raw["profile"], key=keys.gex_profile(symbol).name)
    now_dt = datetime.fromtimestamp(now, timezone.utc)
    report = gex_report.from_snapshot(symbol, stored, now_dt, strikes, profile)
    f, labels = report.fields, report.labels
    head = envelope(stored.as_of.timestamp(), now, GEX_STALE_S, "; ".join(report.stale_reasons))
    gex = head | {
        "spot": num(report.spot), "spot_source": report.spot_source, "spot_age_s": num(report.spot_age_s),
        "spot_reason": report.spot_reason or None, "net_gex": num(f.get("total")), "dex_usd": num(f.get("dex_usd")),
        "vanna_usd_per_volpt": num(f.get("vanna_usd_per_volpt")), "charm_usd_per_day": num(f.get("charm_usd_per_day")),
        "zero_gamma": num(f.get("zero_gamma")), "zero_gamma_distance_pct": num(f.get("zero_gamma_distance_pct")),
        "zero_gamma_reason": labels.get("zero_gamma_reason"), "call_wall": num(f.get("call_wall")),
        "put_wall": num(f.get("put_wall")), "call_oi_wall": num(f.get("call_oi_wall")),
        "put_oi_wall": num(f.get("put_oi_wall")), "share_0_1dte_abs_gex": num(f.get("share_0_1dte_abs_gex")),
        "gamma_regime": labels.get("gamma_regime"), "regime": labels.get("regime"),
        "convention": labels.get("convention"), "gamma_source": labels.get("gamma_source"),
        "expiries": list(report.expiries), "contracts_used": report.contracts_used,
        "chain_as_of": report.chain_as_of.isoformat() if report.chain_as_of else None,
        "chain_age_s": None if report.chain_age_s is None else float(round(report.chain_age_s))}
    skew = head | {"skew_25d": num(f.get("skew_25d")), "skew_25d_normalised": num(f.get("skew_25d_normalised")),
                   "skew_moneyness": num(f.get("skew_moneyness")), "reason": labels.get("skew_reason")}
    by_strike = None
    if isinstance(strikes, GexStrikes):
        puts = strikes.columns["put_gamma_usd_per_1pct"]
        by_strike = {"strike": list(strikes.strike), "net": nums(strikes.columns["gex_usd_per_1pct"]),
                     "call": nums(strikes.columns["call_gamma_usd_per_1pct"]),
                     "put": nums(None if v is None else -v for v in puts)}
    else:
        gex["by_strike_missing"] = _why(strikes, START_ANALYTICS)
    curve = None
    if isinstance(profile, GexProfile):
        curve = {"levels": list(profile.levels), "gex": nums(profile.gex_usd_per_1pct), "spot": profile.spot,
                 "zero_gamma": num(profile.zero_gamma), "crossings": list(profile.crossings)}
    else:
        gex["profile_missing"] = _why(profile, START_ANALYTICS)
    return {"gex": gex, "skew": skew, "by_strike": by_strike, "profile": curve}


# --- regime, flow, chain ---------------------------------------------------------------------------


def regime_section(regime: Regime | Absent, now: float) -> Doc:
    if isinstance(regime, Absent):
        return missing(_why(regime, START_ANALYTICS), REGIME_STALE_S)
    return envelope(regime.as_of.timestamp(), now, REGIME_STALE_S) | {
        "label": regime.label, "gamma_regime": regime.gamma_regime, "vol_band": regime.vol_band,
        "rv_1min_annualised": num(regime.rv_1min_annualised), "atm_iv_near": num(regime.atm_iv_near),
        "atm_iv_far": num(regime.atm_iv_far), "iv_minus_rv": num(regime.iv_minus_rv),
        "term_ratio": num(regime.term_ratio), "rv_percentile": num(regime.rv_percentile),
        "history_days": regime.history_days}


def flow_section(flow: FlowClusters | Absent, now: float) -> Doc:
    if isinstance(flow, Absent):
        return missing(_why(flow, START_ANALYTICS), FLOW_STALE_S)
    return envelope(flow.as_of.timestamp(), now, FLOW_STALE_S) | {
        "label": flow.current, "reason": flow.reason, "counts": dict(flow.counts), "windows": flow.windows,
        "trades": flow.trades}


def chain_section(store: Store, symbol: str, av: AlphaVantageMetrics | Absent, now: float) -> Doc:
    """The option chain's age (market clock, like its ``as_of``), size, and `qc chains`' last error for it."""
    health = av.chains.get(symbol) if isinstance(av, AlphaVantageMetrics) else None
    stamp = None if health is None or health.ok_at is None else health.ok_at
    chain = chain_summary(store, symbol, stamp)
    if isinstance(chain, str):
        out = missing(chain, CHAIN_STALE_S)
    else:
        figures = {k: v for k, v in chain.items() if k != "as_of_epoch"}
        out = envelope(chain["as_of_epoch"], now, CHAIN_STALE_S) | figures
    return out | _chain_health(health)


def _chain_health(health: ChainHealth | None) -> Doc:
    if health is None:
        return {"last_error": None}
    return {"last_error": health.last_error or None, "kept_age_s": num(health.age_s)}


def chain_summary(store: Store, symbol: str, stamp: float | None) -> dict[str, Any] | str:
    """The chain's stamp and counts, or why there is none; decoded again only when `qc chains`' stamp moved.

    Without a stamp (a chain written by something other than `qc chains`), the text is compared instead.
    """
    memory = memo.state(store)
    held = memory.get(("chain", symbol))
    if stamp is not None and held is not None and held[0] == ("stamp", stamp):
        cached: dict[str, Any] | str = held[1]
        return cached
    key = keys.option_chain(symbol)
    raw = store.get(key)
    if stamp is None and held is not None and held[0] == ("text", raw):
        cached = held[1]
        return cached
    chain = OptionChain.from_redis(raw, key=key.name)
    summary: dict[str, Any] | str
    if isinstance(chain, Absent):
        summary = _why(chain, START_CHAINS)
    else:
        summary = {"as_of_epoch": chain.as_of_epoch, "rows": len(chain.rows),
                   "expiries": [d.isoformat() for d in chain.expiries], "spot": chain.spot, "source": chain.source,
                   "divergent": chain.divergent, "rejected": sum(chain.rejected.values()),
                   "dropped": sum(chain.dropped.values())}
    memory[("chain", symbol)] = (("stamp", stamp) if stamp is not None else ("text", raw), summary)
    return summary


def _why(absent: Absent, start: str) -> str:
    """A missing value says what to start; an unreadable one says what is wrong with it."""
    if absent.reason == "missing":
        return f"{absent.key}: missing: {start}"
    return str(absent)
