"""Detection and healing times per fault, over hand-made health samples, and the compressed timeline."""

from __future__ import annotations

from chaos.healing import Injected, by_class, calm, outcome, p50, timeline
from chaos.observe import Child, Sample
from chaos.schedule import Fault

T0 = 1_000.0


def sample(t: float, *, pid: int = 10, restarts: int = 0, state: str = "running", beat: float = T0 - 1,
           stale: tuple[str, ...] = (), ibkr: bool = True, reachable: bool = True, failing: tuple[str, ...] = (),
           av_bad: int = 0, av_ok_at: float = 0.0) -> Sample:
    if not reachable:
        return Sample(t, False)
    return Sample(t, True, "unhealthy" if failing else "healthy", failing,
                  {"execute": beat, "ibkr_ingestion": beat, "sim": beat},
                  {"execute": Child(pid, state, restarts), "stream": Child(20, "running", 0),
                   "sim": Child(30, "running", 0)}, ibkr, stale, 0, av_bad, av_ok_at)


def test_a_killed_worker_is_seen_by_the_supervisor_and_healed_when_it_beats_under_a_new_pid() -> None:
    inj = Injected(Fault(0, "kill", "execute"), T0, True, "SIGKILL pid 10", 10)
    samples = [sample(T0 - 0.5), sample(T0 + 0.5, pid=0, state="exited -9", restarts=1,
                                        failing=("qc up child execute",)),
               sample(T0 + 1.5, pid=11, restarts=1), sample(T0 + 4.0, pid=11, restarts=1, beat=T0 + 3.5)]
    got = outcome(inj, samples)
    assert got.detected_by == "qc status: qc up child execute exited -9" and got.detect_s == 0.5
    assert got.heal_s == 4.0  # the new pid alone is not healed: it must have beaten since the kill
    quick = outcome(inj, [samples[0], samples[2], samples[3]])  # restarted between two samples
    assert quick.detected_by == "supervisor: execute restarts 0 -> 1" and quick.heal_s == 4.0


def test_redis_is_healed_when_every_running_worker_wrote_to_the_new_one() -> None:
    inj = Injected(Fault(1, "redis_kill"), T0, True, "", 99)
    samples = [sample(T0 - 0.5), sample(T0 + 0.5, reachable=False), sample(T0 + 1.0, reachable=False),
               sample(T0 + 2.0, beat=T0 - 1), sample(T0 + 6.0, beat=T0 + 5.0)]
    got = outcome(inj, samples)
    assert got.detected_by == "redis unreachable" and got.detect_s == 0.5 and got.heal_s == 6.0


def test_a_silenced_feed_heals_from_the_end_of_its_silence() -> None:
    inj = Injected(Fault(2, "silence", "SPY:ticks", (("silence", "SPY", "ticks", "--seconds", "5"),), 5.0), T0, True)
    samples = [sample(T0 - 0.5), sample(T0 + 2, stale=("SPY:trades",)), sample(T0 + 5.5, stale=("SPY:trades",)),
               sample(T0 + 7.0)]
    got = outcome(inj, samples)
    assert got.detected_by == "stale feed SPY:trades" and got.detect_s == 2.0 and got.heal_s == 2.0


def test_an_ib_drop_is_seen_by_the_connection_flag_and_heals_with_fresh_ingestion() -> None:
    inj = Injected(Fault(3, "drop_sockets", ctl=(("drop-sockets",),)), T0, True)
    samples = [sample(T0 - 0.5), sample(T0 + 0.5, ibkr=False, failing=("ibkr:connected",)),
               sample(T0 + 2.0, beat=T0 - 1), sample(T0 + 3.0, beat=T0 + 2.5)]
    got = outcome(inj, samples)
    assert got.detected_by == "ibkr:connected 0" and got.heal_s == 3.0


def test_alpha_vantage_errors_heal_with_the_next_good_chain() -> None:
    inj = Injected(Fault(4, "av_fail", ctl=(("av-fail", "1"),)), T0, True)
    samples = [sample(T0 - 0.5, av_ok_at=T0 - 20), sample(T0 + 3, av_bad=1, av_ok_at=T0 - 20),
               sample(T0 + 9, av_bad=1, av_ok_at=T0 + 8)]
    got = outcome(inj, samples)
    assert got.detected_by == "alpha vantage errors +1" and got.heal_s == 9.0


def test_a_fault_nothing_showed_is_unseen_and_one_never_healed_is_not_healed() -> None:
    unseen = outcome(Injected(Fault(5, "farm_flap", ctl=(("farm-flap", "3"),), hold_s=3.0), T0, True),
                     [sample(T0 - 0.5), sample(T0 + 1), sample(T0 + 5)])
    assert not unseen.seen and not unseen.healed
    stuck = outcome(Injected(Fault(6, "kill", "execute"), T0, True, "", 10),
                    [sample(T0 - 0.5), sample(T0 + 1, pid=0, state="waiting", restarts=1,
                                              failing=("qc up child execute",))])
    assert stuck.seen and not stuck.healed


def test_figures_by_class_and_the_timeline_keeps_only_changes() -> None:
    outs = [outcome(Injected(Fault(i, "kill", "execute"), T0, True, "", 10),
                    [sample(T0 - 0.5), sample(T0 + d, pid=11, restarts=1, beat=T0 + d)])
            for i, d in enumerate((1, 2, 4))]
    [fig] = by_class(outs)
    assert (fig.fault_class, fig.injected, fig.seen, fig.healed) == ("kill execute", 3, 3, 3)
    assert (fig.detect_p50, fig.detect_max, fig.heal_p50, fig.heal_max) == (2.0, 4.0, 2.0, 4.0) and fig.ok
    assert p50([]) is None and p50([3.0, 1.0, 2.0, 10.0]) == 2.0
    samples = [sample(1), sample(2), sample(3, reachable=False), sample(4, reachable=False), sample(5),
               sample(6, failing=("x",)), sample(7, failing=("x",))]
    assert [(c.t, c.state) for c in timeline(samples)] == [(1, "healthy"), (3, "unreachable"), (5, "healthy"),
                                                           (6, "unhealthy")]


def test_a_sample_survives_its_json_line() -> None:
    s = sample(T0, stale=("SPY:depth",), failing=("stale feeds",))
    assert Sample.from_json(s.to_json()) == s


def test_calm_counts_only_the_samples_outside_every_fault() -> None:
    inj = Injected(Fault(0, "kill", "execute"), T0, True, "", 10)
    samples = [sample(T0 - 5, failing=("stale feeds",)), sample(T0 + 1, pid=0, state="waiting", restarts=1,
                                                                  failing=("qc up child execute",)),
               sample(T0 + 3, pid=11, restarts=1, beat=T0 + 2), sample(T0 + 10), sample(T0 + 11, reachable=False)]
    got = outcome(inj, samples)
    quiet, failing = calm(samples, [inj], [got])
    assert quiet == 3 and failing == {"stale feeds": 1, "redis unreachable": 1}


def test_a_slow_beating_worker_does_not_hold_up_redis_healing() -> None:
    inj = Injected(Fault(1, "redis_kill"), T0, True, "", 99)

    def with_chains(s: Sample, chains_beat: float) -> Sample:
        return Sample(s.t, s.reachable, s.state, s.failing, {**s.beats, "chains": chains_beat},
                      {**s.children, "chains": Child(40, "running", 0)}, s.ibkr, s.stale)

    samples = [with_chains(sample(T0 - 0.5), T0 - 25), sample(T0 + 0.5, reachable=False),
               with_chains(sample(T0 + 3.0, beat=T0 + 2.5), T0 - 25)]
    assert outcome(inj, samples).heal_s == 3.0


def test_a_signal_long_after_the_fault_is_not_its_detection() -> None:
    inj = Injected(Fault(7, "farm_flap", ctl=(("farm-flap", "4"),), hold_s=4.0), T0, True)
    late = [sample(T0 - 0.5), sample(T0 + 2), sample(T0 + 70, ibkr=False), sample(T0 + 71, beat=T0 + 70.5)]
    assert not outcome(inj, late).seen
