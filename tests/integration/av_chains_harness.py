"""Shared pieces of the `qc chains` integration tests: the simulated market, its AV server, a cycle."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from qc.core.config import Settings
from qc.ingest.cycle import chains as chains_cycle
from qc.ingest.cycle.alphavantage import RetryPolicy
from qc.runtime.store import Store
from qc.sim.av.server import AlphaVantageServer
from qc.sim.market.events import MarketModel
from qc.sim.market.market import SimMarket

START = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 New York
NOW = START + timedelta(seconds=90)
FAST_RETRY = RetryPolicy(attempts=3, base_s=0.01, max_s=0.05)


def sim_market() -> SimMarket:
    market = SimMarket(START)
    market.events_until(NOW)
    return market


class ScriptedAV(AlphaVantageServer):
    """The simulator's AV server, plus queued bodies served first to keys it would answer normally.

    For bodies the simulator never produces on its own (a ``Note``, an ``Error Message`` for a symbol
    it knows, a garbled chain): a hand-written stub layered on the real server, not a mock of our
    client. ``script`` answers the next requests whatever their function; ``script_for(function, …)``
    only that function's (its queue goes first).
    """

    def __init__(self, model: MarketModel, **kwargs: Any) -> None:
        super().__init__(model, lambda: NOW, **kwargs)
        self.script: deque[Any] = deque()
        self.by_function: dict[str, deque[Any]] = {}

    def script_for(self, function: str, *bodies: Any) -> None:
        self.by_function.setdefault(function, deque()).extend(bodies)

    def real_body(self, function: str, **params: str) -> Any:
        """What the simulator itself answers now: the realistic payload a test then garbles."""
        return self.endpoints.answer(function, params, NOW)

    def _body(self, verdict: str, key: str, function: str, params: dict[str, str]) -> Any:
        queued = self.by_function.get(function)
        if verdict == "ok" and queued:
            return queued.popleft()
        if verdict == "ok" and self.script:
            return self.script.popleft()
        return super()._body(verdict, key, function, params)


def settings_for(redis_url: str, server: AlphaVantageServer, key: str = "K", rpm: int = 600) -> Settings:
    return Settings(redis_url=redis_url, alpha_vantage_url=server.url, alpha_vantage_api_key=key,
                    alpha_vantage_rpm=rpm)


def cycle_for(store: Store, settings: Settings, symbols: tuple[str, ...] = ("SPY",),
              with_news: bool = True) -> chains_cycle.ChainsCycle:
    cycle = chains_cycle.build(store, settings, symbols, threading.Event(), retry=FAST_RETRY)
    cycle.with_news = with_news
    return cycle
