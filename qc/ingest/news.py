"""NEWS_SENTIMENT → one relevance-weighted sentiment per symbol (pure).

Per reference §1.8: keep each article's entry for the symbol, drop entries whose relevance is
below ``MIN_RELEVANCE`` (passing mentions), and take the relevance-weighted mean of
``ticker_sentiment_score``; the label uses AV's own bands. Scores and relevances arrive as strings,
``overall_sentiment_score`` as a number; an entry that does not parse, is not finite or is outside
AV's ranges is skipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from qc.ingest.codec import NewsSentiment

MIN_RELEVANCE = 0.1


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


def aggregate(body: Mapping[str, Any], symbol: str, now: datetime) -> NewsSentiment:
    """Relevance-weighted mean ticker sentiment of ``symbol`` over the feed, as of ``now``."""
    weighted = weights = 0.0
    used = skipped = 0
    latest = ""
    for article in body.get("feed") or []:
        entries = article.get("ticker_sentiment") if isinstance(article, dict) else None
        entry = next((e for e in entries or [] if isinstance(e, dict) and e.get("ticker") == symbol), None)
        if entry is None:
            continue
        try:
            relevance, score = float(entry["relevance_score"]), float(entry["ticker_sentiment_score"])
        except (KeyError, TypeError, ValueError):
            skipped += 1
            continue
        if not (math.isfinite(relevance) and 0.0 <= relevance <= 1.0 and math.isfinite(score) and -1.0 <= score <= 1.0):
            skipped += 1  # "nan", "inf" or out of AV's ranges: junk, not an opinion
            continue
        if relevance < MIN_RELEVANCE:
            continue
        weighted += relevance * score
        weights += relevance
        used += 1
        latest = max(latest, str(article.get("time_published", "")))
    if weights <= 0:
        return NewsSentiment(None, "none", 0, 0.0, skipped, latest, now)
    mean = weighted / weights
    return NewsSentiment(round(mean, 6), label(mean), used, round(weights, 6), skipped, latest, now)
