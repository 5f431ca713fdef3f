"""When the executor has caught up after the faults: its status says it trades and reconciled since a time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime


def reconciled_after(status: Mapping[str, str], sim_epoch: float) -> bool:
    """Pure: the executor's status hash says it is trading and last reconciled at or after ``sim_epoch``."""
    last = status.get("last_reconcile")
    if not last or status.get("state") != "trading":
        return False
    return datetime.fromisoformat(last).timestamp() >= sim_epoch
