"""`qc stream` against `qc sim`: the runbook lines, every feed in Redis, --once, SIGTERM."""

from __future__ import annotations

import json

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.ingest.codec import Bar, Book, DepthLevel, Quote, decode_trades
from qc.runtime.health import INGESTION_MODULE
from qc.runtime.store import Store

from .conftest import RedisServer, eventually
from .stream_harness import SimProcess, book_levels, sim, start_stream, stop_process

__all__ = ["sim"]  # the module-scoped simulator fixture


def test_runbook_lines_and_every_feed_then_a_clean_stop(sim: SimProcess, store: Store,
                                                        redis_server: RedisServer) -> None:
    proc = start_stream(store, redis_server.url, sim, 11, "SPY", "QQQ")
    try:
        eventually(lambda: store.get(keys.heartbeat(INGESTION_MODULE)), timeout_s=15)
        assert abs(clock.wall_epoch() - float(store.get(keys.heartbeat(INGESTION_MODULE)) or 0)) < 5
        eventually(lambda: book_levels(store) == 20 and book_levels(store, "QQQ") == 20)
        book = {k: json.loads(v) for k, v in store.hgetall(keys.book("SPY")).items()}
        assert book["bid:0"]["price"] < book["ask:0"]["price"] and book["bid:0"]["venue"]
        assert [book[f"bid:{i}"]["price"] for i in range(10)] == sorted((book[f"bid:{i}"]["price"] for i in range(10)),
                                                                      reverse=True)
        eventually(lambda: store.hgetall(keys.quote("SPY")))  # the quote's first flush may follow the book's
        quote = Quote.from_redis(store.hgetall(keys.quote("SPY")), key="quote")
        assert isinstance(quote, Quote) and quote.bid is not None and quote.ask is not None and quote.bid < quote.ask
        assert Book.from_redis(store.hgetall(keys.book("SPY")), key="book") == Book(
            tuple(DepthLevel(**book[f"bid:{i}"]) for i in range(10)), tuple(DepthLevel(**book[f"ask:{i}"])
                                                                           for i in range(10)))
        eventually(lambda: store.hget(keys.venue_shares("SPY"), "bid:herfindahl"), timeout_s=5)
        shares = store.hgetall(keys.venue_shares("SPY"))
        bid_share = sum(float(v) for k, v in shares.items() if k.startswith("bid:") and k != "bid:herfindahl")
        assert abs(bid_share - 1.0) < 1e-4
        def sides() -> set[str]:
            return {f["side"] for _, f in store.client.xrange(keys.trades("SPY").name)}

        # both aggressor sides, however the first prints ran (six sells in a row happen in a falling market)
        eventually(lambda: {"1", "-1"} <= sides(), timeout_s=30)
        assert sides() <= {"1", "-1", "0"}
        rows, rejected = decode_trades(store.client.xrange(keys.trades("SPY").name), key="trades")
        assert rows and not rejected
        assert store.get(keys.ibkr_connected()) == "1"
        eventually(lambda: "depth_p99_ms" in store.hgetall(keys.ingest_latency()))
        assert store.hgetall(keys.data_stale()) == {}
        eventually(lambda: store.client.llen(keys.bars_1min("SPY").name) >= 1, timeout_s=20)
        minute = json.loads(store.client.lindex(keys.bars_1min("SPY").name, -1))
        assert not isinstance(Bar.from_redis(json.dumps(minute), key="bars"), Absent)
        assert minute["start"] % 60 == 0 and minute["low"] <= minute["vwap"] <= minute["high"]
        assert INGESTION_MODULE in store.hgetall(keys.worker_registry())
    finally:
        code = stop_process(proc)
    assert code == 0
    assert store.get(keys.heartbeat(INGESTION_MODULE)) is None
    assert INGESTION_MODULE not in store.hgetall(keys.worker_registry())
    assert store.get(keys.ibkr_connected()) is None


def test_once_writes_one_snapshot_and_exits_0(sim: SimProcess, store: Store, redis_server: RedisServer) -> None:
    proc = start_stream(store, redis_server.url, sim, 12, "SPY", "--once")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert book_levels(store) == 20
    assert store.hget(keys.quote("SPY"), "ask")
    assert store.get(keys.heartbeat(INGESTION_MODULE)) is None  # a cron run beats no worker's heartbeat
    assert INGESTION_MODULE not in store.hgetall(keys.worker_registry())  # a cron run is not a worker
    assert store.get(keys.ibkr_connected()) is None


def test_once_beside_a_live_stream_refuses_and_leaves_its_state_alone(sim: SimProcess, store: Store,
                                                                     redis_server: RedisServer) -> None:
    live = start_stream(store, redis_server.url, sim, 14, "SPY")
    try:
        eventually(lambda: store.get(keys.ibkr_connected()) == "1"
                   and INGESTION_MODULE in store.hgetall(keys.worker_registry()), timeout_s=20)
        once = start_stream(store, redis_server.url, sim, 15, "QQQ", "--once")
        out, err = once.communicate(timeout=60)
        assert once.returncode == 1 and out == ""
        assert err.count("\n") == 1 and "qc stream is already live (pid" in err, err
        assert store.get(keys.ibkr_connected()) == "1"  # not withdrawn by the refused run
        assert int(store.client.hlen(keys.book("QQQ").name)) == 0  # and nothing written for it
    finally:
        assert stop_process(live) == 0
