"""`qc risk`: the exposure and breaker worker, and the operator's `status`, `halt`, `resume`, `flatten`."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

import click

from qc.commands import output
from qc.commands.common import WorkerGroup, query, run_worker
from qc.core.config import SYMBOL_RE, Settings
from qc.core.errors import ConfigError, QcError

FLATTEN_BUDGET_S = 15.0

EPILOG = """\b
Examples:
  qc risk                         the worker: live exposure, breakers, verdicts on new signals
  qc risk status                  trading states, limits with usage, breakers, last breaches
  qc risk halt --reason "fat finger on QQQ"      latch HALTED; cancel qc's entries if execute is silent
  qc risk halt --symbol SPY --reason "SPY halt"  halt one underlying
  qc risk resume --reason "checked, flat"        back to ACTIVE (the only way out of HALTED)
  qc risk flatten                 show qc's positions that flatten would close
  qc risk flatten --confirm --reason "vol spike" halt, cancel entries, close qc's positions (RTH only)
  redis-cli hgetall risk:state:default
"""


@click.group("risk", cls=WorkerGroup, epilog=EPILOG)
def command() -> None:
    """Pre-trade limits, circuit breakers, the latched trading state and the out-of-band kill switch."""


@command.command("run", epilog=EPILOG)
@click.option("--once", is_flag=True, help="Run one cycle, then exit (cron, tests).")
@click.pass_obj
def run(settings: Settings, once: bool) -> None:
    """The worker (what `qc risk` runs): exposure snapshot, breakers, latches, verdicts on new signals."""
    from qc.risk.cycle.loop import NAME, RiskCycle
    from qc.risk.settings import breakers_from, limits_from

    limits, breaker_limits = limits_from(settings), breakers_from(settings)
    output.log_to_file(settings, "risk", once)
    run_worker(settings, NAME, lambda store: RiskCycle(store, account_of(settings), settings.symbols, limits,
                                                       breaker_limits), settings.risk_interval_s, once)


def account_of(settings: Settings) -> str:
    """The account qc's risk keys are scoped by: QC_IB_ACCOUNT, or ``default`` for a single-account gateway."""
    return settings.ib_account or "default"


def _scope(symbol: str | None, settings: Settings) -> str:
    if symbol is None:
        return "account"
    sym = symbol.strip().upper()
    if not SYMBOL_RE.match(sym):
        raise ConfigError("--symbol", f"{symbol!r} is not a ticker", "e.g. --symbol SPY")
    if sym not in settings.symbols:
        raise ConfigError("--symbol", f"{sym} is not in QC_SYMBOLS ({','.join(settings.symbols)})",
                          "name an underlying qc trades")
    return sym


def _operator(by: str | None) -> str:
    name = (by or getpass.getuser()).strip()
    if not name:
        raise ConfigError("--by", "empty operator name", "pass --by NAME")
    return name


@command.command("halt", epilog=EPILOG)
@click.option("--reason", default="", help="Why (kept in the transition log).")
@click.option("--symbol", help="Halt one underlying instead of the whole account.")
@click.option("--by", help="Operator name for the log (default: $USER).")
@click.pass_obj
def halt(settings: Settings, reason: str, symbol: str | None, by: str | None) -> None:
    """Latch HALTED at once; if `qc execute` does not acknowledge, fence it off and cancel qc's entries."""
    from qc.risk.cycle import operator

    scope, who = _scope(symbol, settings), _operator(by)
    broker = operator.Broker(settings.ib_host, settings.ib_port, settings.execute_client_id,
                             settings.ib_account or None)
    outcome = query(settings, lambda store, now: operator.halt(
        store, account_of(settings), scope, who, reason, now, broker, settings.risk_halt_ack_s))
    t = outcome.transition
    click.echo(f"{scope}: HALTED" + (f" (was {t.before.state.name})" if t else " (already HALTED)"))
    if outcome.ack_s is not None:
        click.echo(f"qc execute acknowledged in {outcome.ack_s:.1f} s: it cancels its entries and sends nothing new")
        return
    click.echo(f"qc execute did not acknowledge within {settings.risk_halt_ack_s:g} s")
    if outcome.token is not None:
        click.echo(f"fenced: executor token now {outcome.token}; {outcome.process}")
    else:
        click.echo(outcome.process)
    cancel = outcome.cancel
    assert cancel is not None
    for label, items in (("cancelled", cancel.cancelled), ("filled before cancel", cancel.filled),
                         ("protective, left working", cancel.kept), ("not qc's, untouched", cancel.foreign),
                         ("STILL WORKING", cancel.failed)):
        for item in items:
            click.echo(f"  {label}: {item}")
    if cancel.error:
        raise QcError(f"entries not cancelled: {cancel.error}",
                      "the state is HALTED; cancel qc's entry orders in TWS, or free the executor's client id "
                      "and run `qc risk halt` again")
    if cancel.failed:
        raise QcError(f"{len(cancel.failed)} entry order(s) still working after {operator.CANCEL_BUDGET_S:g} s",
                      "the state is HALTED; run `qc risk halt` again or cancel them in TWS")
    click.echo(f"{len(cancel.cancelled)} entry order(s) cancelled; {len(cancel.kept)} protective left working; "
               f"restart `qc execute` only after `qc risk resume`")


@command.command("resume", epilog=EPILOG)
@click.option("--reason", required=True, help="Why trading may resume (required; kept in the transition log).")
@click.option("--symbol", help="Resume one underlying instead of the whole account.")
@click.option("--by", help="Operator name for the log (default: $USER).")
@click.pass_obj
def resume_cmd(settings: Settings, reason: str, symbol: str | None, by: str | None) -> None:
    """Lower a latched state back to ACTIVE: the only way out of HALTED."""
    from qc.risk.cycle import operator

    if not reason.strip():
        raise ConfigError("--reason", "empty", "say why trading may resume")
    scope, who = _scope(symbol, settings), _operator(by)
    t = query(settings, lambda store, now: operator.resume_trading(
        store, account_of(settings), scope, who, reason, now))
    if t is None:
        click.echo(f"{scope}: already ACTIVE")
    else:
        click.echo(f"{scope}: ACTIVE (was {t.before.state.name}: {t.before.cause} by {t.before.by})")




@command.command("status", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many breaches, transitions and verdicts to show.")
@click.pass_obj
def status(settings: Settings, as_json: bool, limit: int) -> None:
    """Trading states, exposure and limit usage, breakers and breaches, recent verdicts, limits with sources."""
    from qc.risk.cycle import report
    from qc.risk.settings import describe

    limits_rows = describe(settings)  # validates the limits first: a bad one is a usage error, exit 2
    doc = query(settings, lambda store, now: report.risk_status(store, account_of(settings), now, limit))
    doc["limits"] = [{"name": n, "value": v, "source": s} for n, v, s in limits_rows]
    if as_json:
        output.emit_json(doc)
        return
    for title, rows, headers in report.tables(doc):
        output.emit_table(rows, headers, title=title)
        click.echo()


@command.command("flatten", epilog=EPILOG)
@click.option("--confirm", is_flag=True, help="Really do it (without: show what would be closed).")
@click.option("--reason", default="", help="Why (kept in the transition log).")
@click.option("--by", help="Operator name for the log (default: $USER).")
@click.pass_obj
def flatten_cmd(settings: Settings, confirm: bool, reason: str, by: str | None) -> None:
    """Halt, take over from `qc execute`, cancel qc's entries and close qc's positions with marketable limits."""
    from qc.risk.cycle import flatten
    from qc.risk.cycle.inputs import RiskInputs

    who, account = _operator(by), account_of(settings)
    records = query(settings, lambda store, now: RiskInputs(store, account).positions())
    for rec in records:
        p = rec.position
        click.echo(f"  {'close' if confirm else 'would close'}: {p.contract.describe()} {p.quantity:+d} "
                   f"(conId {rec.con_id})")
    if not confirm:
        raise ConfigError("--confirm", f"nothing sent ({len(records)} qc position(s) above)",
                          "run again with --confirm to halt, cancel qc's entries and close them")

    def work(store: Any, now: datetime) -> flatten.FlattenReport:
        return flatten.flatten(store, account, who, reason, now, settings.ib_host, settings.ib_port,
                               settings.execute_client_id, settings.ib_account or None, records,
                               budget_s=FLATTEN_BUDGET_S)

    report = query(settings, work)
    was = "" if report.transition is None else f" (was {report.transition.before.state.name})"
    click.echo(f"account: HALTED{was}")
    click.echo(report.process)
    for label, items in (("cancelled", report.cancel.cancelled), ("closed", report.closed),
                         ("protective cancelled (position flat)", report.protective_cancelled),
                         ("NOT CLOSED", report.not_closed), ("STILL WORKING", report.cancel.failed)):
        for item in items:
            click.echo(f"  {label}: {item}")
    if report.cancel.error:
        raise QcError(f"could not reach IB as the executor: {report.cancel.error}",
                      "the state is HALTED; close the positions in TWS")
    if report.skipped:
        raise QcError(report.skipped, "the state is HALTED; run `qc risk flatten --confirm` again in regular hours")
    if not report.ok:
        raise QcError("flatten incomplete (see NOT CLOSED / STILL WORKING)",
                      "the state is HALTED; run it again or finish in TWS")
    click.echo(f"{len(report.closed)} position(s) closed")
