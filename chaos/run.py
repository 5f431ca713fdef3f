"""`python -m chaos`: one simulated session through `qc up` under a seeded fault schedule, then the verdict.

Why this order: the stack is started as ``tests.integration.dashboard_harness.desk_stack`` starts it
(`qc up` in a temp dir with free ports, embedded Redis with AOF, the simulator at ``--speed``x from
``--start``); health is sampled all along; the faults fire at their simulated moments; after the
close (``--until``) the schedule and the signal pump stop and the stack settles (the executor
reconciles, every due delivery is decided); the simulator's and Redis's records are collected while
they still exist; then `qc up` is stopped cleanly (SIGINT) and everything is judged and reported.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import click

from chaos import collect, faults, healing, invariants, report
from chaos.observe import Poller, SignalPump
from chaos.pricing import live_ask
from chaos.schedule import Fault, generate, slot_real_s
from chaos.settle import reconciled_after
from qc.core import clock, keys
from qc.core.clock import NEW_YORK, session
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import REDIS_ERRORS
from qc.signals.codec import new_id
from qc.signals.cycle.publish import Publisher
from tests.integration.dashboard_harness import DeskStack, desk_stack
from tests.integration.distribute_harness import Channels
from tests.integration.test_dashboard_browser import a_signal, sim_now

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "var" / "chaos"
CLOSE_TAIL = timedelta(minutes=2)  # past the close: the closing auction's print and the expiries settle
SETTLE_MIN_S = 30.0
SETTLE_MAX_S = 240.0
PUMP_EVERY_S = 20.0
COLLECT_ATTEMPTS = 3


@dataclass(frozen=True)
class Options:
    seed: int
    speed: float
    start: str  # 'YYYY-MM-DD HH:MM', New York
    until: str  # 'close' or 'HH:MM'
    pump_every_s: float = PUMP_EVERY_S
    only: tuple[str, ...] = ()
    out_dir: Path = OUT_DIR

    def replay(self) -> str:
        only = f" --only {','.join(self.only)}" if self.only else ""
        return (f"python -m chaos --seed {self.seed} --speed {self.speed:g} --start '{self.start}' --until {self.until}"
                f" --pump-every {self.pump_every_s:g}{only}")


def window(start: str, until: str) -> tuple[datetime, datetime]:
    """The simulated start and end (New York); ``until``: ``close`` (the close + CLOSE_TAIL) or ``HH:MM``."""
    begin = datetime.strptime(start, "%Y-%m-%d %H:%M").replace(tzinfo=NEW_YORK)
    day = session(begin.date())
    if day is None or not day.open <= begin < day.close:
        raise click.BadParameter(f"{start} is not inside a trading session", param_hint="--start")
    if until == "close":
        end = day.close.astimezone(NEW_YORK) + CLOSE_TAIL
    else:
        hh, _, mm = until.partition(":")
        if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            raise click.BadParameter(f"{until!r} is neither 'close' nor HH:MM", param_hint="--until")
        end = begin.replace(hour=int(hh), minute=int(mm))
    if end <= begin:
        raise click.BadParameter(f"{until} is not after {start}", param_hint="--until")
    return begin, end


def say(line: str) -> None:
    click.echo(line)


class SimTime:
    """The simulator's clock from its anchor, read once (it stays computable while Redis is down)."""

    def __init__(self, desk: DeskStack) -> None:
        anchor = read_sim_anchor(desk.store)
        if anchor is None:
            raise RuntimeError("the simulator published no clock anchor")
        self.sim_at: Callable[[float], float] = anchor.anchor.sim_at

    def now(self) -> float:
        return self.sim_at(clock.wall_epoch())

    def wait_until(self, sim_epoch: float, speed: float) -> None:
        while (left := sim_epoch - self.now()) > 0:
            clock.real_sleep(min(1.0, left / speed))


def publish_one(desk: DeskStack) -> tuple[str, str]:
    """A 1DTE call near the money (tests' ``a_signal``), a cent over its live ask when the gateway answers
    (``chaos.pricing``), published as `qc signals` publishes (Publisher.claim)."""
    signal = a_signal(desk)
    priced = "chain price"
    try:
        ask = live_ask(int(desk.env["QC_SIM_IB_PORT"]), signal.contract)
    except (OSError, TimeoutError, ConnectionError) as exc:
        ask, priced = None, f"chain price (gateway: {type(exc).__name__})"
    if ask is not None:
        price = round(ask + 0.01, 2)
        signal = replace(signal, limit=price, take_profit=round(price * 1.5, 2), stop=max(0.01, round(price * 0.75, 2)))
        priced = "live ask + 0.01"
    now = sim_now(desk)  # asking the gateway took seconds (minutes of market time): the signal is made now
    signal = replace(signal, id=new_id(now), created_at=now, time_stop=now + timedelta(minutes=60),
                     fingerprint=f"chaos-{now.timestamp()}")
    claim = Publisher(desk.store, 100).claim(signal, dwell_s=60, cooldown_s=0)
    return signal.id, f"{claim.result}" if claim.result != "emitted" else f"emitted ({priced})"


def settle(desk: DeskStack, sim: SimTime, expected: list[tuple[str, str, str]]) -> str:
    """Wait until the executor reconciled after the faults stopped and every delivery is decided (bounded)."""
    began, since = clock.monotonic(), sim.now()
    while True:
        waited = clock.monotonic() - began
        try:
            records = collect.Records()
            collect.from_redis(records, desk.store)
            pending = invariants.signals_lost(records.signals, records.intents, records.verdicts,
                                              records.delivery_map(), records.dead_set(), expected)
            status = desk.store.hgetall(keys.execution_status(collect.ACCOUNT))
            done = waited >= SETTLE_MIN_S and reconciled_after(status, since) and pending.ok
        except REDIS_ERRORS as exc:
            done, pending = False, invariants.counted("redis", [str(exc)])
        if done:
            return f"settled after {waited:.0f} s (reconciled, every delivery decided)"
        if waited >= SETTLE_MAX_S:
            return f"settle-down cut at {SETTLE_MAX_S:g} s: {pending.got} still open"
        clock.real_sleep(3.0)


def run(o: Options) -> int:
    start, end = window(o.start, o.until)
    schedule = generate(o.seed, start, end, o.only)
    say(report.header(o.seed, o.replay(), start, schedule))
    gap = slot_real_s(schedule, o.speed)
    notes = []
    if gap < 10:
        notes.append(f"faults only {gap:.1f} real s apart: a cramped window (a short --until or a high --speed)")
        say(f"warning: {notes[-1]}")
    root = Path(tempfile.mkdtemp(prefix=f"qc-chaos-{o.seed}-"))
    say(f"stack in {root} (logs: {root / 'var' / 'logs'}, up.log); simulated {start:%Y-%m-%d %H:%M} → {end:%H:%M} "
        f"at {o.speed:g}x: about {(end - start).total_seconds() / o.speed / 60:.0f} min of faults\n")
    run_started = clock.wall_epoch()
    expected, channels = collect.sim_routing()
    injected: list[healing.Injected] = []
    with desk_stack(root, QC_SIM_START=o.start, QC_SIM_SPEED=f"{o.speed:g}") as desk:
        sim = SimTime(desk)
        say(f"stack up after {clock.wall_epoch() - run_started:.0f} s (simulated "
            f"{datetime.fromtimestamp(sim.now(), NEW_YORK):%H:%M:%S})")
        poller = Poller(desk.store, root / "samples.jsonl")
        poller.start()
        pump = SignalPump(lambda: publish_one(desk), o.pump_every_s)
        pump.start()
        target = faults.Target(root, desk.env, int(desk.env["QC_SIM_CTL_PORT"]), desk.store, root / "var")
        for fault in schedule:
            _inject(fault, start, o.speed, sim, target, injected)
        sim.wait_until(end.timestamp(), o.speed)
        pump.close()
        say("the close is past: faults and the signal pump stopped; settling")
        records = _settle_and_collect(desk, sim, expected, root, notes)
        poller.close()
        up = desk.proc
        say("stopping qc up (SIGINT)")
    return _judge(o, start, run_started, schedule, injected, records, poller, pump, channels, expected,
                  up.returncode, sim.sim_at, notes)


def _settle_and_collect(desk: DeskStack, sim: SimTime, expected: list[tuple[str, str, str]], root: Path,
                        notes: list[str]) -> collect.Records:
    """Settle, then collect; when a delivery is still open in what was collected (a signal `qc signals` emitted
    meanwhile, in a run that ends before the close), settle and collect again, a few times at most."""
    for attempt in range(1, COLLECT_ATTEMPTS + 1):
        notes.append(settle(desk, sim, expected))
        say(notes[-1])
        records = collect.Records()
        try:
            collect.from_simulator(records, root, desk.env, int(desk.env["QC_SIM_CTL_PORT"]))
            collect.from_redis(records, desk.store)
        except (*REDIS_ERRORS, OSError, ValueError) as exc:
            records.problems.append(f"collection failed: {exc}")
        left = invariants.signals_lost(records.signals, records.intents, records.verdicts, records.delivery_map(),
                                       records.dead_set(), expected)
        if left.ok or attempt == COLLECT_ATTEMPTS:
            return records
        notes.append(f"collection {attempt}: {left.got} signals/deliveries still open; settling again")
        say(notes[-1])
    raise AssertionError("unreachable")


def _inject(fault: Fault, start: datetime, speed: float, sim: SimTime, target: faults.Target,
            injected: list[healing.Injected]) -> None:
    sim.wait_until(start.timestamp() + fault.at_s, speed)
    inj = faults.apply(fault, target)
    injected.append(inj)
    say(f"{datetime.fromtimestamp(sim.now(), NEW_YORK):%H:%M:%S} #{fault.index} {fault.fault_class}: "
        f"{'ok' if inj.ok else 'NOT INJECTED'} {inj.detail[:160]}")


def _judge(o: Options, start: datetime, run_started: float, schedule: list[Fault], injected: list[healing.Injected],
           records: collect.Records, poller: Poller, pump: SignalPump, channels: Channels,
           expected: list[tuple[str, str, str]], up_code: int | None, sim_at: Callable[[float], float],
           notes: list[str]) -> int:
    samples = poller.snapshot()
    outcomes = [healing.outcome(i, samples) for i in injected if i.ok]
    classes = healing.by_class(outcomes)
    deliveries = records.delivery_map()
    pumped = pump.emitted()
    verdicts = [
        invariants.duplicate_orders(records.orders),
        invariants.unprotected_positions(records.orders, records.positions),
        invariants.fills_once(records.executions, records.fills),
        invariants.signals_lost(records.signals, records.intents, records.verdicts, deliveries, records.dead_set(),
                                expected),
        invariants.duplicate_deliveries(records.received, channels, records.signals, deliveries),
        invariants.counted("pumped signals missing from signals:log", [s for s in pumped if s not in
                                                                        set(records.signals)]),
        invariants.counted("faults not injected", [f"#{i.fault.index} {i.fault.fault_class}: {i.detail}"
                                                   for i in injected if not i.ok]),
        invariants.counted("faults seen but not healed within "
                           f"{healing.HORIZON_S:g} s", [f"#{x.index} {x.fault_class} (seen by {x.detected_by})"
                                                        for x in outcomes if x.seen and not x.healed]),
        invariants.counted("records that did not decode", records.problems),
        invariants.counted("qc up stopped cleanly (exit 0)", [] if up_code == 0 else [f"exit {up_code}"]),
    ]
    last = next((s for s in reversed(samples) if s.reachable and s.children), None)
    restarts = {n: c.restarts for n, c in last.children.items()} if last else {}
    kills = Counter(i.fault.target for i in injected if i.ok and i.fault.kind == "kill")
    by_qc_signals = len(set(records.signals) - set(pumped))
    notes.append(f"signals: {len(records.signals)} published, {len(pumped)} by the chaos pump (every "
                 f"{o.pump_every_s:g} real s), {by_qc_signals} by `qc signals` itself")
    tried = Counter("skipped (Redis or chain unavailable)" if p.result.startswith("skipped") else p.result
                    for p in pump.pumped)
    notes.append("chaos pump: " + (", ".join(f"{n} {what}" for what, n in tried.most_common()) or "nothing tried"))
    states: object = next((v.info["intent_states"] for v in verdicts if "intent_states" in v.info), {})
    notes.append(f"intents by final state: {states}; orders at the broker: {len(records.orders)}, executions: "
                 f"{len(records.executions)}, positions left: {len(records.positions)}")
    quiet, failing = healing.calm(samples, injected, outcomes)
    notes.append(f"with no fault in play ({quiet} of {len(samples)} samples): checks failing "
                 + (", ".join(f"{name} in {n}" for name, n in failing.most_common()) or "none"))
    unseen = [f"#{x.index} {x.fault_class}" for x in outcomes if not x.seen]
    if unseen:
        notes.append(f"faults no health signal showed (healed between two samples, or nothing watched it): "
                     f"{', '.join(unseen)}")
    r = report.Report(o.seed, o.replay(), start, run_started, o.speed, schedule, injected, outcomes, classes,
                      verdicts, restarts, dict(kills), healing.timeline(samples), sim_at, notes,
                      {"orders": records.orders, "positions": records.positions, "executions": records.executions,
                       "fills": records.fills, "signals": records.signals, "intents": records.intents,
                       "verdicts": records.verdicts, "deliveries": records.deliveries, "dead": records.dead,
                       "executor": records.executor, "pumped": [vars(p) for p in pump.pumped],
                       "channels": records.received})
    say(report.text(r))
    as_json, as_text = report.write(r, o.out_dir)
    say(f"report: {as_text}\n        {as_json}")
    return 0 if r.ok else 1
