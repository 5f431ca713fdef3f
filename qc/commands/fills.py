"""`qc fills`: the executions `qc execute` recorded, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from qc.commands import output
from qc.commands.common import query
from qc.commands.signals import parse_since
from qc.core.config import SYMBOL_RE, Settings
from qc.core.errors import ConfigError

EPILOG = """\b
Examples:
  qc fills                        today's executions (last 24 h) for QC_SYMBOLS
  qc fills --symbol SPY --since 7d --json
  redis-cli hgetall execution:fills:SPY
"""


@click.command("fills", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--symbol", help="One underlying (default: every QC_SYMBOLS one).")
@click.option("--since", default="1d", show_default=True, help="7d, 12h, 30m, or a date/time (New York).")
@click.pass_obj
def command(settings: Settings, as_json: bool, symbol: str | None, since: str) -> None:
    """Executions: time, execId, symbol, conId, side, qty, price, commission, orderRef, intent, leg, kind."""
    from qc.execute import render, report

    symbols = list(settings.symbols)
    if symbol is not None:
        sym = symbol.strip().upper()
        if not SYMBOL_RE.match(sym):
            raise ConfigError("--symbol", f"{symbol!r} is not a ticker", "e.g. --symbol SPY")
        symbols = [sym]

    def work(store: Any, now: datetime) -> tuple[datetime, list[Any]]:
        start = parse_since(since, now)
        return start, report.symbol_fills(store, symbols, start)

    start, fills = query(settings, work)
    if as_json:
        output.emit_json({"since": start.isoformat(), "symbols": symbols,
                          "fills": [render.fill_json(f) for f in fills]})
        return
    if not fills:
        click.echo(f"no fills for {','.join(symbols)} since {start.isoformat()}")
        return
    output.emit_table(render.fill_rows(fills), render.FILLS_HEADERS, title=f"fills since {start.isoformat()}")
