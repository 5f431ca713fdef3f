"""Depth through ib_async is deterministic under a FakeClock and rebuilds the model's book exactly.

The test thread owns simulated time: it advances a ``FakeClock`` in fixed steps while the pump
reveals whatever is due, so two servers with the same seed send the same depth stream however the
pump's real-time ticks fall.
"""

from __future__ import annotations

import hashlib

from ib_async import IB, MktDepthData, Stock, Ticker

from qc.core.clock import FakeClock
from qc.core.models import DepthLevel
from qc.sim.market.params import SimParams
from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    START,
    Gateway,
    client_loop_fixture,
    ib_eventually,
    start_gateway,
    stop_gateway,
)

N = 600
# The first N depth messages of seed 11 as ib_async received them, recorded once. It changes only
# when the market model changes on purpose: then re-record it and say why in the commit.
RECORDED_DIGEST = "55d7bdf448651cfdf39577b0aecaac74c9e534f7a8632b71b65494b0d7343c0c"
PARAMS = SimParams(seed=11, symbols=("SPY", "QQQ"), depth_rate_hz=150.0)


def rebuild(ticks: list[MktDepthData]) -> tuple[list[tuple[float, float, str]], list[tuple[float, float, str]]]:
    """Apply IB's depth semantics (insert shifts down, delete shifts up) to empty books: (bids, asks)."""
    books: tuple[list[tuple[float, float, str]], list[tuple[float, float, str]]] = ([], [])  # side 0 ask, 1 bid
    for t in ticks:
        book = books[t.side]
        if t.operation == 0:
            book.insert(t.position, (t.price, t.size, t.marketMaker))
        elif t.operation == 1:
            book[t.position] = (t.price, t.size, t.marketMaker)
        else:
            del book[t.position]
    return books[1], books[0]


def _levels(levels: list[DepthLevel]) -> list[tuple[float, float, str]]:
    return [(lvl.price, lvl.size, lvl.venue) for lvl in levels]


def _stream(gw: Gateway, clk: FakeClock) -> list[MktDepthData]:
    ib: IB = gw.client(41)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    got: list[MktDepthData] = []

    def collect(tickers: set[Ticker]) -> None:
        for tk in tickers:
            got.extend(tk.domTicks)

    ib.pendingTickersEvent += collect
    ib.reqMktDepth(spy, 10, isSmartDepth=True)
    ib_eventually(ib, lambda: len(got) >= 20, what="the initial book")
    while len(got) < N:
        clk.advance(0.05)
        ib.sleep(0.01)
    ib_eventually(ib, lambda: len(got) == gw.server.stats()["depth"], what="everything sent arrived")
    bids, asks = rebuild(got)
    model_bids, model_asks = gw.call(lambda: gw.model.book("SPY"))
    assert (bids, asks) == (_levels(model_bids), _levels(model_asks))
    assert [p for p, _, _ in bids] == sorted((p for p, _, _ in bids), reverse=True) and len(bids) == 10
    return got[:N]


def _digest(ticks: list[MktDepthData]) -> str:
    rows = [(t.position, t.marketMaker, t.operation, t.side, t.price, t.size) for t in ticks]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_same_seed_gives_the_same_depth_stream_and_the_model_book(client_loop: object) -> None:
    digests = []
    for _ in range(2):
        clk = FakeClock(START)
        gw = start_gateway(clk, params=PARAMS)
        try:
            digests.append(_digest(_stream(gw, clk)))
        finally:
            stop_gateway(gw)
    assert digests[0] == digests[1]
    assert digests[0] == RECORDED_DIGEST, digests[0]
