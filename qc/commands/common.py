"""What several verbs share: a worker group whose subcommands are queries, and one query against Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from qc.core.config import Settings
from qc.core.errors import StoreUnavailable

T = TypeVar("T")


class WorkerGroup(click.Group):
    """``qc VERB [ARGS] [--once]`` runs the worker (the ``run`` subcommand); a first word naming another
    subcommand runs that one (``qc signals show``, ``qc risk status``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def query(settings: Settings, work: Callable[[Any, datetime], T]) -> T:
    """Run ``work(store, now)`` on a fresh connection (``now`` from the stack's clock, simulated under `qc sim`);
    Redis down is a one-line error."""
    from qc.runtime.simclock import clock_for
    from qc.runtime.store import REDIS_ERRORS, connect

    store = connect(settings)
    try:
        return work(store, clock_for(store, settings).now())
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}", "is it running? `qc status`") from None
    finally:
        store.close()


def run_worker(settings: Settings, name: str, make_cycle: Callable[[Any], Callable[[datetime], None]],
               interval_s: float, once: bool) -> None:
    """Connect, install the signal handlers, run ``make_cycle(store)`` under the Worker loop, exit with its code."""
    import os
    import threading

    from qc.runtime.simclock import clock_for
    from qc.runtime.store import connect
    from qc.runtime.worker import SystemdNotifier, Worker, install_signal_handlers

    store = connect(settings)
    store.ping()
    stop = threading.Event()
    install_signal_handlers(stop)
    worker = Worker(name, make_cycle(store), store, clock_for(store, settings), interval_s, stop,
                    SystemdNotifier.from_environ(os.environ))
    try:
        code = worker.run(once=once)
    finally:
        store.close()
    raise SystemExit(code)
