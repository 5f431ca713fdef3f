"""`qc positions`: the account's open positions with marks, P&L and the intents that hold them."""

from __future__ import annotations

from typing import Any

import click

from qc.commands import output
from qc.commands.common import query
from qc.commands.risk import account_of
from qc.core.config import Settings

EPILOG = """\b
Examples:
  qc positions                    open positions: qty, avg cost, mark, P&L, the signal holding each
  qc positions --all --json       also the flat ones kept for today's realised P&L, as JSON
  redis-cli --scan --pattern positions:open:\\*
"""


@click.command("positions", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--all", "show_all", is_flag=True, help="Also flat positions (kept for today's realised P&L).")
@click.pass_obj
def command(settings: Settings, as_json: bool, show_all: bool) -> None:
    """Open positions (QC_IB_ACCOUNT): contract, qty, avg cost, mark, unrealised and realised-today P&L, lineage,
    and the contracts `qc execute` has locked."""
    from qc.execute import render, report

    account = account_of(settings)
    got: Any = query(settings, lambda store, now: report.positions(store, account, now, show_all))
    if as_json:
        output.emit_json(render.positions_json(got))
        return
    if got.lines:
        title = f"positions ({account})" + (f", marks as of {got.marks_as_of.isoformat()}" if got.marks_as_of else "")
        output.emit_table(render.position_rows(got.lines), render.POSITIONS_HEADERS, title=title)
    else:
        click.echo(f"no open positions ({account})")
    if got.marks_problem and got.lines:
        click.echo(got.marks_problem)
    if got.flat_hidden:
        click.echo(f"{got.flat_hidden} flat position(s) not shown (--all)")
    if got.locked:
        click.echo()
        output.emit_table(render.locked_rows(got), render.LOCKED_HEADERS, title="locked contracts (not traded)")
    for bad in got.unreadable:
        click.echo(f"unreadable: {bad}")
