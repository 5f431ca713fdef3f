"""NEWS_SENTIMENT bodies for the simulator: deterministic seeded articles about the asked tickers.

Articles sit on a fixed simulated-time grid (one every ``ARTICLE_EVERY_S``); article ``k`` is drawn
from a generator seeded by the ticker set and ``k`` alone, so the same query at a later instant
returns the same older articles plus newer ones, as a real feed does. Every article mentions every
requested ticker (AV's AND semantics, reference §1.8). Sentiment is seeded noise, not driven by
the market model: an article must not change once published.

Shape and quirks are AV's (§1.8): ``items`` is a string; ``overall_sentiment_score`` is a JSON
number while ``relevance_score`` and ``ticker_sentiment_score`` are strings; labels use hyphens but
the definition string writes ``Somewhat_Bullish``; topics come back as display names.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from datetime import datetime, timezone

from qc.sim.av.payloads import RELEVANCE_DEFINITION, SENTIMENT_DEFINITION, Json

ARTICLE_EVERY_S = 37 * 60
MAX_SCAN = 5000
TOPICS = {"blockchain": "Blockchain", "earnings": "Earnings", "ipo": "IPO",
          "mergers_and_acquisitions": "Mergers & Acquisitions", "financial_markets": "Financial Markets",
          "economy_fiscal": "Economy - Fiscal", "economy_monetary": "Economy - Monetary",
          "economy_macro": "Economy - Macro", "energy_transportation": "Energy & Transportation",
          "finance": "Finance", "life_sciences": "Life Sciences", "manufacturing": "Manufacturing",
          "real_estate": "Real Estate & Construction", "retail_wholesale": "Retail & Wholesale",
          "technology": "Technology"}
HEADLINES = ("{t} options volume climbs as traders position for the close",
             "Dealers' hedging flows in {t} draw attention",
             "{t} drifts as rate expectations shift",
             "Strategists split on {t} after latest macro print",
             "{t} sees heavy put buying ahead of data",
             "Fund flows into {t} pick up")
NO_ARTICLES = ("No articles found. Please adjust the time range or refer to the API documentation "
               "https://www.alphavantage.co/documentation#newsapi and try again.")
INVALID_INPUTS = ("Invalid inputs. Please refer to the API documentation "
                  "https://www.alphavantage.co/documentation#newsapi and try again.")


def label(score: float) -> str:
    """AV's label bands (§1.8), hyphenated as in the feed."""
    if score <= -0.35:
        return "Bearish"
    if score <= -0.15:
        return "Somewhat-Bearish"
    if score < 0.15:
        return "Neutral"
    return "Somewhat-Bullish" if score < 0.35 else "Bullish"


def slots(now: datetime, time_from: datetime | None, time_to: datetime | None, limit: int,
          earliest: bool) -> list[int]:
    """Grid indices of the articles a query sees, in AV's ``LATEST`` or ``EARLIEST`` order."""
    end = min(now, time_to) if time_to else now
    last = int(end.timestamp()) // ARTICLE_EVERY_S
    first = int(time_from.timestamp()) // ARTICLE_EVERY_S + 1 if time_from else last - MAX_SCAN
    first = max(first, last - MAX_SCAN)
    if first > last:
        return []
    if earliest and time_from:
        return list(range(first, min(last, first + limit - 1) + 1))
    picked = list(range(last, max(first, last - limit + 1) - 1, -1))
    return picked[::-1] if earliest else picked


def article(k: int, tickers: Sequence[str], topics: Sequence[str]) -> Json:
    """Article ``k`` about ``tickers``: a pure function of (sorted tickers, k, topics)."""
    tickers = sorted(tickers)
    rng = random.Random(zlib.crc32(f"{','.join(tickers)}#{k}".encode()))
    published = datetime.fromtimestamp(k * ARTICLE_EVERY_S, timezone.utc)
    names = list(topics) or rng.sample(sorted(TOPICS), 2)
    sentiment = []
    for t in tickers:
        score = max(-1.0, min(1.0, rng.gauss(0.0, 0.25)))
        sentiment.append({"ticker": t, "relevance_score": f"{rng.uniform(0.3, 1.0):.6f}",
                          "ticker_sentiment_score": f"{score:.6f}", "ticker_sentiment_label": label(score)})
    overall = round(sum(float(s["ticker_sentiment_score"]) for s in sentiment) / len(sentiment), 6)
    title = rng.choice(HEADLINES).format(t=", ".join(tickers))
    return {"title": title, "url": f"https://www.sim-newswire.example/markets/{k}",
            "time_published": published.strftime("%Y%m%dT%H%M%S"), "authors": ["Sim Newswire Desk"],
            "summary": f"{title}. Simulated coverage of {', '.join(tickers)} for qc sim.",
            "banner_image": f"https://www.sim-newswire.example/img/{k}.jpg", "source": "Sim Newswire",
            "category_within_source": "Markets", "source_domain": "www.sim-newswire.example",
            "topics": [{"topic": TOPICS[n], "relevance_score": f"{rng.uniform(0.1, 1.0):.6f}"} for n in names],
            "overall_sentiment_score": overall, "overall_sentiment_label": label(overall),
            "ticker_sentiment": sentiment}


def news_payload(feed: list[Json]) -> Json:
    """The envelope (§1.8); an empty selection is AV's ``Information`` "No articles found"."""
    if not feed:
        return {"Information": NO_ARTICLES}
    return {"items": str(len(feed)), "sentiment_score_definition": SENTIMENT_DEFINITION,
            "relevance_score_definition": RELEVANCE_DEFINITION, "feed": feed}


def by_relevance(feed: list[Json]) -> list[Json]:
    """``sort=RELEVANCE``: highest relevance of the first requested ticker first."""
    return sorted(feed, key=lambda a: -float(a["ticker_sentiment"][0]["relevance_score"]))
