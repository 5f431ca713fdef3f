"""The fault schedule: a seed and a session window in, a list of timed faults out. Pure.

Why pure and seeded: a chaos run that fails must be replayable exactly, so the schedule is a
function of ``(seed, start, end, speed)`` alone, printed at the start and in the report, and
``python -m chaos --seed N`` (same start, until and speed) injects the same faults at the same
simulated moments.

Every worker is killed at least once, plus a few extra kills of the ones that hold state
(execute, stream, distribute, signals); the gateway's sockets are dropped, refused and restarted,
the data farm flaps, feeds fall silent, IB connectivity is lost, Redis is killed, and Alpha
Vantage and the signal channels answer errors. Faults go one per slot of the window (in a random
order, at a random moment in the first part of their slot), so each has time to be detected and
to heal before the next and the closing auction gets its share. Injection times are simulated
seconds after the start; how long a fault lasts (``hold_s``) is real seconds, as `qc sim ctl`
takes them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WORKERS = ("stream", "chains", "analytics", "signals", "risk", "execute", "dashboard", "distribute")
STATEFUL = ("execute", "stream", "distribute", "signals")  # extra kills go to these
SYMBOLS = ("SPY", "QQQ", "IWM")
SILENCE_FEEDS = ("depth", "bars", "ticks", "quotes")
CHANNELS = ("telegram", "webhook", "x")
CHANNEL_STATUSES = ("429", "500", "502", "503")  # never 403/410: those disable a target for good, by design
AV_STATUSES = ("500", "502", "503")
EXTRA_KILLS = 2
REDIS_KILLS = 2
LEAD_S = 40 * 60.0  # simulated seconds after the start before the first fault: the stack is up by then
TAIL_S = 3 * 60.0  # no fault starts in the last simulated minutes before ``end`` (the settle-down follows)
PLACE_IN_SLOT = 0.4  # a fault starts in the first 40 % of its slot: the rest is for detection and healing
CHANNEL_TIMEOUT_S = 12.0  # > `qc distribute`'s 10-s send timeout (QC_DISTRIBUTE_SEND_TIMEOUT_S default)

IB_KINDS = ("drop_sockets", "refuse", "gateway_restart", "farm_flap", "connectivity_lost")
KINDS = ("kill", "redis_kill", *IB_KINDS, "silence", "av_fail", "av_malformed", "channel_fail",
         "channel_timeout")


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: when (simulated seconds after the start), what, against whom, how long (real s).

    ``ctl`` holds the `qc sim ctl` argument lists that inject it (empty for the kills, which are signals
    to a process); ``target`` is the worker, symbol:feed or channel it aims at ("" for the gateway).
    """

    at_s: float
    kind: str
    target: str = ""
    ctl: tuple[tuple[str, ...], ...] = ()
    hold_s: float = 0.0
    index: int = field(default=0, compare=False)

    @property
    def fault_class(self) -> str:
        """What the detect and heal figures are grouped by: the kind, a kill with its worker."""
        return f"kill {self.target}" if self.kind == "kill" else self.kind

    def command(self) -> str:
        """The shell form of the injection, as an operator would type it."""
        if self.kind == "kill":
            return f"kill -9 <pid of qc up child {self.target}>"
        if self.kind == "redis_kill":
            return "kill -9 $(cat $QC_DATA_DIR/redis/redis.pid)"
        return " && ".join("qc sim ctl --ctl-port $QC_SIM_CTL_PORT " + " ".join(argv) for argv in self.ctl)

    def when(self, start: datetime) -> str:
        """The simulated New York time of the injection, HH:MM:SS."""
        return (start + timedelta(seconds=self.at_s)).strftime("%H:%M:%S")

    def to_json(self, start: datetime) -> dict[str, object]:
        return {"index": self.index, "at_s": round(self.at_s, 3), "at": self.when(start), "kind": self.kind,
                "class": self.fault_class, "target": self.target, "hold_s": round(self.hold_s, 3),
                "ctl": [list(a) for a in self.ctl], "command": self.command()}


def _menu(rng: random.Random) -> list[Fault]:
    """Every fault of one session, not yet timed."""
    faults = [Fault(0.0, "kill", w) for w in WORKERS]
    faults += [Fault(0.0, "kill", rng.choice(STATEFUL)) for _ in range(EXTRA_KILLS)]
    faults += [Fault(0.0, "redis_kill") for _ in range(REDIS_KILLS)]
    faults.append(Fault(0.0, "drop_sockets", ctl=(("drop-sockets",),)))
    refuse = round(rng.uniform(4.0, 12.0), 1)
    faults.append(Fault(0.0, "refuse", ctl=(("refuse", f"{refuse:g}"), ("drop-sockets",)), hold_s=refuse))
    down = round(rng.uniform(2.0, 6.0), 1)
    faults.append(Fault(0.0, "gateway_restart", ctl=(("restart-gateway", "--down", f"{down:g}"),), hold_s=down))
    flap = round(rng.uniform(3.0, 10.0), 1)
    faults.append(Fault(0.0, "farm_flap", ctl=(("farm-flap", f"{flap:g}"),), hold_s=flap))
    lost = round(rng.uniform(3.0, 10.0), 1)
    kept = rng.random() < 0.5
    faults.append(Fault(0.0, "connectivity_lost", ctl=(("connectivity-lost", f"{lost:g}",
                                                        "--data-kept" if kept else "--data-lost"),), hold_s=lost))
    for _ in range(2):
        sym, feed, secs = rng.choice(SYMBOLS), rng.choice(SILENCE_FEEDS), round(rng.uniform(6.0, 20.0), 1)
        faults.append(Fault(0.0, "silence", f"{sym}:{feed}", (("silence", sym, feed, "--seconds", f"{secs:g}"),),
                            secs))
    faults.append(Fault(0.0, "av_fail", ctl=(("av-fail", str(rng.randint(1, 3)), "--status",
                                              rng.choice(AV_STATUSES)),)))
    faults.append(Fault(0.0, "av_malformed", ctl=(("av-malformed", str(rng.randint(1, 3))),)))
    for _ in range(2):
        channel, status = rng.choice(CHANNELS), rng.choice(CHANNEL_STATUSES)
        argv: tuple[str, ...] = ("channel-fail", channel, str(rng.randint(1, 3)), "--status", status)
        if status == "429":
            argv += ("--retry-after", f"{rng.randint(5, 30)}")
        faults.append(Fault(0.0, "channel_fail", channel, (argv,)))
    channel = rng.choice(CHANNELS)
    faults.append(Fault(0.0, "channel_timeout", channel, (("channel-timeout", channel, str(rng.randint(1, 2)),
                                                           "--seconds", f"{CHANNEL_TIMEOUT_S:g}"),),
                        CHANNEL_TIMEOUT_S))
    return faults


def generate(seed: int, start: datetime, end: datetime, only: Sequence[str] = ()) -> list[Fault]:
    """The session's faults in time order: one per slot of [start + LEAD_S, end - TAIL_S], shuffled by ``seed``.

    A window too short for the lead and tail (a quick ``--until``) uses its middle 80 % instead. ``only``
    keeps the faults of those kinds (for a short run that iterates on a few): the draw is the same.
    """
    unknown = sorted(set(only) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(KINDS)}")
    rng = random.Random(seed)
    menu = _menu(rng)
    rng.shuffle(menu)
    if only:
        menu = [f for f in menu if f.kind in only]
    if not menu:
        return []
    span = (end - start).total_seconds()
    first, last = LEAD_S, span - TAIL_S
    if last - first < 0.2 * span:
        first, last = 0.1 * span, 0.9 * span
    slot = (last - first) / len(menu)
    timed = [Fault(round(first + i * slot + rng.uniform(0.0, PLACE_IN_SLOT) * slot, 3), f.kind, f.target, f.ctl,
                   f.hold_s) for i, f in enumerate(menu)]
    return [Fault(f.at_s, f.kind, f.target, f.ctl, f.hold_s, index=i) for i, f in enumerate(timed)]


def slot_real_s(faults: Sequence[Fault], speed: float) -> float:
    """Real seconds between two consecutive faults, at least (for the warning when a window is cramped)."""
    gaps = [b.at_s - a.at_s for a, b in itertools.pairwise(faults)]
    return min(gaps, default=0.0) / speed


def render(faults: Sequence[Fault], start: datetime) -> list[list[str]]:
    """Rows for a table: index, simulated time, class, hold, command."""
    return [[str(f.index), f.when(start), f.fault_class, f"{f.hold_s:g}" if f.hold_s else "", f.command()]
            for f in faults]
