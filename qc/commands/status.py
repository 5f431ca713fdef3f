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


@click.command("status", epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the table.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """Check heartbeats, `qc up` children, IB connection, stale feeds, breaches, failed orders and API tokens.

    --json gives numbers as numbers: each check's ``value`` and ``threshold`` (null where there is no
    number, e.g. a missing heartbeat) with ``unit``, and the shown ``text``; ``stale_feeds`` maps each
    stale feed to its age in seconds, ``rejects`` counts today's refused outside values by surface
    and reason.
    """
    settings: Settings = ctx.obj
    store = connect(settings)
    try:
        store.ping()
        now = clock.wall_epoch()
        readings = health.read(store, now)
        checks = health.evaluate(readings)
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable at {store.address}: {exc}") from None
    finally:
        store.close()
    healthy = all(c.ok for c in checks)
    if as_json:
        output.emit_json({
            "healthy": healthy,
            "as_of": datetime.fromtimestamp(now, timezone.utc).isoformat(),
            "redis_url": store.address,
            "checks": health.to_json(checks),
            "stale_feeds": {} if isinstance(readings.stale, Absent) else
            {feed: round(now - since, 3) for feed, since in sorted(readings.stale.items())},
            "rejects": readings.rejects,
            "settings": settings.public(),
        })
    else:
        rows = [[c.check, c.value, c.threshold, "ok" if c.ok else "ALERT"] for c in checks]
        output.emit_table(rows, ["check", "value", "threshold", "state"],
                          title=f"qc status — redis {store.address} — {'healthy' if healthy else 'UNHEALTHY'}")
    ctx.exit(0 if healthy else 1)
