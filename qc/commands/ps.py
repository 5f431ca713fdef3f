"""`qc ps`: the children of the running `qc up` (pid, state, restarts, uptime, last exit), as Redis has them."""

from __future__ import annotations

import signal
from datetime import datetime, timezone

import click

from qc.commands import output
from qc.core import clock
from qc.core.config import Settings
from qc.core.errors import QcError, StoreUnavailable
from qc.runtime.store import REDIS_ERRORS, Store, connect
from qc.runtime.supervisor import ChildView, StackView, read_stack

EPILOG = """\b
Examples:
  qc ps                      one row per child of `qc up`
  qc ps --json | jq '.children[] | select(.state != "running")'
  qc restart stream          restart one of them (see `qc restart --help`)
Exit 1 with one line when no `qc up` is running on this Redis.
"""


@click.command("ps", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the table.")
@click.pass_obj
def command(settings: Settings, as_json: bool) -> None:
    """List the processes `qc up` supervises: name, pid, state, restarts, uptime, last exit."""
    store = connect(settings)
    try:
        now = clock.wall_epoch()
        view = running_stack(store, now)
    finally:
        store.close()
    if as_json:
        output.emit_json(to_json(view, now, store.address))
        return
    rows = [[c.name, c.pid or "-", c.state, c.restarts, duration(c.uptime_s), exit_text(c.last_exit)]
            for c in view.children]
    rows += [[bad.key, "-", f"unreadable: {bad.reason}", "-", "-", "-"] for bad in view.unreadable]
    output.emit_table(rows, ["name", "pid", "state", "restarts", "uptime", "last exit"],
                      title=title(view, now, store.address))


def running_stack(store: Store, now: float) -> StackView:
    """The stack as Redis has it at ``now``; a one-line QcError when Redis or the supervisor is not there."""
    store.ping()
    try:
        view = read_stack(store, now)
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}") from None
    if not view.running:
        raise QcError(f"{view.why_not_running()} on redis {store.address}",
                      "start the stack with `qc up`, or point --redis-url / QC_REDIS_URL at its Redis")
    return view


def title(view: StackView, now: float, address: str) -> str:
    own = view.supervisor
    who = f"supervisor pid {own.pid} on {own.host}, up {duration(now - own.started)}" if own else "supervisor"
    return f"qc ps — {who} — redis {address}"


def to_json(view: StackView, now: float, address: str) -> dict[str, object]:
    own = view.supervisor
    return {
        "as_of": datetime.fromtimestamp(now, timezone.utc).isoformat(),
        "redis_url": address,
        "supervisor": {"pid": own.pid if own else None, "host": own.host if own else None,
                       "uptime_s": round(now - own.started, 3) if own else None,
                       "heartbeat_age_s": round(view.heartbeat_age_s or 0.0, 3)},
        "children": [child_json(c) for c in view.children],
        "unreadable": {bad.key: bad.reason for bad in view.unreadable},
    }


def child_json(c: ChildView) -> dict[str, object]:
    return {"name": c.name, "pid": c.pid, "state": c.state, "restarts": c.restarts,
            "uptime_s": None if c.uptime_s is None else round(c.uptime_s, 3), "last_exit": c.last_exit}


def duration(seconds: float | None) -> str:
    """12s, 3m05s, 2h07m, 3d04h: as wide as it needs, no wider."""
    if seconds is None:
        return "-"
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def exit_text(code: int | None) -> str:
    """An exit code, with the signal's name when a signal ended the process (-15 (SIGTERM))."""
    if code is None:
        return "-"
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)
