"""`qc distribute`: the intake, the mover and one sender per tier × channel outbox, as threads of one process.

Why threads, not one cycle: each part waits on something else (a stream read, the next due time, a
channel's answer or its rate limit), and a slow webhook must not hold Telegram's premium posts. Every
loop logs and counts what goes wrong and keeps going; Redis down backs off and retries. The process's
heartbeat and registry entry come from the runtime's worker loop (``qc.runtime.worker.Worker``), whose
cycle here only checks that every thread is alive (and restarts one that is not).

Several `qc distribute` processes may run: each has its own consumer name (host, pid, a random tag),
queues and outboxes are shared through Redis, and the idempotency keys keep every delivery to one send.

``--once`` (:meth:`Distributor.drain`) does the same work in this thread until nothing is due now: take
every new signal, move what is due, send what reached the outboxes, and repeat while anything moved.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from qc.core import clock as clocks
from qc.core import keys
from qc.core.backoff import backoff_s
from qc.core.clock import Clock
from qc.distribute.channels import Channels
from qc.distribute.cycle import NAME, metrics
from qc.distribute.cycle.deliver import NOT_DELIVERED, Deliverer, Handled, Lane, Signals
from qc.distribute.cycle.intake import GROUP, Intake
from qc.distribute.cycle.mover import Mover
from qc.distribute.cycle.outcomes import Outcomes
from qc.distribute.cycle.queues import GROUP as OUTBOX_GROUP
from qc.distribute.cycle.queues import Entry, outbox, prune_consumers
from qc.distribute.cycle.throttle import MAX_HOLD_S, Throttle
from qc.distribute.cycle.transport import Transport
from qc.runtime.codec import WorkerErrors
from qc.runtime.store import REDIS_ERRORS, Store
from qc.runtime.worker import SystemdNotifier, Worker

log = logging.getLogger(__name__)

READ_BLOCK_MS = 500  # real ms a reader waits for a new entry before looking at its stop flag
RECLAIM_EVERY_S = 2.0
RECLAIM_MARGIN_S = 5.0
INTERVAL_S = 1.0
PRUNE_EVERY_S = 600.0  # real seconds between two prunings of dead consumer names
PRUNE_IDLE_S = 3600.0  # a consumer with nothing pending, idle this long (real s), is forgotten


def consumer_name() -> str:
    """Unique per process, so a restart never inherits a dead process's entries under its own name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def reclaim_after_s(channels: Channels) -> float:
    """An outbox entry idle this long (real s) was left by a dead sender: longer than any send can take."""
    return 2 * channels.send_timeout_s + MAX_HOLD_S + RECLAIM_MARGIN_S


class Distributor:
    """The parts of one `qc distribute` process, built on one store, one clock and one stop event."""

    def __init__(self, store: Store, clock: Clock, channels: Channels, symbols: tuple[str, ...],
                 stop: threading.Event | None = None, jitter_s: float = 0.25) -> None:
        self.store, self.clock, self.channels = store, clock, channels
        self.stop = stop or threading.Event()
        self.jitter_s = jitter_s
        self.consumer = consumer_name()
        self.wake = threading.Event()
        self.intake = Intake(store, symbols, channels.routing, clock, self.consumer, on_scheduled=self.wake.set)
        self.mover = Mover(store, channels.routing, clock, self.consumer)
        self.lanes = [Lane(tier, channel, outbox(store, tier, channel, self.consumer))
                      for (tier, channel) in self.mover.outboxes]
        self.outcomes = Outcomes(store)
        self.signals = Signals(store)
        self.tally: Counter[str] = Counter()
        self._tally_lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._pruned_at = clocks.monotonic()
        self._loops: dict[str, Callable[[], None]] = {}

    def deliverer(self) -> Deliverer:
        """A sender's own parts (a transport is one HTTP session: one per thread)."""
        throttle = Throttle(self.store, self.clock, jitter_s=self.jitter_s, stop=self.stop)
        return Deliverer(self.store, self.channels, self.clock, throttle, Transport(self.channels), self.outcomes,
                         self.signals)

    def _count(self, handled: Handled) -> None:
        with self._tally_lock:
            self.tally[handled] += 1

    def _handle(self, deliverer: Deliverer, lane: Lane, entry: Entry) -> None:
        """One entry; a bug (not Redis) dead-letters that entry rather than stopping the lane."""
        try:
            self._count(deliverer.handle(lane, entry))
        except REDIS_ERRORS:
            raise  # the entry stays pending: reclaimed and handled again once Redis is back
        except Exception as exc:
            log.exception("distribute: %s entry %s failed; dead-lettered", lane.box.key.name, entry.id)
            self._count("failed")
            self.store.hupdate(keys.worker_errors(), WorkerErrors.counted(NAME))
            metrics.dead_letter(self.store, entry.member, lane.tier, lane.channel, metrics.DeadReason.PERMANENT,
                                f"internal error: {type(exc).__name__}")
            lane.box.ack(entry.id)

    # --- the loops ---------------------------------------------------------------------------------------

    def _guarded(self, name: str, step: Callable[[], None]) -> None:
        """Run ``step`` until stopped: Redis down backs off, anything else is logged, counted and survived."""
        failures = 0
        while not self.stop.is_set():
            try:
                step()
                failures = 0
            except REDIS_ERRORS as exc:
                failures += 1
                delay = backoff_s(failures, cap_s=10.0)
                log.warning("distribute %s: redis unreachable (%s); retry %d in %.1f s", name, exc, failures, delay)
                clocks.real_sleep(delay, self.stop)
            except Exception:
                failures += 1
                log.exception("distribute %s: step failed; continuing", name)
                try:
                    self.store.hupdate(keys.worker_errors(), WorkerErrors.counted(NAME))
                except REDIS_ERRORS:
                    log.debug("distribute %s: could not count the error", name)
                clocks.real_sleep(backoff_s(failures, cap_s=5.0), self.stop)

    def _intake_loop(self) -> Callable[[], None]:
        last = [clocks.monotonic()]

        def step() -> None:
            self.intake.poll(READ_BLOCK_MS)
            if clocks.monotonic() - last[0] >= RECLAIM_EVERY_S:
                last[0] = clocks.monotonic()
                self.intake.reclaim()

        return step

    def _mover_loop(self) -> Callable[[], None]:
        def step() -> None:
            if not self.mover.step():
                self.wake.wait(self.mover.idle_s())
                self.wake.clear()

        return step

    def _sender_loop(self, lane: Lane) -> Callable[[], None]:
        deliverer = self.deliverer()
        idle_s = reclaim_after_s(self.channels)
        last = [clocks.monotonic()]

        def step() -> None:
            if clocks.monotonic() - last[0] >= RECLAIM_EVERY_S:
                last[0] = clocks.monotonic()
                taken = lane.box.reclaim(idle_s).entries
                if taken:
                    log.warning("distribute: took over %d entries of %s a dead sender left (idle > %.0f s)",
                                len(taken), lane.box.key.name, idle_s)
                for entry in taken:
                    self._handle(deliverer, lane, entry)
            for entry in lane.box.read(count=1, block_ms=READ_BLOCK_MS):
                self._handle(deliverer, lane, entry)

        return step

    def start(self) -> None:
        """Start every loop in its own thread."""
        self.intake.ensure_groups()
        self._loops = {"intake": self._intake_loop(), "mover": self._mover_loop(),
                       **{f"send:{lane.tier}:{lane.channel}": self._sender_loop(lane) for lane in self.lanes}}
        for name in self._loops:
            self._spawn(name)
        log.info("distribute: consumer %s; tiers %s; outboxes %s", self.consumer,
                 ", ".join(f"{t.name}+{t.delay_s:g}s" for t in self.channels.routing.tiers),
                 ", ".join(f"{lane.tier}:{lane.channel}" for lane in self.lanes))

    def _spawn(self, name: str) -> None:
        thread = threading.Thread(target=self._guarded, args=(name, self._loops[name]), name=f"qc-distribute-{name}",
                                  daemon=True)
        self._threads[name] = thread
        thread.start()

    def cycle(self, now: datetime) -> None:
        """The worker loop's cycle: every thread alive (a dead one, which only a bug can make, restarted), and
        now and then the consumer names dead processes left in the groups forgotten."""
        for name, thread in list(self._threads.items()):
            if not thread.is_alive() and not self.stop.is_set():
                log.error("distribute: thread %s died; restarting it", name)
                self._spawn(name)
        if clocks.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = clocks.monotonic()
            streams = [(s, GROUP) for s in self.intake.streams()] + [(lane.box.key.name, OUTBOX_GROUP)
                                                                     for lane in self.lanes]
            gone = sum(prune_consumers(self.store, stream, group, PRUNE_IDLE_S) for stream, group in streams)
            if gone:
                log.info("distribute: forgot %d idle consumers left by stopped processes", gone)

    def join(self) -> None:
        """Wait for the loops to finish their current item (a send takes at most its timeouts)."""
        for thread in self._threads.values():
            thread.join(timeout=2 * self.channels.send_timeout_s + MAX_HOLD_S + 1.0)

    # --- one-shot --------------------------------------------------------------------------------------------

    def drain(self) -> int:
        """``--once``: deliver everything due now; 0 when all of it was delivered, 1 when anything was not."""
        self.intake.ensure_groups()
        while self.intake.poll(None):
            pass
        self.intake.reclaim()
        deliverer = self.deliverer()
        idle_s = reclaim_after_s(self.channels)
        while not self.stop.is_set():
            busy = self.mover.step()
            for lane in self.lanes:
                for entry in lane.box.reclaim(idle_s).entries:
                    self._handle(deliverer, lane, entry)
                    busy += 1
                while entries := lane.box.read(count=10, block_ms=0):
                    for entry in entries:
                        self._handle(deliverer, lane, entry)
                    busy += len(entries)
            if not busy:
                break
        deliverer.transport.close()
        failed = sum(n for what, n in self.tally.items() if what in NOT_DELIVERED)
        log.info("distribute --once: %s", ", ".join(f"{k} {v}" for k, v in sorted(self.tally.items())) or "nothing due")
        return 1 if failed else 0


def run(store: Store, clock: Clock, channels: Channels, symbols: tuple[str, ...], stop: threading.Event, *,
        once: bool, jitter_s: float, notifier: SystemdNotifier | None = None) -> int:
    """The process: ``once`` drains and exits; otherwise the threads run under the worker loop until stopped."""
    distributor = Distributor(store, clock, channels, symbols, stop, jitter_s=jitter_s)
    if once:
        return distributor.drain()
    distributor.start()
    speed = clock.anchor.speed if isinstance(clock, clocks.SimClock) else 1.0  # the check runs every real second
    try:
        return Worker(NAME, distributor.cycle, store, clock, INTERVAL_S * speed, stop, notifier).run()
    finally:
        stop.set()
        distributor.join()
