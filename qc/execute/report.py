"""What `qc positions | orders | fills` and the executor's part of `qc status` show, read from Redis.

Read-only: every value goes through its codec (``qc.execute.codec``, ``qc.risk.position_codec``,
``qc.risk.snapshot``, ``qc.signals.codec``); an unreadable one is counted and logged, never shown
as data and never repaired (a query does not write). Formatting is ``render.py``'s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from qc.core import keys
from qc.core.codec import MISSING, Absent
from qc.core.errors import QcError
from qc.execute.codec import fill_from_redis, intent_from_redis
from qc.execute.model import Fill, Intent
from qc.execute.render import IntentDetail, Intents, PositionLine, Positions
from qc.risk.position_codec import PositionRecord, position_from_redis
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)
ORDERS_LIMIT = 500


def _intents(store: Store, ids: Sequence[str]) -> Intents:
    if not ids:
        return Intents(())
    names = [keys.order_intent(i).name for i in ids]
    out: list[Intent] = []
    bad: list[str] = []
    for name, raw in zip(names, store.mget(names), strict=True):
        got = intent_from_redis(raw, key=name)
        if isinstance(got, Intent):
            out.append(got)
        elif got.reason != MISSING:  # an index entry whose intent expired is nothing to show
            log.warning("intent not shown: %s", got)
            bad.append(str(got))
    return Intents(tuple(out), tuple(bad))


def open_intents(store: Store, account: str) -> Intents:
    """The account's intents in ``orders:open:{account}``, newest first."""
    ids = [str(i) for i in store.client.zrevrange(keys.order_intents_open(account).name, 0, -1)]
    return _intents(store, ids)


def logged_intents(store: Store, since: datetime, limit: int = ORDERS_LIMIT) -> Intents:
    """Intents created since ``since`` (``orders:log``, scored by creation), newest first."""
    ids = store.client.zrevrangebyscore(keys.order_intents_log().name, "+inf", since.timestamp(), start=0, num=limit)
    return _intents(store, [str(i) for i in ids])


def orders(store: Store, account: str, since: datetime | None, open_only: bool) -> Intents:
    """`qc orders`: the open intents (``since`` None: all of them), or every intent logged since ``since``."""
    if open_only:
        got = open_intents(store, account)
        if since is None:
            return got
        return Intents(tuple(i for i in got.intents if i.created >= since), got.unreadable)
    assert since is not None
    return logged_intents(store, since)


def intent_detail(store: Store, intent_id: str) -> IntentDetail:
    """One intent whole; unknown or unreadable is a one-line error (exit 1)."""
    key = keys.order_intent(intent_id)
    got = intent_from_redis(store.client.get(key.name), key=key.name)
    if isinstance(got, Absent):
        if got.reason == MISSING:
            raise QcError(f"no order intent {intent_id} (unknown, or older than a week)",
                          "list them with `qc orders --since 7d`")
        raise QcError(f"order intent {intent_id} unreadable: {got}", "an operator must look at the key")
    fills = [f for f in symbol_fills(store, [got.symbol]) if f.intent_id == intent_id
             or f.order_ref.startswith(f"qc:{intent_id}:")]
    signal_key = keys.signal_record(intent_id)
    signal = Signal.from_redis(store.client.get(signal_key.name), key=signal_key.name)
    return IntentDetail(got, tuple(fills), signal)


def symbol_fills(store: Store, symbols: Iterable[str], since: datetime | None = None) -> list[Fill]:
    """Executions recorded for ``symbols`` (at or after ``since``), newest first."""
    out: list[Fill] = []
    for symbol in sorted(set(symbols)):
        key = keys.fills(symbol)
        for exec_id, raw in store.client.hgetall(key.name).items():
            got = fill_from_redis(raw, key=f"{key.name}[{exec_id}]")
            if isinstance(got, Fill):
                if since is None or got.at >= since:
                    out.append(got)
            else:
                log.warning("fill not shown: %s", got)
    return sorted(out, key=lambda f: (f.at, f.exec_id), reverse=True)


def locked(store: Store, account: str) -> dict[int, str]:
    raw = store.hgetall(keys.execution_locked(account))
    return {int(k): v for k, v in sorted(raw.items()) if k.isascii() and k.isdigit()}


def _records(store: Store, account: str) -> tuple[list[PositionRecord], list[str]]:
    out: list[PositionRecord] = []
    bad: list[str] = []
    for name in sorted(store.client.scan_iter(match=keys.position_open_pattern(account), count=500)):
        got = position_from_redis(store.client.hgetall(name), key=name)
        if isinstance(got, PositionRecord):
            out.append(got)
        elif got.reason != MISSING:
            log.warning("position not shown: %s", got)
            bad.append(str(got))
    return out, bad


def positions(store: Store, account: str, now: datetime, include_flat: bool) -> Positions:
    """Every position of ``account`` (flat ones only when ``include_flat``), marked by `qc risk`'s snapshot."""
    from qc.risk.snapshot import PositionView, snapshot_from_redis  # numpy: not for `qc status`

    records, bad = _records(store, account)
    exposure_key = keys.risk_exposure(account)
    snap = snapshot_from_redis(store.get(exposure_key), key=exposure_key.name)
    views: dict[int, PositionView] = {}
    marks_as_of: datetime | None = None
    problem = ""
    if isinstance(snap, Absent):
        problem = "no marks: `qc risk` is not running" if snap.reason == MISSING else f"no marks: {snap}"
    else:
        views = {v.con_id: v for v in snap.positions}
        marks_as_of = snap.as_of
    holding = open_intents(store, account)
    by_con: dict[int, list[Intent]] = {}
    for i in holding.intents:
        by_con.setdefault(i.con_id, []).append(i)
    shown = [r for r in records if include_flat or r.position.quantity != 0]
    lines = tuple(PositionLine(r, views.get(r.con_id), tuple(by_con.get(r.con_id, ())))
                  for r in sorted(shown, key=lambda r: (r.position.contract.underlying, r.con_id)))
    return Positions(account, now, lines, locked(store, account), marks_as_of, problem,
                     len(records) - len(shown), (*bad, *holding.unreadable))


def _json_members(raws: Sequence[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in raws:
        try:
            doc = json.loads(raw)
        except (TypeError, ValueError):
            doc = None
        if isinstance(doc, dict):
            out.append(doc)
        else:
            log.warning("unreadable failed-order entry not shown: %.80r", raw)
    return out


def executor_status(store: Store, account: str, limit: int = 5) -> dict[str, Any]:
    """The executor's part of `qc status`: its status hash, failures today, open intents, locks, alerts."""
    raw_count = store.get(keys.orders_failed_count())
    failed_today = int(raw_count) if raw_count is not None and raw_count.strip().isdigit() else 0
    failed = _json_members(store.client.zrevrange(keys.orders_failed_log().name, 0, limit - 1))
    alerts = []
    for entry_id, fields in store.client.xrevrange(keys.execution_alerts().name, count=limit):
        context: Any = fields.get("context", "{}")
        try:
            context = json.loads(context)
        except ValueError:
            log.warning("alert %s: context not JSON", entry_id)
        alerts.append({"id": entry_id, "at": fields.get("at", ""), "kind": fields.get("kind", ""),
                       "message": fields.get("message", ""), "account": fields.get("account", ""),
                       "context": context})
    status = store.hgetall(keys.execution_status(account))
    return {
        "account": account,
        "status": dict(sorted(status.items())),
        "failed_orders_today": failed_today,
        "failed_orders": failed,
        "open_intents": int(store.client.zcard(keys.order_intents_open(account).name)),
        "locked": [{"con_id": c, "reason": why} for c, why in locked(store, account).items()],
        "alerts": alerts,
    }
