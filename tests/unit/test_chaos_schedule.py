"""The chaos schedule is a pure function of its seed: replayable, complete, spaced, and never self-defeating."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from chaos.schedule import IB_KINDS, KINDS, LEAD_S, TAIL_S, WORKERS, generate, render, slot_real_s
from qc.core.clock import NEW_YORK

START = datetime(2026, 11, 24, 9, 30, tzinfo=NEW_YORK)
END = datetime(2026, 11, 24, 16, 2, tzinfo=NEW_YORK)


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert generate(42, START, END) == generate(42, START, END)
    assert [f.to_json(START) for f in generate(42, START, END)] == [f.to_json(START) for f in generate(42, START, END)]
    assert generate(42, START, END) != generate(43, START, END)


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_every_worker_is_killed_and_every_kind_of_fault_is_injected(seed: int) -> None:
    faults = generate(seed, START, END)
    kills = Counter(f.target for f in faults if f.kind == "kill")
    assert set(WORKERS) <= set(kills)
    assert {f.kind for f in faults} == set(KINDS)
    assert sum(1 for f in faults if f.kind == "redis_kill") >= 2
    assert {f.kind for f in faults} >= set(IB_KINDS)


@pytest.mark.parametrize("seed", [0, 3, 99])
def test_faults_are_in_order_inside_the_window_and_spaced(seed: int) -> None:
    faults = generate(seed, START, END)
    span = (END - START).total_seconds()
    times = [f.at_s for f in faults]
    assert times == sorted(times) and [f.index for f in faults] == list(range(len(faults)))
    assert times[0] >= LEAD_S and times[-1] <= span - TAIL_S
    assert slot_real_s(faults, 30.0) > 10.0  # at 30x every fault has > 10 real s before the next
    assert any(f.at_s >= span - TAIL_S - 30 * 60 for f in faults)  # the last half hour (closing auction) is hit


def test_channel_faults_never_disable_a_target_and_refusals_drop_the_sockets() -> None:
    for seed in range(20):
        for f in generate(seed, START, END):
            flat = [a for argv in f.ctl for a in argv]
            assert "403" not in flat and "410" not in flat  # those disable a target for good, by design
            if f.kind == "refuse":
                assert [argv[0] for argv in f.ctl] == ["refuse", "drop-sockets"]
                assert f.hold_s == float(f.ctl[0][1])
            if f.kind == "channel_timeout":
                assert float(f.ctl[0][-1]) > 10.0  # longer than `qc distribute`'s send timeout


def test_a_schedule_prints_and_names_its_commands() -> None:
    faults = generate(5, START, END)
    rows = render(faults, START)
    assert len(rows) == len(faults) and rows[0][1] == faults[0].when(START)
    kill = next(f for f in faults if f.kind == "kill")
    assert kill.command() == f"kill -9 <pid of qc up child {kill.target}>" and kill.fault_class == f"kill {kill.target}"
    flap = next(f for f in faults if f.kind == "farm_flap")
    assert flap.command().startswith("qc sim ctl --ctl-port $QC_SIM_CTL_PORT farm-flap ")


def test_only_keeps_some_kinds_and_spreads_them_over_the_window() -> None:
    faults = generate(5, START, END, only=("kill", "redis_kill"))
    assert {f.kind for f in faults} == {"kill", "redis_kill"}
    assert slot_real_s(faults, 30.0) > slot_real_s(generate(5, START, END), 30.0)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        generate(5, START, END, only=("meteor",))


def test_a_short_window_still_fits_every_fault() -> None:
    end = datetime(2026, 11, 24, 10, 0, tzinfo=NEW_YORK)
    faults = generate(1, START, end)
    span = (end - START).total_seconds()
    assert all(0.1 * span <= f.at_s <= 0.9 * span for f in faults)
