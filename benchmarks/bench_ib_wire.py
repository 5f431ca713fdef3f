"""Cost of the `qc sim` IB wire codec on its hot path: one marketDepthL2 frame, and splitting requests.

The simulated gateway must sustain 6,000 depth messages/s on one core with room to spare; at
6,000/s one core has 167 µs per message for everything, so the encoder's target is ≤ 5 µs (3 %
of that core). Baseline, measured in the same run: the generic type-driven framing of the same
fields (``ib_wire.frame`` over ``enc``-encoded values), i.e. what the encoder would cost without
its precomputed f-string fast path.
"""

from __future__ import annotations

from benchmarks._report import Figure, best_of
from qc.sim.ib.encode import market_depth_l2
from qc.sim.ib.wire import FrameSplitter, enc, frame

N = 60_000
TARGET_US = 5.0
RATE = 6_000
VENUES = ("ARCA", "NSDQ", "BATS", "IEX", "EDGX")


def _rows() -> list[tuple[int, int, str, int, int, float, float]]:
    """N realistic rows: 5 venues, 10 positions, both sides, cent prices, round-lot sizes."""
    return [(9000, i % 10, VENUES[i % 5], i % 3, i % 2, 450.0 + (i % 200) / 100, float(100 * (1 + i % 7)))
            for i in range(N)]


def _fast(rows: list[tuple[int, int, str, int, int, float, float]]) -> int:
    total = 0
    for r in rows:
        total += len(market_depth_l2(*r))
    return total


def _generic(rows: list[tuple[int, int, str, int, int, float, float]]) -> int:
    total = 0
    for req_id, pos, mm, op, side, price, size in rows:
        total += len(frame([enc(v) for v in (13, 1, req_id, pos, mm, op, side, price, size, True)]))
    return total


def run() -> list[Figure]:
    rows = _rows()
    fast_s, fast_bytes = best_of(lambda: _fast(rows))
    slow_s, slow_bytes = best_of(lambda: _generic(rows))
    assert fast_bytes == slow_bytes, "fast and generic paths must produce the same frames"
    per_us = fast_s / N * 1e6
    stream = b"".join(market_depth_l2(*r) for r in rows)
    split_s, _ = best_of(lambda: FrameSplitter().feed(stream))
    return [
        Figure("marketDepthL2 encode", per_us, "µs/msg", target=f"≤ {TARGET_US} µs",
               baseline=f"generic framing {slow_s / N * 1e6:.2f} µs/msg", met=per_us <= TARGET_US),
        Figure("core share at 6,000 depth msg/s", per_us * RATE / 1e4, "% of one core", target="≤ 3 %",
               met=per_us * RATE / 1e4 <= 3.0),
        Figure("FrameSplitter (same frames)", split_s / N * 1e6, "µs/msg",
               baseline=f"{len(stream) / N:.0f} bytes/msg"),
    ]
