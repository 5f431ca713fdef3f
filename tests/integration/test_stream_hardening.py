"""`qc stream` never stores garbage, never stalls on one bad value, and owns its book key.

- NaN and negative depth sizes for SPY, injected on the wire by a test-local proxy between the real
  `qc stream` (real ib_async) and `qc sim`: refused and counted, while QQQ, SPY's valid levels and the
  heartbeat keep flowing.
- A value that fails to encode in one symbol's state (a bug past the boundary): the writer, against a
  real Redis, drops that item only; the other symbol and the heartbeat are written.
- A restart with fewer depth rows after ``kill -9``: the first write leaves only the new process's
  levels, and the book key's TTL is never missing, also across resubscriptions.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from redis.exceptions import ResponseError

from qc.core import clock, keys
from qc.core.clock import FakeClock
from qc.core.codec import Absent
from qc.core.models import Bar, DepthLevel
from qc.ingest.book import ASK, BID, INSERT
from qc.ingest.codec import Book
from qc.ingest.cycle.stream_writer import FLUSH_PART, VENUES_PER_FLUSH, StreamWriter
from qc.ingest.state import StreamState
from qc.runtime.health import INGESTION_MODULE
from qc.runtime.redis_batch import WriteBatch
from qc.runtime.store import Store
from qc.runtime.worker import stage_heartbeat

from .conftest import RedisServer, eventually
from .stream_harness import STREAM_FLAGS, SimProcess, book_levels, sim, start_stream, stop_process, stream_env, writes

__all__ = ["sim"]


# --- a proxy that corrupts one symbol's depth on the wire -------------------------------------------------


def split_frames(buf: bytearray) -> list[bytes]:
    """Complete frames (4-byte big-endian length + payload) taken off the front of ``buf``, payloads only."""
    out = []
    while len(buf) >= 4:
        size = int.from_bytes(buf[:4], "big")
        if len(buf) < 4 + size:
            break
        out.append(bytes(buf[4:4 + size]))
        del buf[:4 + size]
    return out


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


class DepthCorrupter:
    """Loopback TCP proxy: every ``every``-th depth insert/update of ``symbol`` gets size ``nan`` or ``-5``.

    Requests pass unchanged (read to learn which reqMktDepth ids are ``symbol``'s); answers are re-framed
    one message at a time, the corrupted ones rewritten. Each connection has its own pair of threads.
    """

    def __init__(self, upstream_port: int, symbol: str, every: int) -> None:
        self.upstream_port, self.symbol, self.every = upstream_port, symbol.encode(), every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.corrupted: Counter[str] = Counter()
        self.depth_ids: set[bytes] = set()
        self._seen = 0
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, name="proxy-accept", daemon=True)]
        self._threads[0].start()

    def stop(self) -> None:
        self._stop.set()
        for sock in [self.listener, *self._sockets]:
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            for target, args in ((self._requests, (client, upstream)), (self._answers, (upstream, client))):
                thread = threading.Thread(target=target, args=args, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        buf, opened = bytearray(), False
        while data := _recv(src):
            buf += data
            if not opened and len(buf) >= 4:
                del buf[:4]  # "API\0"; then the version string and every request are frames
                opened = True
            for payload in split_frames(buf):
                fields = payload.split(b"\0")
                if fields[0] == b"10" and len(fields) > 4 and fields[4] == self.symbol:  # reqMktDepth
                    self.depth_ids.add(fields[2])
            if not _send(dst, data):
                break
        _close(dst)

    def _answers(self, src: socket.socket, dst: socket.socket) -> None:
        buf = bytearray()
        while data := _recv(src):
            buf += data
            out = b"".join(framed(self._rewrite(payload)) for payload in split_frames(buf))
            if not _send(dst, out):
                break
        _close(dst)

    def _rewrite(self, payload: bytes) -> bytes:
        """marketDepthL2 (13): 13, version, reqId, position, marketMaker, operation, side, price, size, smart."""
        fields = payload.split(b"\0")
        if fields[0] != b"13" or len(fields) < 9 or fields[2] not in self.depth_ids or fields[5] not in (b"0", b"1"):
            return payload
        self._seen += 1
        if self._seen % self.every:
            return payload
        kind = "nan" if self._seen // self.every % 2 else "negative"
        fields[8] = b"nan" if kind == "nan" else b"-5"
        self.corrupted[kind] += 1
        return b"\0".join(fields)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return  # already closed by the other side


# --- helpers ------------------------------------------------------------------------------------------


def rejects(store: Store, name: str) -> int:
    return int(store.hget(keys.input_rejects(), name) or 0)


def heartbeat(store: Store) -> float:
    return float(store.get(keys.heartbeat(INGESTION_MODULE)) or 0.0)


def sane_book(store: Store, symbol: str) -> bool:
    """The stored book decodes (or is absent) and holds only finite, positive prices and sizes."""
    got = Book.from_redis(store.hgetall(keys.book(symbol)), key=symbol)
    if isinstance(got, Absent):
        return got.reason == "missing"
    return all(math.isfinite(lv.price) and lv.price > 0 and math.isfinite(lv.size) and lv.size > 0
               for lv in (*got.bids, *got.asks))


@pytest.fixture
def corrupter(sim: SimProcess) -> Iterator[DepthCorrupter]:
    proxy = DepthCorrupter(sim.port("ib"), "SPY", every=4)
    yield proxy
    proxy.stop()


# --- the tests ----------------------------------------------------------------------------------------


def test_nan_and_negative_depth_sizes_are_refused_and_everything_else_keeps_flowing(
        corrupter: DepthCorrupter, store: Store, redis_server: RedisServer) -> None:
    eventually(lambda: store.hgetall(keys.sim_clock()), timeout_s=10)
    started = clock.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "qc", "stream", "SPY", "QQQ", *STREAM_FLAGS],
                            env=stream_env(redis_server.url, corrupter.port, 41), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: book_levels(store, "QQQ") == 20 and store.get(keys.ibkr_connected()) == "1", timeout_s=20)
        eventually(lambda: rejects(store, "ib.depth:size_not_finite") > 0
                   and rejects(store, "ib.depth:negative_size") > 0, timeout_s=20)
        beat, written = heartbeat(store), writes(store)
        checks = Counter[str]()

        def flowing() -> bool:
            checks["SPY sane"] += sane_book(store, "SPY")
            checks["samples"] += 1
            checks["SPY levels"] += book_levels(store, "SPY") > 0
            return heartbeat(store) > beat and writes(store) > written + 50 and book_levels(store, "QQQ") == 20

        eventually(flowing, timeout_s=20)
        assert checks["SPY sane"] == checks["samples"] and checks["SPY levels"] > 0
        assert corrupter.corrupted["nan"] > 0 and corrupter.corrupted["negative"] > 0
        assert store.hgetall(keys.data_stale()) == {}
        assert proc.poll() is None
    finally:
        assert stop_process(proc) == 0
    assert proc.stderr is not None
    logged = [ln for ln in proc.stderr.read().splitlines() if "refused from IB at ib.depth: size_not_finite" in ln]
    minutes = int((clock.monotonic() - started) // 60)
    assert 1 <= len(logged) <= 1 + minutes < corrupter.corrupted["nan"]  # once a minute, however many there were


def test_a_value_that_cannot_be_encoded_costs_its_item_only(store: Store) -> None:
    state = StreamState(["SPY", "QQQ"], FakeClock(), rows=10)
    writer = StreamWriter(store, state)
    for symbol in state.symbols:
        state.depth(symbol, [(BID, 0, INSERT, 9.99, 100.0, "ARCA"), (ASK, 0, INSERT, 10.01, 100.0, "IEX")], [], 1.0)
    spy = state.by_symbol["SPY"]
    spy.book.sides[BID].insert(0, DepthLevel(math.nan, 100.0, "BUG"))  # past the boundary: a bug, not IB
    spy.bars.append(Bar(FakeClock().now().replace(second=0, microsecond=0), 10.0, 10.1, 9.9, 10.0, 5.0,
                        math.nan, 1))
    spy.mark("bars", 1.0)
    state.quote("QQQ", {"bid": 9.99, "ask": 10.01}, 1.0)

    def beat(pipe: WriteBatch) -> None:
        stage_heartbeat(pipe, "test_hardening", None)

    assert writer.flush(extra=beat)
    assert store.get(keys.heartbeat("test_hardening")) is not None
    assert book_levels(store, "QQQ") == 2 and store.hget(keys.quote("QQQ"), "bid") == "9.99"
    assert store.client.exists(keys.book("SPY").name) == 0  # nothing half-written for SPY
    assert store.client.llen(keys.bars_1min("SPY").name) == 0
    assert rejects(store, "ib.depth:unencodable") == 1 and rejects(store, "ib.bar:unencodable") == 1
    del spy.book.sides[BID][0]
    state.depth("SPY", [(BID, 1, INSERT, 9.98, 50.0, "ARCA")], [], 2.0)
    assert writer.flush()
    assert book_levels(store, "SPY") == 3 and sane_book(store, "SPY")
    assert store.client.ttl(keys.book("SPY").name) > 0


def test_a_restart_with_fewer_rows_owns_the_book_at_once_and_its_ttl_never_lapses(
        sim: SimProcess, store: Store, redis_server: RedisServer) -> None:
    first = start_stream(store, redis_server.url, sim, 42, "SPY", "QQQ", "--depth-rows", "20")
    try:
        eventually(lambda: book_levels(store, "SPY") == 20, timeout_s=20)  # the simulator shows 10 a side
    finally:
        first.kill()  # kill -9: no clean stop, its keys stay behind
        first.wait()
    assert book_levels(store, "SPY") == 20
    book = keys.book("SPY").name
    samples: list[tuple[int, int]] = []

    def sample() -> tuple[int, int]:
        got = (int(store.client.hlen(book)), int(store.client.pttl(book)))
        samples.append(got)
        return got

    second = start_stream(store, redis_server.url, sim, 43, "SPY", "QQQ", "--depth-rows", "5")
    try:
        eventually(lambda: 0 < sample()[0] <= 10, timeout_s=20, every_s=0.005)
        owned_from = len(samples) - 1
        resubscribed = int(store.hget(keys.ingest_recoveries(), "SPY:depth") or 0)
        sim.ctl("silence", "SPY", "depth", "--seconds", "4")
        eventually(lambda: sample() and int(store.hget(keys.ingest_recoveries(), "SPY:depth") or 0)
                   > resubscribed, timeout_s=20, every_s=0.005)
        # recovered; not "10 levels": the simulator drops operations at rows >= numRows, so with 5 of its 10 rows
        # a side that loses its front never gets the row behind it (TWS would send it) and shrinks
        eventually(lambda: sample()[0] > 0 and store.hgetall(keys.data_stale()) == {}, timeout_s=20, every_s=0.005)
        assert second.poll() is None
    finally:
        assert stop_process(second) == 0
    assert all(ttl > 0 for _, ttl in samples), [s for s in samples if s[1] <= 0][:5]
    assert {n for n, _ in samples[:owned_from]} <= {20}  # the dead process's book, untouched until our write
    assert all(n <= 10 for n, _ in samples[owned_from:])  # then only ours: no deeper level ever comes back


def test_venue_shares_go_out_a_few_per_flush_the_longest_waiting_first_and_none_is_lost(store: Store) -> None:
    """At 100 symbols every symbol's venue shares came due in the same flush; now at most VENUES_PER_FLUSH
    go per flush (the books still go at once), oldest first, until every symbol's shares are written."""
    symbols = [f"S{i:02d}" for i in range(3 * VENUES_PER_FLUSH)]
    state = StreamState(symbols, FakeClock(), rows=10)
    writer = StreamWriter(store, state)
    for symbol in symbols:
        state.depth(symbol, [(BID, 0, INSERT, 9.99, 100.0, "ARCA"), (ASK, 0, INSERT, 10.01, 100.0, "IEX")], [], 1.0)
    written: list[list[str]] = []
    for _ in range(5):
        assert writer.flush()
        if len(written) == 0:
            assert all(book_levels(store, s) == 2 for s in symbols)  # every book in the first flush
        written.append([s for s in symbols if store.client.exists(keys.venue_shares(s).name)])
    # shares follow their book from the next flush on
    assert [len(w) for w in written] == [0, VENUES_PER_FLUSH, 2 * VENUES_PER_FLUSH, 3 * VENUES_PER_FLUSH,
                                         3 * VENUES_PER_FLUSH]
    assert written[1] == symbols[:VENUES_PER_FLUSH]  # the order the books changed in


def test_a_flush_goes_in_parts_and_a_part_refused_by_redis_leaves_the_rest_to_be_written_again(store: Store) -> None:
    """A flush of more symbols than ``FLUSH_PART`` is sent part by part, each part read back before the next
    is staged: the first part's books count as written (nothing pending) even when a later part gets an
    error reply (here a quote key someone overwrote with a string). Then nothing is trusted as written
    (every hash is rewritten whole) and, the bad key gone, the next flush leaves every symbol exact."""
    symbols = [f"S{i:02d}" for i in range(3 * FLUSH_PART)]
    state = StreamState(symbols, FakeClock(), rows=10)
    writer = StreamWriter(store, state)
    for symbol in symbols:
        state.depth(symbol, [(BID, 0, INSERT, 9.99, 100.0, "ARCA"), (ASK, 0, INSERT, 10.01, 100.0, "IEX")], [], 1.0)
    assert writer.flush()
    assert all(book_levels(store, s) == 2 for s in symbols) and writer.latency.histogram().feeds["depth"].count == 48
    bad = symbols[FLUSH_PART + 1]  # in the second part
    store.client.set(keys.quote(bad).name, "not a hash")
    for symbol in symbols:
        state.depth(symbol, [(BID, 0, INSERT, 9.98, 50.0, "BATS")], [], 2.0)
        state.quote(symbol, {"bid": 9.98, "ask": 10.01}, 2.0)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        writer.flush()
    pending = [s for s in symbols if state.by_symbol[s].pending]
    assert pending == symbols[FLUSH_PART:]  # the first part was read back; the rest waits for the next flush
    assert all(book_levels(store, s) == 3 for s in symbols)  # Redis ran every other command
    store.client.delete(keys.quote(bad).name)
    assert writer.flush()
    assert not any(state.by_symbol[s].pending for s in symbols)
    for symbol in symbols:
        assert book_levels(store, symbol) == 3 and sane_book(store, symbol)
        assert store.hget(keys.quote(symbol), "bid") == "9.98"
    assert writer.latency.histogram().feeds["depth"].count == 48 + FLUSH_PART + 2 * FLUSH_PART  # no write counted twice


def sending(writer: StreamWriter) -> bool:
    """Read afresh each time (a property mypy would narrow across the calls that change it)."""
    return writer.sending


def _depth_all(state: StreamState, symbols: list[str], price: float, arrival: float) -> None:
    for symbol in symbols:
        state.depth(symbol, [(BID, 0, INSERT, price, 100.0, "ARCA"), (ASK, 0, INSERT, 10.01, 100.0, "IEX")], [],
                    arrival)


def test_parts_sent_during_a_read_are_finished_by_the_flush_and_each_write_counted_once(store: Store) -> None:
    symbols = [f"S{i:02d}" for i in range(40)]
    state = StreamState(symbols, FakeClock(), rows=10)
    writer = StreamWriter(store, state)
    _depth_all(state, symbols[:FLUSH_PART], 9.99, 1.0)
    writer.send_part(symbols[:FLUSH_PART])  # sent, replies not read yet
    assert sending(writer) and all(state.by_symbol[s].pending for s in symbols[:FLUSH_PART])
    _depth_all(state, symbols[FLUSH_PART:2 * FLUSH_PART], 9.99, 1.0)
    writer.send_part(symbols[FLUSH_PART:2 * FLUSH_PART])  # the first part's replies read: written
    assert not any(state.by_symbol[s].pending for s in symbols[:FLUSH_PART])
    writer.send_part(symbols[FLUSH_PART:2 * FLUSH_PART])  # in flight already: not staged twice
    _depth_all(state, symbols[2 * FLUSH_PART:], 9.99, 1.0)
    assert writer.flush() and not sending(writer)
    assert not any(state.by_symbol[s].pending for s in symbols)
    assert all(book_levels(store, s) == 2 and sane_book(store, s) for s in symbols)
    assert writer.latency.histogram().feeds["depth"].count == len(symbols)
    _depth_all(state, symbols, 9.98, 2.0)  # the next read: deltas over what the parts wrote
    writer.send_part(symbols[:FLUSH_PART])
    assert writer.flush()
    assert all(book_levels(store, s) == 4 and sane_book(store, s) for s in symbols)


def test_nothing_is_sent_ahead_while_redis_is_backed_off_and_a_part_lost_with_redis_is_written_later(
        redis_server: RedisServer, store: Store) -> None:
    symbols = [f"S{i:02d}" for i in range(2 * FLUSH_PART)]
    state = StreamState(symbols, FakeClock(), rows=10)
    writer = StreamWriter(store, state, backoff_cap_s=0.2)
    _depth_all(state, symbols, 9.99, 1.0)
    redis_server.kill()
    try:
        writer.send_part(symbols[:FLUSH_PART])
        writer.send_part(symbols[FLUSH_PART:])  # the first part's reply cannot be read: Redis is gone
        assert writer.failures == 1 and not sending(writer)
        writer.send_part(symbols[:FLUSH_PART])  # backed off: nothing tried
        assert writer.failures == 1 and not sending(writer)
    finally:
        redis_server.start()
    assert all(state.by_symbol[s].pending for s in symbols)
    eventually(lambda: writer.flush(), timeout_s=10)  # once the backoff has passed
    assert all(book_levels(store, s) == 2 and sane_book(store, s) for s in symbols)
    assert writer.latency.histogram().feeds["depth"].count == len(symbols)
