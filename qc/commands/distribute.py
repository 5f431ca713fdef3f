"""`qc distribute`: tiered, delayed delivery of signals to Telegram, webhooks and X; `status`, `enable`."""

from __future__ import annotations

import click

from qc.commands import output
from qc.commands.common import WorkerGroup, query
from qc.core.config import Settings
from qc.core.errors import ConfigError, QcError

EPILOG = """\b
Examples:
  qc distribute                   the worker: premium at once, basic +60 s, free +300 s (QC_DISTRIBUTE_TIERS)
  qc distribute --once            deliver what is due now, then exit (1 if anything was not delivered)
  qc distribute status            tiers x channels: sent, failed, retried, rate limited, latency p50/p99
  qc distribute status --json
  qc distribute enable webhook:alpha     send again to an endpoint disabled by a 410
  redis-cli zcard distribution:basic:queue
"""


@click.group("distribute", cls=WorkerGroup, epilog=EPILOG)
def command() -> None:
    """Deliver each signal to subscriber tiers on Telegram, signed webhooks and X, exactly once, within
    each channel's rate limits (delays on qc's clock: simulated under `qc sim`)."""


@command.command("run", epilog=EPILOG)
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit: 0 all delivered, 1 anything not.")
@click.pass_obj
def run(settings: Settings, once: bool) -> None:
    """The worker (what `qc distribute` runs): intake, tier queues, mover, one sender per outbox."""
    import os
    import threading

    from qc.distribute.channels import all_loopback, from_settings
    from qc.distribute.cycle.buckets import DEFAULT_JITTER_S
    from qc.distribute.cycle.throttle import LOOPBACK_JITTER_S
    from qc.distribute.cycle.worker import run as run_distributor
    from qc.runtime.simclock import CHANNELS, clock_for
    from qc.runtime.store import connect
    from qc.runtime.worker import SystemdNotifier, install_signal_handlers

    channels = from_settings(settings)
    if not channels.routing.targets:
        raise ConfigError("QC_TELEGRAM_CHATS", "no channel is configured: nothing to distribute to",
                          "set QC_TELEGRAM_CHATS (+ QC_TELEGRAM_BOT_TOKEN), QC_WEBHOOKS (+ QC_WEBHOOK_SECRET_<NAME>) "
                          "or the four QC_X_* credentials; `qc up` uses the simulator's when none is")
    output.log_to_file(settings, "distribute", once)
    store = connect(settings)
    store.ping()
    stop = threading.Event()
    install_signal_handlers(stop)
    jitter = LOOPBACK_JITTER_S if all_loopback(channels) else DEFAULT_JITTER_S
    try:
        code = run_distributor(store, clock_for(store, settings, uses=(CHANNELS,)), channels, settings.symbols, stop,
                               once=once, jitter_s=jitter, notifier=SystemdNotifier.from_environ(os.environ))
    finally:
        store.close()
    raise SystemExit(code)


@command.command("status", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Per tier x channel: sent, failed, retried, rate limited (last wait), uncertain, expired, dead-lettered,
    latency (sent - due) p50/p99, outbox; each tier queue's depth; the latest dead letters; disabled targets."""
    from qc.distribute import report, table
    from qc.distribute.channels import routing_of
    from qc.runtime.simclock import AV, CHANNELS, IB, clock_for

    routing = routing_of(settings)
    # the stack's clock: an operator's shell points at `qc up`'s simulator through the IB or AV port, the worker's
    # settings through its channels
    uses = (IB, AV, CHANNELS)
    got = query(settings, lambda store, now: report.load(store, routing, clock_for(store, settings, uses)))
    if as_json:
        output.emit_json(table.to_json(got))
        return
    for line in table.summary_lines(got):
        click.echo(line)
    output.emit_table(table.lane_rows(got), table.LANE_HEADERS)
    click.echo()
    output.emit_table(table.tier_rows(got), table.TIER_HEADERS)
    if got.dead:
        click.echo()
        output.emit_table(table.dead_rows(got), table.DEAD_HEADERS, title=f"latest dead letters ({got.dead_count})")


@command.command("enable", epilog=EPILOG)
@click.argument("target")
@click.pass_obj
def enable(settings: Settings, target: str) -> None:
    """Send to TARGET (CHANNEL:NAME, as `qc distribute status` lists it) again after it was disabled."""
    from qc.core import keys

    removed = query(settings, lambda store, now: int(store.client.srem(keys.distribution_disabled().name, target)))
    if not removed:
        raise QcError(f"{target} is not disabled", "`qc distribute status` lists the disabled targets")
    click.echo(f"{target} enabled: new deliveries go to it again (dead-lettered ones stay dead)")
