"""`qc up`: the supervisor behind `make run`: embedded Redis, every worker, restarts, ordered stop."""

from __future__ import annotations

import os
import threading

import click

from qc.commands import output
from qc.core import clock, keys
from qc.core.config import Settings
from qc.dashboard.security import check_bind, display_url
from qc.runtime.store import EmbeddedRedis, connect, redis_cli_hint, url_for
from qc.runtime.supervisor import SUPERVISOR_NAME, Supervisor, plan_stack
from qc.runtime.worker import SystemdNotifier, Worker, install_signal_handlers

EPILOG = """\b
Examples:
  qc up                                   embedded Redis in ./var/redis, then every worker
  QC_REDIS_URL=redis://10.0.0.5:6379/0 qc up   use an existing Redis instead
Stop with Ctrl-C (or SIGTERM): workers first, Redis last, nothing left behind.
From another shell: `qc ps` lists the children, `qc restart stream` restarts one.
"""


@click.command("up", epilog=EPILOG)
@click.pass_obj
def command(settings: Settings) -> None:
    """Run the whole stack in the foreground and restart whatever dies."""
    from qc.distribute.channels import from_settings, routing_of
    from qc.runtime.supervisor import channels_configured

    if channels_configured(settings):
        from_settings(settings)  # a channel misconfigured is exit 2 now, not a child restarting forever
    # a dashboard bound off loopback without its token: exit 2 now too
    check_bind(settings.dashboard_host, settings.dashboard_token, settings.field_name("dashboard_host"))
    tiers = tuple(t.name for t in routing_of(settings).tiers)
    output.log_to_file(settings, "up")
    url = url_for(settings)
    embedded = None if settings.redis_url else EmbeddedRedis(settings.data_path, settings.embedded_redis_port)
    store = connect(settings)
    stack = plan_stack(settings, store, tiers)
    children = stack.children
    # children find the embedded Redis's password file through the data dir, never in their environment
    env = {**os.environ, **stack.env, "QC_REDIS_URL": url, "QC_DATA_DIR": str(settings.data_path.resolve()),
           "QC_EMBEDDED_REDIS_PORT": str(settings.embedded_redis_port)}
    supervisor = Supervisor(children, env, store, embedded)
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        supervisor.start(stop)
        redis_line = f"embedded redis {url} (AOF in {embedded.directory})" if embedded else f"redis {store.address}"
        click.echo(f"qc up: {redis_line}")
        click.echo(f"  workers: {', '.join(c.name for c in children) or 'none yet'} (+ supervisor)")
        for note in stack.notes:
            click.echo(f"  {note}")
        click.echo("  look:    qc status            (health table; --json for machines)")
        click.echo("           qc ps                (children: pid, state, restarts, uptime)")
        click.echo(f"           {redis_cli_hint(settings)} get {keys.heartbeat(SUPERVISOR_NAME).name}")
        login = " (open it once with ?token=$QC_DASHBOARD_TOKEN)" if settings.dashboard_token else ""
        click.echo(f"           dashboard: {display_url(settings.dashboard_host, settings.dashboard_port)}{login}")
        click.echo("  restart: qc restart NAME      (one child, e.g. qc restart stream)")
        click.echo("  stop:    Ctrl-C")
        worker = Worker(SUPERVISOR_NAME, supervisor.cycle, store, clock.SystemClock(), interval_s=1.0, stop=stop,
                        notifier=SystemdNotifier.from_environ(os.environ), max_backoff_s=2.0)
        code = worker.run()
    finally:
        supervisor.stop()
    raise SystemExit(code)
