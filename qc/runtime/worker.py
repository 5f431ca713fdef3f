"""The loop every long-running qc worker runs: cycle, heartbeat, signals, backoff, systemd notify.

- Each successful cycle, and every few seconds of a long interval, refreshes ``heartbeat:{name}``
  (wall-clock Unix time, TTL'd, so a dead worker's key vanishes) and the worker registry
  ``qc status`` reads to notice a missing worker.
- Redis down: capped, jittered backoff, a log line per attempt, never an exit (rq's behaviour).
- Any other error in a cycle: logged with its traceback, counted in Redis, and the loop goes on.
- First SIGTERM/SIGINT finishes the current cycle and exits 0; a second exits at once (rq's warm
  and cold shutdown). Handlers only set a flag.
- ``once``: one cycle, then exit (cron and tests): 0 on success, 1 if the cycle failed or raised
  ``CycleIncomplete``; a cron run writes no heartbeat and joins no registry: the heartbeat is the
  long-running worker's (a cron run beside it must not make a dead worker look alive).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from types import FrameType

from qc.core import clock as clocks
from qc.core import keys
from qc.core.backoff import backoff_s
from qc.core.clock import Clock
from qc.runtime.codec import Heartbeat, WorkerEntry, WorkerErrors
from qc.runtime.redis_batch import WriteBatch
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

Cycle = Callable[[datetime], None]
HEARTBEAT_EVERY_S = 5.0  # clock seconds between beats while a long interval runs out


class SystemdNotifier:
    """sd_notify(3) over the NOTIFY_SOCKET datagram socket; a no-op outside systemd."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    def notify(self, state: str) -> None:
        if not self.address:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), target)
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", state, exc)


class Worker:
    """Run ``cycle(now)`` every ``interval_s`` of the clock's time until stopped."""

    def __init__(self, name: str, cycle: Cycle, store: Store, clock: Clock, interval_s: float,
                 stop: threading.Event | None = None, notifier: SystemdNotifier | None = None,
                 max_backoff_s: float = 30.0) -> None:
        self.name = name
        self.cycle = cycle
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self.stop = stop or threading.Event()
        self.notifier = notifier or SystemdNotifier(None)
        self.max_backoff_s = max_backoff_s
        self.cycles = 0
        self.errors = 0
        self.started = clocks.wall_epoch()

    def run(self, once: bool = False) -> int:
        """Loop until stopped; return the process exit code."""
        self.notifier.notify("READY=1")
        clock = self.clock
        simulated = f", simulated time at {clock.anchor.speed:g}x" if isinstance(clock, clocks.SimClock) else ""
        self.started = clocks.wall_epoch()
        log.info("%s started (every %.1f s%s%s)", self.name, self.interval_s, simulated, ", once" if once else "")
        failures, code = 0, 0
        try:
            while not self.stop.is_set():
                self.notifier.notify("WATCHDOG=1")
                try:
                    ok = self._cycle_once()
                    if not once:  # a cron run beats nothing: a live worker's heartbeat is not ours to refresh
                        self._heartbeat(register=True)
                except REDIS_ERRORS as exc:
                    failures += 1
                    delay = backoff_s(failures, cap_s=self.max_backoff_s)
                    log.warning("%s: redis unreachable at %s (%s); retry %d in %.1f s",
                                self.name, self.store.address, exc, failures, delay)
                    clocks.real_sleep(delay, self.stop)
                    continue
                if failures:
                    log.info("%s: redis is back after %d failed attempts", self.name, failures)
                failures = 0
                if once:
                    code = 0 if ok else 1
                    break
                self._wait_beating()
        finally:
            self.notifier.notify("STOPPING=1")
            if not once:
                self._deregister()
        log.info("%s stopped after %d cycles (%d errors)", self.name, self.cycles, self.errors)
        return code

    def _wait_beating(self) -> None:
        """Wait out the interval, beating every ``HEARTBEAT_EVERY_S``: a 5-minute cadence is not death.

        The heartbeat says the process is alive (``qc status`` alerts past 30 s); how fresh the data
        is stays each worker's own business (``monitoring:data:stale``, ``as_of`` fields).
        """
        due = self.clock.epoch() + self.interval_s
        while not self.stop.is_set():
            left = due - self.clock.epoch()
            if left <= 0 or self.clock.wait(min(left, HEARTBEAT_EVERY_S), self.stop):
                return
            if due - self.clock.epoch() > 0:
                self.notifier.notify("WATCHDOG=1")
                try:
                    self._heartbeat(register=True)
                except REDIS_ERRORS as exc:
                    log.debug("%s: heartbeat between cycles failed: %s", self.name, exc)

    def _cycle_once(self) -> bool:
        try:
            self.cycle(self.clock.now())
        except REDIS_ERRORS:
            raise
        except CycleIncomplete as exc:  # the cycle said what it could not do; no traceback needed
            log.error("%s: %s", self.name, exc)
            return False
        except Exception:
            self.errors += 1
            log.exception("%s: cycle failed; continuing", self.name)
            self.store.hupdate(keys.worker_errors(), WorkerErrors.counted(self.name))
            return False
        finally:
            self.cycles += 1
        return True

    def _heartbeat(self, register: bool) -> None:
        write_heartbeat(self.store, self.name, registry_entry(self.started, self.cycles) if register else None)

    def _deregister(self) -> None:
        deregister(self.store, self.name)


class CycleIncomplete(Exception):
    """Raised by a cycle that ran but did not do its whole job (a `--once` then exits 1)."""


def registry_entry(started: float, cycles: int) -> WorkerEntry:
    """This process's ``monitoring:workers`` entry."""
    return WorkerEntry(pid=os.getpid(), host=_hostname(), started=started, cycles=cycles)


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


def write_heartbeat(store: Store, name: str, entry: WorkerEntry | None) -> None:
    """Refresh ``heartbeat:{name}`` (wall time) and, for a long-running worker, its registry entry."""
    pipe = store.client.pipeline(transaction=False)
    stage_heartbeat(pipe, name, entry)
    pipe.execute()


def stage_heartbeat(pipe: WriteBatch, name: str, entry: WorkerEntry | None) -> None:
    """Queue ``write_heartbeat``'s writes on a pipeline (or a ``qc.runtime.redis_batch`` batch) of the caller's.

    ``entry`` None: a cron run, not a worker `qc status` should expect to keep beating.
    """
    beat = keys.heartbeat(name)
    pipe.set(beat.name, Heartbeat(clocks.wall_epoch()).to_redis(), ex=beat.ttl_s)
    if entry is None:
        return
    registry = keys.worker_registry()
    pipe.hset(registry.name, mapping={name: entry.to_redis()})
    if registry.ttl_s is not None:
        pipe.expire(registry.name, registry.ttl_s)


def deregister(store: Store, name: str) -> None:
    """A clean stop leaves the registry, so `qc status` does not report a stopped worker as dead; unless the
    entry is another process's (several `qc distribute`, a new leader): that one is still beating."""
    registry = keys.worker_registry()
    try:
        entry = WorkerEntry.from_redis(store.hget(registry, name), key=f"{registry.name}[{name}]")
        if isinstance(entry, WorkerEntry) and (entry.pid, entry.host) != (os.getpid(), _hostname()):
            log.info("%s: the registry names %s on %s now; leaving it", name, entry.pid, entry.host)
            return
        store.hdel(registry, name)
        store.delete(keys.heartbeat(name))
    except REDIS_ERRORS as exc:
        log.warning("%s: could not deregister (%s)", name, exc)


def install_signal_handlers(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT/SIGHUP sets ``stop``; a second exits at once."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            raise SystemExit(128 + signum)
        log.info("%s: finishing the current cycle, then exiting (again to exit now)",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGHUP, handle)  # the terminal of a foreground `qc up` closed: stop in order
