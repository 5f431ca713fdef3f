"""The signal factors: typed market and analytics values in, one :class:`~qc.signals.model.Factor` out.

Pure: no Redis, no I/O, no wall clock. ``now`` (timezone-aware, UTC) is passed in, so replays and
live runs compute the same numbers from the same inputs.

Conventions, stated once (``qc.signals.model`` states the shared ones):

- A value lies in [-1, 1]; directional factors are + bullish (buy calls), - bearish (buy puts).
  Raw figures are mapped by ``tanh(x / scale)`` or a clipped ratio; each scale is a named constant
  below, in the input's own unit, so a reading of one "scale" maps to tanh(1) = 0.76.
- A factor **abstains** (``value`` None, ``reason`` says why) when its input is an
  :class:`~qc.core.codec.Absent` (the reason is the Absent's, e.g. the vpin hash: missing),
  when the writer marked it stale (``"stale: <writer's reason>"``), when it is older than
  ``max_age_s`` (``"stale: 340 s old > 120 s"``), or when the figure it needs does not exist (the
  writer's reason when it gave one). An abstention is never a zero: scoring drops it.
- ``age_s`` is seconds from the input's stamp to ``now``, floored at 0 like the analytics worker's
  ages (a stamp slightly ahead of ``now`` is clock skew, not a fresher reading). Codec values use
  their ``as_of`` (the time the writer computed them; the writer's own input age is in ``inputs``
  and its staleness verdict in ``stale_reason``); ``Quote`` and ``AuctionImbalance`` stamps are
  market-clock epochs; a factor built from two inputs is as old as the older one.
- ``inputs`` holds the raw numbers (and labels) the value came from, for `explain` output.

Sign conventions of the analytics figures (checked against their writers):

- GEX ``total``: dealer-signed net gamma exposure in $ per 1 % move; > 0 dealers long gamma (they
  sell rallies and buy dips: mean reversion), < 0 short gamma (they chase: momentum).
- ``zero_gamma_distance_pct`` = (zero_gamma / spot - 1) * 100 (``qc.analytics.chain_input``):
  positive when the flip level is *above* spot. Only its magnitude is used here: how far spot must
  move before the regime changes, i.e. how firmly established the current regime is.
- ``skew_25d`` = IV(25-delta put) - IV(25-delta call) in vol decimals, positive when puts are richer;
  ``skew_25d_normalised`` = skew_25d / ATM IV (``qc.analytics.skew``). Positive skew reads bearish.
- Book ``imbalance`` > 0 is bid-heavy (bullish); the microprice leans toward the thinner side, so a
  microprice above mid is bullish; auction ``imbalance`` is signed shares, + buy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from qc.analytics.codec import FlowClusters, GexSnapshot, Imbalance, Regime, Vpin
from qc.core.codec import Absent
from qc.core.models import BUY, SELL, Bar, Trade
from qc.ingest.codec import AuctionImbalance, NewsSentiment, Quote, TradeRow
from qc.signals.model import (
    AUCTION,
    BOOK_IMBALANCE,
    FLOW_CLUSTER,
    GAMMA_MODE,
    IV_RV,
    LAST_HALF_HOUR,
    MICROPRICE,
    NEWS,
    ORDER_FLOW,
    SKEW_0DTE,
    VPIN_CHANGE,
    VPIN_LEVEL,
    WALLS,
    Factor,
)

Inputs = dict[str, float | str | None]

DEFAULT_MAX_AGE_S = 120.0           # the analytics worker's own staleness bound (INPUT_STALE_S)
NEWS_MAX_AGE_S = 4 * 3600.0         # news sentiment is refreshed on a slow cadence
GAMMA_DISTANCE_SCALE_PCT = 1.0      # 1 % from the flip: tanh(1) = 0.76 of full conviction in the regime
GAMMA_NO_FLIP_MAGNITUDE = 0.5       # the sign of net GEX alone, when the profile has no zero crossing
VPIN_CHANGE_SCALE = 0.1             # a VPIN rise of 0.1 over the lookback
FLOW_RETURN_SCALE = 0.002           # a 20 bp recent move: full size for the flow-cluster reading
IV_RV_SCALE = 0.05                  # 5 vol points of IV over realised
SKEW_NORMALISED_SCALE = 0.25        # 25-delta risk reversal of a quarter of ATM IV
SKEW_RAW_SCALE = 0.05               # 5 vol points (the raw figure, when ATM IV is missing)
NEWS_SCALE = 0.35                   # Alpha Vantage relevance-weighted scores rarely pass ±0.35
LAST_HALF_HOUR_SCALE = 0.005        # a 50 bp day
ORDER_FLOW_MIN_VOLUME = 100.0       # shares of aggressor-signed volume: below a round lot is no reading
BAR_S = 60.0                        # the 1-minute bars of market:{sym}:bars:1min
LAST_BAR_LOOKBACK_H = 1.0           # the last closed bar is looked for this far back (bars stopped longer: none)


# --- helpers ------------------------------------------------------------------------------------


def _aware(now: datetime) -> None:
    """Refuse a naive ``now``: its epoch would silently be the host's local time."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware (UTC), got naive {now.isoformat()}")


def _age(now: datetime, as_of: datetime) -> float:
    return max(0.0, (now - as_of).total_seconds())


def _epoch_age(now: datetime, as_of: float) -> float:
    return max(0.0, now.timestamp() - as_of)


def _finite(x: float | None) -> float | None:
    """The number, or None when it is missing or not finite (a NaN is never a reading)."""
    return x if x is not None and math.isfinite(x) else None


def _sign(x: float) -> float:
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


def _abstain(name: str, reason: str, age: float | None = None, inputs: Mapping[str, float | str | None] | None = None
             ) -> Factor:
    return Factor(name, None, age, dict(inputs or {}), reason)


def _reading(name: str, raw: float, age: float | None, inputs: Mapping[str, float | str | None]) -> Factor:
    """``raw`` clipped to [-1, 1]; a NaN (inf - inf from absurd inputs) abstains rather than reads as 0."""
    if math.isnan(raw):
        return _abstain(name, "not a number from these inputs", age, inputs)
    return Factor(name, max(-1.0, min(1.0, raw)), age, dict(inputs))


def _unusable(stale_reason: str, age: float, max_age_s: float) -> str:
    """Why a timed input cannot be used ("" when it can): the writer's stale verdict, or our age bound."""
    if stale_reason:
        return f"stale: {stale_reason}"
    if age > max_age_s:
        return f"stale: {age:.0f} s old > {max_age_s:g} s"
    return ""


# --- dealer positioning -------------------------------------------------------------------------


def gamma_mode(gex: GexSnapshot | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """+ long gamma (mean reversion), - short gamma (momentum), by the sign of net GEX.

    Magnitude ``tanh(|distance to zero gamma| / 1 %)``: spot sitting on the flip says little about
    which regime the next move happens in; far from it the regime holds. Without a zero crossing in
    the profile (spot far from any flip, or a one-signed profile) the sign alone reads 0.5.
    """
    _aware(now)
    if isinstance(gex, Absent):
        return _abstain(GAMMA_MODE, str(gex))
    age = _age(now, gex.as_of)
    total = _finite(gex.numbers.get("total"))
    zero = _finite(gex.numbers.get("zero_gamma"))
    dist = _finite(gex.numbers.get("zero_gamma_distance_pct"))
    if dist is None and zero is not None and gex.spot > 0:
        dist = (zero / gex.spot - 1.0) * 100.0  # the writer's definition (qc.analytics.chain_input)
    inputs: Inputs = {"total": total, "zero_gamma": zero, "zero_gamma_distance_pct": dist, "spot": gex.spot,
                      "gamma_regime": gex.labels.get("gamma_regime", "")}
    if reason := _unusable(gex.stale_reason, age, max_age_s):
        return _abstain(GAMMA_MODE, reason, age, inputs)
    if total is None:
        return _abstain(GAMMA_MODE, "no net GEX: total missing", age, inputs)
    if dist is None:
        inputs["zero_gamma_reason"] = gex.labels.get("zero_gamma_reason", "")
        return _reading(GAMMA_MODE, _sign(total) * GAMMA_NO_FLIP_MAGNITUDE, age, inputs)
    return _reading(GAMMA_MODE, _sign(total) * math.tanh(abs(dist) / GAMMA_DISTANCE_SCALE_PCT), age, inputs)


def walls(gex: GexSnapshot | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """+1 with spot on the put wall (support below), -1 on the call wall (resistance above), linear between.

    The writer picks the call wall at or above spot and the put wall at or below it, so they bracket
    spot by construction; walls that do not (or coincide) are no support/resistance reading.
    """
    _aware(now)
    if isinstance(gex, Absent):
        return _abstain(WALLS, str(gex))
    age = _age(now, gex.as_of)
    put, call, spot = _finite(gex.numbers.get("put_wall")), _finite(gex.numbers.get("call_wall")), gex.spot
    inputs: Inputs = {"put_wall": put, "call_wall": call, "spot": spot}
    if reason := _unusable(gex.stale_reason, age, max_age_s):
        return _abstain(WALLS, reason, age, inputs)
    if put is None or call is None:
        missing = " and ".join(n for n, v in (("put", put), ("call", call)) if v is None)
        return _abstain(WALLS, f"no {missing} wall (no gamma on that side within the band)", age, inputs)
    if not put < call:
        return _abstain(WALLS, f"put wall {put:g} is not below call wall {call:g}", age, inputs)
    if not put <= spot <= call:
        side = "below the put wall" if spot < put else "above the call wall"
        return _abstain(WALLS, f"spot {spot:g} {side}: walls {put:g}-{call:g} do not bracket spot", age, inputs)
    return _reading(WALLS, 1.0 - 2.0 * (spot - put) / (call - put), age, inputs)


def skew_0dte(gex: GexSnapshot | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """Steeper put skew (puts richer than calls: fear) reads bearish: ``-tanh(skew / scale)``.

    The normalised 25-delta skew (skew / ATM IV) compares across vol regimes, so it is preferred;
    the raw skew is the fallback when ATM IV was missing. Neither is centred on a typical level:
    index put skew is normally positive, so this factor leans bearish on an ordinary day.
    """
    _aware(now)
    if isinstance(gex, Absent):
        return _abstain(SKEW_0DTE, str(gex))
    age = _age(now, gex.as_of)
    norm, raw = _finite(gex.numbers.get("skew_25d_normalised")), _finite(gex.numbers.get("skew_25d"))
    inputs: Inputs = {"skew_25d": raw, "skew_25d_normalised": norm}
    if reason := _unusable(gex.stale_reason, age, max_age_s):
        return _abstain(SKEW_0DTE, reason, age, inputs)
    if norm is not None:
        return _reading(SKEW_0DTE, -math.tanh(norm / SKEW_NORMALISED_SCALE), age, inputs)
    if raw is not None:
        return _reading(SKEW_0DTE, -math.tanh(raw / SKEW_RAW_SCALE), age, inputs)
    return _abstain(SKEW_0DTE, f"no skew: {gex.labels.get('skew_reason') or 'skew_25d missing, no reason given'}",
                    age, inputs)


# --- toxicity and the book ----------------------------------------------------------------------


def vpin_level(vpin: Vpin | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """``2 * VPIN - 1``: + toxic (informed) flow, so flow factors deserve more trust; a conditioner."""
    _aware(now)
    if isinstance(vpin, Absent):
        return _abstain(VPIN_LEVEL, str(vpin))
    age = _age(now, vpin.as_of)
    value = _finite(vpin.value)
    inputs: Inputs = {"vpin": value, "buckets_in_window": float(vpin.buckets_in_window),
                      "input_age_s": vpin.input_age_s}
    if reason := _unusable(vpin.stale_reason, age, max_age_s):
        return _abstain(VPIN_LEVEL, reason, age, inputs)
    if value is None:
        return _abstain(VPIN_LEVEL, f"no VPIN yet: {vpin.reason or 'value missing'}", age, inputs)
    return _reading(VPIN_LEVEL, 2.0 * value - 1.0, age, inputs)


def vpin_change(history: Sequence[tuple[datetime, float]], now: datetime, *, lookback_s: float = 300.0,
                max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """Rising toxicity: ``tanh((latest - reference) / 0.1)``, the reference the reading nearest ``now - lookback_s``.

    Readings after ``now`` or not finite are ignored. It needs a span of at least half the lookback
    between the reference and the latest reading: a change over seconds is noise, not a trend.
    """
    _aware(now)
    points = sorted((t, v) for t, v in history if t <= now and math.isfinite(v))
    if not points:
        return _abstain(VPIN_CHANGE, "no VPIN history")
    latest_t, latest = points[-1]
    age = _age(now, latest_t)
    inputs: Inputs = {"latest": latest, "readings": float(len(points))}
    if reason := _unusable("", age, max_age_s):
        return _abstain(VPIN_CHANGE, reason, age, inputs)
    if len(points) < 2:
        return _abstain(VPIN_CHANGE, "one VPIN reading: no change yet", age, inputs)
    target = now - timedelta(seconds=lookback_s)
    ref_t, ref = min(points[:-1], key=lambda p: abs((p[0] - target).total_seconds()))
    span = (latest_t - ref_t).total_seconds()
    inputs |= {"reference": ref, "span_s": span}
    if span < lookback_s / 2:
        return _abstain(VPIN_CHANGE, f"VPIN history spans {span:.0f} s < {lookback_s / 2:g} s", age, inputs)
    change = latest - ref
    inputs["change"] = change
    return _reading(VPIN_CHANGE, math.tanh(change / VPIN_CHANGE_SCALE), age, inputs)


def book_imbalance(imb: Imbalance | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """The depth-weighted imbalance itself: + bid-heavy (resting buyers outweigh sellers)."""
    _aware(now)
    if isinstance(imb, Absent):
        return _abstain(BOOK_IMBALANCE, str(imb))
    age = _age(now, imb.as_of)
    value = _finite(imb.imbalance)
    inputs: Inputs = {"imbalance": value, "levels": None if imb.levels is None else float(imb.levels)}
    if reason := _unusable(imb.stale_reason, age, max_age_s):
        return _abstain(BOOK_IMBALANCE, reason, age, inputs)
    if value is None:
        return _abstain(BOOK_IMBALANCE, "no book imbalance: book empty or one-sided", age, inputs)
    return _reading(BOOK_IMBALANCE, value, age, inputs)


def microprice(imb: Imbalance | Absent, quote: Quote | Absent, now: datetime, *,
               max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """``(microprice - mid) / half spread``: + the next tick more likely up (the ask queue is thinner).

    Mid and half spread both come from the quote, so the value is the microprice's position inside
    the quote's own [bid, ask] (-1 at the bid, +1 at the ask); the book's spread is in ``inputs``.
    """
    _aware(now)
    if isinstance(imb, Absent):
        return _abstain(MICROPRICE, str(imb))
    if isinstance(quote, Absent):
        return _abstain(MICROPRICE, str(quote), _age(now, imb.as_of))
    age = max(_age(now, imb.as_of), _epoch_age(now, quote.as_of))
    micro, mid = _finite(imb.microprice), quote.mid
    inputs: Inputs = {"microprice": micro, "bid": quote.bid, "ask": quote.ask, "mid": mid, "book_spread": imb.spread}
    if reason := _unusable(imb.stale_reason, age, max_age_s):
        return _abstain(MICROPRICE, reason, age, inputs)
    if micro is None:
        return _abstain(MICROPRICE, "no microprice: book empty or one-sided", age, inputs)
    if mid is None or quote.bid is None or quote.ask is None:
        return _abstain(MICROPRICE, f"quote one-sided or crossed (bid {quote.bid}, ask {quote.ask})", age, inputs)
    half = 0.5 * (quote.ask - quote.bid)
    if not half > 0:
        return _abstain(MICROPRICE, f"locked quote (bid = ask = {quote.bid:g}): no half spread", age, inputs)
    return _reading(MICROPRICE, (micro - mid) / half, age, inputs)


# --- trade flow ---------------------------------------------------------------------------------


def order_flow(trades: Sequence[Trade], now: datetime, *, window_s: float = 300.0,
               min_volume: float = ORDER_FLOW_MIN_VOLUME) -> Factor:
    """``(buy - sell) / (buy + sell)`` aggressor volume over trades in ``(now - window_s, now]``.

    Unknown-side prints carry no direction and are left out of both sums (not counted as neutral).
    """
    _aware(now)
    return _order_flow([(t.ts.timestamp(), t.size, t.side) for t in trades], now, window_s, min_volume)


def order_flow_rows(rows: Sequence[TradeRow], now: datetime, *, window_s: float = 300.0,
                    min_volume: float = ORDER_FLOW_MIN_VOLUME) -> Factor:
    """:func:`order_flow` over decoded stream rows (market epoch, price, size, side), oldest first.

    Walks back from the newest print and stops at the window's start, so a cycle costs the window,
    not the backlog the caller keeps (the stream's order is the market clock's, prints are appended).
    """
    _aware(now)
    end = now.timestamp()
    start = end - window_s
    tail: list[tuple[float, float, int]] = []
    for i in range(len(rows) - 1, -1, -1):
        ts, _, size, side = rows[i]
        if ts <= start:
            break
        tail.append((ts, size, side))
    latest = next((r[0] for r in reversed(rows) if r[0] <= end), None) if rows else None
    return _order_flow(tail, now, window_s, min_volume, latest)


def _order_flow(prints: Sequence[tuple[float, float, int]], now: datetime, window_s: float, min_volume: float,
                latest: float | None = None) -> Factor:
    """The one implementation, on (epoch, size, side): the window is half-open, ``(now - window_s, now]``.

    ``latest``: the newest print at or before now when the caller knows it (else found in ``prints``).
    """
    end = now.timestamp()
    start = end - window_s
    window = [(ts, size, side) for ts, size, side in prints if start < ts <= end]
    if latest is None:
        past = [ts for ts, _, _ in prints if ts <= end]
        latest = max(past) if past else None
    age = max(0.0, end - latest) if latest is not None else None
    if not window:
        return _abstain(ORDER_FLOW, f"no trades in the last {window_s:g} s", age)
    buy = sum(size for _, size, side in window if side == BUY and math.isfinite(size) and size > 0)
    sell = sum(size for _, size, side in window if side == SELL and math.isfinite(size) and size > 0)
    inputs: Inputs = {"buy_volume": buy, "sell_volume": sell, "trades": float(len(window)), "window_s": window_s}
    signed = buy + sell
    if not signed >= min_volume or signed <= 0:
        return _abstain(ORDER_FLOW, f"{signed:g} shares of aggressor-signed volume in {window_s:g} s "
                                    f"(need {min_volume:g})", age, inputs)
    return _reading(ORDER_FLOW, (buy - sell) / signed, age, inputs)


def flow_cluster(clusters: FlowClusters | Absent, recent_return: float | None, now: datetime, *,
                 max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """Momentum flow follows the recent return, mean-reversion flow fades it, hedging flow is neutral.

    Magnitude ``min(1, |return| / 20 bp)``. Hedging reads a real 0.0 (dealer hedging carries no view),
    whatever the return: it is evidence of no direction, not missing evidence.
    """
    _aware(now)
    if isinstance(clusters, Absent):
        return _abstain(FLOW_CLUSTER, str(clusters))
    age = _age(now, clusters.as_of)
    ret = _finite(recent_return)
    inputs: Inputs = {"label": clusters.current, "recent_return": ret, "windows": float(clusters.windows)}
    if reason := _unusable("", age, max_age_s):
        return _abstain(FLOW_CLUSTER, reason, age, inputs)
    label = clusters.current
    if label is None:
        return _abstain(FLOW_CLUSTER, f"no flow label: {clusters.reason or 'no model yet'}", age, inputs)
    if label == "hedging":
        return _reading(FLOW_CLUSTER, 0.0, age, inputs)
    if label not in ("momentum", "mean_reversion"):
        return _abstain(FLOW_CLUSTER, f"unknown flow label {label!r}", age, inputs)
    if ret is None:
        return _abstain(FLOW_CLUSTER, f"{label} flow but no recent return to follow or fade", age, inputs)
    follow = _sign(ret) * min(1.0, abs(ret) / FLOW_RETURN_SCALE)
    return _reading(FLOW_CLUSTER, follow if label == "momentum" else -follow, age, inputs)


# --- volatility and news ------------------------------------------------------------------------


def iv_rv(regime: Regime | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> Factor:
    """``-tanh((IV - RV) / 5 vol points)``: rich options make buying premium worse; a size conditioner."""
    _aware(now)
    if isinstance(regime, Absent):
        return _abstain(IV_RV, str(regime))
    age = _age(now, regime.as_of)
    spread = _finite(regime.iv_minus_rv)
    inputs: Inputs = {"iv_minus_rv": spread, "atm_iv_near": regime.atm_iv_near, "rv": regime.rv_1min_annualised}
    if reason := _unusable("", age, max_age_s):
        return _abstain(IV_RV, reason, age, inputs)
    if spread is None:
        missing = " and ".join(n for n, v in (("ATM IV", regime.atm_iv_near), ("realised vol",
                                                                               regime.rv_1min_annualised))
                               if v is None) or "the difference"
        return _abstain(IV_RV, f"no IV - RV: {missing} missing", age, inputs)
    return _reading(IV_RV, -math.tanh(spread / IV_RV_SCALE), age, inputs)


def news(news: NewsSentiment | Absent, now: datetime, *, max_age_s: float = NEWS_MAX_AGE_S) -> Factor:
    """Relevance-weighted sentiment rescaled: ``score / 0.35`` clipped (AV scores cluster near zero)."""
    _aware(now)
    if isinstance(news, Absent):
        return _abstain(NEWS, str(news))
    age = _age(now, news.as_of)
    score = _finite(news.score)
    inputs: Inputs = {"score": score, "articles": float(news.articles), "label": news.label}
    if reason := _unusable("", age, max_age_s):
        return _abstain(NEWS, reason, age, inputs)
    if news.articles <= 0:
        return _abstain(NEWS, "no news articles", age, inputs)
    if score is None:
        return _abstain(NEWS, f"no sentiment score ({news.articles} articles, all skipped)", age, inputs)
    return _reading(NEWS, score / NEWS_SCALE, age, inputs)


# --- bars and the close -------------------------------------------------------------------------


def _closed_bars(bars: Sequence[Bar], now: datetime, bar_s: float, since: datetime | None = None) -> list[Bar]:
    """Complete bars whose interval had ended by ``now`` (a replay's later bars are not yet known).

    ``bars`` oldest first; with ``since``, only bars starting at or after it (found from the end).
    """
    cut = now - timedelta(seconds=bar_s)
    out: list[Bar] = []
    for i in range(len(bars) - 1, -1, -1):
        b = bars[i]
        if since is not None and b.ts < since:
            break
        if b.complete and b.ts <= cut:
            out.append(b)
    out.reverse()
    return out


def recent_return(bars: Sequence[Bar], now: datetime, *, window_s: float = 900.0, bar_s: float = BAR_S
                  ) -> float | None:
    """Return from the first bar's open to the last bar's close over closed bars starting in the window.

    None without such bars (the bars stopped: no recent move is known) or with a non-positive open.
    """
    _aware(now)
    inside = _closed_bars(bars, now, bar_s, since=now - timedelta(seconds=window_s))
    if not inside or not inside[0].open > 0:
        return None
    return _finite(inside[-1].close / inside[0].open - 1.0)


def last_half_hour(bars: Sequence[Bar], prior_close: float | None, now: datetime, *, bar_s: float = BAR_S
                   ) -> Factor:
    """``tanh(return / 50 bp)`` from the prior close to the last closed bar's close (evaluated at close - 30 min).

    The day's move into the last half hour tends to continue into the close (intraday momentum).
    """
    _aware(now)
    closed = _closed_bars(bars, now, bar_s, since=now - timedelta(hours=LAST_BAR_LOOKBACK_H))
    prior = _finite(prior_close)
    if prior is None or prior <= 0:
        return _abstain(LAST_HALF_HOUR, "no prior close")
    if not closed:
        return _abstain(LAST_HALF_HOUR, "no complete bar at or before now", inputs={"prior_close": prior})
    last = closed[-1]
    age = _age(now, last.ts + timedelta(seconds=bar_s))
    ret = last.close / prior - 1.0
    inputs: Inputs = {"prior_close": prior, "close": last.close, "bar_start": last.ts.isoformat(), "return": ret}
    return _reading(LAST_HALF_HOUR, math.tanh(ret / LAST_HALF_HOUR_SCALE), age, inputs)


def auction(auction: AuctionImbalance | Absent, now: datetime, *, max_age_s: float = DEFAULT_MAX_AGE_S,
            min_ratio: float = 0.0) -> Factor:
    """Closing imbalance over paired shares, clipped: + buy imbalance (the close is pushed up).

    Below ``min_ratio`` (in absolute value) it abstains: an imbalance that small is not one the
    strategy acts on, which is not the same as a reading of zero pressure.
    """
    _aware(now)
    if isinstance(auction, Absent):
        return _abstain(AUCTION, f"no auction data: {auction}")
    age = _epoch_age(now, auction.as_of)
    imbalance, paired = _finite(auction.imbalance), _finite(auction.paired)
    inputs: Inputs = {"imbalance": imbalance, "paired": paired, "indicative_price": auction.indicative_price}
    if reason := _unusable("", age, max_age_s):
        return _abstain(AUCTION, reason, age, inputs)
    if imbalance is None or paired is None or paired <= 0:
        why = "imbalance missing" if imbalance is None else "paired shares missing" if paired is None else \
            "no paired shares"
        return _abstain(AUCTION, f"no auction data: {why}", age, inputs)
    ratio = imbalance / paired
    inputs["ratio"] = ratio
    if abs(ratio) < min_ratio:
        return _abstain(AUCTION, f"|imbalance| / paired {abs(ratio):.2f} below the floor {min_ratio:.2f}", age, inputs)
    return _reading(AUCTION, ratio, age, inputs)
