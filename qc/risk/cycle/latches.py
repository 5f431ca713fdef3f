"""The latched trading states in Redis: read them, change one with compare-and-set, log and count each change.

Every scope's latch is a field of one hash (``keys.trading_state``), written only here, by a Lua
compare-and-set on that single key (atomic on every Redis topology): the worker's breakers and an
operator's `qc risk halt` / `resume` may race, and neither may overwrite a change it did not see.
A latch that cannot be decoded reads as **HALTED** (cause ``unreadable``): garbage must never be
taken for permission to trade.

Each change is appended to the capped transition log and counted per cause and state
(``risk:state:counts:{account}``); a breaker trip (a
change to a stricter state made by a breaker) is also a **breach**: ``risk:breaches:count`` and the
breach log that `qc status` reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qc.core import keys
from qc.core.codec import Absent
from qc.risk import codec
from qc.risk.codec import TransitionEntry, latch_from_redis, latch_to_redis
from qc.risk.state import Latch, TradingState
from qc.runtime.store import Store

log = logging.getLogger(__name__)

ACCOUNT_SCOPE = "account"
TRANSITION_LOG_CAP = 1000
UNREADABLE = "unreadable"

_CAS = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one scope's latch."""

    scope: str
    before: Latch
    after: Latch

    @property
    def breach(self) -> bool:
        """A breaker made it stricter: what `risk:breaches:count` counts."""
        return self.after.state > self.before.state and self.after.by.startswith("breaker:")

    def entry(self) -> TransitionEntry:
        return TransitionEntry(self.scope, self.before.state, self.after.state, self.after.cause, self.after.by,
                               self.after.reason, self.after.since)


def _decoded(raw: str | None, key: str) -> Latch:
    latch = latch_from_redis(raw, key=key)
    if isinstance(latch, Absent):
        if raw is None:
            return Latch()  # nothing ever latched this scope: ACTIVE
        log.error("trading state %s unreadable (%s): treated as HALTED until an operator resumes", key, latch.reason)
        return Latch(TradingState.HALTED, UNREADABLE, "risk", latch.reason)
    return latch


def load(store: Store, account: str) -> dict[str, Latch]:
    """Every latched scope of ``account`` (``account`` and underlyings); scopes never latched are absent."""
    key = keys.trading_state(account)
    return {scope: _decoded(raw, f"{key.name}[{scope}]") for scope, raw in store.hgetall(key).items()}


def scope_latch(latches: dict[str, Latch], scope: str) -> Latch:
    return latches.get(scope, Latch())


def update(store: Store, account: str, scope: str, change: Callable[[Latch], Latch], now: datetime,
           attempts: int = 20) -> Transition | None:
    """Apply ``change`` to the scope's current latch; write it only if nobody changed it meanwhile.

    ``change`` returns its argument unchanged to mean "nothing to do" (the state module's rule).
    Retries on a lost race by re-reading; returns the transition made, or None.
    """
    key = keys.trading_state(account)
    for _ in range(attempts):
        raw = store.hget(key, scope)
        current = _decoded(raw, f"{key.name}[{scope}]")
        wanted = change(current)
        if wanted is current:
            return None
        if store.client.eval(_CAS, 1, key.name, scope, raw or "", latch_to_redis(wanted)):
            transition = Transition(scope, current, wanted)
            _record(store, account, transition, now)
            return transition
    raise RuntimeError(f"{key.name}[{scope}]: {attempts} writers raced; try again")


def _record(store: Store, account: str, t: Transition, now: datetime) -> None:
    entry = t.entry().to_redis()
    log_key = keys.trading_state_log(account)
    pipe = store.client.pipeline(transaction=False)
    counts = keys.trading_state_counts(account)
    pipe.lpush(log_key.name, entry)
    pipe.ltrim(log_key.name, 0, TRANSITION_LOG_CAP - 1)
    pipe.hincrby(counts.name, f"{t.after.cause}:{t.after.state.name}", 1)
    for key in (log_key, counts):
        if key.ttl_s:
            pipe.expire(key.name, key.ttl_s)
    pipe.execute()
    if t.breach:
        store.record_event(keys.risk_breaches_count(), keys.risk_breaches_log(), now.timestamp(), entry)
    level = logging.WARNING if t.after.state > t.before.state else logging.INFO
    log.log(level, "trading state %s %s → %s (%s by %s: %s)", t.scope, t.before.state.name, t.after.state.name,
            t.after.cause, t.after.by, t.after.reason)


def transitions(store: Store, account: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` transitions, newest first, as shown (entries that do not decode are logged, skipped)."""
    key = keys.trading_state_log(account).name
    return views(store.client.lrange(key, 0, limit - 1), key)


def views(raws: Iterable[str], key: str) -> list[dict[str, Any]]:
    """Transition log or breach log entries as shown; one that does not decode is logged and left out."""
    return codec.views(raws, key, lambda raw: TransitionEntry.from_redis(raw, key=key))
