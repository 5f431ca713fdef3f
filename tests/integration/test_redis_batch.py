"""qc.runtime.redis_batch against a real redis-server: same effect as redis-py's pipeline, errors, reconnects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from qc.runtime.redis_batch import Batch, WriteBatch, batcher_for
from qc.runtime.store import Store
from tests.integration.conftest import RedisServer


def _queue_everything(pipe: WriteBatch, prefix: str) -> None:
    pipe.hset(f"{prefix}:h", mapping={"bid:0": '{"price":500.01}', "n": 3, "x": 1.5})
    pipe.hdel(f"{prefix}:h", "x")
    pipe.hincrby(f"{prefix}:h", "n", 4)
    pipe.expire(f"{prefix}:h", 60)
    pipe.set(f"{prefix}:s", "1", ex=30)
    pipe.set(f"{prefix}:plain", "v")
    for i in range(5):
        pipe.xadd(f"{prefix}:x", {"price": f"{500 + i}", "side": "1"}, maxlen=3, approximate=False)
    pipe.rpush(f"{prefix}:l", "a", "b", "c", "d")
    pipe.ltrim(f"{prefix}:l", -2, -1)


def _state(client: Any, prefix: str) -> dict[str, Any]:
    return {"h": client.hgetall(f"{prefix}:h"), "h_ttl": client.ttl(f"{prefix}:h") > 0,
            "s": client.get(f"{prefix}:s"), "s_ttl": 0 < client.ttl(f"{prefix}:s") <= 30,
            "plain_ttl": client.ttl(f"{prefix}:plain"),
            "x": [fields for _, fields in client.xrange(f"{prefix}:x")], "l": client.lrange(f"{prefix}:l", 0, -1)}


def test_a_batch_leaves_redis_as_redis_py_pipeline_does(store: Store) -> None:
    batch = batcher_for(store)()
    assert isinstance(batch, Batch)
    _queue_everything(batch, "batch")
    replies = batch.execute()
    pipe = store.client.pipeline(transaction=False)
    _queue_everything(pipe, "pipe")
    assert len(replies) == len(pipe.execute()) == 13
    got, want = _state(store.client, "batch"), _state(store.client, "pipe")
    assert got == want
    assert got["h"] == {"bid:0": '{"price":500.01}', "n": "7"}
    assert [f["price"] for f in got["x"]] == ["502", "503", "504"]
    assert got["l"] == ["c", "d"] and got["plain_ttl"] == -1
    assert batch.execute() == []  # nothing queued: no round trip, nothing to read


def test_an_error_reply_is_raised_after_the_rest_of_the_batch_ran(store: Store) -> None:
    store.client.set("batch:str", "a string")
    new = batcher_for(store)
    batch = new()
    batch.hset("batch:before", mapping={"a": "1"})
    batch.hset("batch:str", mapping={"a": "1"})  # WRONGTYPE
    batch.hset("batch:after", mapping={"b": "2"})
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        batch.execute()
    assert store.client.hgetall("batch:before") == {"a": "1"}
    assert store.client.hgetall("batch:after") == {"b": "2"}  # like a pipeline: later commands still ran
    again = new()  # the held connection is still in step: the next reply is this batch's own
    again.set("batch:next", "ok")
    assert again.execute() == ["OK"]  # raw replies: no redis-py response callbacks


def _set(new: Callable[[], WriteBatch], key: str, value: str) -> list[Any]:
    batch = new()
    batch.set(key, value)
    return batch.execute()


@pytest.mark.parametrize("connected_first", [True, False], ids=["connection lost", "never connected"])
def test_a_dead_redis_is_an_ordinary_connection_error_and_the_next_batch_reconnects(
        redis_server: RedisServer, store: Store, connected_first: bool) -> None:
    new = batcher_for(store)  # holds no connection until the first execute: building it never fails
    if connected_first:
        assert _set(new, "batch:alive", "1") == ["OK"]  # raw replies: no redis-py response callbacks
    redis_server.kill()
    try:
        with pytest.raises(redis.ConnectionError):
            _set(new, "batch:alive", "2")
    finally:
        redis_server.start()
    assert _set(new, "batch:alive", "3") == ["OK"]
    assert store.client.get("batch:alive") == "3"


def test_a_hash_replaced_inside_a_batch_is_exactly_the_new_fields_with_its_ttl(store: Store) -> None:
    store.client.hset("batch:book", mapping={"bid:0": "old", "bid:9": "a dead writer's deeper level"})
    batch = batcher_for(store)()
    assert isinstance(batch, Batch)
    batch.hset("batch:before", mapping={"a": "1"})
    batch.replace_hash("batch:book", {"bid:0": "new", "ask:0": "x"}, 60)
    batch.replace_hash("batch:gone", {}, 60)  # an empty replacement deletes the key
    batch.set("batch:after", "ok")
    replies = batch.execute()
    assert replies[-1] == "OK" and replies[1:4] == ["OK", "QUEUED", "QUEUED"]  # MULTI, then queued, then EXEC
    assert store.client.hgetall("batch:book") == {"bid:0": "new", "ask:0": "x"}
    assert 0 < store.client.ttl("batch:book") <= 60
    assert not store.client.exists("batch:gone") and store.client.get("batch:after") == "ok"


def test_a_failed_replacement_raises_and_the_connection_stays_in_step(store: Store) -> None:
    store.client.set("batch:str", "a string")
    new = batcher_for(store)
    batch = new()
    assert isinstance(batch, Batch)
    batch.replace_hash("batch:str", {"a": "1"}, 60)  # DEL then HSET: replaces even a wrong type
    batch.execute()
    assert store.client.hgetall("batch:str") == {"a": "1"}
    bad = new()
    assert isinstance(bad, Batch)
    bad.commands.append(("MULTI",))
    bad.commands.append(("NOSUCHCOMMAND", "x"))  # refused while queuing: EXEC aborts the transaction
    bad.commands.append(("EXEC",))
    with pytest.raises(redis.ResponseError, match="unknown command"):  # the first error; EXEC's EXECABORT read too
        bad.execute()
    assert _set(new, "batch:next", "ok") == ["OK"]


def test_parts_sent_before_their_replies_are_read_run_in_order_and_are_read_in_order(store: Store) -> None:
    new = batcher_for(store)
    batch = new()
    assert isinstance(batch, Batch)
    for part in range(3):
        batch.rpush("batch:order", f"{part}a", f"{part}b")
        batch.set(f"batch:part{part}", "ok")
        batch.send()  # no reply waited for: the next part is queued while Redis runs this one
    batch.send()  # an empty send has its (empty) receive: the pairing stays one to one
    assert [batch.receive() for _ in range(4)] == [[2, "OK"], [4, "OK"], [6, "OK"], []]
    assert batch.receive() == []  # nothing left in flight
    assert store.client.lrange("batch:order", 0, -1) == ["0a", "0b", "1a", "1b", "2a", "2b"]
    assert _set(new, "batch:next", "ok") == ["OK"]  # the held connection is in step


def test_an_error_reply_in_a_part_reads_every_later_part_before_it_is_raised(store: Store) -> None:
    store.client.set("batch:str", "a string")
    new = batcher_for(store)
    batch = new()
    assert isinstance(batch, Batch)
    batch.hset("batch:str", mapping={"a": "1"})  # WRONGTYPE
    batch.send()
    batch.set("batch:later", "ok")
    batch.send()
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        batch.receive()
    assert batch.receive() == []  # the later part's reply was read with it
    assert store.client.get("batch:later") == "ok"
    assert _set(new, "batch:next", "ok") == ["OK"]


def _send_parts_and_read_the_first(batch: Batch) -> None:
    for part in range(3):  # a send may still land in the socket's buffer: then the read fails
        batch.set(f"batch:part{part}", "x")
        batch.send()
    batch.receive()


def test_redis_dying_with_parts_in_flight_drops_them_and_the_next_batch_reconnects(
        redis_server: RedisServer, store: Store) -> None:
    new = batcher_for(store)
    assert _set(new, "batch:alive", "1") == ["OK"]
    batch = new()
    assert isinstance(batch, Batch)
    redis_server.kill()
    try:
        with pytest.raises(redis.ConnectionError):
            _send_parts_and_read_the_first(batch)
        assert batch.receive() == []  # what was in flight went with the connection
    finally:
        redis_server.start()
    assert _set(new, "batch:alive", "2") == ["OK"]
