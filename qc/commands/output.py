"""Render a query's result: a readable table by default, one JSON document with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click


def emit_json(document: Mapping[str, Any]) -> None:
    """One JSON document on stdout (stable key order as built, ISO-8601 times as strings)."""
    click.echo(json.dumps(document, indent=2, default=str))


def emit_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> None:
    """A plain table for people; tabulate is imported here so `qc --help` stays light."""
    from tabulate import tabulate

    if title:
        click.echo(title)
    click.echo(tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True))
