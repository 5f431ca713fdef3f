"""One outbox entry to its outcome: re-check, render, throttle, claim, send, classify, record, acknowledge.

The order is the promise:

1. **Never early, never stale**: the delivery's ``due`` is compared with Redis ``TIME`` mapped to qc's
   clock (a member not yet due goes back to its queue), and past the channel's lateness bound it is
   dead-lettered as ``expired``, not sent; both checked again once the tokens are in hand.
2. **Within the limits**: tokens from every limit of the target (``throttle``), or back to the queue.
3. **Exactly once**: an entry whose delivery is already sent or uncertain (a duplicate) is skipped
   before anything is recorded for it; the idempotency key is claimed just before the request
   (``sent.SentLedger``); an entry whose key another sender holds is skipped, one left ``sending`` by a
   dead sender is recorded ``uncertain`` and never resent.
4. The answer is classified (``policy.classify``), the next step decided (``policy.advance``), the key
   moved (sent, uncertain, or released for a retry), the outcome recorded (``outcomes``), and only
   then the entry acknowledged: a crash anywhere before leaves it pending for a reclaim. A reclaimed entry
   whose key is already sent or uncertain puts that outcome on the signal's lineage if it is not there
   (the sender died between marking the key and recording it); its metrics are not counted again, so a
   crash in that window can leave `qc distribute status` one short, never the lineage.

Everything here is one entry at a time and synchronous; the caller (``worker.py``) runs one per outbox.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from qc.core import keys
from qc.core.codec import Absent
from qc.distribute import codec, policy, render
from qc.distribute.channels import Channels
from qc.distribute.cycle import metrics
from qc.distribute.cycle.clockmap import TimeSource, redis_now, resolve
from qc.distribute.cycle.outcomes import Outcomes, target_id
from qc.distribute.cycle.queues import DelayQueue, Entry, Outbox, tier_queue
from qc.distribute.cycle.sent import SendState, SentLedger, Verdict
from qc.distribute.cycle.throttle import Throttle
from qc.distribute.cycle.transport import Answer, Transport
from qc.distribute.model import ChannelName, Delivery, Target
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)

Handled = Literal["sent", "done", "failed", "disabled", "uncertain", "expired", "retry", "rate_limited",
                  "deferred", "skipped", "unreadable"]
NOT_DELIVERED: frozenset[str] = frozenset({"failed", "disabled", "uncertain", "expired", "retry", "unreadable"})
SIGNAL_CACHE = 2048


class Signals:
    """Signals by id, decoded once (rendering needs only their immutable fields)."""

    def __init__(self, store: Store, size: int = SIGNAL_CACHE) -> None:
        self.store, self.size = store, size
        self._cache: OrderedDict[str, Signal] = OrderedDict()

    def get(self, signal_id: str) -> Signal | Absent:
        found = self._cache.get(signal_id)
        if found is not None:
            self._cache.move_to_end(signal_id)
            return found
        key = keys.signal_record(signal_id)
        got = Signal.from_redis(self.store.client.get(key.name), key=key.name)
        if isinstance(got, Signal):
            self._cache[signal_id] = got
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return got


@dataclass(frozen=True)
class Lane:
    """One tier × channel outbox, as one sender reads it."""

    tier: str
    channel: ChannelName
    box: Outbox


@dataclass(frozen=True)
class Rendered:
    """What goes out: the channel's message, ready for the transport."""

    telegram: render.TelegramMessage | None = None
    webhook: render.WebhookMessage | None = None
    x: render.XPost | None = None


class Deliverer:
    """Turns outbox entries into outcomes for one sender thread (its own transport, shared Redis)."""

    def __init__(self, store: Store, channels: Channels, time: TimeSource, throttle: Throttle,
                 transport: Transport, outcomes: Outcomes, signals: Signals) -> None:
        self.store, self.channels, self.time = store, channels, time
        self.routing = channels.routing
        self.throttle, self.transport, self.outcomes, self.signals = throttle, transport, outcomes, signals
        self.ledger = SentLedger(store)
        self._queues: dict[str, DelayQueue] = {}

    def queue(self, tier: str) -> DelayQueue:
        if tier not in self._queues:
            self._queues[tier] = tier_queue(self.store, tier, self.time)
        return self._queues[tier]

    def now(self) -> float:
        return redis_now(self.store, resolve(self.time))

    def handle(self, lane: Lane, entry: Entry) -> Handled:
        """Carry ``entry`` of ``lane`` to an outcome, record it, acknowledge it; returns what became of it."""
        got = codec.delivery_from_redis(entry.member, key=f"{lane.box.key.name}#{entry.id}")
        if isinstance(got, Absent):
            log.error("distribute: unreadable outbox entry (%s): dead-lettered", got)
            metrics.dead_letter(self.store, entry.member, lane.tier, lane.channel, metrics.DeadReason.PERMANENT,
                                f"unreadable: {got.reason}"[:codec.MAX_REASON])
            lane.box.ack(entry.id)
            return "unreadable"
        handled = self._deliver(got, entry)
        lane.box.ack(entry.id)
        return handled

    def _deliver(self, d: Delivery, entry: Entry) -> Handled:
        earlier = self.ledger.state(d)
        if earlier is SendState.SENDING and entry.reclaimed:
            return self._orphaned(d, entry)  # before any check: what a dead sender began may have been sent
        if earlier is not None:
            # a duplicate entry (a re-planned signal, a re-moved member): its outcome is another's to record
            if entry.reclaimed and earlier in (SendState.SENT, SendState.UNCERTAIN):  # ... unless its sender died first
                outcome: codec.FinalOutcome = "sent" if earlier is SendState.SENT else "uncertain"
                self.outcomes.note_lineage(codec.DeliveryRecord.of(d, outcome, self.now(),
                                                                   reason="recorded after the sender died"),
                                           only_if_missing=True)
            log.debug("distribute: %s already %s: skipped", d.ident, earlier.value)
            return "skipped"
        target = self.routing.target(d.channel, d.target)
        if target is None:
            return self._final(d, entry, "failed", self.now(), reason="target no longer configured")
        if target_id(d.channel, d.target) in self.outcomes.disabled():
            return self._final(d, entry, "disabled", self.now(), reason="target disabled (qc distribute enable)")
        bound = self.routing.max_lateness(d.channel)
        gate = self._gate(d, entry, self.now(), bound)
        if gate is not None:
            return gate
        rendered = self._render(d, target)
        if isinstance(rendered, str):
            return self._final(d, entry, "failed", self.now(), reason=rendered)
        retry_at = self.throttle.acquire(target)
        if retry_at is not None:
            self.queue(d.tier).schedule(entry.member, max(retry_at, d.due))  # same member: its due stands
            return "deferred"
        gate = self._gate(d, entry, self.now(), bound)
        if gate is not None:
            return gate
        begun = self.ledger.begin(d, reclaimed=entry.reclaimed)
        if begun.verdict is Verdict.SKIP:
            log.debug("distribute: %s already %s: skipped", d.ident, begun.earlier.value if begun.earlier else "?")
            return "skipped"
        if begun.verdict is Verdict.UNCERTAIN:
            return self._orphaned(d, entry)
        answer = self._send(d, target, rendered)
        return self._answered(d, entry, target, answer, bound)

    def _orphaned(self, d: Delivery, entry: Entry) -> Handled:
        """A reclaimed entry whose key a dead sender left ``sending``: recorded uncertain, never resent."""
        if self.ledger.mark_uncertain(d) in (SendState.SENT, SendState.UNCERTAIN):
            return "skipped"  # it moved on meanwhile (sent, or already recorded uncertain): not ours to record
        return self._final(d, entry, "uncertain", self.now(),
                           reason="a sender died during this delivery: it may have been sent; never resent")

    def _gate(self, d: Delivery, entry: Entry, now: float, bound: float) -> Handled | None:
        """Not yet due: back to the queue at its due time; past the bound: expired; else None (send)."""
        check = policy.check(d, now, bound)
        if check == "wait":
            self.queue(d.tier).schedule(entry.member, d.due)
            return "deferred"
        if check == "expire":
            return self._final(d, entry, "expired", now,
                               reason=f"{d.lateness(now):.0f} s late, past {d.channel}'s {bound:g} s")
        return None

    def _render(self, d: Delivery, target: Target) -> Rendered | str:
        """The message, or why there is none (the signal is gone, or it cannot be rendered: permanent)."""
        signal = self.signals.get(d.signal_id)
        if isinstance(signal, Absent):
            return f"signal record unavailable ({signal.reason})"
        tier = self.routing.tier(d.tier)
        try:
            if d.channel == "telegram":
                return Rendered(telegram=render.telegram_message(signal, tier, protect=self.routing.protects(d.tier)))
            if d.channel == "x":
                return Rendered(x=render.x_post(signal, tier, first_delay_s=self.routing.tiers[0].delay_s))
            return Rendered(webhook=render.webhook_message(signal, tier))
        except ValueError as exc:
            return f"cannot render: {exc}"

    def _send(self, d: Delivery, target: Target, rendered: Rendered) -> Answer:
        if rendered.telegram is not None:
            return self.transport.telegram(target.chat_id, rendered.telegram)
        if rendered.x is not None:
            return self.transport.x(rendered.x)
        assert rendered.webhook is not None
        return self.transport.webhook(target.url, self.channels.webhook_secret(target.name), rendered.webhook,
                                      self.now())

    def _answered(self, d: Delivery, entry: Entry, target: Target, answer: Answer, bound: float) -> Handled:
        now = self.now()
        verdict = policy.classify(d.channel, answer.status, answer.body, answer.headers, now=now, attempt=d.attempt,
                                  after_send=answer.after_send, error=answer.error)
        step = policy.advance(d, verdict, bound)
        if verdict.delivered:
            self.ledger.mark_sent(d)
        elif verdict.kind == "uncertain":
            self.ledger.mark_uncertain(d)
        else:
            self.ledger.release(d)  # a definite failure: a retry (ours or none) may claim the key again
        if verdict.kind == "rate_limited" and verdict.at is not None:
            self.throttle.pause(target, verdict.scope, verdict.at)
        if verdict.kind == "disable":
            names = (d.target,) if verdict.scope != "channel" else tuple(
                t.name for t in self.routing.targets if t.channel == d.channel)
            self.outcomes.disable(d.channel, names, verdict.reason)
        if step.requeue is not None:
            nxt = step.requeue
            self.queue(nxt.tier).schedule(codec.delivery_to_redis(nxt), nxt.due)
            self.outcomes.requeued(d, step.outcome, verdict.retry_after_s)
            log.info("distribute: %s %s (%s); next attempt %d at +%.0f s", d.ident, step.outcome, verdict.reason,
                     nxt.attempt, nxt.due - now)
            return "retry" if step.outcome == "retry" else "rate_limited"
        outcome = _final_outcome(step.outcome)
        return self._final(d, entry, outcome, now, status=verdict.status, reason=step.reason)

    def _final(self, d: Delivery, entry: Entry, outcome: codec.FinalOutcome, at: float, *,
               status: int | None = None, reason: str = "") -> Handled:
        self.outcomes.final(d, outcome, at, status=status, reason=reason, item=entry.member)
        if outcome not in ("sent", "done"):
            log.warning("distribute: %s %s: %s", d.ident, outcome, reason)
        return outcome


def _final_outcome(outcome: policy.Outcome) -> codec.FinalOutcome:
    for final in codec.FINAL_OUTCOMES:
        if final == outcome:
            return final
    raise ValueError(f"{outcome!r} is not a final outcome")
