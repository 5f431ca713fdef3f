"""Render a query's result (a readable table by default, one JSON document with ``--json``); worker log files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from qc.core import logs
from qc.core.config import Settings


def emit_json(document: Mapping[str, Any]) -> None:
    """One JSON document on stdout (stable key order as built, ISO-8601 times as strings)."""
    click.echo(json.dumps(document, indent=2, default=str))


def emit_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> None:
    """A plain table for people; tabulate is imported here so `qc --help` stays light."""
    from tabulate import tabulate

    if title:
        click.echo(title)
    click.echo(tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True))


def log_to_file(settings: Settings, verb: str, once: bool = False) -> None:
    """A worker's logs also go to ``$QC_DATA_DIR/logs/{verb}.log`` (one-shots: ``{verb}-once.log``), rotated.

    One file name per kind of process, so a cron one-shot never rotates the live worker's file.
    """
    logs.add_file(settings.data_path / "logs" / f"{verb}{'-once' if once else ''}.log")
