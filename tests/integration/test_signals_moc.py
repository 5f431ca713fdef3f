"""The market-on-close strategy's window, from the exchange calendar, against `qc sim` processes.

A session started at 15:40 at 10x (the issue's demo): the MOC strategy is scored while its window
is open (until the submit deadline, close − 12 min: 15:48 for SPY on NYSE Arca) and never after;
on the 2026-11-27 early close (run at 30x to keep the suite short) everything moves with the 13:00
close (deadline 12:48, no new 0DTE after 12:30).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qc.core import clock, keys
from qc.signals.codec import LastEvaluation

from .conftest import eventually
from .signals_harness import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def ny(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day} {hhmm}").replace(tzinfo=clock.NEW_YORK).astimezone(timezone.utc)


def watch_moc(stack: Stack, until: datetime) -> list[LastEvaluation]:
    """Every distinct MOC evaluation the worker writes until simulated ``until``."""
    seen: dict[datetime, LastEvaluation] = {}

    def record() -> bool:
        e = stack.evaluation("moc")
        if isinstance(e, LastEvaluation):
            seen[e.at] = e
        return stack.sim_now() >= until

    eventually(record, timeout_s=60, every_s=0.1)
    return [seen[t] for t in sorted(seen)]


def stream_and_signals(tmp: Path, start: str, speed: str, depth_rate: str) -> Iterator[Stack]:
    """`qc sim` from ``start``, `qc stream` and `qc signals` (every 5 simulated s): no chains, no analytics."""
    s = Stack(tmp, ("--start", start, "--speed", speed, "--seed", "42", "--depth-rate", depth_rate))
    try:
        s.start("stream", "SPY")
        s.start("signals", "SPY", "--interval-s", "5")
        yield s
    finally:
        s.close()


@pytest.fixture
def session_1540(tmp_path: Path) -> Iterator[Stack]:
    yield from stream_and_signals(tmp_path, "2026-12-03 15:45", "10", "10")


def test_moc_is_scored_before_its_cutoff_and_never_after(session_1540: Stack) -> None:
    deadline = ny("2026-12-03", "15:48")
    history = watch_moc(session_1540, deadline + timedelta(minutes=1))
    before = [e for e in history if e.at < deadline]
    after = [e for e in history if e.at >= deadline]
    assert len(before) >= 5 and len(after) >= 5, [e.at for e in history]
    for e in before:
        window = next(g for g in e.gates if g.name == "moc_window")
        assert window.open, e
        assert e.reason == "" or not e.reason.startswith("gate"), e.reason  # scored, decided on its inputs
    for e in after:
        window = next(g for g in e.gates if g.name == "moc_window")
        assert not window.open and "15:48" in window.reason and e.direction == 0, e
    moc = [x for x in session_1540.signals() if x.strategy == "moc"]
    assert all(x.created_at < deadline for x in moc), [x.created_at for x in moc]
    assert all(x.contract.sec_type == "STK" and x.order_type == "LOC" for x in moc)
    blocked = session_1540.store.client.hget(keys.signals_blocked("2026-12-03").name, "SPY:moc:moc_window")
    assert int(blocked or 0) >= len(after)


@pytest.fixture
def early_close(tmp_path: Path) -> Iterator[Stack]:
    yield from stream_and_signals(tmp_path, "2026-11-27 12:28", "60", "5")


def test_on_the_early_close_every_cutoff_moves_with_the_13_00_close(early_close: Stack) -> None:
    zero_dte_cutoff, deadline = ny("2026-11-27", "12:30"), ny("2026-11-27", "12:48")

    def zero_dte_gate() -> tuple[datetime, bool, str] | None:
        e = early_close.evaluation("0dte")
        if not isinstance(e, LastEvaluation):
            return None
        gate = e.gates[-1]  # the session gate, then the entry gate (0dte_cutoff) inside the session
        return e.at, gate.open, gate.reason

    eventually(lambda: (got := zero_dte_gate()) is not None and got[0] >= zero_dte_cutoff, timeout_s=60, every_s=0.2)
    got = zero_dte_gate()
    assert got is not None and not got[1] and "12:30" in got[2] and "13:00" in got[2], got
    history = watch_moc(early_close, deadline + timedelta(minutes=1))
    opened = [e for e in history if next(g for g in e.gates if g.name == "moc_window").open]
    assert opened and all(e.at < deadline for e in opened)
    assert ny("2026-11-27", "12:30") <= min(e.at for e in opened)  # the window opens at close − 30 min
    shut = [e for e in history if e.at >= deadline]
    assert shut and all("12:48" in next(g for g in e.gates if g.name == "moc_window").reason for e in shut)
