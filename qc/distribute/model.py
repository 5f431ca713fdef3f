"""What `qc distribute` speaks: tiers, channel targets, one queued delivery, and the routing that plans them.

Pure values, validated on construction (a bad value is a ``ValueError`` here; ``config.py`` turns the
operator's settings into these with one-line ``ConfigError``\\ s, ``codec.py`` reads them back from Redis).

Time is Unix seconds **of qc's clock** (the simulator's clock under ``qc sim``), passed in by the caller:
``due = published + tier.delay_s`` is computed once, when the signal is published, and never recomputed.
A retry moves ``due`` on; ``first_due`` keeps the original promise, so lateness is ``now - first_due``
however many attempts came between.

Secrets are not part of the model: a webhook endpoint carries its name and URL, and its signing secret
is read from the environment by name (``config.webhook_secret``) when the request is signed. Nothing
here is ever written to Redis but the :class:`Delivery` (names and times only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

ChannelName = Literal["telegram", "webhook", "x"]
CHANNELS: tuple[ChannelName, ...] = ("telegram", "webhook", "x")

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")  # tiers and targets: parts of Redis keys and of env names
SIGNAL_ID_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")  # qc ids are 21 characters; never a ':' (ident separator)
SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9.]{0,9}")  # the symbols qc trades (QC_SYMBOLS' own rule)
EPOCH_MAX = 4_102_444_800.0  # 2100-01-01: a later "time" is milliseconds or garbage
MAX_ATTEMPTS_BOUND = 100  # a sanity bound on ``attempt``; the retry schedule (policy.py) stops far earlier

MAX_DELAY_S = 3600.0
"""The longest tier delay a setting may ask for. Signals carry a time stop (60 min by default on
0DTE): a tier delayed past an hour would mostly receive trades that are already closed."""

MAX_LATENESS_S: Mapping[ChannelName, float] = MappingProxyType({"telegram": 120.0, "webhook": 900.0, "x": 300.0})
"""How late (``now - first_due``) a delivery may still go out; past it, it is dead-lettered as ``expired``.

A stale options signal is worse than none: a 0DTE premium moves several per cent a minute, and a
subscriber who acts on a two-minute-old limit price trades a different market.

- **telegram 120 s**: people act on it at once. 120 s absorbs Telegram's observed flood waits
  (``retry_after`` 25-40 s), a burst of ~20 posts queued behind the 20-per-minute channel limit, and
  the first three attempts of the retry schedule (0, 5, 30 s); the 2-minute step would land past it,
  so a Telegram item that fails three times expires rather than arriving stale.
- **webhook 900 s**: machines receive it, and the body carries ``emitted_at`` and ``time_stop`` so a
  receiver can judge freshness itself. 900 s covers the whole schedule (0 + 5 + 30 + 120 + 600 = 755 s)
  plus five 10 s request timeouts; a longer bound would only deliver what the receiver should discard.
- **x 300 s**: a public teaser of the free tier, itself already 300 s behind premium; a teaser that
  arrives more than 5 minutes late advertises a trade that is gone. (An X rate-limit window is 15 min:
  when one is exhausted the teaser expires instead of waiting for it.)
"""
LATENESS_CAP_S = 3600.0  # the most a setting may raise a channel's bound to (see MAX_DELAY_S)


def channel_of(text: str) -> ChannelName:
    """The channel named ``text`` (ValueError for anything else)."""
    for channel in CHANNELS:
        if channel == text:
            return channel
    raise ValueError(f"unknown channel {text[:40]!r}, expected one of {', '.join(CHANNELS)}")


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"{what} {str(name)[:40]!r} is not a name: 1-32 of a-z, 0-9, _ starting with a letter")


def _check_epoch(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r}, not a finite number of seconds")
    if not 0.0 <= value <= EPOCH_MAX:
        raise ValueError(f"{what} is {value!r}: Unix seconds in [0, 2100-01-01] (milliseconds?)")


@dataclass(frozen=True, slots=True)
class Tier:
    """A subscriber tier and how long after publication it receives a signal (seconds)."""

    name: str
    delay_s: float

    def __post_init__(self) -> None:
        _check_name("tier", self.name)
        d = self.delay_s
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d):
            raise ValueError(f"tier {self.name}: delay {d!r} is not a finite number of seconds")
        if not 0.0 <= d <= MAX_DELAY_S:
            raise ValueError(f"tier {self.name}: delay {d!r} s outside [0, {MAX_DELAY_S:g}]")
        object.__setattr__(self, "delay_s", float(d))


@dataclass(frozen=True, slots=True)
class Target:
    """One destination on one channel and the tiers it receives.

    - telegram: one channel chat per tier (``name`` is the tier's name, ``chat_id`` the numeric id like
      ``-1001234567890`` or ``@username``); a chat serves exactly one tier.
    - webhook: an endpoint (``name`` its operator-given name, ``url``), receiving one or more tiers; its
      signing secret comes from ``QC_WEBHOOK_SECRET_<NAME>`` (``config.webhook_secret_env``), never from here.
    - x: the one house account (``name`` ``"account"``), receiving the tiers of ``QC_X_TIERS``.

    ``url`` is kept out of ``repr``: a webhook URL often embeds a receiver's token.
    """

    channel: ChannelName
    name: str
    tiers: tuple[str, ...]
    chat_id: str = ""
    url: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        channel_of(self.channel)
        _check_name(f"{self.channel} target", self.name)
        if not self.tiers:
            raise ValueError(f"{self.channel} target {self.name} receives no tier")
        for tier in self.tiers:
            _check_name(f"{self.channel} target {self.name}: tier", tier)
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError(f"{self.channel} target {self.name} lists a tier twice")
        if self.channel == "telegram":
            if not self.chat_id or self.url:
                raise ValueError(f"telegram target {self.name} needs a chat id and no URL")
            if len(self.tiers) != 1:
                raise ValueError(f"telegram target {self.name}: one chat serves one tier")
        elif self.channel == "webhook":
            if not self.url or self.chat_id:
                raise ValueError(f"webhook target {self.name} needs a URL and no chat id")
        elif self.url or self.chat_id:
            raise ValueError("the x target is the configured account: no chat id, no URL")

    def receives(self, tier: str) -> bool:
        return tier in self.tiers


@dataclass(frozen=True, slots=True)
class Delivery:
    """One queued item: signal ``signal_id`` for ``tier``, to ``target`` on ``channel``, not before ``due``.

    ``published`` is when the signal entered distribution and ``first_due`` the tier's promise
    (``published + delay``); ``due`` is when this ``attempt`` (1 = the first) may go out. All Unix seconds
    of qc's clock.
    """

    signal_id: str
    symbol: str
    tier: str
    channel: ChannelName
    target: str
    due: float
    published: float
    attempt: int
    first_due: float

    def __post_init__(self) -> None:
        if not isinstance(self.signal_id, str) or not SIGNAL_ID_RE.fullmatch(self.signal_id):
            raise ValueError(f"signal id {str(self.signal_id)[:40]!r}: 1-64 of 0-9, A-Z, a-z, _ or -")
        if not isinstance(self.symbol, str) or not SYMBOL_RE.fullmatch(self.symbol):
            raise ValueError(f"symbol {str(self.symbol)[:40]!r} is not a ticker like SPY or BRK.B")
        _check_name("tier", self.tier)
        channel_of(self.channel)
        _check_name("target", self.target)
        for what, value in (("due", self.due), ("published", self.published), ("first_due", self.first_due)):
            _check_epoch(what, value)
            object.__setattr__(self, what, float(value))  # 60 and 60.0 give one queue member, not two
        if self.first_due < self.published:
            raise ValueError(f"first_due {self.first_due!r} is before published {self.published!r}")
        if self.due < self.first_due:
            raise ValueError(f"due {self.due!r} is before first_due {self.first_due!r}: never early")
        if isinstance(self.attempt, bool) or not isinstance(self.attempt, int) or \
                not 1 <= self.attempt <= MAX_ATTEMPTS_BOUND:
            raise ValueError(f"attempt {self.attempt!r} is not a whole number in [1, {MAX_ATTEMPTS_BOUND}]")

    @classmethod
    def first(cls, signal_id: str, symbol: str, tier: Tier, channel: ChannelName, target: str,
              published: float) -> Delivery:
        """The first attempt: due ``tier.delay_s`` seconds after ``published``."""
        due = published + tier.delay_s
        return cls(signal_id, symbol, tier.name, channel, target, due, published, 1, due)

    @property
    def ident(self) -> str:
        """``signal:tier:channel:target``: what is delivered once (the glue's idempotency key holds it)."""
        return f"{self.signal_id}:{self.tier}:{self.channel}:{self.target}"

    def is_due(self, now: float) -> bool:
        """Never early: true only once qc's clock has reached ``due``."""
        return self.due <= now

    def lateness(self, now: float) -> float:
        """Seconds past the tier's original promise (negative before it)."""
        return now - self.first_due

    def retried(self, at: float) -> Delivery:
        """The next attempt, due at ``at`` (never before the current due)."""
        return replace(self, due=max(at, self.due), attempt=self.attempt + 1)

    def deferred(self, at: float) -> Delivery:
        """The same attempt moved to ``at`` (a rate limit: the channel refused, nothing failed)."""
        return replace(self, due=max(at, self.due))


@dataclass(frozen=True, slots=True)
class Routing:
    """The tiers (in order of delivery), every target, and each channel's lateness bound."""

    tiers: tuple[Tier, ...]
    targets: tuple[Target, ...] = ()
    max_lateness_s: Mapping[ChannelName, float] = field(default_factory=lambda: MAX_LATENESS_S)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("no tier: at least one is needed")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("a tier is named twice")
        for before, after in zip(self.tiers, self.tiers[1:], strict=False):
            if after.delay_s < before.delay_s:
                raise ValueError(f"tier {after.name} ({after.delay_s:g} s) is listed after {before.name} "
                                 f"({before.delay_s:g} s): list tiers in order of delay")
        seen: set[tuple[str, str]] = set()
        for target in self.targets:
            if (target.channel, target.name) in seen:
                raise ValueError(f"{target.channel} target {target.name} is defined twice")
            seen.add((target.channel, target.name))
            unknown = [t for t in target.tiers if t not in names]
            if unknown:
                raise ValueError(f"{target.channel} target {target.name}: unknown tier {unknown[0]}")
        for channel in CHANNELS:
            bound = self.max_lateness_s.get(channel)
            if bound is None or not math.isfinite(bound) or not 0.0 < bound <= LATENESS_CAP_S:
                raise ValueError(f"{channel}: max lateness {bound!r} not in (0, {LATENESS_CAP_S:g}] s")

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise ValueError(f"unknown tier {name[:40]!r}")

    def target(self, channel: ChannelName, name: str) -> Target | None:
        return next((t for t in self.targets if t.channel == channel and t.name == name), None)

    def targets_for(self, tier: str) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.receives(tier))

    def protects(self, tier: str) -> bool:
        """Telegram ``protect_content``: on every tier some other tier receives later.

        Forwarding a premium (or basic) post would hand it to a later tier before its time; the last
        tier has no one left to leak to. With the default tiers: premium and basic protected, free not.
        """
        delay = self.tier(tier).delay_s
        return any(t.delay_s > delay for t in self.tiers)

    def max_lateness(self, channel: ChannelName) -> float:
        return self.max_lateness_s[channel]

    def plan(self, signal_id: str, symbol: str, published: float) -> tuple[Delivery, ...]:
        """Every delivery of one signal: each tier (in order) to each target that receives it."""
        return tuple(Delivery.first(signal_id, symbol, tier, target.channel, target.name, published)
                     for tier in self.tiers for target in self.targets if target.receives(tier.name))
