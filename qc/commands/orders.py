"""`qc orders`: the executor's order intents (newest first), or one intent whole with its history and fills."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import click

from qc.commands import output
from qc.commands.common import query
from qc.commands.risk import account_of
from qc.commands.signals import parse_since
from qc.core.config import Settings
from qc.core.errors import QcError

INTENT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # what an order reference's intent part may hold
DEFAULT_SINCE = "1d"

EPILOG = """\b
Examples:
  qc orders                       intents of the last 24 h with each leg's order (orderRef, permId, status)
  qc orders --open                every intent not yet closed, whatever its age
  qc orders --since 7d --json
  qc orders 1764864012345a1b2c3d4 one intent: legs, history, fills, the signal's lineage
  redis-cli get orders:intent:1764864012345a1b2c3d4
"""


@click.command("orders", epilog=EPILOG)
@click.argument("intent_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--since", help=f"7d, 12h, 30m, or a date/time (New York); default {DEFAULT_SINCE} "
                              "(with --open: every open intent).")
@click.option("--open", "open_only", is_flag=True, help="Only intents not yet in a terminal state.")
@click.pass_obj
def command(settings: Settings, intent_id: str | None, as_json: bool, since: str | None, open_only: bool) -> None:
    """Order intents newest first: state, fills, exits, realised P&L and each leg's order at IB."""
    from qc.execute import render, report

    if intent_id is not None:
        wanted = intent_id.strip()
        if not INTENT_ID.fullmatch(wanted):
            raise QcError(f"{intent_id[:60]!r} is not an intent id (a signal id, 1-40 of A-Z a-z 0-9 _ -)",
                          "list them with `qc orders`")
        detail = query(settings, lambda store, now: report.intent_detail(store, wanted))
        if as_json:
            output.emit_json(render.detail_json(detail))
            return
        for line in render.detail_lines(detail):
            click.echo(line)
        _tables(render, [detail.intent])
        if detail.intent.history:
            click.echo()
            output.emit_table(render.history_rows(detail.intent), render.HISTORY_HEADERS, title="history")
        if detail.fills:
            click.echo()
            output.emit_table(render.fill_rows(detail.fills), render.FILLS_HEADERS, title="fills")
        return
    account = account_of(settings)

    def work(store: Any, now: datetime) -> tuple[datetime | None, Any]:
        start = None if since is None and open_only else parse_since(since or DEFAULT_SINCE, now)
        return start, report.orders(store, account, start, open_only)

    start, got = query(settings, work)
    if as_json:
        output.emit_json(render.orders_json(got.intents, account=account, since=start, open_only=open_only,
                                            unreadable=got.unreadable))
        return
    scope = ("open " if open_only else "") + "intents" + (f" since {start.isoformat()}" if start else "")
    if not got.intents:
        click.echo(f"no {scope} ({account})")
    else:
        output.emit_table(render.order_rows(got.intents), render.ORDERS_HEADERS, title=f"{scope} ({account})")
        _tables(render, got.intents)
    for bad in got.unreadable:
        click.echo(f"unreadable: {bad}")


def _tables(render: Any, intents: list[Any]) -> None:
    rows = render.leg_rows(intents)
    if rows:
        click.echo()
        output.emit_table(rows, render.LEGS_HEADERS, title="orders at IB")
