"""`qc up`'s engine: run the stack's processes, restart what dies, stop everything in order.

Children run in their own session, so a Ctrl-C in the terminal reaches only the supervisor, which
then stops them newest-first (workers before the Redis they write to). Each child also gets
PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves no orphan behind on Linux.
A child that dies is restarted after a capped, jittered backoff; one that keeps running for a
minute has its backoff reset.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from qc.core import clock, keys
from qc.core.backoff import backoff_s
from qc.core.config import Settings
from qc.runtime.codec import ChildStatus, SupervisorChildren
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import REDIS_ERRORS, EmbeddedRedis, Store, die_with_parent

log = logging.getLogger(__name__)

HEALTHY_RUN_S = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """One process of the stack: a name, its command line, and what says it is ready for the next."""

    name: str
    argv: tuple[str, ...]
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 30.0


def qc_child(name: str, *args: str, ready: Callable[[], bool] | None = None) -> ChildSpec:
    """A child that runs ``qc ARGS…`` with this interpreter (works in a venv without PATH)."""
    return ChildSpec(name, (sys.executable, "-m", "qc", *args), ready)


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

    def start(self, stop: threading.Event | None = None) -> None:
        """Start Redis, then each child in order, waiting for a child's ``ready`` before the next."""
        if self.embedded is not None:
            self.embedded.start()
        for child in self.children:
            self._spawn(child)
            self._await_ready(child, stop)

    def _await_ready(self, child: Child, stop: threading.Event | None) -> None:
        check = child.spec.ready
        if check is None:
            return
        deadline = clock.monotonic() + child.spec.ready_timeout_s
        while clock.monotonic() < deadline and not (stop and stop.is_set()):
            if _quietly(check):
                return
            if child.process is not None and child.process.poll() is not None:
                break
            clock.real_sleep(0.1, stop)
        log.warning("%s is not ready after %.0f s; starting the rest anyway", child.spec.name,
                    child.spec.ready_timeout_s)

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(list(child.spec.argv), env=self.env, start_new_session=True,
                                         preexec_fn=die_with_parent, stdin=subprocess.DEVNULL)
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

    def states(self) -> dict[str, ChildStatus]:
        """Per child: pid, state, restarts, last exit code."""
        return {c.spec.name: ChildStatus(c.process.pid if c.process else None, c.state, c.restarts, c.last_exit)
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
            self.store.hset(keys.supervisor_children(), SupervisorChildren(states).to_redis())


@dataclass(frozen=True)
class Stack:
    """What `qc up` runs, and the environment its children get on top of the operator's."""

    children: list[ChildSpec]
    env: dict[str, str]
    notes: list[str]


SIM_API_KEY = "sim-demo-key"  # the simulator accepts any non-empty key; this one is no credential


def plan_stack(settings: Settings, store: Store) -> Stack:
    """The stack's children in start order: the simulator first when IB or Alpha Vantage is missing,
    then ingestion (`qc stream` for IB depth, bars, trades and quotes; `qc chains` for Alpha Vantage)."""
    children: list[ChildSpec] = []
    env: dict[str, str] = {}
    notes: list[str] = []
    needs_ib = not (settings.is_set("ib_host") or settings.is_set("ib_port"))
    needs_av = not settings.alpha_vantage_api_key
    if needs_ib or needs_av:
        args = ["sim", "--ib-port", str(settings.sim_ib_port), "--av-port", str(settings.sim_av_port),
                "--ctl-port", str(settings.sim_ctl_port), "--speed", f"{settings.sim_speed:g}"]
        if settings.sim_start:
            args += ["--start", settings.sim_start]
        children.append(qc_child("sim", *args, ready=lambda: bool(read_sim_anchor(store))))
        if needs_ib:
            env.update(QC_IB_HOST="127.0.0.1", QC_IB_PORT=str(settings.sim_ib_port))
            notes.append(f"no IB Gateway configured: simulated one on 127.0.0.1:{settings.sim_ib_port}")
        if needs_av:
            env.update(QC_ALPHA_VANTAGE_URL=f"http://127.0.0.1:{settings.sim_av_port}/query",
                       QC_ALPHA_VANTAGE_API_KEY=SIM_API_KEY)
            notes.append(f"no Alpha Vantage key: simulated API on 127.0.0.1:{settings.sim_av_port}")
        notes.append(f"faults:  qc sim ctl --ctl-port {settings.sim_ctl_port} drop-sockets | silence SPY depth | …")
    children += [qc_child("stream", "stream"), qc_child("chains", "chains"), qc_child("analytics", "analytics")]
    return Stack(children, env, notes)


def _quietly(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except REDIS_ERRORS:
        return False
