"""NEWS_SENTIMENT → one relevance-weighted sentiment per symbol (pure).

Per reference §1.8: keep each article's entry for the symbol, drop entries whose relevance is
below ``MIN_RELEVANCE`` (passing mentions), and take the relevance-weighted mean of
``ticker_sentiment_score``; the label uses AV's own bands. Scores and relevances arrive as strings,
``overall_sentiment_score`` as a number.

Nothing is trusted. A body whose ``feed`` is missing or not a list is refused whole
(:class:`PayloadRefused`, so the last stored sentiment stays rather than becoming "no news"). Within
a good feed each refusal is counted under one reason and costs only its own article:
``not_an_object``, ``missing_field``/``wrong_type`` (``ticker_sentiment`` or a score),
``unparseable``, ``not_finite``, ``overflow``, ``out_of_range`` (relevance outside [0, 1], score
outside [−1, 1]), ``duplicate_entry``/``conflicting_entry`` (the symbol twice in one article),
``duplicate_article``/``conflicting_article`` (one ``url`` twice: identical copies count once,
copies that disagree count not at all). A ``time_published`` that is not ``YYYYMMDDTHHMMSS`` is
refused as ``bad_time`` (the article's sentiment still counts; the time does not).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qc.ingest.chain_parse import OK, VALUE_REASONS, number
from qc.ingest.codec import NewsSentiment, PayloadRefused

SURFACE = "av.news"
MIN_RELEVANCE = 0.1
PUBLISHED = re.compile(r"\d{8}T\d{6}")


def label(score: float) -> str:
    """AV's bands: x ≤ −0.35 Bearish … x ≥ 0.35 Bullish (the definition string's boundaries)."""
    if score <= -0.35:
        return "Bearish"
    if score <= -0.15:
        return "Somewhat-Bearish"
    if score < 0.15:
        return "Neutral"
    if score < 0.35:
        return "Somewhat-Bullish"
    return "Bullish"


@dataclass(frozen=True)
class _Opinion:
    key: str | None  # the article's url, for spotting copies
    relevance: float
    score: float
    published: str


def _published(raw: object) -> str | None:
    if type(raw) is not str or not PUBLISHED.fullmatch(raw):
        return None
    try:
        datetime.strptime(raw, "%Y%m%dT%H%M%S")  # noqa: DTZ007 - only validating the digits; no instant is made
    except ValueError:
        return None
    return raw


def _entry(entries: list[Any], symbol: str, rejected: Counter[str]) -> Mapping[str, Any] | None:
    mine = [e for e in entries if isinstance(e, dict) and e.get("ticker") == symbol]
    if not mine:
        return None
    if len(mine) > 1:
        if any(e != mine[0] for e in mine[1:]):
            rejected["conflicting_entry"] += len(mine)
            return None
        rejected["duplicate_entry"] += len(mine) - 1
    return mine[0]


def _opinion(article: object, symbol: str, rejected: Counter[str]) -> _Opinion | None:
    """The article's opinion of ``symbol``; None (counted if refused) when it has no usable one."""
    if not isinstance(article, dict):
        rejected["not_an_object"] += 1
        return None
    entries = article.get("ticker_sentiment")
    if not isinstance(entries, list):
        rejected["missing_field" if entries is None else "wrong_type"] += 1
        return None
    entry = _entry(entries, symbol, rejected)
    if entry is None:
        return None
    (relevance, r_code), (score, s_code) = number(entry.get("relevance_score")), number(
        entry.get("ticker_sentiment_score"))
    if r_code != OK or s_code != OK:
        rejected[VALUE_REASONS[r_code if r_code != OK else s_code]] += 1
        return None
    if not (0.0 <= relevance <= 1.0 and -1.0 <= score <= 1.0):
        rejected["out_of_range"] += 1
        return None
    published = _published(article.get("time_published"))
    if published is None:
        rejected["bad_time"] += 1
    url = article.get("url")
    return _Opinion(url if isinstance(url, str) and url else None, relevance, score, published or "")


def _unique(opinions: list[_Opinion], rejected: Counter[str]) -> list[_Opinion]:
    """One opinion per article: identical copies of a url count once, disagreeing copies not at all."""
    by_key: dict[str, list[_Opinion]] = {}
    for o in opinions:
        if o.key is not None:
            by_key.setdefault(o.key, []).append(o)
    disputed = {k for k, copies in by_key.items() if any(c != copies[0] for c in copies[1:])}
    out, seen = [], set()
    for o in opinions:
        if o.key is None:
            out.append(o)
        elif o.key in disputed:
            rejected["conflicting_article"] += 1
        elif o.key in seen:
            rejected["duplicate_article"] += 1
        else:
            seen.add(o.key)
            out.append(o)
    return out


def aggregate(body: Mapping[str, Any], symbol: str, now: datetime,
              rejected: Counter[str] | None = None) -> NewsSentiment:
    """Relevance-weighted mean ticker sentiment of ``symbol`` over the feed, as of ``now``.

    ``rejected`` (filled in place) gets every refusal by reason; PayloadRefused when ``feed`` is
    missing or not a list (pass ``{"feed": []}`` for AV's "no articles" answer).
    """
    rejected = Counter() if rejected is None else rejected
    feed = body.get("feed")
    if not isinstance(feed, list):
        reason = "missing_field" if feed is None else "wrong_type"
        raise PayloadRefused(SURFACE, reason, f"NEWS_SENTIMENT {symbol}: `feed` is "
                             f"{'missing' if feed is None else 'a JSON ' + type(feed).__name__}")
    before = sum(rejected.values())
    opinions = [o for o in (_opinion(a, symbol, rejected) for a in feed) if o is not None]
    used = [o for o in _unique(opinions, rejected) if o.relevance >= MIN_RELEVANCE]
    skipped = sum(rejected.values()) - before
    weights = sum(o.relevance for o in used)
    latest = max((o.published for o in used), default="")
    if weights <= 0:
        return NewsSentiment(None, "none", 0, 0.0, skipped, latest, now)
    mean = sum(o.relevance * o.score for o in used) / weights  # within [−1, 1]: every score is
    return NewsSentiment(round(mean, 6), label(mean), len(used), round(weights, 6), skipped, latest, now)
