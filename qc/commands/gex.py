"""`qc gex SYMBOL`: dealer positioning for one symbol now, with its age; exit 1 when there is none."""

from __future__ import annotations

import click

from qc.commands import output
from qc.core.config import SYMBOL_RE, Settings
from qc.core.errors import ConfigError, QcError, StoreUnavailable

EPILOG = """\b
Examples:
  qc gex SPY                    net GEX, DEX, vanna, charm, zero gamma, walls, regime, age
  qc gex SPY --profile          GEX by strike and the spot-shift profile, spot and flip marked
  qc gex SPY --expiries 0dte    recomputed from the option chain for today's expiry only
  qc gex QQQ --json | jq '{net_gex_usd_per_1pct, age_s, stale}'
"""


@click.command("gex", epilog=EPILOG)
@click.argument("symbol")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (units in names, as_of, age_s, stale).")
@click.option("--profile", is_flag=True, help="Draw GEX by strike and the spot-shift profile (100 columns).")
@click.option("--expiries", type=click.Choice(["0dte", "1dte", "14dte", "all"]), default=None,
              help="Expiries by DTE; recomputed from the chain when they differ from `qc analytics`' set.")
@click.pass_obj
def command(settings: Settings, symbol: str, as_json: bool, profile: bool, expiries: str | None) -> None:
    """Show dealer gamma positioning for SYMBOL now."""
    symbol = symbol.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ConfigError("SYMBOL", f"{symbol!r} is not a ticker", "e.g. `qc gex SPY`")
    if symbol not in settings.symbols:
        raise QcError(f"{symbol} is not in QC_SYMBOLS ({','.join(settings.symbols)}): qc computes no positioning "
                      "for it", "add it to QC_SYMBOLS and restart `qc chains` and `qc analytics`")
    from qc.analytics import render as gex_render
    from qc.analytics import report as gex_report
    from qc.runtime.simclock import clock_for
    from qc.runtime.store import REDIS_ERRORS, connect

    store = connect(settings)
    try:
        report = gex_report.load(store, symbol, expiries, clock_for(store, settings).now())
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}", "is it running? `qc status`") from None
    finally:
        store.close()
    if as_json:
        output.emit_json(gex_render.to_json(report, with_curves=profile))
        return
    for line in (gex_render.stale_line(report), gex_render.recompute_line(report)):
        if line:
            click.echo(line)
    output.emit_table(gex_render.table_rows(report), ["measure", "value", "note"], title=gex_render.headline(report))
    if profile:
        click.echo("\n" + "\n".join([*gex_render.strike_chart(report), "", *gex_render.profile_chart(report)]))
