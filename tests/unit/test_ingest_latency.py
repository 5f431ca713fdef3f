"""`qc stream`'s latency window and its nearest-rank percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.ingest.cycle.stream_writer import LatencyStats, LatencyWindow, nearest_rank


@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=500), st.sampled_from([0.01, 0.5, 0.9, 0.99, 1.0]))
def test_nearest_rank_is_numpys_inverted_cdf(samples: list[float], q: float) -> None:
    arr = np.asarray(samples)
    (got,) = nearest_rank(arr, (q,))
    assert got == float(np.percentile(arr, 100 * q, method="inverted_cdf"))
    assert got in samples


def test_nearest_rank_by_hand() -> None:
    arr = np.arange(1.0, 101.0)  # 1 … 100
    assert nearest_rank(arr, (0.5, 0.99, 1.0)) == [50.0, 99.0, 100.0]
    assert nearest_rank(np.array([7.0]), (0.5, 0.99, 1.0)) == [7.0, 7.0, 7.0]


def test_the_window_keeps_only_the_newest_samples() -> None:
    window = LatencyWindow(size=4)
    for ms in (100.0, 1.0, 2.0, 3.0, 4.0):  # the 100 ms outlier is pushed out by the fifth sample
        window.add(ms)
    assert sorted(window.values().tolist()) == [1.0, 2.0, 3.0, 4.0]
    partial = LatencyWindow(size=4)
    partial.add(5.0)
    assert partial.values().tolist() == [5.0]  # unfilled slots are not zeros in the percentiles


def test_summary_names_each_feed_and_counts_writes() -> None:
    stats = LatencyStats()
    for ms in range(1, 101):
        stats.add("depth", float(ms))
    stats.add("quotes", 0.25)
    stats.writes = 7
    got = stats.summary()
    assert got["writes"] == 7.0
    assert (got["depth_p50_ms"], got["depth_p99_ms"], got["depth_max_ms"], got["depth_n"]) == (50.0, 99.0, 100.0, 100.0)
    assert got["quotes_p99_ms"] == pytest.approx(0.25)
    assert "bars_p50_ms" not in got  # a feed with no sample publishes nothing
