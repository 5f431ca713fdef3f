"""One Alpha Vantage request budget shared by every `qc chains` process: a token bucket in Redis.

Why these numbers. AV (and `qc sim`) count requests per key over a *sliding* real minute. A
bucket of capacity C refilled at C per minute lets up to 2C through in some 60 s (a full burst,
then a minute of refill), so capacity alone cannot be "rpm". Instead the whole sliding-window
allowance is ``budget = floor(rpm × SAFETY_MARGIN)`` (AV users report being throttled one call
early), split into a burst ``capacity = max(1, budget // 4)`` and a continuous refill of
``(budget − capacity) / window_s`` per second. Any window of ``window_s`` then sees at most
capacity + refill × window_s = budget ≤ 90 % of rpm requests, whatever the number of processes.

Time. Tokens are real time (AV limits per real minute, whatever the simulation speed), so the
caller passes wall-clock epoch seconds in as ARGV rather than the script reading Redis TIME:
tests drive the script with chosen instants, and one clock (``qc.core.clock.wall_epoch``) is the
source. Hosts sharing a bucket need NTP-synced clocks; a caller whose clock is behind the stored
``updated_at`` gets no refill (never a negative one).

The script touches one key, so it is Cluster-safe and atomic; floats travel as strings because
Redis truncates Lua numbers returned as integers.

What monitoring shows. ``tokens_left`` in ``monitoring:alpha_vantage:metrics`` is the requests the
plan still allows in the trailing window (every process's requests, from the shared request log),
not the bucket's momentary burst tokens, which empty after every healthy cycle and would page.
A figure written only when a token is taken goes stale between 5-minute cycles (it showed the
post-cycle low for minutes after the window had emptied), so :class:`TokenGauge` writes it at every
take *and* every ``GAUGE_EVERY_S`` while a worker runs: the figure is never older than that. A
`--once` run has no gauge after it exits; the figure it leaves is as of its last request.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from qc.core import clock, keys
from qc.core.errors import QcError
from qc.runtime.codec import AlphaVantageMetrics
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

SAFETY_MARGIN = 0.9
BURST_FRACTION = 4  # capacity = budget // 4: a symbol's few requests go out at once, the rest is refill
DEFAULT_WINDOW_S = 60.0
GAUGE_EVERY_S = 5.0  # real seconds between tokens_left refreshes while a worker waits out its interval

# KEYS[1] bucket hash; ARGV: capacity, refill per second, now (epoch s), ttl (s), tokens wanted.
# Returns {granted 0/1, tokens left after the call, seconds until enough tokens}.
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
if tokens > capacity then tokens = capacity end
if now > updated then
  tokens = math.min(capacity, tokens + (now - updated) * rate)
  updated = now
end
local granted = 0
local wait = 0
if tokens >= want then
  tokens = tokens - want
  granted = 1
else
  wait = (want - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'updated_at', string.format('%.6f', updated),
           'capacity', ARGV[1], 'rate', ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
return {granted, string.format('%.9f', tokens), string.format('%.9f', wait)}
"""


class BudgetExhausted(QcError):
    """No Alpha Vantage token within the bounded wait: this request is skipped, not sent."""


@dataclass(frozen=True)
class BucketShape:
    """Capacity and refill derived from the plan's rpm (see the module docstring for why)."""

    rpm: int
    window_s: float = DEFAULT_WINDOW_S

    @property
    def budget(self) -> int:
        return max(1, int(self.rpm * SAFETY_MARGIN))

    @property
    def capacity(self) -> int:
        return max(1, self.budget // BURST_FRACTION)

    @property
    def refill_per_s(self) -> float:
        # a budget of 1 leaves nothing to refill: half a token per window still grants at most 1 in any window
        return max(self.budget - self.capacity, 0.5) / self.window_s


@dataclass(frozen=True)
class Take:
    granted: bool
    tokens_left: float
    wait_s: float


class TokenBucket:
    """The shared bucket: ``take`` is one atomic script call; ``acquire`` waits (bounded) for a token."""

    def __init__(self, store: Store, shape: BucketShape, now: Callable[[], float] = clock.wall_epoch,
                 sleep: Callable[[float, threading.Event | None], bool] = clock.real_sleep,
                 stop: threading.Event | None = None) -> None:
        self.store = store
        self.shape = shape
        self.now = now
        self.sleep = sleep
        self.stop = stop
        self.key = keys.av_token_bucket()
        self._script = store.client.register_script(TAKE_SCRIPT)

    def take(self, at_epoch: float, want: int = 1) -> Take:
        """Try to take ``want`` tokens at ``at_epoch`` (wall-clock seconds)."""
        ttl = self.key.ttl_s or int(self.shape.window_s * 2)
        granted, left, wait = self._script(
            keys=[self.key.name],
            args=[self.shape.capacity, repr(self.shape.refill_per_s), repr(at_epoch), ttl, want])
        return Take(bool(int(granted)), float(left), float(wait))

    def acquire(self, max_wait_s: float) -> float:
        """Block until a token is ours and return the tokens left; BudgetExhausted after ``max_wait_s``."""
        deadline = self.now() + max_wait_s
        while True:
            result = self.take(self.now())
            if result.granted:
                return result.tokens_left
            remaining = deadline - self.now()
            if remaining <= 0 or (self.stop is not None and self.stop.is_set()):
                raise BudgetExhausted(f"no Alpha Vantage token within {max_wait_s:.0f} s "
                                      f"(budget {self.shape.budget} per {self.shape.window_s:.0f} s)",
                                      "another process may be using the shared budget; check QC_ALPHA_VANTAGE_RPM")
            # a few ms past the refill instant, so floating-point rounding cannot make us spin
            self.sleep(min(result.wait_s + 0.005, remaining), self.stop)


def record_request(store: Store, at_epoch: float) -> None:
    """Log one request (wall-clock time) in the request log every `qc chains` process shares."""
    log_key = keys.av_requests_log()
    store.record_event(None, log_key, at_epoch, member=f"{at_epoch!r}:{uuid.uuid4().hex[:8]}")


def requests_left(store: Store, shape: BucketShape, at_epoch: float) -> int:
    """Requests the plan still allows in the trailing window at ``at_epoch`` (every process counted)."""
    used = store.count_events(keys.av_requests_log(), at_epoch - shape.window_s)
    return max(0, shape.budget - used)


class TokenGauge:
    """Keeps ``tokens_left`` current: written at every take and, from a daemon thread, every few seconds."""

    def __init__(self, store: Store, shape: BucketShape, every_s: float = GAUGE_EVERY_S,
                 now: Callable[[], float] = clock.wall_epoch) -> None:
        self.store = store
        self.shape = shape
        self.every_s = every_s
        self.now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def taken(self) -> int:
        """A request is about to go out: log it and publish what the plan still allows."""
        at = self.now()
        record_request(self.store, at)
        return self.publish(at)

    def publish(self, at_epoch: float | None = None) -> int:
        left = requests_left(self.store, self.shape, self.now() if at_epoch is None else at_epoch)
        self.store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(left))
        return left

    def start(self) -> None:
        """Refresh in the background until :meth:`close` (a worker's wait between cycles is minutes)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="av-token-gauge", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not clock.real_sleep(self.every_s, self._stop):
            try:
                self.publish()
            except REDIS_ERRORS as exc:  # the worker's own loop reports Redis outages; try again next tick
                log.debug("tokens_left not refreshed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
