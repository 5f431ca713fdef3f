"""`qc execute`: the order executor (bracket orders, trailing stops, fills, positions, reconciliation)."""

from __future__ import annotations

import click

from qc.commands import output
from qc.core.config import Settings

EPILOG = """\b
Examples:
  qc execute                      lead (or stand by for) the account: signals in, brackets out
  qc positions                    positions with P&L and the signal behind each
  qc orders                       intents and their orders, newest first
  qc fills                        executions with commissions
  redis-cli hgetall execution:status:default
"""


@click.command("execute", epilog=EPILOG)
@click.pass_obj
def command(settings: Settings) -> None:
    """Turn approved signals into bracket orders at IB and keep every position protected.

    One leader per account (a Redis lease and a fencing token); a second `qc execute` waits as
    standby and takes over within 10 s of the leader's death. Reconciles with the broker at every
    connection and every QC_EXECUTE_RECONCILE_S before it trades.
    """
    import os

    from qc.commands.risk import account_of
    from qc.execute.cycle.engine import ExecOptions
    from qc.execute.cycle.run import RunOptions, run
    from qc.ib.connection import ConnectionOptions
    from qc.risk.settings import limits_from
    from qc.runtime.simclock import clock_for
    from qc.runtime.store import connect
    from qc.runtime.worker import SystemdNotifier

    output.log_to_file(settings, "execute", False)
    store = connect(settings)
    store.ping()
    options = RunOptions(
        exec=ExecOptions(account=account_of(settings), symbols=settings.symbols, qty_per_signal=settings.execute_qty,
                         hard_close_min=settings.execute_hard_close_min, reconcile_s=settings.execute_reconcile_s,
                         lost_after_s=settings.execute_lost_after_s,
                         partial_grace_s=settings.execute_partial_grace_s,
                         entry_timeout_s=settings.execute_entry_timeout_s),
        connection=ConnectionOptions(settings.ib_host, settings.ib_port, settings.execute_client_id, readonly=False),
        limits=limits_from(settings), broker_account=settings.ib_account,
        notifier=SystemdNotifier.from_environ(os.environ))
    try:
        code = run(store, clock_for(store, settings), options)
    finally:
        store.close()
    raise SystemExit(code)
