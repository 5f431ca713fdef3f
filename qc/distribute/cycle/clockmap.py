"""qc's clock as every Redis script computes it: Redis ``TIME`` mapped through the simulator's anchor.

Why. Delivery delays (premium 0 s, basic 60 s, free 300 s) and rate-limit windows run on qc's clock:
the wall clock in production, the simulated clock under `qc sim`. Several `qc distribute` processes
(possibly on several hosts) decide "is it due?" and "may I send?", so they must read one clock: the
Redis server's ``TIME``. A script maps it to qc's time with three ARGV, ``real_epoch``,
``sim_epoch`` and ``speed``, exactly as :meth:`qc.core.clock.SimAnchor.sim_at` does::

    qc_now = sim_epoch + (redis_time - real_epoch) * speed

Production passes the identity (0, 0, 1), so qc's time there *is* Redis ``TIME``.

:data:`TIME_LUA` is the preamble every script here starts with; it defines ``real`` (Redis TIME in
seconds) and ``now`` (qc's time) from ``ARGV[1..3]``. ``redis.replicate_commands()`` lets a script
write after reading TIME on Redis 3.2–6.2 (effects replication; the default from 5.0, a no-op on 7).
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.core import clock
from qc.runtime.store import Store

# ARGV[1] real_epoch, ARGV[2] sim_epoch, ARGV[3] speed. Defines locals `real`, `now`, `real_epoch`,
# `sim_epoch`, `speed` and the function `qc_at(real_seconds)`.
TIME_LUA = """
redis.replicate_commands()
local real_epoch = tonumber(ARGV[1])
local sim_epoch = tonumber(ARGV[2])
local speed = tonumber(ARGV[3])
local function qc_at(r) return sim_epoch + (r - real_epoch) * speed end
local t = redis.call('TIME')
local real = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now = qc_at(real)
"""
TIME_ARGC = 3  # the first ARGV slots every script reserves for the map


def fmt(value: float) -> str:
    """A float for ARGV or a script's reply: 17 significant digits round-trip a double exactly."""
    return f"{value:.17g}"


@dataclass(frozen=True)
class TimeMap:
    """Redis seconds to qc's: at real ``real_epoch`` qc's clock read ``sim_epoch``, running ``speed``x."""

    real_epoch: float
    sim_epoch: float
    speed: float

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"clock speed must be positive, got {self.speed!r}")

    def qc_at(self, real: float) -> float:
        return self.sim_epoch + (real - self.real_epoch) * self.speed

    def real_at(self, qc: float) -> float:
        return self.real_epoch + (qc - self.sim_epoch) / self.speed

    def args(self) -> list[str]:
        """The three ARGV every script here starts with."""
        return [fmt(self.real_epoch), fmt(self.sim_epoch), fmt(self.speed)]


IDENTITY = TimeMap(0.0, 0.0, 1.0)


def time_map(c: clock.Clock) -> TimeMap:
    """The map for clock ``c``: the identity for the system clock, the anchor of a simulated one.

    Any other clock (a test's FakeClock) is pinned to its current reading at real speed from the
    local wall clock; call this again for every script call so such a clock's jumps are followed.
    """
    if isinstance(c, clock.SystemClock):
        return IDENTITY
    if isinstance(c, clock.SimClock):
        c.epoch()  # lets the clock pick up a re-published anchor (polled at most once a second)
        a = c.anchor
        return TimeMap(a.real_epoch, a.sim_epoch, a.speed)
    return TimeMap(clock.wall_epoch(), c.epoch(), 1.0)


def redis_time(store: Store) -> float:
    """Redis ``TIME`` in seconds: the real clock every process shares."""
    seconds, micros = store.client.time()
    return float(seconds) + float(micros) / 1_000_000


def redis_now(store: Store, tm: TimeMap) -> float:
    """qc's time now, as the scripts compute it (a sender re-checks ``due <= redis_now`` before sending)."""
    return tm.qc_at(redis_time(store))


TimeSource = TimeMap | clock.Clock  # a fixed map, or a clock whose map is taken afresh at every call


def resolve(source: TimeSource) -> TimeMap:
    return source if isinstance(source, TimeMap) else time_map(source)
