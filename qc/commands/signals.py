"""`qc signals`: the scoring worker, and `show`, `explain`, `stats` over what it emitted."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import click

from qc.commands import output
from qc.commands.common import WorkerGroup, query, run_worker
from qc.core.codec import Absent
from qc.core.config import SYMBOL_RE, Settings, parse_symbols
from qc.core.errors import ConfigError, QcError

EPILOG = """\b
Examples:
  qc signals                      score QC_SYMBOLS every second (0/1/14DTE and MOC), publish signals
  qc signals SPY --once           one cycle for SPY, then exit
  qc signals show SPY             recent signals with their outcome so far
  qc signals explain 1764864012345a1b2c3d4   every factor, input, age and gate behind one signal
  qc signals explain SPY          each strategy's last evaluation for SPY (why nothing fired)
  qc signals stats --since 7d --json
  redis-cli llen signals:pending:SPY
"""


@click.group("signals", cls=WorkerGroup, epilog=EPILOG)
def command() -> None:
    """Score 0/1/14DTE and market-on-close opportunities and publish deduplicated signals."""


@command.command("run", epilog=EPILOG)
@click.argument("symbols", nargs=-1)
@click.option("--once", is_flag=True, help="Run one cycle, then exit (cron, tests).")
@click.option("--interval-s", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between cycles (clock time: simulated time under `qc sim`).")
@click.pass_obj
def run(settings: Settings, symbols: tuple[str, ...], once: bool, interval_s: float) -> None:
    """The worker (what `qc signals [SYMBOLS]` runs): score, choose a contract, dedup, publish, keep score."""
    wanted = parse_symbols(",".join(symbols), "SYMBOLS") if symbols else settings.symbols
    output.log_to_file(settings, "signals", once)
    from qc.signals.cycle.loop import NAME, SignalsCycle
    from qc.signals.params import from_settings

    config = from_settings(settings)
    run_worker(settings, NAME, lambda store: SignalsCycle(store, wanted, config), interval_s, once)


def _symbol(settings: Settings, raw: str) -> str:
    symbol = raw.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ConfigError("SYMBOL", f"{raw!r} is not a ticker", "e.g. `qc signals show SPY`")
    if symbol not in settings.symbols:
        raise QcError(f"{symbol} is not in QC_SYMBOLS ({','.join(settings.symbols)}): qc scores no signals for it",
                      "add it to QC_SYMBOLS and restart `qc signals`")
    return symbol


@command.command("show")
@click.argument("symbol", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many signals.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: every signal whole, with its outcome.")
@click.pass_obj
def show(settings: Settings, symbol: str | None, limit: int, as_json: bool) -> None:
    """Recent signals (newest first), all symbols or one."""
    from qc.signals import render, report

    sym = _symbol(settings, symbol) if symbol else None
    items = query(settings, lambda store, now: report.recent(store, sym, limit))
    if as_json:
        output.emit_json({"signals": [render.signal_json(s, o) for s, o in items]})
        return
    if not items:
        click.echo(f"no signals{' for ' + sym if sym else ''} yet (why: `qc signals explain {sym or 'SPY'}`)")
        return
    output.emit_table(render.show_rows(items), render.SHOW_HEADERS)


@command.command("explain")
@click.argument("what")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def explain(settings: Settings, what: str, as_json: bool) -> None:
    """Why a signal was sent (ID), or why each strategy did or did not fire last (SYMBOL)."""
    from qc.signals import render, report

    if SYMBOL_RE.match(what.strip().upper()) and not what.strip()[:1].isdigit():
        sym = _symbol(settings, what)
        evaluations = query(settings, lambda store, now: report.last_evaluations(store, sym))
        if as_json:
            output.emit_json({"symbol": sym, "evaluations": [
                {"absent": str(e)} if not e else _evaluation_doc(e) for e in evaluations]})
            return
        for e in evaluations:
            for line in render.evaluation_lines(e):
                click.echo(line)
            if not isinstance(e, Absent):
                output.emit_table(render.factor_rows(e.contributions, dict(e.factor_inputs)), render.FACTOR_HEADERS)
                output.emit_table(render.gate_rows(e.gates), render.GATE_HEADERS)
            click.echo("")
        return
    found = query(settings, lambda store, now: report.explain(store, what.strip()))
    if as_json:
        output.emit_json(render.signal_json(found.signal, found.outcome))
        return
    for line in render.explain_lines(found.signal, found.outcome):
        click.echo(line)
    output.emit_table(render.factor_rows(found.signal.contributions, dict(found.signal.factor_inputs)),
                      render.FACTOR_HEADERS)
    output.emit_table(render.gate_rows(found.signal.gates), render.GATE_HEADERS)


def _evaluation_doc(e: Any) -> dict[str, Any]:
    return {"strategy": e.strategy, "at": e.at.isoformat(), "direction": e.direction, "score": e.score,
            "mode": e.mode, "reason": e.reason, "result": e.result, "signal_id": e.signal_id, "notes": list(e.notes),
            "factors": [{"name": c.name, "value": c.value, "weight": c.weight, "contribution": c.contribution,
                         "age_s": c.age_s, "reason": c.reason} for c in e.contributions],
            "gates": [{"name": g.name, "open": g.open, "reason": g.reason} for g in e.gates]}


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")


def parse_since(raw: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``30m`` before now, or an ISO date/time (New York when it has no zone)."""
    from qc.core.clock import NEW_YORK

    text = raw.strip()
    got = _DURATION.match(text)
    if got:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[got.group(2)]
        try:
            return now - timedelta(**{unit: float(got.group(1))})
        except (OverflowError, ValueError):
            raise ConfigError("--since", f"{raw!r} reaches before year 1", "use a shorter span, e.g. 30d") from None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError("--since", f"{raw!r} is neither a duration nor a date",
                          "use 7d, 12h, 30m or 2026-12-01") from None
    return at if at.tzinfo else at.replace(tzinfo=NEW_YORK)


@command.command("stats")
@click.option("--since", default="7d", show_default=True, help="7d, 12h, 30m, or a date/time (New York).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def stats(settings: Settings, since: str, as_json: bool) -> None:
    """The scorecard: per strategy and symbol, signals, hit rate, mean/median return, what blocked the rest."""
    from qc.signals import render, report

    def work(store: Any, now: datetime) -> tuple[datetime, list[Any]]:
        start = parse_since(since, now)
        return start, report.stats(store, start, now)

    start, lines = query(settings, work)
    if as_json:
        output.emit_json({"since": start.isoformat(), "lines": [line.as_dict() for line in lines]})
        return
    if not lines:
        click.echo(f"no signals and no evaluations since {start.isoformat()}")
        return
    output.emit_table(render.stats_rows(lines), render.STATS_HEADERS, title=f"since {start.isoformat()}")
