"""`qc analytics`: VPIN, book imbalance, dealer positioning, 0DTE skew, regime and flow clusters into Redis."""

from __future__ import annotations

import click

from qc.commands import output
from qc.core.config import Settings, parse_symbols

EPILOG = """\b
Examples:
  qc analytics                   for QC_SYMBOLS: imbalance + VPIN ~1 s, positioning 30 s, flow 60 s
  qc analytics SPY --once        warm start + one pass of every task, then exit (cron, tests)
  redis-cli hget analytics:SPY:vpin value
  redis-cli hget analytics:SPY:gex total
"""


@click.command("analytics", epilog=EPILOG)
@click.argument("symbols", nargs=-1)
@click.option("--once", is_flag=True, help="Run one cycle (every task once), then exit.")
@click.option("--task", "tasks", multiple=True, type=click.Choice(["vpin", "imbalance", "positioning", "flow"]),
              help="Run only these tasks (repeatable); cron: --once --task flow (refit), --task positioning "
                   "(regime with its history after the close).")
@click.option("--interval-s", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between cycles (clock time: simulated time under `qc sim`).")
@click.pass_obj
def command(settings: Settings, symbols: tuple[str, ...], once: bool, interval_s: float,
            tasks: tuple[str, ...]) -> None:
    """Compute toxicity, imbalance, dealer positioning, skew, regime and flow clusters continuously."""
    wanted = parse_symbols(",".join(symbols), "SYMBOLS") if symbols else settings.symbols
    output.log_to_file(settings, "analytics", once)
    from qc.analytics.cycle.loop import NAME, AnalyticsCycle  # numpy, sklearn: only when the verb runs
    from qc.commands.common import run_worker
    from qc.runtime.priority import step_back

    step_back(NAME, settings.batch_nice)
    run_worker(settings, NAME, lambda store: AnalyticsCycle(store, wanted, tasks or None, once=once), interval_s,
               once)
