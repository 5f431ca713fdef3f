"""One leader per account: a lease in Redis, renewed while the leader lives, taken over when it lapses.

``SET execution:lease:{account} <me> NX PX <ttl>`` takes it; a single-key Lua script renews it only
while it still names this process (and releases it the same way), as Redis's distributed-lock
page describes. A second `qc execute` finds the lease held and waits as **standby**, trying again
every second; when the leader dies its lease lapses within ``ttl`` and the standby takes over.

A lease alone is not safe (a paused leader can wake after its lease lapsed), so taking the lease
also claims the account's **fencing token** (``qc.runtime.fence``): every write the executor makes
checks it, and the new leader's claim makes the old one's stale. The broker adds its own fence: IB
lets one connection hold a client id (error 326).
"""

from __future__ import annotations

import os
import secrets
import socket

from qc.core import clock, keys
from qc.runtime import fence
from qc.runtime.liveness import process_gone
from qc.runtime.store import Store

TTL_MS = 10_000
RENEW_EVERY_S = 3.0

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _dead_here(holder: str) -> bool:
    """The lease names a process of this host (``pid@host:nonce``) that no longer runs."""
    pid, _, rest = holder.partition("@")
    host = rest.rsplit(":", 1)[0]
    return pid.isdigit() and host == socket.gethostname() and int(pid) != os.getpid() and process_gone(int(pid))


class Lease:
    """This process's claim on ``account``: ``acquire`` (then ``token`` is the fence), ``renew``, ``release``."""

    def __init__(self, store: Store, account: str, client_id: int, ttl_ms: int = TTL_MS) -> None:
        self.store, self.account, self.client_id, self.ttl_ms = store, account, client_id, ttl_ms
        self.me = f"{os.getpid()}@{socket.gethostname()}:{secrets.token_hex(4)}"
        self.token = 0
        self.renewed_at = 0.0  # monotonic

    @property
    def key(self) -> str:
        return keys.execution_lease(self.account).name

    def holder(self) -> str | None:
        value = self.store.client.get(self.key)
        return None if value is None else str(value)

    def acquire(self) -> bool:
        """Take the lease if free (or held by a process of this host that is gone: a killed leader need not
        be waited out); on success claim the fencing token (the old leader's writes now fail)."""
        if not self.store.client.set(self.key, self.me, nx=True, px=self.ttl_ms):
            holder = self.holder()
            if holder is None or not _dead_here(holder):
                return False
            self.store.client.eval(_RELEASE, 1, self.key, holder)
            if not self.store.client.set(self.key, self.me, nx=True, px=self.ttl_ms):
                return False
        self.renewed_at = clock.monotonic()
        self.token = fence.claim(self.store, self.account, pid=os.getpid(), host=socket.gethostname(),
                                 client_id=self.client_id, now_epoch=clock.wall_epoch())
        return True

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (expired and taken): stop trading at once."""
        ok = bool(self.store.client.eval(_RENEW, 1, self.key, self.me, self.ttl_ms))
        if ok:
            self.renewed_at = clock.monotonic()
        return ok

    def valid_for_s(self) -> float:
        """Seconds our lease still runs by our own monotonic clock (renewed_at + ttl − a margin)."""
        return self.renewed_at + self.ttl_ms / 1000.0 * 0.8 - clock.monotonic()

    def release(self) -> None:
        self.store.client.eval(_RELEASE, 1, self.key, self.me)
