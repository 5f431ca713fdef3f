"""`qc status`: the runbook's health checks as one table; exit 0 healthy, 1 unhealthy or unreachable."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from qc.commands import output
from qc.core import clock
from qc.core.codec import Absent
from qc.core.config import Settings
from qc.core.errors import StoreUnavailable
from qc.runtime import health
from qc.runtime.store import REDIS_ERRORS, connect

EPILOG = """\b
Examples:
  qc status                 table of checks; exit 0 when healthy
  qc status --json | jq .   stable snake_case keys, settings with their sources
  QC_REDIS_URL=rediss://user:pass@redis.internal:6380/0 qc status
"""

TITLES = {"healthy": "healthy", "warning": "WARNING (look at the WARN rows)", "unhealthy": "UNHEALTHY"}


@click.command("status", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the table.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """Check heartbeats, `qc up` children, IB connection, stale feeds, breaches, failed orders and API tokens,
    and show the executor (role, state, last reconciliation, failed orders, locked contracts, alerts).

    Once distribution has run: its dead letters, uncertain deliveries and disabled targets are WARN rows
    (``distribution`` in --json); a dead `qc distribute` shows as its heartbeat.

    A failed order today or a locked contract is a WARN row: the title says WARNING, the exit stays 0
    (only an ALERT exits 1). --json gives numbers as numbers: each check's ``value`` and ``threshold``
    (null where there is no number, e.g. a missing heartbeat) with ``unit``, and the shown ``text``;
    ``state`` is healthy, warning or unhealthy; ``executor`` is the executor's part; ``stale_feeds`` maps each
    stale feed to its age in seconds, ``rejects`` counts today's refused outside values by surface
    and reason.
    """
    from qc.commands.risk import account_of
    from qc.distribute import report as distribute_report
    from qc.execute import render as execute_render
    from qc.execute import report as execute_report

    settings: Settings = ctx.obj
    account = account_of(settings)
    store = connect(settings)
    try:
        store.ping()
        now = clock.wall_epoch()
        readings = health.read(store, now, account)
        distribution = distribute_report.health(store)
        checks = health.evaluate(readings) + distribution
        executor = execute_report.executor_status(store, account)
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}") from None
    finally:
        store.close()
    state = health.state_of(checks)
    healthy = state == "healthy"
    if as_json:
        output.emit_json({
            "healthy": healthy,
            "state": state,
            "as_of": datetime.fromtimestamp(now, timezone.utc).isoformat(),
            "redis_url": store.address,
            "checks": health.to_json(checks),
            "stale_feeds": {} if isinstance(readings.stale, Absent) else
            {feed: round(now - since, 3) for feed, since in sorted(readings.stale.items())},
            "rejects": readings.rejects,
            "executor": executor,
            "distribution": health.to_json(distribution),
            "settings": settings.public(),
        })
    else:
        rows = [[c.check, c.value, c.threshold, "ALERT" if not c.ok else "WARN" if c.warn else "ok"] for c in checks]
        output.emit_table(rows, ["check", "value", "threshold", "state"],
                          title=f"qc status — redis {store.address} — {TITLES[state]}")
        click.echo()
        for line in execute_render.executor_lines(executor):
            click.echo(line)
    ctx.exit(1 if state == "unhealthy" else 0)
