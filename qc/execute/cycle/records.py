"""The executor's Redis records: intents, fills, positions, failures, alerts, the signal's lineage.

Every write first checks the fencing token (``qc.runtime.fence.check``): a stale executor (replaced
by a standby, or fenced off by `qc risk halt`) raises ``Fenced`` before it changes anything. The
intent is written **before** the socket write it announces (the caller's rule), so a crash at any
point leaves Redis saying at least as much as the broker knows: reconciliation then joins the two
by order reference.

Single-key operations only (Redis Cluster: keys.py's rule). Two writes that belong together are
ordered so a crash between them is harmless: the open index is added before the intent is created
(an index entry without an intent is dropped on load) and removed after the intent is terminal.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis

from qc.core import clock, keys
from qc.core.codec import Absent, dumps
from qc.execute.codec import fill_from_redis, fill_to_redis, intent_from_redis, intent_to_redis
from qc.execute.model import Fill, Intent, LegOrder
from qc.risk.position_codec import PositionRecord, position_from_redis, position_to_redis
from qc.runtime import fence
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)
ALERTS_MAXLEN = 10_000
SENT_MAXLEN = 10_000
LINEAGE_TRIES = 5


FENCE_TRUST_S = 0.05  # a passed fence check covers the writes of the 50 ms after it


class Records:
    """One account's execution records, guarded by the fencing token ``token`` (0: read-only).

    Two economies keep the order path to a few Redis round trips (measured by `make bench`):

    - A passed fence check is trusted for ``FENCE_TRUST_S`` after it ran (so at most 20 checks a
      second reach Redis); a write after that, or after any pause, checks again. Within that
      window nobody can have fenced this executor: `qc risk halt` first waits seconds for an ack,
      and a new leader must first wait for this leader's 10-s lease to lapse.
    - Positions are cached: the executor is their only writer. The cache is filled from Redis at
      every reconciliation (:meth:`reload_positions`) and updated by every write of this process.
    - Counters are summed in memory and written once a second (:meth:`flush_counts`).
    - What the broker's events change (an order acknowledged, working, cancelled) may be written
      behind (``later=True``): the latest value per key is kept and all of them go in one round trip
      (:meth:`flush`) once the events at hand are handled, instead of a round trip per event while a
      signal waits. :meth:`flush` runs before every socket write (nothing is sent that Redis has not
      heard of) and before reconciliation reads Redis back; an immediate write replaces a pending one.
      A crash before a flush loses only what the broker still knows: reconciliation brings it back.
    """

    def __init__(self, store: Store, account: str, token: int = 0) -> None:
        self.store, self.account, self.token = store, account, token
        self.unreadable = 0
        self._fence_ok_at = -1.0
        self._positions: dict[int, PositionRecord] | None = None
        self._counts: dict[str, int] = {}
        self._sent_seq = 0
        self._behind: dict[str, Callable[[Any], None]] = {}  # key -> the latest write to it, held back
        self.on_behind: Callable[[], None] = self.flush  # called when the first write is held back

    @property
    def c(self) -> Any:
        return self.store.client

    def guard(self) -> None:
        """Raise ``Fenced`` unless this executor still holds the account."""
        now = clock.monotonic()
        if 0 <= now - self._fence_ok_at <= FENCE_TRUST_S:  # a window from the last real check, never slid
            return
        fence.check(self.store, self.account, self.token)
        self._fence_ok_at = now

    # --- intents -----------------------------------------------------------------------------------

    def create(self, intent: Intent) -> bool:
        """Store a new intent unless one with its id exists (a signal delivered twice): True when created."""
        self.guard()
        key, index = keys.order_intent(intent.id), keys.order_intents_open(self.account)
        log_key = keys.order_intents_log()
        at = intent.created.timestamp()
        pipe = self.c.pipeline(transaction=False)  # one round trip; the index entry goes first
        pipe.zadd(index.name, {intent.id: at}, nx=True)
        pipe.set(key.name, intent_to_redis(intent), nx=True, ex=key.ttl_s)
        pipe.zadd(log_key.name, {intent.id: at}, nx=True)
        pipe.expire(log_key.name, log_key.ttl_s)
        return bool(pipe.execute()[1])

    def save(self, intent: Intent, later: bool = False) -> None:
        """Write the intent (after checking the fence); a terminal one leaves the open index."""
        key = keys.order_intent(intent.id)
        doc, index = intent_to_redis(intent), keys.order_intents_open(self.account).name

        def write(pipe: Any) -> None:
            pipe.set(key.name, doc, ex=key.ttl_s)
            if intent.terminal:
                pipe.zrem(index, intent.id)
        self._write(key.name, write, later)

    def _write(self, name: str, write: Callable[[Any], None], later: bool) -> None:
        if later:
            first = not self._behind
            self._behind[name] = write
            if first:
                self.on_behind()
            return
        self._behind.pop(name, None)  # this newer value replaces the held one
        self.guard()
        pipe = self.c.pipeline(transaction=False)
        write(pipe)
        pipe.execute()

    def flush(self) -> None:
        """Write everything held back, in one round trip (raises as the writes would have; kept on failure)."""
        if not self._behind:
            return
        held, self._behind = self._behind, {}
        try:
            self.guard()
            pipe = self.c.pipeline(transaction=False)
            for write in held.values():
                write(pipe)
            pipe.execute()
        except Exception:
            self._behind = {**held, **self._behind}
            raise

    def load(self, intent_id: str) -> Intent | Absent:
        key = keys.order_intent(intent_id)
        return intent_from_redis(self.c.get(key.name), key=key.name)

    def open_intents(self) -> list[Intent]:
        """Every non-terminal intent; an index entry whose intent is gone is dropped, an unreadable one logged."""
        index = keys.order_intents_open(self.account)
        out: list[Intent] = []
        for intent_id in self.c.zrange(index.name, 0, -1):
            got = self.load(intent_id)
            if isinstance(got, Intent) and got.terminal:  # a duplicate delivery re-indexed a finished one
                self.c.zrem(index.name, intent_id)
            elif isinstance(got, Intent):
                out.append(got)
            elif got.reason == "missing":
                self.c.zrem(index.name, intent_id)
            else:
                self.unreadable += 1
                log.error("execute: intent %s unreadable (%s): left alone, not traded; an operator must look",
                          intent_id, got.reason)
        return out

    def recent(self, since_epoch: float, limit: int = 200) -> list[Intent]:
        """Intents created since ``since_epoch`` (newest first), for `qc orders`."""
        ids = self.c.zrevrangebyscore(keys.order_intents_log().name, "+inf", since_epoch, start=0, num=limit)
        return [i for i in (self.load(x) for x in ids) if isinstance(i, Intent)]

    # --- pending orders view ------------------------------------------------------------------------

    def note_sent(self, intent_id: str, orders: int, wall_epoch: float) -> None:
        """An order write done (held back: never a round trip on the order path), for the latency record."""
        key = keys.execution_sent(self.account)
        self._sent_seq += 1
        fields = {"intent": intent_id, "orders": str(orders), "wall": f"{wall_epoch:.6f}"}

        def write(pipe: Any) -> None:
            pipe.xadd(key.name, fields, maxlen=SENT_MAXLEN, approximate=True)
            pipe.expire(key.name, key.ttl_s)
        self._write(f"{key.name}#{self._sent_seq}", write, later=True)

    def note_order(self, intent: Intent, order: LegOrder, later: bool = False) -> None:
        """``orders:pending:{orderId}`` while the order lives, gone once it is done (a view, never a key)."""
        key = keys.order_pending(order.order_id)
        doc = None if order.done else dumps({"order_ref": order.order_ref(intent.id), "perm_id": order.perm_id,
                                             "intent": intent.id, "leg": order.leg, "status": order.status,
                                             "account": self.account})

        def write(pipe: Any) -> None:
            if doc is None:
                pipe.delete(key.name)
            else:
                pipe.set(key.name, doc, ex=key.ttl_s)
        self._write(key.name, write, later)

    # --- fills ---------------------------------------------------------------------------------------

    def add_fill(self, fill: Fill) -> bool:
        """Record an execution once: True when its execId is new (HSETNX on the symbol's fills)."""
        self.guard()
        key = keys.fills(fill.symbol)
        added = bool(self.c.hsetnx(key.name, fill.exec_id, fill_to_redis(fill)))
        self.c.expire(key.name, key.ttl_s)
        return added

    def fill(self, symbol: str, exec_id: str) -> Fill | Absent:
        key = keys.fills(symbol)
        return fill_from_redis(self.c.hget(key.name, exec_id), key=f"{key.name}[{exec_id}]")

    def set_commission(self, fill: Fill, commission_usd: float) -> bool:
        """Write the commission into the stored fill: True the first time (the caller books it once).

        A report for a fill not recorded yet (IB sends a reconciliation's reports before qc has walked
        its executions) writes nothing: the fill is recorded later with its commission, and booked then.
        """
        stored = self.fill(fill.symbol, fill.exec_id)
        if not isinstance(stored, Fill) or stored.commission_usd is not None:
            return False
        self.guard()
        doc = fill_to_redis(replace(stored, commission_usd=commission_usd))
        self.c.hset(keys.fills(fill.symbol).name, fill.exec_id, doc)
        return True

    def fills(self, symbol: str) -> list[Fill]:
        key = keys.fills(symbol)
        out = []
        for exec_id, raw in self.c.hgetall(key.name).items():
            got = fill_from_redis(raw, key=f"{key.name}[{exec_id}]")
            if isinstance(got, Fill):
                out.append(got)
        return sorted(out, key=lambda f: (f.at, f.exec_id))

    def known_exec_ids(self, symbols: Iterable[str]) -> set[str]:
        pipe = self.c.pipeline(transaction=False)
        names = sorted(set(symbols))
        for s in names:
            pipe.hkeys(keys.fills(s).name)
        return {x for got in pipe.execute() for x in got}

    # --- positions -----------------------------------------------------------------------------------

    def positions(self) -> dict[int, PositionRecord]:
        """The account's positions by conId (this process's cache; Redis on the first call)."""
        if self._positions is None:
            self._positions = self.reload_positions()
        return dict(self._positions)

    def reload_positions(self) -> dict[int, PositionRecord]:
        """Read every position from Redis again (reconciliation: Redis may have changed under us)."""
        out: dict[int, PositionRecord] = {}
        for name in self.c.scan_iter(match=keys.position_open_pattern(self.account), count=500):
            got = position_from_redis(self.c.hgetall(name), key=name)
            if isinstance(got, PositionRecord):
                out[got.con_id] = got
            else:
                self.unreadable += 1
                log.error("execute: position %s unreadable (%s)", name, got.reason)
        self._positions = dict(out)
        return out

    def save_position(self, rec: PositionRecord) -> None:
        self.guard()
        self.store.hset(keys.position_open(self.account, rec.con_id), position_to_redis(rec))
        if self._positions is not None:
            self._positions[rec.con_id] = rec

    # --- failures, alerts, locks, lineage, metrics ---------------------------------------------------

    def order_failed(self, intent: Intent, order: LegOrder, code: int, message: str, at_epoch: float) -> None:
        """A rejected or failed order: counted today (``orders:failed:count``) and logged for `qc status`."""
        member = dumps({"intent": intent.id, "order_ref": order.order_ref(intent.id), "code": code,
                        "message": message[:200], "symbol": intent.symbol, "at": at_epoch})
        self.store.record_event(keys.orders_failed_count(), keys.orders_failed_log(), at_epoch, member)

    def alert(self, kind: str, message: str, now: datetime, **context: str | int | float) -> None:
        """An execution alert: logged at WARNING and added to ``execution:alerts`` for status and the dashboard."""
        log.warning("execute alert %s: %s", kind, message)
        key = keys.execution_alerts()
        fields = {"kind": kind, "message": message, "at": now.isoformat(), "account": self.account,
                  "context": json.dumps(context, default=str)}
        self.c.xadd(key.name, fields, maxlen=ALERTS_MAXLEN, approximate=True)
        self.c.expire(key.name, key.ttl_s)

    def lock(self, con_id: int, why: str) -> None:
        self.guard()
        self.c.hset(keys.execution_locked(self.account).name, str(con_id), why)

    def unlock(self, con_id: int) -> None:
        self.c.hdel(keys.execution_locked(self.account).name, str(con_id))

    def locked(self) -> dict[int, str]:
        raw = self.c.hgetall(keys.execution_locked(self.account).name)
        return {int(k): v for k, v in raw.items() if k.isdigit()}

    def count(self, name: str, amount: int = 1) -> None:
        self._counts[name] = self._counts.get(name, 0) + amount

    def flush_counts(self) -> None:
        """Write the counters summed since the last flush (one round trip)."""
        if not self._counts:
            return
        counts, self._counts = self._counts, {}
        key = keys.execution_metrics()
        pipe = self.c.pipeline(transaction=False)
        for name, amount in counts.items():
            pipe.hincrby(key.name, name, amount)
        pipe.expire(key.name, key.ttl_s)
        pipe.execute()

    def signal(self, signal_id: str) -> Signal | Absent:
        key = keys.signal_record(signal_id)
        return Signal.from_redis(self.c.get(key.name), key=key.name)

    def note_lineage(self, signal_id: str, entry: dict[str, Any]) -> None:
        """Add the execution's outcome (approved, rejected with its codes, filled, closed) to the signal's lineage."""
        key = keys.signal_record(signal_id)
        for _ in range(LINEAGE_TRIES):  # under WATCH: `qc distribute` writes its deliveries into the same record
            with self.c.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key.name)
                    got = Signal.from_redis(pipe.get(key.name), key=key.name)
                    if not isinstance(got, Signal):
                        return
                    lineage = {**got.lineage, "execution": entry}
                    pipe.multi()
                    pipe.set(key.name, replace(got, lineage=lineage).to_redis(), keepttl=True)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        log.warning("execute: the lineage of %s kept changing; its execution entry is not recorded there", signal_id)

    def status(self, fields: dict[str, str]) -> None:
        self.store.hset(keys.execution_status(self.account), fields)
