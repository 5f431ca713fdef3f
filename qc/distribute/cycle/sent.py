"""Exactly once per subscriber target: an idempotency key claimed before the network call.

Channels have no idempotency key of their own (a Telegram sendMessage that timed out may have been
delivered; retrying it duplicated messages for other bots), and the outbox may hold an item twice
(the mover's lease, a reclaimed entry). So every delivery — (signal, tier, channel, target) — owns
one key, ``distribution:sent:{signal}:{tier}:{channel}:{target}``, kept a day:

- :meth:`SentLedger.begin` sets it to ``sending`` with SET NX EX *before* the call, atomically
  returning the earlier state when there was one;
- after the call, ``mark_sent`` (delivered, or X's 403 "duplicate"), ``mark_uncertain`` (a timeout:
  it may have reached the channel, so it is never sent again) or ``release`` (the failure was
  definite — 429, 5xx, a refused connection — and a retry is scheduled: the retry may claim the key
  again).

What :meth:`SentLedger.begin` answers, and what the caller does:

============  ==========================  ==================================================================
earlier       entry                       verdict
============  ==========================  ==================================================================
none          any                         SEND: ours; send now
sent          any                         SKIP: acknowledge the entry
uncertain     any                         SKIP: already recorded as in doubt; never resend
sending       fresh (a duplicate entry)   SKIP: another live sender holds it and will record the outcome
sending       reclaimed (dead sender's)   UNCERTAIN: the dead attempt may have reached the channel: record
                                          uncertain (``mark_uncertain``) and never resend
============  ==========================  ==================================================================

A crash after ``begin`` but before the request left therefore yields ``uncertain``, not a resend:
a missed message is reported, a duplicated one is not undoable. Every script touches one key.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from qc.core import keys
from qc.core.keys import Key
from qc.runtime.store import Store

log = logging.getLogger(__name__)


class SendState(enum.Enum):
    SENDING = "sending"
    SENT = "sent"
    UNCERTAIN = "uncertain"


class Verdict(enum.Enum):
    SEND = "send"
    SKIP = "skip"
    UNCERTAIN = "uncertain"


class Addressed(Protocol):
    """One message to one subscriber target, the unit of exactly-once (``qc.distribute.model.Delivery`` is one;
    its attempt number is not part of it: a retry is the same delivery)."""

    @property
    def signal_id(self) -> str: ...

    @property
    def tier(self) -> str: ...

    @property
    def channel(self) -> str: ...

    @property
    def target(self) -> str: ...


@dataclass(frozen=True)
class DeliveryKey:
    """An :class:`Addressed` by its four parts alone (tools and tests)."""

    signal_id: str
    tier: str
    channel: str
    target: str


def sent_key(d: Addressed) -> Key:
    return keys.distribution_sent(d.signal_id, d.tier, d.channel, d.target)


@dataclass(frozen=True)
class Begun:
    """:meth:`SentLedger.begin`'s answer: what to do, and the state found (None when this call claimed the key)."""

    verdict: Verdict
    earlier: SendState | None

    @property
    def send(self) -> bool:
        return self.verdict is Verdict.SEND


# KEYS[1] the delivery key; ARGV[1] ttl. Returns "" when it was claimed ("sending" set), else the value found.
BEGIN_LUA = """
if redis.call('SET', KEYS[1], 'sending', 'NX', 'EX', tonumber(ARGV[1])) then
  return ''
end
return redis.call('GET', KEYS[1])
"""

# KEYS[1] the delivery key; ARGV[1] the new value ("" deletes), ARGV[2] ttl, ARGV[3..] the states it may
# replace ("none" = the key is absent). Returns the value found before (or "none"); writes only if allowed.
TRANSITION_LUA = """
local found = redis.call('GET', KEYS[1]) or 'none'
for i = 3, #ARGV do
  if ARGV[i] == found then
    if ARGV[1] == '' then
      redis.call('DEL', KEYS[1])
    else
      redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
    end
    return found
  end
end
return found
"""
NONE = "none"


class SentLedger:
    """The idempotency keys, through two one-key scripts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._begin = store.client.register_script(BEGIN_LUA)
        self._transition = store.client.register_script(TRANSITION_LUA)

    def begin(self, delivery: Addressed, *, reclaimed: bool = False) -> Begun:
        """Claim the delivery before the network call (see the module table for the verdicts)."""
        key = sent_key(delivery)
        found = str(self._begin(keys=[key.name], args=[_ttl(key)]))
        if found == "":
            return Begun(Verdict.SEND, None)
        earlier = _state(found, key)
        if earlier is SendState.SENDING and reclaimed:
            return Begun(Verdict.UNCERTAIN, earlier)
        return Begun(Verdict.SKIP, earlier)

    def mark_sent(self, delivery: Addressed) -> SendState | None:
        """The channel took it (or said it already had it). Always wins: it is the best knowledge."""
        return self._move(delivery, SendState.SENT.value, (NONE, SendState.SENDING.value, SendState.UNCERTAIN.value,
                                                          SendState.SENT.value))

    def mark_uncertain(self, delivery: Addressed) -> SendState | None:
        """It may have reached the channel: never resend. A ``sent`` already recorded is kept."""
        return self._move(delivery, SendState.UNCERTAIN.value, (NONE, SendState.SENDING.value))

    def release(self, delivery: Addressed) -> SendState | None:
        """A definite failure with a retry scheduled: free the key, but only from ``sending``."""
        return self._move(delivery, "", (SendState.SENDING.value,))

    def state(self, delivery: Addressed) -> SendState | None:
        raw = self.store.client.get(sent_key(delivery).name)
        return None if raw is None else _state(str(raw), sent_key(delivery))

    def _move(self, delivery: Addressed, to: str, allowed: tuple[str, ...]) -> SendState | None:
        """Apply one transition; returns the state found before it (None: the key was absent)."""
        key = sent_key(delivery)
        found = str(self._transition(keys=[key.name], args=[to, _ttl(key), *allowed]))
        return None if found == NONE else _state(found, key)


def _ttl(key: Key) -> int:
    if key.ttl_s is None:
        raise ValueError(f"{key.name}: an idempotency key must expire")
    return key.ttl_s


def _state(raw: str, key: Key) -> SendState:
    try:
        return SendState(raw)
    except ValueError:
        # an unknown value must never read as "free to send" (nor crash the sender forever): in doubt
        log.warning("%s: unknown delivery state %r, read as uncertain", key.name, raw)
        return SendState.UNCERTAIN
