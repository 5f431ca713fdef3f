"""Which rate limits a send to one target must fit, pure: the numbers, and the bucket each lives in.

Why here and not in the glue: the limits are the channels' facts (the reference's tables,
``../shared/reference/distribution-channels.md``), and which bucket a send draws from decides who
shares it: every `qc distribute` process, every tier, every target on that bot, account or endpoint.

- **Telegram**: about 30 messages per second per bot over all chats (one bucket, ``telegram``), and
  per chat 20 per minute for a group or channel (negative ids, ``@username``) or 1 per second for a
  private chat (``telegram:chat:{chat}``). A flood wait (429 ``retry_after``) pauses the bot's bucket:
  Telegram's flood control spills over to the bot's other sends.
- **X**: 100 posts per 15 minutes per user (``x``); a 429 pauses it until ``x-rate-limit-reset``.
- **Webhooks**: no limit of the spec's; a modest one per endpoint (``webhook:{name}``, 300 per minute)
  keeps a burst of signals from hammering one receiver, and a 429 there pauses that endpoint alone.

Each limit's bucket shape follows ``BucketShape.within`` (``cycle/buckets.py``): never more than
``count`` in any ``window_s`` as the channel measures it, with slack for arrival jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.distribute.model import Target

TELEGRAM_BOT = "telegram"
X_ACCOUNT = "x"


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` sends in any ``window_s`` (qc seconds), drawn from bucket ``bucket``; ``burst``
    tokens may go at once after a quiet spell."""

    bucket: str
    count: int
    window_s: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not self.window_s > 0 or not 1 <= self.burst <= self.count:
            raise ValueError(f"limit {self.bucket}: {self.count} per {self.window_s!r} s, burst {self.burst}")


TELEGRAM_OVERALL = Limit(TELEGRAM_BOT, 30, 1.0, burst=5)
TELEGRAM_GROUP = (20, 60.0)  # per group, supergroup or channel chat
TELEGRAM_PRIVATE = (1, 1.0)  # per private chat
X_POSTS = Limit(X_ACCOUNT, 100, 900.0, burst=10)
WEBHOOK_PER_ENDPOINT = (300, 60.0, 30)


def is_group_chat(chat_id: str) -> bool:
    """Groups, supergroups and channels have negative ids or a public ``@username``."""
    return chat_id.startswith(("-", "@"))


def telegram_chat(chat_id: str) -> Limit:
    count, window = TELEGRAM_GROUP if is_group_chat(chat_id) else TELEGRAM_PRIVATE
    return Limit(f"telegram:chat:{chat_id}", count, window)


def webhook_endpoint(name: str) -> Limit:
    count, window, burst = WEBHOOK_PER_ENDPOINT
    return Limit(f"webhook:{name}", count, window, burst)


def limits_for(target: Target) -> tuple[Limit, ...]:
    """Every limit one send to ``target`` draws a token from, the scarcest first: waiting happens there,
    and the fast-refilling bot-wide token is taken just before the request leaves, so its arrivals at the
    channel follow its grants (what the bucket's proof assumes)."""
    if target.channel == "telegram":
        return telegram_chat(target.chat_id), TELEGRAM_OVERALL
    if target.channel == "x":
        return (X_POSTS,)
    return (webhook_endpoint(target.name),)


def paused_by(target: Target, scope: str) -> Limit | None:
    """The bucket a channel's 429 pauses: the bot or the account for ``scope == "channel"``, the endpoint's
    own for a webhook (``"target"``); None for an item-scoped refusal."""
    if scope == "channel":
        return TELEGRAM_OVERALL if target.channel == "telegram" else X_POSTS if target.channel == "x" else None
    if scope == "target" and target.channel == "webhook":
        return webhook_endpoint(target.name)
    return None
