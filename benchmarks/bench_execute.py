"""Signal in Redis → order bytes at the gateway, the pre-trade check included: p50/p99 (target p99 < 10 ms).

The whole stack on loopback, as the integration tests start it (``tests.integration.execute_harness``):
a redis-server, `qc sim` (2x speed, a Thursday morning), `qc stream`, `qc chains`, `qc analytics`,
`qc risk` and `qc execute`, with every quantity, position, premium, loss and greek limit off
(``QC_RISK_LIMITS``) so each signal is approved; the quote, spread, band and rate checks stay on.
Once the executor reports ``trading``, a 1DTE call near the money gets ``WARMUP`` signals (the first
qualifies the contract and subscribes its quote) and then ``SIGNALS`` more, ~``RATE_HZ`` a second
(each bracket is 3 IB messages; the check refuses more than 40 a second). Each is a buy limit resting
3 % under the live bid (inside the 10 % price band), read from the benchmark's own ib_async
subscription; the executor cancels each entry after ``QC_EXECUTE_ENTRY_TIMEOUT_S`` (2 s), so the
gateway is not left matching hundreds of working children. The first version bought at the ask:
150 filled brackets left 300 working children on one option, and the gateway's own stalls (a bare
client's bracket p99 10.7 ms) dominated the tail (p50 7.6 / p99 14.2 ms).

Timed per signal, from ``clock.wall_epoch()`` right before the XADD to ``signals:{execution}:SPY``, to two
ends (same host, same clock):

- **written** (the target's figure): the executor's ``execution:sent`` record, the wall time right after
  its last ``placeOrder`` (the stop, the transmitting leg) returned. On loopback the bytes are then in the
  gateway's socket buffer: qc's part of the path is over.
- **read**: the simulator's ``receivedAt`` (the wall time its event loop read the bytes, ``qc sim ctl
  orders``) of the stop leg and of the entry leg. It adds the simulated gateway's own delays: its loop
  shares one process (and one GIL) with the market model and the Alpha Vantage server, and before the
  simulator froze its heap its full collections alone put 40-60 ms into this figure now and then.
 Where the time goes comes from the intent's
own history in Redis (its sim-clock times turned back into wall time through the simulator's anchor):
hand-off (XADD → the intent created on the executor's loop), check (→ approved: the intent stored,
counted and the entry acknowledged, then contract, live quote, positions, `qc risk`'s pre-trade check),
persist (→ submitting: the approval saved), send (→ the entry at the gateway: the submitting intent
saved, then placeOrder) and the two child messages; and the slowest signals' splits.

Baselines, same run, same gateway: a bare ib_async client (its own clientId, no Redis, no check)
placing the same 3-leg bracket, from its first ``placeOrder`` call to the gateway's ``receivedAt`` of
its stop; and the Redis hand-off alone (XADD → a thread's blocking XREADGROUP returns).
Hot spots: the executor restarted under cProfile for ``PROFILE_SIGNALS`` more signals (its event-loop
thread; profiling inflates small-function-heavy code, read the rows as proportions). Set
``QC_BENCH_EXECUTE_PROFILE=/path`` to keep its stats for ``python -m pstats``.
"""

from __future__ import annotations

import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import redis
from ib_async import IB, LimitOrder, Option, StopOrder, Ticker

from benchmarks._report import Figure
from qc.core import clock, keys
from qc.core.clock import SimAnchor
from qc.core.codec import Absent
from qc.execute.model import Intent, State
from qc.ingest.codec import ChainRow
from qc.ingest.cycle.stream_writer import nearest_rank
from qc.runtime.codec import SimClockAnchor
from tests.integration.conftest import eventually
from tests.integration.execute_harness import (
    ACCOUNT,
    GROUP,
    broker_orders,
    intent,
    liquid_call,
    make_signal,
    start_stack,
)
from tests.integration.signals_harness import Stack
from tests.integration.stream_harness import stop_process

SIM = ("--start", "2026-12-03 10:30", "--speed", "2", "--seed", "7", "--depth-rate", "20")
LIMITS_OFF = ("max_qty_per_order", "max_premium_per_order_usd", "max_position_per_contract",
              "max_position_per_underlying", "max_open_orders_per_side", "daily_loss_limit_usd", "drawdown_limit_usd",
              "delta_usd_per_pct_per_underlying", "gamma_usd_per_pct_per_pct_per_underlying",
              "vega_usd_per_vol_pt_per_underlying", "charm_usd_delta_per_day_per_underlying",
              *(f"{g}.{b}" for g in ("delta_usd_per_pct_per_bucket", "gamma_usd_per_pct_per_pct_per_bucket",
                                     "vega_usd_per_vol_pt_per_bucket", "charm_usd_delta_per_day_per_bucket")
                for b in ("0dte", "1dte", "14dte", "other")))
ENV = {"QC_RISK_LIMITS": ",".join(f"{n}=off" for n in LIMITS_OFF),
       "QC_EXECUTE_RECONCILE_S": "30", "QC_EXECUTE_LOST_AFTER_S": "30",  # the defaults, not the tests' 5 s
       "QC_EXECUTE_ENTRY_TIMEOUT_S": "2"}
WARMUP = 5
SIGNALS = 150
RATE_HZ = 4.0
BASELINE_BRACKETS = 60
HANDOFF_N = 300
PROFILE_SIGNALS = 80
BENCH_CLIENT_ID = 33
PROFILED_NAME = "execute#profiled"
TARGET_P99_MS = 10.0
HOT_CALLEES = 6
SLOWEST = 5
HOT_OWN = 8
KEEP_PROFILE = os.environ.get("QC_BENCH_EXECUTE_PROFILE", "")  # a path: keep the stats


@dataclass
class Sent:
    """One published signal: its id and when (wall epoch) the XADD was issued."""

    id: str
    at: float


@dataclass
class Latencies:
    values: list[float] = field(default_factory=list)

    def q(self, *qs: float) -> list[float]:
        return nearest_rank(np.asarray(self.values), qs) if self.values else [float("nan")] * len(qs)

    def brief(self) -> str:
        p50, p99 = self.q(0.5, 0.99)
        return f"p50 {p50:.2f} / p99 {p99:.2f} / max {max(self.values, default=float('nan')):.2f} ms"


# --- the stack and the benchmark's own IB client ----------------------------------------------------


def _trading(stack: Stack, pid: int | None = None) -> bool:
    status = stack.store.client.hgetall(keys.execution_status(ACCOUNT).name)
    return status.get("state") == "trading" and (pid is None or status.get("pid") == str(pid))


class Market:
    """The benchmark's ib_async client: the option's live quote (for resting limits) and the baseline brackets."""

    def __init__(self, stack: Stack, row: ChainRow) -> None:
        self.ib = IB()
        self.ib.connect("127.0.0.1", stack.sim.port("ib"), clientId=BENCH_CLIENT_ID, timeout=20)
        self.option = Option("SPY", row.expiry.strftime("%Y%m%d"), row.strike, row.right, "SMART")
        self.ib.qualifyContracts(self.option)
        self.ticker: Ticker = self.ib.reqMktData(self.option, "", False, False)
        self.last_ask = float("nan")
        deadline = clock.monotonic() + 20
        while self.ask() != self.ask() and clock.monotonic() < deadline:
            self.ib.sleep(0.05)
        if self.ask() != self.ask():
            raise RuntimeError(f"no live quote for {self.option}")

    def ask(self) -> float:
        a = self.ticker.ask
        if a == a and a > 0:
            self.last_ask = float(a)
        return self.last_ask

    def resting(self) -> float:
        """3 % under the bid, inside the price band (10 % of the mark): it rests, never fills."""
        bid = self.ticker.bid
        ask = self.ask()
        bid = bid if bid == bid and bid > 0 else ask
        return round(max(bid * 0.97, (bid + ask) / 2 * 0.91), 2)

    def bracket(self, n: int) -> tuple[str, float]:
        """(the legs' orderRef prefix, wall epoch of the first placeOrder call)."""
        limit = self.resting()
        first = self.ib.client.getReqId()
        ids = (first, self.ib.client.getReqId(), self.ib.client.getReqId())
        ref = f"bench:{n}"
        legs = (
            LimitOrder("BUY", 1, limit, orderId=ids[0], tif="DAY", orderRef=f"{ref}:entry", transmit=False),
            LimitOrder("SELL", 1, round(limit * 1.5, 2), orderId=ids[1], tif="DAY", orderRef=f"{ref}:tp",
                       parentId=first, ocaGroup=ref, ocaType=3, transmit=False),
            StopOrder("SELL", 1, round(limit * 0.75, 2), orderId=ids[2], tif="DAY", orderRef=f"{ref}:stop",
                      parentId=first, ocaGroup=ref, ocaType=3, transmit=True),
        )
        at = clock.wall_epoch()
        for order in legs:
            self.ib.placeOrder(self.option, order)
        self.ib.cancelOrder(legs[0])  # after the stop is sent: nothing of the baseline stays working
        return ref, at

    def pace(self, started: float, i: int) -> None:
        """Run the client's loop (quotes arrive) until signal ``i + 1``'s slot."""
        self.ib.sleep(max(0.0, started + (i + 1) / RATE_HZ - clock.monotonic()))

    def close(self) -> None:
        self.ib.disconnect()


def publish(stack: Stack, market: Market, row: ChainRow) -> Sent:
    """`qc signals`' publication (the record, then the stream entry); the clock read right before XADD."""
    c = stack.store.client
    signal = make_signal(stack, row, limit=market.resting())
    c.set(keys.signal_record(signal.id).name, signal.to_redis(), ex=3600)
    fields = {"id": signal.id, "signal": signal.to_redis()}
    stream = keys.signals_execution("SPY").name
    at = clock.wall_epoch()
    c.xadd(stream, fields)
    return Sent(signal.id, at)


def publish_paced(stack: Stack, market: Market, row: ChainRow, n: int) -> list[Sent]:
    out: list[Sent] = []
    started = clock.monotonic()
    for i in range(n):
        out.append(publish(stack, market, row))
        market.pace(started, i)
    return out


def arrivals(stack: Stack, refs: Sequence[str], timeout_s: float = 60.0) -> dict[str, float]:
    """``receivedAt`` by orderRef at the gateway, once every one of ``refs`` (or what came in time) is there."""
    got: dict[str, float] = {}
    deadline = clock.monotonic() + timeout_s
    while True:
        got = {o["orderRef"]: float(o["receivedAt"]) for o in broker_orders(stack) if o.get("receivedAt") is not None}
        if all(r in got for r in refs) or clock.monotonic() > deadline:
            return got
        clock.real_sleep(0.5)


def anchor(stack: Stack) -> SimAnchor:
    got = SimClockAnchor.from_redis(stack.store.hgetall(keys.sim_clock()), key=keys.sim_clock().name)
    assert not isinstance(got, Absent), got
    return got.anchor


def to_wall(a: SimAnchor, at: datetime) -> float:
    return a.real_epoch + (at.timestamp() - a.sim_epoch) / a.speed


# --- measurements ------------------------------------------------------------------------------------


@dataclass
class Measured:
    stop: Latencies = field(default_factory=Latencies)
    entry: Latencies = field(default_factory=Latencies)
    stages: dict[str, Latencies] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    first: tuple[float, float] = (float("nan"), float("nan"))  # the very first signal: stop, entry ms
    missing: int = 0
    slow: list[tuple[float, tuple[float, ...]]] = field(default_factory=list)  # (stop ms, stage ms) per signal
    written: Latencies = field(default_factory=Latencies)  # XADD → the bracket's last byte into the socket


STAGES = ("hand-off: XADD → intent created on the loop",
          "check: created → approved (intent stored, XACK, quote, positions, pre-trade check)",
          "persist: approved → submitting", "send: submitting → entry at gateway", "children: entry → stop at gateway")


def written_at(stack: Stack) -> dict[str, float]:
    """Intent → wall time its bracket's three orders were written to the gateway's socket (the executor's
    ``execution:sent`` record, taken right after the last placeOrder returned)."""
    out: dict[str, float] = {}
    for _, fields in stack.store.client.xrange(keys.execution_sent(ACCOUNT).name):
        if fields.get("orders") == "3":
            out.setdefault(fields["intent"], float(fields["wall"]))
    return out


def measure(stack: Stack, sent: Sequence[Sent], warmup: int) -> Measured:
    refs = [f"qc:{s.id}:{leg}:0" for s in sent for leg in ("entry", "stop")]
    got = arrivals(stack, refs)
    eventually(lambda: all(s.id in written_at(stack) for s in sent if f"qc:{s.id}:stop:0" in got), timeout_s=10)
    written = written_at(stack)
    a = anchor(stack)
    m = Measured(stages={name: Latencies() for name in STAGES})
    for n, s in enumerate(sent):
        it = intent(stack, s.id)
        state = it.state.value if isinstance(it, Intent) else "absent"
        m.states[state] = m.states.get(state, 0) + 1
        if isinstance(it, Intent) and it.state is State.REJECTED and len(m.reasons) < 3:
            m.reasons.append("; ".join(it.reasons)[:160])
        entry, stop = got.get(f"qc:{s.id}:entry:0"), got.get(f"qc:{s.id}:stop:0")
        if entry is None or stop is None:
            m.missing += n >= warmup
            continue
        if n == 0:
            m.first = ((stop - s.at) * 1e3, (entry - s.at) * 1e3)
        if n < warmup:
            continue
        m.stop.values.append((stop - s.at) * 1e3)
        m.entry.values.append((entry - s.at) * 1e3)
        m.written.values.append((written[s.id] - s.at) * 1e3)
        if not isinstance(it, Intent):
            continue
        moved = {t.state: to_wall(a, t.at) for t in it.history}
        created = to_wall(a, it.created)
        approved, submitting = moved.get(State.APPROVED), moved.get(State.SUBMITTING)
        if approved is None or submitting is None:
            continue
        marks = (s.at, created, approved, submitting, entry, stop)
        parts = tuple((t1 - t0) * 1e3 for t0, t1 in pairwise(marks))
        for name, ms in zip(STAGES, parts, strict=True):
            m.stages[name].values.append(ms)
        m.slow.append(((stop - s.at) * 1e3, parts))
    return m


def baseline_brackets(stack: Stack, market: Market) -> tuple[Latencies, Latencies]:
    """The executor's bracket (entry LMT held, take-profit LMT, stop STP transmitting) from a bare ib_async
    client: first placeOrder call → the gateway read its stop; and the gateway's entry → stop gap."""
    placed: list[tuple[str, float]] = []
    started = clock.monotonic()
    for i in range(BASELINE_BRACKETS):
        placed.append(market.bracket(i))
        market.pace(started, i)
    got = arrivals(stack, [f"{r}:{leg}" for r, _ in placed for leg in ("entry", "stop")])
    done = [(got[f"{r}:entry"], got[f"{r}:stop"], at) for r, at in placed[WARMUP:]
            if f"{r}:stop" in got and f"{r}:entry" in got]
    return Latencies([(stop - at) * 1e3 for _, stop, at in done]), Latencies([(s - e) * 1e3 for e, s, _ in done])


def baseline_handoff(stack: Stack) -> Latencies:
    """XADD → a blocking XREADGROUP returns it, in another thread (as the executor's intake reads)."""
    stream, consumer = "bench:execute:handoff", "bench"
    writer = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    reader = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    writer.xgroup_create(stream, GROUP, id="0", mkstream=True)
    seen: dict[str, float] = {}
    done = threading.Event()

    def read() -> None:
        while len(seen) < HANDOFF_N:
            reply: Any = reader.xreadgroup(GROUP, consumer, {stream: ">"}, count=50, block=500)
            for _, entries in reply or []:
                now = clock.wall_epoch()
                for entry_id, _ in entries:
                    seen[entry_id] = now
                    reader.xack(stream, GROUP, entry_id)
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    sent: dict[str, float] = {}
    payload: dict[Any, Any] = {"id": "x", "signal": "y" * 2048}
    for _ in range(HANDOFF_N):
        at = clock.wall_epoch()
        sent[str(writer.xadd(stream, payload))] = at
        clock.real_sleep(0.01)
    done.wait(10)
    writer.delete(stream)
    writer.close()
    reader.close()
    return Latencies([(seen[i] - at) * 1e3 for i, at in sent.items() if i in seen])


# --- the profiled executor ----------------------------------------------------------------------------


def profiled(stack: Stack, market: Market, row: ChainRow, out: Path) -> tuple[pstats.Stats, int] | None:
    """Restart the executor under cProfile, send ``PROFILE_SIGNALS`` signals, stop it; its stats."""
    stack.stop("execute")
    log = (stack.tmp / "execute-profiled.log").open("a")
    proc = subprocess.Popen([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "qc", "execute"],
                            cwd=stack.tmp, text=True, env={**stack.env, "QC_IB_CLIENT_ID": "58"}, stdout=log,
                            stderr=subprocess.STDOUT)
    stack.procs[PROFILED_NAME] = proc
    eventually(lambda: _trading(stack, proc.pid), timeout_s=60, every_s=0.2)
    sent = publish_paced(stack, market, row, PROFILE_SIGNALS)
    arrivals(stack, [f"qc:{s.id}:stop:0" for s in sent])
    stop_process(stack.procs.pop(PROFILED_NAME))
    if not out.exists():
        return None
    if KEEP_PROFILE:
        shutil.copyfile(out, KEEP_PROFILE)
    return pstats.Stats(str(out)), len(sent)


Func = tuple[str, int, str]
# (file suffix, function): the executor's entry points on its event loop, and the order path's parts
ENTRY_POINTS = (("cycle/run.py", "_deliver"), ("cycle/engine.py", "submit"), ("cycle/engine.py", "on_order"),
                ("cycle/engine.py", "on_exec"), ("cycle/engine.py", "on_commission"),
                ("cycle/engine.py", "on_tickers"), ("cycle/run.py", "_every_second"),
                ("cycle/reconcile.py", "reconcile"))
EXPANDED = (("cycle/engine.py", "submit"), ("cycle/pricing.py", "check"), ("cycle/engine.py", "commit"),
            ("cycle/engine.py", "send"), ("cycle/run.py", "_deliver"), ("cycle/run.py", "_every_second"))


def _where(func: Func) -> str:
    path, line, name = func
    p = Path(path)
    return name if not line else f"{p.parent.name}/{p.name}:{line} {name}"


def _is(func: Func, suffix: str, name: str) -> bool:
    return func[2] == name and func[0].endswith(suffix)


def hot_spots(stats: pstats.Stats, n_signals: int) -> list[Figure]:
    """Per signal: each loop entry point's on-loop time (cumulative, calls), then what the order path's parts call.

    A coroutine's time counts only while it runs (not while it awaits): ``submit`` is its CPU on the loop.
    """
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    out = [Figure(f"executor under cProfile, {n_signals} signals: event-loop time per signal (profiled)",
                  sum(v[2] for v in raw.values()) * 1e3 / n_signals, "ms/signal",
                  baseline="all functions' own time, idle epoll included")]
    for suffix, name in ENTRY_POINTS:
        for func, (_, calls, _own, cum, _) in raw.items():
            if _is(func, suffix, name):
                out.append(Figure(f"  loop entry {_where(func)}", cum * 1e3 / n_signals, "ms/signal",
                                  baseline=f"{calls} calls, {cum * 1e3 / max(calls, 1):.3f} ms/call"))
    for suffix, name in EXPANDED:
        parents = [f for f in raw if _is(f, suffix, name)]
        if not parents:
            continue
        edges: list[tuple[float, int, str]] = []
        for func, (_, _, _, _, callers) in raw.items():
            for caller, edge in callers.items():
                if caller in parents:
                    edges.append((edge[3], edge[1], _where(func)))
        for cum, calls, where in sorted(edges, reverse=True)[:HOT_CALLEES]:
            out.append(Figure(f"  in {name}: {where}", cum * 1e3 / n_signals, "ms/signal",
                              baseline=f"{calls} calls, {cum * 1e3 / max(calls, 1):.3f} ms/call"))
    own = sorted(raw.items(), key=lambda kv: -kv[1][2])
    for func, (_, calls, tt, cum, _) in own[:HOT_OWN]:
        out.append(Figure(f"  own time: {_where(func)}", tt * 1e3 / n_signals, "ms/signal",
                          baseline=f"{calls} calls; cumulative {cum * 1e3 / n_signals:.3f} ms/signal"))
    return out


# --- figures -----------------------------------------------------------------------------------------


def figures(m: Measured, base: Latencies, gap: Latencies, handoff: Latencies, n: int) -> list[Figure]:
    s50, s99, smax = m.stop.q(0.5, 0.99, 1.0)
    e50, e99, emax = m.entry.q(0.5, 0.99, 1.0)
    b50, b99, bmax = base.q(0.5, 0.99, 1.0)
    h50, h99 = handoff.q(0.5, 0.99)
    base_txt = f"bare ib_async bracket (no Redis, no check) p50 {b50:.2f} / p99 {b99:.2f} / max {bmax:.2f} ms"
    hand_txt = f"Redis XADD→XREADGROUP alone p50 {h50:.2f} / p99 {h99:.2f} ms"
    states = ", ".join(f"{k} {v}" for k, v in sorted(m.states.items(), key=lambda kv: -kv[1]))
    w50, w99, wmax = m.written.q(0.5, 0.99, 1.0)
    read_txt = f"the simulated gateway read it: p50 {s50:.2f} / p99 {s99:.2f} / max {smax:.2f} ms"
    out = [
        Figure(f"signal → bracket written to the gateway's socket, p50 of {len(m.written.values)}", w50, "ms", "",
               f"{read_txt}; {hand_txt}"),
        Figure("signal → bracket written to the gateway's socket, p99", w99, "ms", f"p99 < {TARGET_P99_MS:g} ms",
               read_txt, w99 < TARGET_P99_MS),
        Figure("signal → bracket written to the gateway's socket, max", wmax, "ms", baseline=read_txt),
        Figure("signal → bracket read by the simulated gateway (stop leg), p50", s50, "ms", "",
               f"{base_txt}; {hand_txt}"),
        Figure("signal → bracket read by the simulated gateway (stop leg), p99", s99, "ms",
               f"p99 < {TARGET_P99_MS:g} ms", base_txt, s99 < TARGET_P99_MS),
        Figure("signal → bracket read by the simulated gateway (stop leg), max", smax, "ms", baseline=base_txt),
        Figure("signal → entry leg at gateway, p50", e50, "ms", baseline=hand_txt),
        Figure("signal → entry leg at gateway, p99", e99, "ms", baseline=f"max {emax:.2f} ms"),
        Figure("first signal (qualifies the contract, subscribes its quote) → stop at gateway", m.first[0], "ms",
               "(once per contract)", f"entry {m.first[1]:.2f} ms"),
        Figure(f"signals published (after {WARMUP} warm-up), brackets not at the gateway", float(n), "signals",
               baseline=f"{m.missing} missing; intents now: {states}" + (f"; rejected: {m.reasons}" if m.reasons
                                                                            else "")),
    ]
    for name, lat in m.stages.items():
        p50, p99 = lat.q(0.5, 0.99)
        worst = max(lat.values, default=float("nan"))
        extra = f"; bare ib_async bracket: {gap.brief()}" if name.startswith("children") else ""
        out.append(Figure(f"  stage {name}, p50", p50, "ms", baseline=f"p99 {p99:.2f} ms, max {worst:.2f} ms{extra}"))
    for total, parts in sorted(m.slow, reverse=True)[:SLOWEST]:
        split = " + ".join(f"{name.split(':')[0]} {ms:.1f}" for name, ms in zip(STAGES, parts, strict=True))
        out.append(Figure("  a slowest signal → stop at gateway", total, "ms", baseline=split))
    return out


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        print("  starting the stack (data workers need a minute) …", file=sys.stderr, flush=True)
        stack = start_stack(tmp, SIM, ENV)
        market: Market | None = None
        try:
            stack.start("execute")
            eventually(lambda: _trading(stack), timeout_s=60, every_s=0.2)
            row = liquid_call(stack)
            market = Market(stack, row)
            print(f"  {WARMUP + SIGNALS} signals at {RATE_HZ:g}/s …", file=sys.stderr, flush=True)
            sent = publish_paced(stack, market, row, WARMUP + SIGNALS)
            m = measure(stack, sent, WARMUP)
            print("  baselines …", file=sys.stderr, flush=True)
            base, gap = baseline_brackets(stack, market)
            handoff = baseline_handoff(stack)
            out = figures(m, base, gap, handoff, SIGNALS)
            print("  profiled executor …", file=sys.stderr, flush=True)
            prof = profiled(stack, market, row, tmp / "execute.prof")
            if prof is None:
                out.append(Figure("executor profile: no stats written", float("nan"), ""))
            else:
                out += hot_spots(*prof)
            return out
        finally:
            if market is not None:
                market.close()
            stack.close()


if __name__ == "__main__":
    for f in run():
        print(f)
