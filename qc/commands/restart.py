"""`qc restart NAME`: ask the running `qc up` to restart one child, and wait until it runs under a new pid."""

from __future__ import annotations

import click

from qc.commands.ps import running_stack
from qc.core import clock
from qc.core.config import Settings
from qc.core.errors import QcError, StoreUnavailable
from qc.runtime.store import REDIS_ERRORS, connect
from qc.runtime.supervisor import (
    RESTART,
    RESTART_GRACE_S,
    SupervisorCommand,
    await_restart,
    send_command,
)

EPILOG = f"""\b
Examples:
  qc restart stream              restart `qc stream` under the running `qc up`
  qc restart analytics --timeout 0    ask and return without waiting
The child gets SIGTERM (finishes its cycle), SIGKILL after {RESTART_GRACE_S:.0f} s, then starts again at once.
Exit 1 with one line when no `qc up` runs, NAME is not one of its children, or no new process shows in time.
"""


@click.command("restart", epilog=EPILOG)
@click.argument("name", metavar="NAME")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=60.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the new process; 0 asks and returns at once.")
@click.pass_obj
def command(settings: Settings, name: str, timeout_s: float) -> None:
    """Restart one child of the running `qc up` (names as `qc ps` lists them)."""
    store = connect(settings)
    try:
        view = running_stack(store, clock.wall_epoch())
        before = view.child(name)
        if before is None:
            known = ", ".join(sorted(c.name for c in view.children)) or "none yet"
            raise QcError(f"NAME: {name!r} is not a child of the running `qc up`; its children: {known}")
        send_command(store, SupervisorCommand(RESTART, name, clock.wall_epoch()))
        if timeout_s == 0:
            click.echo(f"asked qc up to restart {name} (pid {before.pid or '-'}); see `qc ps`")
            return
        after = await_restart(store, before, timeout_s)
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}") from None
    finally:
        store.close()
    if after is None:
        raise QcError(f"{name} shows no new process after {timeout_s:g} s",
                      "check `qc ps` and the `qc up` log; raise --timeout for a slow stop")
    click.echo(f"restarted {name}: pid {before.pid or '-'} -> {after.pid}")
