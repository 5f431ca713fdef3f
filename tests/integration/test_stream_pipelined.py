"""`qc stream`'s hot path sends a flush and reads IB on while Redis answers (``StreamWriter.flush_soon``): one
batch in flight, a flush asked for meanwhile sent once it lands, and a batch Redis never answered given back
whole (every print once, in order; books and quotes pending from their first arrival) for the next write."""

from __future__ import annotations

import asyncio

from qc.core import keys
from qc.core.clock import FakeClock
from qc.ingest.book import ASK, BID, INSERT
from qc.ingest.cycle.stream_writer import StreamWriter
from qc.ingest.state import StreamState
from qc.runtime.store import Store

from .conftest import RedisServer
from .stream_harness import book_levels

BOOK = [(BID, 0, INSERT, 9.99, 100.0, "ARCA"), (ASK, 0, INSERT, 10.01, 100.0, "IEX")]


def prices(store: Store, symbol: str) -> list[str]:
    return [fields["price"] for _, fields in store.client.xrange(keys.trades(symbol).name)]


async def until_landed(writer: StreamWriter, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while writer._flight is not None and loop.time() < deadline:  # noqa: ASYNC110  # no event to wait on
        await asyncio.sleep(0.001)  # the reader callback lands it; this only waits for that
    assert writer._flight is None, "the batch never landed"


def test_a_flush_asked_for_in_flight_goes_once_the_first_lands(store: Store) -> None:
    state = StreamState(["SPY", "QQQ"], FakeClock(), rows=10)
    writer = StreamWriter(store, state)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        state.depth("SPY", BOOK, [], 1.0)
        state.trades("SPY", [(10.0, 100.0, "ARCA")], 1.0)
        writer.flush_soon(loop)
        assert writer._flight is not None and not state.by_symbol["SPY"].pending  # taken off the state
        state.depth("QQQ", BOOK, [], 1.1)
        state.trades("SPY", [(10.01, 5.0, "IEX")], 1.1)
        writer.flush_soon(loop)  # in flight: asked for, not sent
        assert writer._again
        await until_landed(writer)  # the first landed, the second went and landed
        await until_landed(writer)

    asyncio.run(scenario())
    assert book_levels(store, "SPY") == 2 and book_levels(store, "QQQ") == 2
    assert prices(store, "SPY") == ["10.0", "10.01"]
    assert writer.latency.writes == 2 and writer.latency.histogram().feeds["depth"].count == 2


def test_a_batch_redis_never_answered_is_given_back_whole_and_written_once_after(
        redis_server: RedisServer, store: Store) -> None:
    state = StreamState(["SPY"], FakeClock(), rows=10)
    writer = StreamWriter(store, state, backoff_cap_s=0.01)
    spy = state.by_symbol["SPY"]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        state.depth("SPY", BOOK, [], 1.0)
        state.trades("SPY", [(10.0, 1.0, "ARCA"), (10.01, 2.0, "IEX")], 1.0)
        assert writer.flush()  # the book's first write (a replacement) and two prints
        redis_server.kill()
        state.trades("SPY", [(10.02, 3.0, "ARCA")], 2.0)
        state.depth("SPY", [(BID, 0, INSERT, 10.0, 7.0, "BATS")], [], 2.0)
        writer.flush_soon(loop)  # sending to a dead server: given back at once, or when its reply never comes
        if writer._flight is not None:
            await until_landed(writer)
        assert writer.failures >= 1
        assert spy.pending["trades"] == 2.0 and spy.pending["book"] == 2.0  # from their first arrival
        state.trades("SPY", [(10.03, 4.0, "IEX")], 3.0)  # a newer print behind the given-back one
        assert [t["price"] for t in spy.trades] == ["10.02", "10.03"]

    asyncio.run(scenario())
    redis_server.start()
    writer.retry_at = 0.0
    assert writer.flush()
    # the restarted server kept nothing (no AOF here): the given-back print and the newer one, once each, in order;
    # the whole book again (a failure forgets what was written: the next write is a full replacement)
    assert prices(store, "SPY") == ["10.02", "10.03"]
    assert book_levels(store, "SPY") == 3 and not spy.pending
