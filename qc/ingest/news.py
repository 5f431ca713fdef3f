"""NEWS_SENTIMENT → one relevance-weighted sentiment per symbol (pure).

Per reference §1.8: keep each article's entry for the symbol, drop entries whose relevance is
below ``MIN_RELEVANCE`` (passing mentions), and take the relevance-weighted mean of
``ticker_sentiment_score``; the label uses AV's own bands. Scores and relevances arrive as strings,
``overall_sentiment_score`` as a number; an entry that does not parse is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_RELEVANCE = 0.1


@dataclass(frozen=True)
class Sentiment:
    """One symbol's news sentiment: weighted score in [−1, 1] (None without articles) and its inputs."""

    score: float | None
    label: str
    articles: int
    relevance_sum: float
    skipped: int
    latest_published: str

    def fields(self) -> dict[str, str | float | int]:
        return {"score": "" if self.score is None else round(self.score, 6), "label": self.label,
                "articles": self.articles, "relevance_sum": round(self.relevance_sum, 6), "skipped": self.skipped,
                "latest_published": self.latest_published}


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


def aggregate(body: Mapping[str, Any], symbol: str) -> Sentiment:
    """Relevance-weighted mean ticker sentiment of ``symbol`` over the feed."""
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
        if relevance < MIN_RELEVANCE:
            continue
        weighted += relevance * score
        weights += relevance
        used += 1
        latest = max(latest, str(article.get("time_published", "")))
    if weights <= 0:
        return Sentiment(None, "none", 0, 0.0, skipped, latest)
    mean = weighted / weights
    return Sentiment(mean, label(mean), used, weights, skipped, latest)
