"""`qc chains`: Alpha Vantage option chains (qc-recomputed Greeks) and news sentiment into Redis."""

from __future__ import annotations

import os
import threading

import click

from qc.commands import output
from qc.core.config import Settings, parse_symbols
from qc.core.errors import ConfigError, DataError, QcError

EPILOG = """\b
Examples:
  qc chains                      every 5 min for QC_SYMBOLS; one shared request budget across processes
  qc chains SPY QQQ IWM --once   one cycle, then exit (cron, tests)
  redis-cli get options:SPY:chain | jq '.counts'
  redis-cli hgetall monitoring:alpha_vantage:metrics
  redis-cli hgetall monitoring:rejects          refused Alpha Vantage rows, values, bodies (av.*)

\b
Exit codes of --once (for cron):
  0  every requested symbol's chain and news were refreshed
  1  anything failed, with one line naming what: no chain stored for any symbol, every request
     failed (e.g. HTTP 404 from a wrong QC_ALPHA_VANTAGE_URL), or a partial success (the line names
     the symbols and functions that failed; the others were stored); a key without the options plan
  2  a missing or invalid setting (QC_ALPHA_VANTAGE_API_KEY)
"""
KEY_ENV = "QC_ALPHA_VANTAGE_API_KEY"


@click.command("chains", epilog=EPILOG)
@click.argument("symbols", nargs=-1)
@click.option("--once", is_flag=True, help="Run one cycle, then exit (exit codes below).")
@click.option("--interval-s", type=click.FloatRange(min=1.0), default=300.0, show_default=True,
              help="Seconds between cycles (clock time: simulated time under `qc sim`).")
@click.option("--rate-window-s", type=click.FloatRange(min=0.1), default=60.0, hidden=True,
              help="Real seconds over which QC_ALPHA_VANTAGE_RPM is counted (AV: 60; tests shorten it).")
@click.pass_obj
def command(settings: Settings, symbols: tuple[str, ...], once: bool, interval_s: float,
            rate_window_s: float) -> None:
    """Fetch option chains for the traded expiries and news sentiment from Alpha Vantage."""
    if not settings.alpha_vantage_api_key:
        raise ConfigError(KEY_ENV, "is not set", f"export {KEY_ENV}=<your Alpha Vantage key> or put it in .env")
    wanted = parse_symbols(",".join(symbols), "SYMBOLS") if symbols else settings.symbols
    output.log_to_file(settings, "chains", once)
    from qc.ingest.cycle import chains as chains_cycle  # numpy, pandas, requests: only when the verb runs
    from qc.runtime.priority import step_back
    from qc.runtime.simclock import clock_for
    from qc.runtime.store import connect
    from qc.runtime.worker import SystemdNotifier, Worker, install_signal_handlers

    step_back("chains", settings.batch_nice)
    store = connect(settings)
    store.ping()
    stop = threading.Event()
    install_signal_handlers(stop)
    cycle = chains_cycle.build(store, settings, wanted, stop, window_s=rate_window_s)
    worker = Worker("chains", cycle, store, clock_for(store, settings, uses=("av",)), interval_s, stop,
                    SystemdNotifier.from_environ(os.environ))
    if not once:
        cycle.watch_tokens()
    try:
        code = worker.run(once=once)
    finally:
        cycle.close()
        store.close()
    if cycle.fatal is not None:
        if cycle.fatal.kind == "bad_key":
            raise ConfigError(KEY_ENV, cycle.fatal.message, cycle.fatal.hint)
        raise cycle.fatal
    if once and code != 0:
        raise QcError("the chains cycle failed before finishing (its error is logged above)")
    if once and (failed := cycle.report.failure_line(wanted)):
        raise DataError(failed)
    raise SystemExit(code)
