"""The executor's fencing token: who may send orders for an account, and how an operator takes that away.

One hash per account (``keys.execute_fence``) holds a token that only ever grows and the process
holding it (pid, host, IB client id). `qc execute` **claims** it at start (the token goes up and the
hash names it) and checks it (:func:`check`) before every order it sends and every state write it
makes; `qc risk halt` **bumps** it when the executor does not acknowledge a halt, so a hung
executor that wakes up finds its token stale and stops before it touches anything.

Why a check and not a Lua-guarded write of every key: qc must run on Redis Cluster, where a script
may not span the fence and the key it guards (keys.py's rule). The check narrows the window to one
write; the hard fence is the broker's: halt ends the executor's process and connects with its
client id, which IB lets only one connection hold (error 326), so a fenced executor cannot place or
modify an order until an operator starts it again (ib-execution-and-risk.md §5).

Both changes are single-key Lua scripts (atomic on every topology).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qc.core import keys
from qc.core.codec import Absent
from qc.runtime.store import Store

_CLAIM = """
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
redis.call('HSET', KEYS[1], 'pid', ARGV[1], 'host', ARGV[2], 'client_id', ARGV[3], 'claimed', ARGV[4])
redis.call('HDEL', KEYS[1], 'fenced_by', 'fenced_at')
return token
"""

_BUMP = """
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
redis.call('HSET', KEYS[1], 'fenced_by', ARGV[1], 'fenced_at', ARGV[2])
return token
"""


class Fenced(RuntimeError):
    """This process's token is stale: another claimed the account, or an operator fenced it off."""


@dataclass(frozen=True, slots=True)
class FenceHolder:
    """The fence as last written: the current token and the process that claimed it (0/"" if none yet)."""

    token: int
    pid: int
    host: str
    client_id: int | None
    claimed: float | None          # wall-clock Unix time of the claim
    fenced_by: str = ""            # who bumped the token past the holder ("" while the holder is current)
    fenced_at: float | None = None

    @property
    def fenced(self) -> bool:
        return bool(self.fenced_by)


def _number(fields: dict[str, str], name: str) -> float | None:
    """A non-negative finite number field, None when unset; ValueError naming the field otherwise."""
    raw = fields.get(name, "")
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} is not a number: {raw!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} is not a non-negative number: {raw!r}")
    return value


def holder(store: Store, account: str) -> FenceHolder | Absent | None:
    """The account's fence, None when nothing ever claimed it, Absent when it cannot be read."""
    key = keys.execute_fence(account)
    fields = store.hgetall(key)
    if not fields:
        return None
    try:
        token, pid, client_id, claimed, fenced_at = (
            _number(fields, name) for name in ("token", "pid", "client_id", "claimed", "fenced_at"))
        if token is None or token != int(token):
            raise ValueError(f"token is not a whole number: {fields.get('token')!r}")
    except ValueError as exc:
        return Absent(key.name, f"malformed: {exc}")
    return FenceHolder(int(token), int(pid or 0), fields.get("host", ""),
                       None if client_id is None else int(client_id), claimed, fields.get("fenced_by", ""),
                       fenced_at)


def claim(store: Store, account: str, *, pid: int, host: str, client_id: int, now_epoch: float) -> int:
    """Take the account for this process: returns its token, which every later :func:`check` compares."""
    key = keys.execute_fence(account)
    return int(store.client.eval(_CLAIM, 1, key.name, pid, host, client_id, repr(now_epoch)))


def bump(store: Store, account: str, *, by: str, now_epoch: float) -> int:
    """Fence off whoever holds the account: the token goes up, so its holder's next check fails."""
    key = keys.execute_fence(account)
    return int(store.client.eval(_BUMP, 1, key.name, by, repr(now_epoch)))


def check(store: Store, account: str, token: int) -> None:
    """Raise :class:`Fenced` unless ``token`` is still the account's current one."""
    raw = store.client.hget(keys.execute_fence(account).name, "token")
    if raw is not None and not raw.isdigit():
        raise Fenced(f"executor fence for {account} unreadable (token {raw!r}): stop until an operator looks")
    if raw is None or int(raw) != token:
        raise Fenced(f"executor token {token} for {account} is stale (current {raw}): "
                     "fenced off by `qc risk halt` or replaced by another executor")
