"""`qc dashboard`: the trading desk in a browser and Prometheus /metrics, served until SIGTERM / Ctrl-C."""

from __future__ import annotations

import click

from qc.commands import output
from qc.core.config import Settings

EPILOG = """\b
Examples:
  qc dashboard                         http://127.0.0.1:8768/ (loopback: no token needed)
  qc dashboard --port 9000
  QC_DASHBOARD_TOKEN=… qc dashboard --host 0.0.0.0   every request needs the token:
                                       open /?token=… once, or send Authorization: Bearer …
  curl -s http://127.0.0.1:8768/metrics                Prometheus text
  curl -s http://127.0.0.1:8768/api/panels | jq .      every panel as JSON
Halt / resume / flatten buttons need QC_OPERATOR_TOKEN (typed by the operator); unset, they are disabled.
"""


@click.command("dashboard", epilog=EPILOG)
@click.option("--host", metavar="ADDR", help="Address to bind (default QC_DASHBOARD_HOST, 127.0.0.1); any other "
                                             "than loopback requires QC_DASHBOARD_TOKEN.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default QC_DASHBOARD_PORT, 8768).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the live dashboard (GEX, VPIN, book, signals, positions, risk, health) and /metrics."""
    from qc.commands.risk import FLATTEN_BUDGET_S, account_of
    from qc.dashboard.server import serve

    host_field = "--host" if host is not None else settings.field_name("dashboard_host")
    port_field = "--port" if port is not None else settings.field_name("dashboard_port")
    output.log_to_file(settings, "dashboard")
    code = serve(settings, settings.dashboard_host if host is None else host,
                 settings.dashboard_port if port is None else port, account_of(settings), FLATTEN_BUDGET_S,
                 click.echo, host_field, port_field)
    raise SystemExit(code)
