"""Simulated IB Gateway: 2,000 depth updates/s per symbol for SPY, QQQ, IWM to one ib_async client.

The server runs in its own process (``benchmarks.ib_sim_runner``, simulated time at real speed, the
market at ``depth_rate_hz`` = 2,000) so its CPU time is measured apart from the client's. The
client (the real ``ib_async.IB``) subscribes SMART depth (10 rows) on the three symbols and counts
the depth messages it decodes for ``WINDOW_S`` real seconds. Figures: the rate the client keeps up
with (target ≥ 6,000/s: everything the market produces), the server's CPU per real second (target
< 0.5 CPU-s/s, so a 2-core machine keeps room for the client and the rest of qc), and the cost of
encoding one depth message and of fanning one out (encode + queue), measured in-process.
Baseline: the codec's ``market_depth_l2`` called with explicit fields.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from ib_async import IB, Stock, Ticker

from benchmarks._report import Figure, best_of
from qc.sim.ib import encode as enc
from qc.sim.ib.feeds import Feeds, Sub
from qc.sim.market.events import DepthOp
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

RATE_HZ = 2000.0
SYMBOLS = ("SPY", "QQQ", "IWM")
WINDOW_S = 5.0
CLIENT_TARGET = 6000.0
CPU_TARGET = 0.5


class _Sink:
    def __init__(self) -> None:
        self.out: list[bytes] = []


def _ops() -> tuple[SimMarket, list[DepthOp]]:
    from benchmarks.ib_sim_runner import START

    m = SimMarket(START, SimParams(depth_rate_hz=RATE_HZ))
    events = m.events_until(START + timedelta(seconds=3))
    return m, [e for e in events if isinstance(e, DepthOp)]


def encode_costs() -> tuple[float, float, float]:
    """µs per depth message: codec ``depth_op``, the explicit-field baseline, and Feeds fan-out."""
    m, ops = _ops()
    enc_s, _ = best_of(lambda: [enc.depth_op(7, op) for op in ops], repeat=5)
    base_s, _ = best_of(lambda: [enc.market_depth_l2(7, op.position, op.venue, op.operation, op.side, op.price,
                                                     op.size) for op in ops], repeat=5)
    feeds, sink = Feeds(m, Counter()), _Sink()
    for i, s in enumerate(SYMBOLS):
        feeds.add(Sub(sink, i + 1, s, "depth", rows=10))

    def fan_out() -> int:
        sink.out.clear()
        feeds.dispatch(list(ops))
        return len(sink.out)

    fan_s, n = best_of(fan_out, repeat=5)
    return enc_s / len(ops) * 1e6, base_s / len(ops) * 1e6, fan_s / max(n, 1) * 1e6


def _command(proc: subprocess.Popen[bytes], command: str) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{command}\n".encode())
    proc.stdin.flush()
    result: dict[str, Any] = json.loads(proc.stdout.readline())
    return result


def end_to_end() -> tuple[float, float, float]:
    """(client depth msgs/s, server depth msgs/s sent, server CPU-s per real s)."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.ib_sim_runner", str(RATE_HZ), "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ib = IB()
    try:
        port = int(proc.stdout.readline())
        ib.connect("127.0.0.1", port, clientId=1, timeout=10)
        got = [0]

        def count(tickers: set[Ticker]) -> None:
            for tk in tickers:
                got[0] += len(tk.domTicks)

        ib.pendingTickersEvent += count
        for s in SYMBOLS:
            c = Stock(s, "SMART", "USD")
            ib.qualifyContracts(c)
            ib.reqMktDepth(c, 10, isSmartDepth=True)
        ib.sleep(1.0)  # warm-up
        first, n0, t0 = _command(proc, "mark"), got[0], time.monotonic()
        ib.sleep(WINDOW_S)
        last, n1, t1 = _command(proc, "mark"), got[0], time.monotonic()
        _command(proc, "stop")
    finally:
        ib.disconnect()
        proc.wait(10)
        loop.close()
        asyncio.set_event_loop(None)
    wall = last["mono"] - first["mono"]
    sent = (last["stats"]["depth"] - first["stats"]["depth"]) / wall
    return (n1 - n0) / (t1 - t0), sent, (last["cpu_s"] - first["cpu_s"]) / wall


def run() -> list[Figure]:
    enc_us, base_us, fan_us = encode_costs()
    client_rate, sent_rate, cpu = end_to_end()
    return [
        Figure("ib_async client depth msgs received, 3 symbols @ 2,000/s", client_rate, "msg/s",
               f">= {CLIENT_TARGET:,.0f}", f"server sent {sent_rate:,.0f}/s", client_rate >= 0.95 * CLIENT_TARGET),
        Figure("server CPU per real second (separate process)", cpu, "CPU-s/s", f"< {CPU_TARGET}",
               f"{cpu / max(sent_rate, 1) * 1e6:.1f} µs CPU per depth msg sent, everything included",
               cpu < CPU_TARGET),
        Figure("encode one depth msg (ib_encode.depth_op)", enc_us, "µs", "",
               f"market_depth_l2 with explicit fields: {base_us:.2f} µs"),
        Figure("fan out one depth msg (Feeds.dispatch: encode + queue)", fan_us, "µs", "< 5 µs", "", fan_us < 5.0),
    ]
