"""How the executor turns a signal into an intent: quantity, trail, time stop, the calendar's 0DTE hard close."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from ib_async import IB

from qc.core.clock import NEW_YORK, FakeClock
from qc.execute.bracket import bracket
from qc.execute.cycle.engine import ExecOptions, Executor
from qc.execute.cycle.pricing import Pricing
from qc.execute.cycle.records import Records
from qc.execute.model import Intent, State
from qc.signals.codec import Signal
from qc.signals.model import Contract, Quote


def ny(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK).astimezone(timezone.utc)


def executor(now: datetime, **options: Any) -> Executor:
    # intent_from reads no Redis and no broker: they are never touched here
    return Executor(IB(), cast(Records, None), cast(Pricing, None), FakeClock(now),
                    ExecOptions(account="default", symbols=("SPY",), **options))


def signal(now: datetime, expiry: date, **changes: Any) -> Signal:
    base = Signal(id="1796311800000a1b2c3d4", created_at=now, strategy="0dte",
                  contract=Contract("SPY", "OPT", expiry, 600.0, "C", 100, "SMART", "ARCA"), side="BUY",
                  direction=1, order_type="LMT", limit=2.03, take_profit=3.05, stop=1.52,
                  time_stop=now + timedelta(hours=1), score=0.5, threshold=0.3, mode="neutral", size_multiplier=1.0,
                  quote=Quote(2.0, 2.04, 2.02, 0.5, 1000, 500, 1.0), contributions=(), factor_inputs={}, gates=(),
                  fingerprint="f")
    return replace(base, **changes)


def test_a_0dte_intent_is_flattened_before_the_close_and_earlier_on_an_early_close() -> None:
    normal, early = date(2026, 12, 3), date(2026, 11, 27)  # a Thursday; the day after Thanksgiving (13:00 close)
    got = executor(ny(normal, 10)).intent_from(signal(ny(normal, 10), normal), ny(normal, 10))
    assert got.hard_close == ny(normal, 15, 45)
    got = executor(ny(early, 10)).intent_from(signal(ny(early, 10), early), ny(early, 10))
    assert got.hard_close == ny(early, 12, 45)
    got = executor(ny(normal, 10), hard_close_min=0).intent_from(signal(ny(normal, 10), normal), ny(normal, 10))
    assert got.hard_close is None  # disabled: held through expiry


def test_only_same_day_options_have_a_hard_close() -> None:
    day = date(2026, 12, 3)
    got = executor(ny(day, 10)).intent_from(signal(ny(day, 10), date(2026, 12, 4)), ny(day, 10))
    assert got.hard_close is None and got.time_stop == ny(day, 11)


@pytest.mark.parametrize(("qty", "multiplier", "want"), [(1, 1.0, 1), (4, 0.5, 2), (3, 1.5, 4), (2, 0.0, 1)])
def test_quantity_is_the_setting_times_the_signals_size_multiplier_and_at_least_one(
        qty: int, multiplier: float, want: int) -> None:
    day = date(2026, 12, 3)
    got = executor(ny(day, 10), qty_per_signal=qty).intent_from(
        signal(ny(day, 10), day, size_multiplier=multiplier), ny(day, 10))
    assert got.quantity == want


def test_the_trail_and_the_exits_come_from_the_signal() -> None:
    day = date(2026, 12, 3)
    got = executor(ny(day, 10)).intent_from(signal(ny(day, 10), day, trail_pct=20.0), ny(day, 10))
    assert (got.trail_pct, got.limit, got.take_profit, got.stop, got.side) == (20.0, 2.03, 3.05, 1.52, "BUY")
    assert got.exit_side == "SELL" and got.bucket == "0dte" and got.id == "1796311800000a1b2c3d4"


class _HeldSubmission(Executor):
    """An executor whose submission waits on ``gate`` (where the real one awaits IB: qualify, the live quote)."""

    def __init__(self, now: datetime) -> None:
        super().__init__(IB(), cast(Records, None), cast(Pricing, None), FakeClock(now),
                         ExecOptions(account="default", symbols=("SPY",)))
        self.gate = asyncio.Event()
        self.started = 0

    async def _submit(self, intent: Intent) -> None:
        self.started += 1
        await self.gate.wait()


def test_one_submission_per_intent_at_a_time() -> None:
    # CI under a CPU hog: the intake's submission waited on IB while a reconciliation submitted the same
    # proposed intent again; both sent a bracket with the same reference and both entries filled
    async def scenario() -> None:
        day = date(2026, 12, 3)
        ex = _HeldSubmission(ny(day, 10))
        intent = ex.intent_from(signal(ny(day, 10), date(2026, 12, 4)), ny(day, 10))
        first = asyncio.ensure_future(ex.submit(intent))
        await asyncio.sleep(0)
        await asyncio.wait_for(ex.submit(intent), 5)  # the reconciliation's: returns at once, sends nothing
        assert ex.started == 1
        ex.gate.set()
        await first
        await ex.submit(intent)  # the first one ended: a later submission may run
        assert ex.started == 2

    asyncio.run(scenario())


def test_a_submission_goes_on_only_while_the_intent_is_as_it_found_it() -> None:
    day = date(2026, 12, 3)
    ex = executor(ny(day, 10))
    intent = ex.intent_from(signal(ny(day, 10), date(2026, 12, 4)), ny(day, 10))
    assert not ex._unchanged(intent)  # not among the executor's intents (dropped meanwhile)
    ex.intents[intent.id] = intent
    assert ex._unchanged(intent)
    sent = replace(intent, state=State.SUBMITTING, orders=tuple(p.order for p in bracket(intent, 7)))
    ex.intents[intent.id] = sent
    assert not ex._unchanged(intent)  # another submission sent its bracket
    ex.intents[intent.id] = replace(intent, state=State.CANCELLED)
    assert not ex._unchanged(intent)
