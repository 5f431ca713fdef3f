"""`qc up`'s engine: run the stack's processes, restart what dies, stop everything in order.

Children run in their own session, so a Ctrl-C in the terminal reaches only the supervisor, which
then stops them newest-first (workers before the Redis they write to). Each child also gets
PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves no orphan behind on Linux.
A child that dies is restarted after a capped, jittered backoff; one that keeps running for a
minute has its backoff reset.
"""

from __future__ import annotations

import ctypes
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from qc import clock, keys
from qc.config import Settings
from qc.store import EmbeddedRedis, Store
from qc.worker import backoff_s

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
HEALTHY_RUN_S = 60.0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return  # not glibc Linux: the ordered stop still applies, only the SIGKILL case is uncovered


@dataclass(frozen=True)
class ChildSpec:
    """One process of the stack: a name for logs and status, and its command line."""

    name: str
    argv: tuple[str, ...]


def qc_child(name: str, *args: str) -> ChildSpec:
    """A child that runs ``qc ARGS…`` with this interpreter (works in a venv without PATH)."""
    return ChildSpec(name, (sys.executable, "-m", "qc", *args))


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    failures: int = 0
    started_at: float = 0.0
    next_start_at: float = 0.0
    last_exit: int | None = None

    @property
    def state(self) -> str:
        if self.process is None:
            return "waiting"
        return "running" if self.process.poll() is None else f"exited {self.process.returncode}"


class Supervisor:
    """Start, watch and stop the stack's children; the embedded Redis (if any) first up, last down."""

    def __init__(self, specs: Sequence[ChildSpec], env: Mapping[str, str], store: Store,
                 embedded: EmbeddedRedis | None = None) -> None:
        self.children = [Child(spec) for spec in specs]
        self.store = store
        self.env = dict(env)
        self.embedded = embedded

    def start(self) -> None:
        if self.embedded is not None:
            self.embedded.start()
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(list(child.spec.argv), env=self.env, start_new_session=True,
                                         preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
        child.started_at = clock.monotonic()
        log.info("started %s (pid %d)", child.spec.name, child.process.pid)

    def poll(self) -> None:
        """Restart the embedded Redis or any child that died, each after its backoff."""
        if self.embedded is not None and self.embedded.process is not None \
                and self.embedded.process.poll() is not None:
            log.error("embedded redis exited with %s; restarting it", self.embedded.process.returncode)
            self.embedded.start()
        now = clock.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.next_start_at:
                    self._spawn(child)
                continue
            code = child.process.poll()
            if code is None:
                if now - child.started_at > HEALTHY_RUN_S:
                    child.failures = 0
                continue
            child.last_exit = code
            child.failures += 1
            child.restarts += 1
            delay = backoff_s(child.failures, base_s=1.0, cap_s=30.0)
            child.next_start_at = now + delay
            child.process = None
            log.error("%s exited with %d; restart %d in %.1f s", child.spec.name, code, child.restarts, delay)

    def states(self) -> dict[str, str]:
        """Per child: pid, state, restarts, last exit code (JSON strings for a Redis hash)."""
        return {c.spec.name: json.dumps({"pid": c.process.pid if c.process else None, "state": c.state,
                                         "restarts": c.restarts, "last_exit": c.last_exit})
                for c in self.children}

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the children newest first, wait, SIGKILL stragglers; then stop the embedded Redis."""
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                log.info("stopping %s (pid %d)", child.spec.name, child.process.pid)
                child.process.terminate()
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", child.spec.name, timeout_s)
                child.process.kill()
                child.process.wait()
        if self.embedded is not None:
            self.embedded.stop()

    def cycle(self, now: datetime) -> None:
        """One supervision step for the worker loop: restart the dead, publish the states."""
        self.poll()
        states = self.states()
        if states:
            self.store.hset(keys.supervisor_children(), states)


def stack_children(settings: Settings) -> list[ChildSpec]:
    """The workers `qc up` runs, in start order; each worker's issue adds its line here."""
    del settings  # the simulator and the data workers will read it to pick their arguments
    return []
