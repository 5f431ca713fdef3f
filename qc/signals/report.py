"""What `qc signals show | explain | stats` print, read from Redis through the signals codec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.core.errors import QcError
from qc.runtime.store import Store
from qc.signals.codec import LastEvaluation, Outcome, Signal, is_signal_id
from qc.signals.model import STRATEGIES
from qc.signals.scorecard import Line, summarize


@dataclass(frozen=True)
class Explained:
    """``explain ID``: the signal, its outcome when decided."""

    signal: Signal
    outcome: Outcome | None


def _signals(store: Store, ids: Sequence[str]) -> list[Signal]:
    if not ids:
        return []
    raws = store.mget([keys.signal_record(i).name for i in ids])
    out = []
    for i, raw in zip(ids, raws, strict=True):
        got = Signal.from_redis(raw, key=keys.signal_record(i).name)
        if isinstance(got, Signal):
            out.append(got)
    return out


def _outcomes(store: Store, ids: Sequence[str]) -> dict[str, Outcome]:
    if not ids:
        return {}
    key = keys.signal_outcomes().name
    raws = store.client.hmget(key, list(ids))
    out: dict[str, Outcome] = {}
    for i, raw in zip(ids, raws, strict=True):
        got = Outcome.from_redis(raw, key=f"{key}[{i}]")
        if isinstance(got, Outcome):
            out[i] = got
    return out


def recent(store: Store, symbol: str | None, limit: int) -> list[tuple[Signal, Outcome | None]]:
    """The newest signals (all symbols, or one), newest first, each with its outcome if decided."""
    if symbol is not None:
        raws = store.client.lrange(keys.signals_pending(symbol).name, 0, limit - 1)
        ids = [s.id for s in (Signal.from_redis(r, key=keys.signals_pending(symbol).name) for r in raws)
               if isinstance(s, Signal)]
        logged = [str(i) for i in store.client.zrevrange(keys.signals_log().name, 0, 10 * limit)]
        ids = list(dict.fromkeys([*ids, *logged]))
        found = [s for s in _signals(store, ids) if s.symbol == symbol][:limit]
    else:
        ids = [str(i) for i in store.client.zrevrange(keys.signals_log().name, 0, limit - 1)]
        found = _signals(store, ids)
    found.sort(key=lambda s: s.id, reverse=True)
    outcomes = _outcomes(store, [s.id for s in found])
    return [(s, outcomes.get(s.id)) for s in found]


def explain(store: Store, signal_id: str) -> Explained:
    """One signal by id; QcError (exit 1) for an id that is malformed or not (or no longer) stored."""
    if not is_signal_id(signal_id):
        raise QcError(f"{signal_id!r} is not a signal id (21 characters: 13 digits then 8 hex)",
                      "copy one from `qc signals show`, or pass a symbol for its last evaluations")
    key = keys.signal_record(signal_id).name
    got = Signal.from_redis(store.client.get(key), key=key)
    if isinstance(got, Absent):
        raise QcError(f"no signal {signal_id}: {got.reason}", "ids are kept 30 days; list recent ones with "
                      "`qc signals show`")
    return Explained(got, _outcomes(store, [signal_id]).get(signal_id))


def last_evaluations(store: Store, symbol: str) -> list[LastEvaluation | Absent]:
    """``signals:last:{sym}``: each strategy's last verdict, or why there is none."""
    key = keys.signals_last(symbol).name
    raw = store.client.hgetall(key)
    if not raw:
        raise QcError(f"no evaluation for {symbol} in {key}", "is `qc signals` running for it? (`qc status`)")
    return [LastEvaluation.from_redis(raw.get(s), key=f"{key}[{s}]") for s in STRATEGIES]


def stats(store: Store, since: datetime, now: datetime) -> list[Line]:
    """Per strategy and symbol since ``since``: counts, hit rate, returns and blocks (by New York day)."""
    ids = [str(i) for i in store.client.zrangebyscore(keys.signals_log().name, since.timestamp(), "+inf")]
    signals = _signals(store, ids)
    blocked: dict[str, int] = {}
    day = clock.new_york_date(since)
    while day <= clock.new_york_date(now):
        for name, n in store.client.hgetall(keys.signals_blocked(day.isoformat()).name).items():
            blocked[str(name)] = blocked.get(str(name), 0) + int(n)
        day += timedelta(days=1)
    return summarize(signals, _outcomes(store, [s.id for s in signals]), blocked)
