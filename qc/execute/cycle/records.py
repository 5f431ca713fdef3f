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
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from qc.core import keys
from qc.core.codec import Absent, dumps
from qc.execute.codec import fill_from_redis, fill_to_redis, intent_from_redis, intent_to_redis
from qc.execute.model import Fill, Intent, LegOrder
from qc.risk.position_codec import PositionRecord, position_from_redis, position_to_redis
from qc.runtime import fence
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)
ALERTS_MAXLEN = 10_000


class Records:
    """One account's execution records, guarded by the fencing token ``token`` (0: read-only)."""

    def __init__(self, store: Store, account: str, token: int = 0) -> None:
        self.store, self.account, self.token = store, account, token
        self.unreadable = 0

    @property
    def c(self) -> Any:
        return self.store.client

    def guard(self) -> None:
        """Raise ``Fenced`` unless this executor still holds the account."""
        fence.check(self.store, self.account, self.token)

    # --- intents -----------------------------------------------------------------------------------

    def create(self, intent: Intent) -> bool:
        """Store a new intent unless one with its id exists (a signal delivered twice): True when created."""
        self.guard()
        key, index = keys.order_intent(intent.id), keys.order_intents_open(self.account)
        self.c.zadd(index.name, {intent.id: intent.created.timestamp()})
        created = bool(self.c.set(key.name, intent_to_redis(intent), nx=True, ex=key.ttl_s))
        if created:
            log_key = keys.order_intents_log()
            pipe = self.c.pipeline(transaction=False)
            pipe.zadd(log_key.name, {intent.id: intent.created.timestamp()})
            pipe.expire(log_key.name, log_key.ttl_s)
            pipe.execute()
        return created

    def save(self, intent: Intent) -> None:
        """Write the intent (after checking the fence); a terminal one leaves the open index."""
        self.guard()
        key = keys.order_intent(intent.id)
        self.c.set(key.name, intent_to_redis(intent), ex=key.ttl_s)
        if intent.terminal:
            self.c.zrem(keys.order_intents_open(self.account).name, intent.id)

    def load(self, intent_id: str) -> Intent | Absent:
        key = keys.order_intent(intent_id)
        return intent_from_redis(self.c.get(key.name), key=key.name)

    def open_intents(self) -> list[Intent]:
        """Every non-terminal intent; an index entry whose intent is gone is dropped, an unreadable one logged."""
        index = keys.order_intents_open(self.account)
        out: list[Intent] = []
        for intent_id in self.c.zrange(index.name, 0, -1):
            got = self.load(intent_id)
            if isinstance(got, Intent):
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

    def note_order(self, intent: Intent, order: LegOrder) -> None:
        """``orders:pending:{orderId}`` while the order lives, gone once it is done (a view, never a key)."""
        key = keys.order_pending(order.order_id)
        if order.done:
            self.c.delete(key.name)
            return
        self.c.set(key.name, dumps({"order_ref": order.order_ref(intent.id), "perm_id": order.perm_id,
                                    "intent": intent.id, "leg": order.leg, "status": order.status,
                                    "account": self.account}), ex=key.ttl_s)

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
        """Write the commission into the stored fill: True the first time (the caller books it once)."""
        stored = self.fill(fill.symbol, fill.exec_id)
        if isinstance(stored, Fill) and stored.commission_usd is not None:
            return False
        self.guard()
        base = stored if isinstance(stored, Fill) else fill
        doc = fill_to_redis(replace(base, commission_usd=commission_usd))
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
        out: dict[int, PositionRecord] = {}
        for name in self.c.scan_iter(match=keys.position_open_pattern(self.account), count=500):
            got = position_from_redis(self.c.hgetall(name), key=name)
            if isinstance(got, PositionRecord):
                out[got.con_id] = got
            else:
                self.unreadable += 1
                log.error("execute: position %s unreadable (%s)", name, got.reason)
        return out

    def save_position(self, rec: PositionRecord) -> None:
        self.guard()
        self.store.hset(keys.position_open(self.account, rec.con_id), position_to_redis(rec))

    def drop_position(self, con_id: int) -> None:
        self.guard()
        self.store.delete(keys.position_open(self.account, con_id))

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
        self.store.hincrby(keys.execution_metrics(), name, amount)

    def signal(self, signal_id: str) -> Signal | Absent:
        key = keys.signal_record(signal_id)
        return Signal.from_redis(self.c.get(key.name), key=key.name)

    def note_lineage(self, signal_id: str, entry: dict[str, Any]) -> None:
        """Add the execution's outcome (approved, rejected with its codes, filled, closed) to the signal's lineage."""
        key = keys.signal_record(signal_id)
        got = self.signal(signal_id)
        if not isinstance(got, Signal):
            return
        lineage = dict(got.lineage)
        lineage["execution"] = entry
        ttl = self.c.ttl(key.name)
        self.c.set(key.name, replace(got, lineage=lineage).to_redis(), ex=ttl if ttl and ttl > 0 else key.ttl_s)

    def status(self, fields: dict[str, str]) -> None:
        self.store.hset(keys.execution_status(self.account), fields)
