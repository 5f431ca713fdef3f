"""One outbox entry to its outcome (``cycle/deliver.py``) against a real Redis, the channel a hand-written stub.

Each case is a path of the sender's promise: never early, exactly once (duplicates skipped, a dead
sender's delivery recorded uncertain and never resent), retries and rate-limit waits per policy, a
410 disabling its endpoint; and the outcome recorded (metrics, lineage, dead letters) before the ack.
"""

from __future__ import annotations

import base64

import pytest

from qc.core import clock, keys
from qc.core.config import resolve
from qc.distribute import codec
from qc.distribute.channels import Channels, from_settings
from qc.distribute.cycle import metrics
from qc.distribute.cycle.clockmap import IDENTITY, redis_now
from qc.distribute.cycle.deliver import Deliverer, Handled, Lane, Signals
from qc.distribute.cycle.outcomes import Outcomes
from qc.distribute.cycle.queues import outbox, tier_queue
from qc.distribute.cycle.sent import SendState, SentLedger
from qc.distribute.cycle.throttle import Throttle
from qc.distribute.cycle.transport import Answer, Transport
from qc.distribute.model import ChannelName, Delivery
from qc.distribute.render import TelegramMessage, WebhookMessage, XPost
from qc.runtime.store import Store
from qc.signals.codec import Signal

from .distribute_harness import make_signal

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OK = {"telegram": Answer(200, {"ok": True}), "webhook": Answer(204), "x": Answer(201, {"data": {"id": "1"}})}


class StubTransport(Transport):
    """Answers from a script, one per request, and remembers what was sent."""

    def __init__(self, channels: Channels, answers: list[Answer] | None = None) -> None:
        super().__init__(channels)
        self.answers = answers or []
        self.sent: list[str] = []

    def _next(self, channel: str) -> Answer:
        self.sent.append(channel)
        return self.answers.pop(0) if self.answers else OK[channel]

    def telegram(self, chat_id: str, message: TelegramMessage) -> Answer:
        return self._next("telegram")

    def webhook(self, url: str, secret: str, message: WebhookMessage, now: float) -> Answer:
        return self._next("webhook")

    def x(self, post: XPost) -> Answer:
        return self._next("x")


@pytest.fixture
def channels() -> Channels:
    return from_settings(resolve({}, {
        "QC_TELEGRAM_CHATS": "premium=-1001,basic=-1002,free=-1003", "QC_TELEGRAM_BOT_TOKEN": "1:t",
        "QC_WEBHOOKS": "alpha=https://a.example/h|premium+basic+free", "QC_WEBHOOK_SECRET_ALPHA": SECRET,
        "QC_X_API_KEY": "a", "QC_X_API_SECRET": "b", "QC_X_ACCESS_TOKEN": "c", "QC_X_ACCESS_SECRET": "d"}, {}, {}))


@pytest.fixture
def signal(store: Store) -> Signal:
    s = make_signal(redis_now(store, IDENTITY) - 1.0)
    store.client.set(keys.signal_record(s.id).name, s.to_redis(), ex=3600)
    return s


class Rig:
    def __init__(self, store: Store, channels: Channels, answers: list[Answer] | None = None) -> None:
        self.store, self.channels = store, channels
        self.transport = StubTransport(channels, answers)
        self.deliverer = Deliverer(store, channels, clock.SystemClock(), Throttle(store, clock.SystemClock()),
                                   self.transport, Outcomes(store), Signals(store))

    def deliver(self, d: Delivery, *, reclaimed: bool = False) -> Handled:
        box = outbox(self.store, d.tier, d.channel, "w1")
        box.ensure_group()
        box.add(codec.delivery_to_redis(d))
        [entry] = box.read(count=1, block_ms=0)
        if reclaimed:
            entry = type(entry)(entry.id, entry.member, reclaimed=True)
        handled = self.deliverer.handle(Lane(d.tier, d.channel, box), entry)
        assert box.pending() == 0  # acknowledged, whatever the outcome
        return handled

    def counts(self, tier: str, channel: ChannelName) -> codec.ChannelMetrics:
        rows = metrics.read(self.store)
        assert isinstance(rows, tuple)
        return next((r for r in rows if (r.tier, r.channel) == (tier, channel)), codec.ChannelMetrics(tier, channel))

    def outcome(self, s: Signal, field: str) -> str:
        got = self.store.client.get(keys.signal_record(s.id).name)
        record = Signal.from_redis(got, key="r")
        assert isinstance(record, Signal)
        found = codec.deliveries_of(record.lineage, key="r")
        assert isinstance(found, tuple)
        return next(r.outcome for r in found if r.field == field)


def plan(channels: Channels, s: Signal) -> dict[tuple[str, str], Delivery]:
    return {(d.tier, d.channel): d for d in channels.routing.plan(s.id, s.symbol, s.created_at.timestamp())}


@pytest.fixture
def rig(store: Store, channels: Channels) -> Rig:
    return Rig(store, channels)


def test_sent_once_recorded_and_a_duplicate_entry_skipped(rig: Rig, channels: Channels, signal: Signal) -> None:
    d = plan(channels, signal)[("premium", "telegram")]
    assert rig.deliver(d) == "sent"
    assert rig.deliver(d) == "skipped" and rig.transport.sent == ["telegram"]  # exactly once
    m = rig.counts("premium", "telegram")
    assert m.sent == 1 and m.latency is not None and m.latency.count == 1
    assert rig.outcome(signal, "premium:telegram:premium") == "sent"
    assert SentLedger(rig.store).state(d) is SendState.SENT


def test_not_yet_due_goes_back_to_its_queue_unsent(rig: Rig, channels: Channels, signal: Signal) -> None:
    d = plan(channels, signal)[("free", "webhook")]  # due 300 s after the signal
    assert rig.deliver(d) == "deferred" and rig.transport.sent == []
    assert tier_queue(rig.store, "free", IDENTITY).score(codec.delivery_to_redis(d)) == d.due


def test_a_dead_senders_delivery_is_uncertain_and_never_resent(rig: Rig, channels: Channels, signal: Signal) -> None:
    d = plan(channels, signal)[("premium", "webhook")]
    SentLedger(rig.store).begin(d)  # the dead sender claimed it, then died (maybe after sending)
    assert rig.deliver(d) == "skipped"  # a fresh duplicate while it might still be alive: not ours
    assert rig.deliver(d, reclaimed=True) == "uncertain" and rig.transport.sent == []
    assert rig.deliver(d, reclaimed=True) == "skipped"
    assert rig.counts("premium", "webhook").uncertain == 1
    [letter] = metrics.dead_letters(rig.store)
    assert letter.reason == "uncertain" and "never resent" in letter.detail


def test_a_sender_that_died_after_marking_sent_leaves_its_outcome_to_the_reclaim(rig: Rig, channels: Channels,
                                                                                 signal: Signal) -> None:
    """Killed between marking the key sent and recording the outcome: the reclaimed entry puts "sent" on the
    lineage (never resending, never counting twice); an outcome already on the lineage is left as it is."""
    d = plan(channels, signal)[("premium", "telegram")]
    ledger = SentLedger(rig.store)
    ledger.begin(d)
    ledger.mark_sent(d)  # ... and the process died here
    assert rig.deliver(d, reclaimed=True) == "skipped" and rig.transport.sent == []
    assert rig.outcome(signal, "premium:telegram:premium") == "sent"
    assert not rig.store.client.exists(keys.distribution_metrics().name)  # not counted again: the dead sender may have
    w = plan(channels, signal)[("premium", "webhook")]
    assert rig.deliver(w) == "sent"
    before = rig.store.client.get(keys.signal_record(signal.id).name)
    assert rig.deliver(w, reclaimed=True) == "skipped"
    assert rig.store.client.get(keys.signal_record(signal.id).name) == before  # recorded already: untouched


def test_a_telegram_read_timeout_is_uncertain(rig: Rig, channels: Channels, signal: Signal) -> None:
    rig.transport.answers = [Answer(None, after_send=True, error="no answer within the read timeout")]
    d = plan(channels, signal)[("premium", "telegram")]
    assert rig.deliver(d) == "uncertain"
    assert SentLedger(rig.store).state(d) is SendState.UNCERTAIN and rig.deliver(d) == "skipped"
    assert rig.transport.sent == ["telegram"]


def test_a_5xx_is_retried_on_schedule_and_a_429_waits_without_using_an_attempt(rig: Rig, channels: Channels,
                                                                              signal: Signal) -> None:
    rig.transport.answers = [Answer(503, None), Answer(429, {"ok": False, "error_code": 429,
                                                             "description": "Too Many Requests: retry after 7",
                                                             "parameters": {"retry_after": 7}})]
    d = plan(channels, signal)[("premium", "telegram")]
    assert rig.deliver(d) == "retry"
    assert SentLedger(rig.store).state(d) is None  # released: the retry may claim it
    queue = tier_queue(rig.store, "premium", IDENTITY)
    [(member, due)] = rig.store.client.zrange(queue.key.name, 0, -1, withscores=True)
    retry = codec.delivery_from_redis(member, key="q")
    assert isinstance(retry, Delivery) and retry.attempt == 2 and due == retry.due
    assert retry.due == pytest.approx(redis_now(rig.store, IDENTITY) + 5.0, abs=1.0)
    rig.store.client.zrem(queue.key.name, member)
    assert rig.deliver(retry) == "deferred"  # its 5 s have not passed: back to the queue
    later = Delivery(retry.signal_id, retry.symbol, retry.tier, retry.channel, retry.target,
                     redis_now(rig.store, IDENTITY) - 0.1, retry.published, 2, retry.first_due)
    rig.store.delete(keys.distribution_bucket("telegram:chat:-1001"))  # a minute later: the chat has a token again
    assert rig.deliver(later) == "rate_limited"
    m = rig.counts("premium", "telegram")
    assert (m.retried, m.rate_limited, m.retry_after_s) == (1, 1, 7.0)
    waits = [codec.delivery_from_redis(x, key="q") for x in rig.store.client.zrange(queue.key.name, 0, -1)]
    assert any(isinstance(w, Delivery) and w.attempt == 2 and w.due >= later.due + 7 for w in waits)
    paused = rig.store.client.hget(keys.distribution_bucket("telegram").name, "paused_until")
    assert paused is not None and float(paused) >= later.due + 7  # every sender of this bot waits too


def test_a_410_disables_the_endpoint_and_its_next_deliveries_are_not_sent(rig: Rig, channels: Channels,
                                                                         signal: Signal) -> None:
    rig.transport.answers = [Answer(410)]
    deliveries = plan(channels, signal)
    assert rig.deliver(deliveries[("premium", "webhook")]) == "disabled"
    assert rig.store.client.smembers(keys.distribution_disabled().name) == {"webhook:alpha"}
    assert rig.deliver(deliveries[("basic", "webhook")]) in ("disabled", "deferred")  # basic is not due yet
    assert "webhook:alpha" in rig.deliverer.outcomes.disabled()
    assert rig.transport.sent == ["webhook"]
    assert rig.outcome(signal, "premium:webhook:alpha") == "disabled"


def test_a_delivery_past_its_bound_expires_unsent(rig: Rig, store: Store, channels: Channels) -> None:
    old = make_signal(redis_now(store, IDENTITY) - 500.0)  # premium telegram: 500 s late, bound 120 s
    store.client.set(keys.signal_record(old.id).name, old.to_redis(), ex=3600)
    d = plan(channels, old)[("premium", "telegram")]
    assert rig.deliver(d) == "expired" and rig.transport.sent == []
    assert rig.counts("premium", "telegram").expired == 1 and rig.outcome(old, "premium:telegram:premium") == "expired"
    [letter] = metrics.dead_letters(store)
    assert letter.reason == "expired" and "past telegram's 120 s" in letter.detail
