"""Applying one scheduled fault to the running stack, the way an operator (or bad luck) would.

Why through the outside doors: a worker is ``kill -9``ed by the pid `qc up` publishes for it
(``monitoring:supervisor``, what `qc ps` shows), Redis by its pid file, and every simulator fault goes
through `qc sim ctl --ctl-port P …`, so the run exercises exactly what the runbook tells people to use.
A pid is only signalled after ``/proc/PID/cmdline`` confirms it is the process meant (a qc child with
that verb, or redis-server), so a stale pid can never hit a stranger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chaos.healing import Injected
from chaos.schedule import Fault
from qc.core import clock, keys
from qc.runtime.codec import SupervisorChildren
from qc.runtime.store import REDIS_ERRORS, Store

PID_WAIT_S = 15.0  # a child just restarted (or Redis just back) publishes its pid within a few seconds


@dataclass(frozen=True)
class Target:
    """Where the faults go: the stack's directory and environment, the simulator's control port, Redis."""

    root: Path
    env: Mapping[str, str]
    ctl_port: int
    store: Store
    data_dir: Path


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_qc_child(pid: int, verb: str) -> bool:
    """``pid`` runs ``python -m qc VERB …`` (the form `qc up` starts its children in)."""
    argv = _cmdline(pid)
    return "qc" in argv and verb in argv[argv.index("qc") + 1:argv.index("qc") + 2]


def is_redis_server(pid: int) -> bool:
    argv = _cmdline(pid)
    return bool(argv) and Path(argv[0].split()[0]).name.startswith("redis-server")


def child_pid(store: Store, name: str) -> int | None:
    """The running pid `qc up` publishes for child ``name`` (None while Redis is away or it waits)."""
    deadline = clock.monotonic() + PID_WAIT_S
    while True:
        try:
            key = keys.supervisor_children()
            got = SupervisorChildren.from_redis(store.hgetall(key), key=key.name)
        except REDIS_ERRORS:
            got = None
        if isinstance(got, SupervisorChildren):
            child = got.children.get(name)
            if child is not None and child.state == "running" and child.pid and is_qc_child(child.pid, name):
                return child.pid
        if clock.monotonic() >= deadline:
            return None
        clock.real_sleep(0.2)


def _kill(fault: Fault, at: Target) -> Injected:
    pid = child_pid(at.store, fault.target)
    now = clock.wall_epoch()
    if pid is None:
        return Injected(fault, now, False, f"no running pid for {fault.target} within {PID_WAIT_S:g} s")
    os.kill(pid, signal.SIGKILL)
    return Injected(fault, now, True, f"SIGKILL pid {pid}", pid)


def _kill_redis(fault: Fault, at: Target) -> Injected:
    pidfile = at.data_dir / "redis" / "redis.pid"
    now = clock.wall_epoch()
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError) as exc:
        return Injected(fault, now, False, f"no redis pid ({pidfile}: {exc})")
    if not is_redis_server(pid):
        return Injected(fault, now, False, f"pid {pid} from {pidfile} is not a redis-server")
    os.kill(pid, signal.SIGKILL)
    return Injected(fault, now, True, f"SIGKILL redis-server pid {pid}", pid)


def ctl(at: Target, argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", str(at.ctl_port), *argv],
                          cwd=at.root, env=dict(at.env), capture_output=True, text=True, timeout=60, check=False)


def apply(fault: Fault, at: Target) -> Injected:
    """Inject ``fault`` now; the record says when, and what happened (never raises for a refused fault)."""
    if fault.kind == "kill":
        return _kill(fault, at)
    if fault.kind == "redis_kill":
        return _kill_redis(fault, at)
    said = []
    for argv in fault.ctl:
        done = ctl(at, argv)
        if done.returncode != 0:
            return Injected(fault, clock.wall_epoch(), False, f"qc sim ctl {' '.join(argv)}: exit {done.returncode}: "
                                                              f"{(done.stderr or done.stdout).strip()[-300:]}")
        said.append(done.stdout.strip()[-200:])
    # timed when the last `qc sim ctl` returned: the simulator applied it then (its start-up is not the fault's)
    return Injected(fault, clock.wall_epoch(), True, "; ".join(said))
