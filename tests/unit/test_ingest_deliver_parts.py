"""``deliver_tickers`` hands the writer each full part of symbols while more of the read follows, never the last."""

from __future__ import annotations

from datetime import datetime, timezone

from ib_async import MktDepthData, Stock, Ticker

from qc.core.clock import FakeClock
from qc.ingest.book import BID, INSERT
from qc.ingest.cycle.ib_events import deliver_tickers
from qc.ingest.state import StreamState

T = datetime(2026, 3, 13, 15, 0, tzinfo=timezone.utc)


def ticker(symbol: str) -> Ticker:
    t = Ticker(contract=Stock(symbol, "SMART", "USD"))
    t.domTicks.append(MktDepthData(T, 0, "ARCA", INSERT, BID, 9.99, 100.0))
    return t


def test_parts_go_out_full_while_the_read_goes_on_and_the_last_is_left_to_the_flush() -> None:
    symbols = [f"S{i:02d}" for i in range(11)]
    state = StreamState(symbols, FakeClock(T))
    parts: list[tuple[list[str], list[str]]] = []  # each part, and which symbols were delivered when it was handed

    def part(done: list[str]) -> None:
        parts.append((list(done), [s for s in symbols if state.by_symbol[s].pending]))

    tickers = [ticker(s) for s in symbols] + [ticker("NOT_OURS")]
    deliver_tickers(state, tickers, {}, 1.0, part, part_size=4)
    assert [p for p, _ in parts] == [symbols[0:4], symbols[4:8]]  # S08..S10: the flush's
    assert [seen for _, seen in parts] == [symbols[0:4], symbols[0:8]]  # a part is handed once delivered
    assert all(state.by_symbol[s].book.level_count() == 1 for s in symbols)


def test_a_read_no_bigger_than_a_part_hands_nothing() -> None:
    symbols = ["SPY", "QQQ"]
    state = StreamState(symbols, FakeClock(T))
    handed: list[list[str]] = []
    deliver_tickers(state, [ticker(s) for s in symbols], {}, 1.0, handed.append, part_size=2)
    assert handed == []
    deliver_tickers(state, [ticker(s) for s in symbols], {}, 1.0)  # without a writer's hook: as before
    assert state.by_symbol["SPY"].book.level_count() == 2
