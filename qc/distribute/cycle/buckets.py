"""Channel rate limits shared by every `qc distribute` process: one Redis token bucket per limit.

Telegram (about 30 messages/s per bot, 20/min per channel, ~1/s per chat) and X (100 posts per 15
min) count *sliding windows*: N per any W seconds. A limit is one hash,
``distribution:bucket:{limit}`` (tokens, at), and :data:`TAKE_LUA` takes a token in one script
on that one key (Cluster-safe, atomic across processes), with rate and burst as ARGV and the time
from Redis ``TIME`` mapped to qc's clock (:mod:`.clockmap`), so a simulated session's windows are
simulated seconds, like the simulator's counters.

Why a bucket never exceeds the window. Take a bucket of burst ``B`` (capacity) refilled at ``R``
tokens per second, and any ``k`` grants at ``g1 < … < gk`` inside a closed interval of length ``L``.
At ``g1`` the bucket holds at most ``B``; until ``gk`` it gains at most ``R·(gk − g1) ≤ R·L`` (the
cap only lowers that); grants 1 … k−1 spend ``k − 1``; grant ``k`` needs a whole token left. So
``B + R·L − (k − 1) ≥ 1``, i.e. **k ≤ B + R·L**. The rule we build every shape with is therefore

    B + R·(W + S) ≤ N + 1,  with 1 ≤ B ≤ N and a slack S > 0      (:meth:`BucketShape.within`)

Any window of length ``L < W + S`` then holds ``k < N + 1``, i.e. at most N grants. The slack is
what makes it safe where it is measured: a request granted at ``g`` reaches the channel at ``g + d``
with a delay ``d`` that varies; as long as two delays differ by less than ``S``, no ``W`` of arrivals
holds more than N. (Burst 1 with refill N/W is *not* enough: it grants N + 1 in a closed window of
exactly W, at 0, W/N, …, W.) Under `qc sim` at speed ``s``, real jitter ``j`` is ``j·s`` of qc time,
which :meth:`BucketShape.within` accounts for.

A channel's 429 pauses its bucket (:meth:`TokenBucket.pause`): no grant before the time the channel
named, for every process, while the bucket keeps refilling up to its burst.

Clock steps: when qc's time goes backwards (a re-anchored simulator), the bucket does not refill
until it passes its last reading again; it never refills on a negative interval. A bucket key that
expired (a day untouched) restarts full, which a day of idleness would have filled anyway.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from qc.core import clock, keys
from qc.core.keys import Key
from qc.distribute.cycle.clockmap import TIME_LUA, TimeSource, fmt, resolve
from qc.runtime.store import Store

DEFAULT_JITTER_S = 0.25  # real seconds two sends' delivery delays may differ by (a loaded host, a slow TLS)
SLACK_FRACTION = 0.05  # and never less than 5 % of the window
WAIT_PAD_S = 0.001  # real seconds past the refill instant, so rounding cannot make a waiter spin

# KEYS[1] the bucket hash; ARGV: time map (3), refill per qc second, burst, ttl (s).
# Returns {wait, now, real}: wait = "0" when a token was granted, else the qc seconds until one is due
# (nothing taken); now = qc's time of the decision; real = Redis TIME. Numbers as %.17g strings.
TAKE_LUA = TIME_LUA + """
local rate = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'paused_until')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
local paused_until = tonumber(state[3])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if tokens > burst then tokens = burst end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local wait = 0
if paused_until ~= nil and now < paused_until then
  wait = paused_until - now
elseif tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at),
           'rate', ARGV[4], 'burst', ARGV[5])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return {string.format('%.17g', wait), string.format('%.17g', now), string.format('%.17g', real)}
"""

# KEYS[1] the bucket hash; ARGV[1] until (qc epoch s), ARGV[2] ttl. Pauses the bucket (no grant) until then,
# never shortening a pause already set; returns the pause in force.
PAUSE_LUA = """
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0') or 0
local until_at = tonumber(ARGV[1])
if until_at > current then
  redis.call('HSET', KEYS[1], 'paused_until', ARGV[1])
  current = until_at
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return string.format('%.17g', current)
"""


@dataclass(frozen=True)
class BucketShape:
    """Burst ``B`` (whole tokens) and refill ``R`` per qc second."""

    burst: int
    refill_per_s: float

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")
        if not (self.refill_per_s > 0 and math.isfinite(self.refill_per_s)):
            raise ValueError(f"refill must be a positive rate, got {self.refill_per_s!r}")

    @classmethod
    def within(cls, limit: int, window_s: float, *, burst: int = 1, jitter_s: float = DEFAULT_JITTER_S,
               speed: float = 1.0) -> BucketShape:
        """The fastest shape that grants at most ``limit`` in any ``window_s`` seen with arrival jitter.

        Slack ``S = max(jitter_s × speed, 5 % of window_s)`` (qc seconds) and ``R = (N + 1 − B) / (W + S)``:
        the module docstring proves at most N grants in any window shorter than ``W + S``.
        """
        if limit < 1 or not window_s > 0:
            raise ValueError(f"a limit is a positive count per positive window, got {limit} per {window_s!r} s")
        if not 1 <= burst <= limit:
            raise ValueError(f"burst must be in 1..{limit} (the limit), got {burst}")
        slack = max(jitter_s * speed, SLACK_FRACTION * window_s)
        return cls(burst, (limit + 1 - burst) / (window_s + slack))

    def max_grants(self, span_s: float) -> int:
        """The most grants any closed interval of ``span_s`` qc seconds can hold: ⌊B + R·L⌋."""
        return math.floor(self.burst + self.refill_per_s * span_s)


@dataclass(frozen=True)
class Take:
    """One attempt: ``wait_s`` is 0 when granted, else qc seconds until a token; ``at`` is qc's time of it."""

    wait_s: float
    at: float
    real: float

    @property
    def granted(self) -> bool:
        return self.wait_s == 0


class TokenBucket:
    """One limit's shared bucket: :meth:`take` is one script call, :meth:`acquire` waits (bounded)."""

    def __init__(self, store: Store, key: Key, shape: BucketShape, time: TimeSource) -> None:
        self.store = store
        self.key = key
        self.shape = shape
        self.time = time
        self._take = store.client.register_script(TAKE_LUA)
        self._pause = store.client.register_script(PAUSE_LUA)

    def take(self) -> Take:
        tm = resolve(self.time)
        reply: list[Any] = self._take(keys=[self.key.name], args=[
            *tm.args(), fmt(self.shape.refill_per_s), self.shape.burst, self.key.ttl_s or keys.DISTRIBUTION_TTL_S])
        wait, at, real = reply
        return Take(float(wait), float(at), float(real))

    def pause(self, until: float) -> float:
        """Grant nothing before qc time ``until`` (a channel's 429 asked every sender to wait), for every
        process sharing the bucket; a longer pause already set stands. Returns the pause in force."""
        reply = self._pause(keys=[self.key.name], args=[fmt(until), self.key.ttl_s or keys.DISTRIBUTION_TTL_S])
        return float(reply)

    def acquire(self, max_wait_s: float, stop: threading.Event | None = None) -> Take | None:
        """A granted take, or None when none came within ``max_wait_s`` real seconds or ``stop`` was set."""
        deadline = clock.monotonic() + max_wait_s
        while True:
            result = self.take()
            if result.granted:
                return result
            remaining = deadline - clock.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return None
            real_wait = result.wait_s / resolve(self.time).speed + WAIT_PAD_S
            if clock.real_sleep(min(real_wait, remaining), stop):
                return None


def bucket(store: Store, limit: str, shape: BucketShape, time: TimeSource) -> TokenBucket:
    """``distribution:bucket:{limit}``, e.g. ``telegram``, ``telegram:chat:-1001``, ``x``."""
    return TokenBucket(store, keys.distribution_bucket(limit), shape, time)
