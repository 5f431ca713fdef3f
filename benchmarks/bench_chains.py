"""Parse + IV re-solve + Greeks for a full SPY chain as the simulator's Alpha Vantage serves it.

The body is fetched once from an in-process AV server over loopback (REALTIME_OPTIONS, every
expiry, ``require_greeks=true``); each variant then starts from the raw text, so ``json.loads`` is
inside every timing. Variants, same rows, same spot, same ``now``:

- qc: ``chain_parse.parse_chain`` (one ``float()`` pass over every number, junk reasons, vendor
  columns, one vectorised ``implied_vol`` and one ``bsm`` call); ``chain_rows`` (the JSON-ready rows
  written to Redis) is timed on its own, since no baseline builds them.
- naive baseline: per row, ``float()`` each field and call qc's ``implied_vol`` and ``bsm`` on scalars.
- pandas baseline: ``DataFrame(rows)[cols].astype(float)`` then the same vectorised IV and Greeks
  (no junk reasons, no vendor columns).
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import requests

from benchmarks._report import Figure, best_of
from qc.analytics.greeks import bsm, implied_vol, years_to_expiry
from qc.ingest import chain_parse
from qc.sim.av.server import AlphaVantageServer
from qc.sim.market.market import SimMarket
from tests.integration.av_chains_harness import NOW, START

RATE, DIV_YIELD = 0.04, 0.013
NAIVE_ROWS = 2000  # the per-row loop is timed on the first rows and scaled (it is linear in rows)


def fetch() -> tuple[str, float]:
    market = SimMarket(START)
    market.events_until(NOW + timedelta(seconds=1))
    server = AlphaVantageServer(market, lambda: NOW, rpm=1000)
    server.start()
    try:
        text = requests.get(server.url, params={"function": "REALTIME_OPTIONS", "symbol": "SPY",
                                                "require_greeks": "true", "apikey": "bench"}, timeout=60).text
    finally:
        server.stop()
    return text, market.spot("SPY")


def qc_variant(text: str, spot: float) -> chain_parse.ParsedChain:
    return chain_parse.parse_chain(json.loads(text)["data"], spot, NOW, RATE, DIV_YIELD)


def naive_variant(text: str, spot: float, limit: int) -> int:
    kept = 0
    for row in json.loads(text)["data"][:limit]:
        try:
            k, bid, ask, mark = (float(row[f]) for f in ("strike", "bid", "ask", "mark"))
        except (KeyError, ValueError):
            continue
        if bid <= 0 or ask < bid:
            continue
        t = years_to_expiry(NOW, pd.Timestamp(row["expiration"]).date())
        call = row["type"] == "call"
        iv = float(implied_vol(mark, spot, k, t, RATE, DIV_YIELD, call))
        if np.isfinite(iv):
            bsm(spot, k, t, RATE, DIV_YIELD, iv, call)
            kept += 1
    return kept


def pandas_variant(text: str, spot: float) -> int:
    frame = pd.DataFrame(json.loads(text)["data"])
    num = frame[["strike", "bid", "ask", "mark"]].astype(float)
    ok = (num["bid"] > 0) & (num["ask"] >= num["bid"])
    num, frame = num[ok], frame[ok]
    t = years_to_expiry(NOW, pd.to_datetime(frame["expiration"]).dt.date.to_numpy())
    call = (frame["type"] == "call").to_numpy()
    with np.errstate(invalid="ignore"):
        iv = implied_vol(num["mark"].to_numpy(), spot, num["strike"].to_numpy(), t, RATE, DIV_YIELD, call)
        bsm(spot, num["strike"].to_numpy(), t, RATE, DIV_YIELD, iv, call)
    return int(np.isfinite(iv).sum())


def run() -> list[Figure]:
    text, spot = fetch()
    rows = len(json.loads(text)["data"])
    qc_s, parsed = best_of(lambda: qc_variant(text, spot), repeat=7)
    rows_s, _ = best_of(lambda: chain_parse.chain_rows(parsed), repeat=7)
    pandas_s, _ = best_of(lambda: pandas_variant(text, spot), repeat=7)
    limit = min(NAIVE_ROWS, rows)
    naive_part_s, _ = best_of(lambda: naive_variant(text, spot, limit), repeat=2)
    naive_s = naive_part_s * rows / limit
    return [
        Figure("SPY full chain rows (all expiries)", rows, "rows",
               baseline=f"{len(parsed)} kept after junk filters; body {len(text) / 1e6:.1f} MB"),
        Figure("json.loads + parse + IV re-solve + Greeks", qc_s * 1e3, "ms", target="≤ pandas baseline",
               baseline=f"pandas astype(float)+vectorised {pandas_s * 1e3:,.0f} ms; naive per-row float()+scalar "
                        f"IV/bsm {naive_s * 1e3:,.0f} ms (scaled from {limit} rows)",
               met=qc_s <= pandas_s),
        Figure("per row", qc_s / rows * 1e6, "µs", baseline=f"naive {naive_s / rows * 1e6:,.1f} µs/row"),
        Figure("chain_rows (JSON-ready dicts for Redis)", rows_s * 1e3, "ms",
               baseline="not in the baselines: they stop at arrays"),
    ]
