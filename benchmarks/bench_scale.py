"""Scale: `qc stream`, `qc chains` and `qc analytics` at 3, 30 and 100 symbols, the simulator serving them.

For each N in ``SIZES``, a stack of its own: a real redis-server, `qc sim` serving N symbols (SPY, QQQ,
IWM, then other US tickers: the simulator derives stable parameters, con_ids and option chains for
any symbol) at real speed inside the session with its default ``DEPTH_RATE_HZ`` L2 updates per second
per symbol, and `qc stream`, `qc chains`, `qc analytics` for the N symbols (``QC_SYMBOLS``), each its
own process, as `qc up` runs them. Alpha Vantage is kept out of the way: the simulator's throttle is
raised (``--av-rpm``) and `qc chains` runs at the plan setting's maximum (1,200 rpm), so the first
chain cycle of 100 symbols (~6 requests each) is not 8 minutes of waiting for tokens at 75 rpm.
IB allows 3 simultaneous L2 subscriptions by default (more with more market-data lines); the
simulator is given N (``--depth-limit``), as an account streaming N books must have.

`qc stream` starts alone and `qc chains` and `qc analytics` once every book streams: the simulator
builds Alpha Vantage's chains in its own process, beside its IB gateway, and on a loaded machine the
gateway then reads the stream's subscriptions (~6 requests per symbol, paced at 45/s by ib_async) in
late bunches, counts more than 50 in a second and answers IB's pacing error 100: the stream reconnects
and subscribes again (a real gateway is not slowed by Alpha Vantage's servers).

Readiness, polled: every book streaming (a bid and an ask in Redis), `qc chains`' first cycle
finished, and every ``analytics:{sym}:gex`` a positioning snapshot (not the pending marker). Then a
fixed ``WINDOW_S`` window, sampled every ``SAMPLE_S``:

- L2 ingest: `qc stream`'s own latency histogram (``monitoring:ingest:latency:hist``: every book write
  counted by first-message arrival → Redis reply, buckets edged at the 5 ms target), read at the
  window's start and end: the figure is the p99 of every write in the window, and the target is judged
  exactly by the share of writes within 5 ms. Beside it, the percentiles `qc stream` republishes every
  second over its last 4,096 writes (``monitoring:ingest:latency``): at 100 symbols those cover a
  sixth of a second, so the worst of those snapshots is the worst sixth of a second of the window.
- analytics: ``monitoring:cycle:analytics``: each positioning run's ``positioning:last_us`` (positioning,
  0DTE skew and regime: the task every symbol gets every 30 s; after the first run the worker spreads it,
  a slice of symbols per 1-s cycle, so these are slices) and the mean of the 1-s cycles (VPIN and
  imbalance of every symbol) from the sum/count deltas. The cost of all symbols in one go is the run
  timed below, in this process.
- CPU of each process from ``/proc/PID/stat`` (user + system) over the window; Redis ``used_memory``.

The window holds no chain fetch (the next `qc chains` cycle is 300 s after the first), so the
worker's positioning runs reuse decoded chains. The run that follows a chain refresh decodes every
chain again: after the window, one such run is timed in this process against the same live stack
(a fresh ``AnalyticsCycle``, the worker's own task loop), and once more under cProfile to say where
its time goes. The positioning figure is the worst of all these runs.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._report import Figure
from benchmarks.bench_stream import _cpu_s
from qc.analytics.codec import GexSnapshot, gex_from_redis
from qc.analytics.cycle.inputs import ChainReader
from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import keys
from qc.core.codec import Absent
from qc.runtime.codec import CycleTimes, FeedHistogram, IngestLatency, LatencyHistogram, WorkerEntry
from tests.integration.signals_harness import Stack
from tests.integration.stream_harness import stop_process

SIZES = (3, 30, 100)
OTHERS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "AMD", "NFLX", "JPM", "BAC", "WFC", "GS",
          "MS", "C", "XOM", "CVX", "COP", "SLB", "UNH", "JNJ", "PFE", "MRK", "ABBV", "LLY", "TMO", "ABT", "KO",
          "PEP", "WMT", "COST", "HD", "LOW", "TGT", "NKE", "MCD", "SBUX", "DIS", "CMCSA", "T", "VZ", "INTC", "CSCO",
          "ORCL", "CRM", "ADBE", "QCOM", "TXN", "MU", "IBM", "BA", "CAT", "DE", "GE", "HON", "LMT", "RTX", "UPS",
          "FDX", "UBER", "PYPL", "SQ", "SHOP", "COIN", "PLTR", "SNOW", "MRNA", "GILD", "AMGN", "BMY", "CVS", "V",
          "MA", "AXP", "BLK", "SCHW", "F", "GM", "RIVN", "DAL", "UAL", "AAL", "CCL", "MARA", "XLF", "XLE", "XLK",
          "GLD", "SLV", "TLT", "HYG", "EEM", "EFA", "FXI", "KWEB", "SMH")
UNIVERSE = ("SPY", "QQQ", "IWM", *OTHERS)
START = "2026-03-13 10:30"  # New York, a Friday: weeklies expire, so every chain has its 0 DTE, 14 DTE, monthly
DEPTH_RATE_HZ = 300.0  # the simulator's default L2 operations per second per symbol
SIM_AV_RPM = 100_000  # the simulated Alpha Vantage never throttles
AV_RPM = 1200  # QC_ALPHA_VANTAGE_RPM's maximum: 100 symbols × ~6 requests fit in ~30 s
WINDOW_S = 75.0  # two or three positioning runs (every 30 s)
SAMPLE_S = 1.0  # `qc stream` republishes its latency percentiles every second
READY_TIMEOUT_S = 300.0
BOOK_FIELDS = 2  # a bid and an ask: the book is streaming (a thin book may not fill all 10 levels a side)
WORKERS = ("stream", "chains", "analytics")


@dataclass(frozen=True)
class Measured:
    """One N's figures."""

    n: int
    ready_s: float  # start of `qc sim` → every symbol's first positioning
    chains_cycle_cpu_s: float  # `qc chains`' CPU from its start to the end of its first cycle (all N chains)
    positioning_s: list[float]  # the worker's runs in the window (each: every symbol)
    cold_positioning_s: float  # one run decoding every chain again (in this process, same stack)
    cycle_mean_ms: float  # the worker's mean cycle over the window (every second; includes its positioning runs)
    tasks_mean_ms: dict[str, float]
    depth_p99_ms: float  # every write in the window (the histogram)
    depth_within_target: float  # share of the window's writes within 5 ms
    depth_p50_ms: float  # every write in the window
    depth_p99_worst_snapshot_ms: float  # the worst 4,096-write snapshot
    depth_p99_median_ms: float
    depth_max_ms: float
    handed_p99_ms: float  # worst snapshot, ib_async hand-over → Redis reply (qc's own part)
    writes_per_s: float
    cpu: dict[str, float]  # process -> CPU-s/s over the window
    redis_mib: float
    redis_keys: int
    load: float  # 1-min load average at the window's end
    profile: str  # where the cold run's time goes (cProfile, cumulative, qc's functions)

    @property
    def worst_positioning_s(self) -> float:
        return max([*self.positioning_s, self.cold_positioning_s])


def symbols(n: int) -> tuple[str, ...]:
    if n > len(UNIVERSE):
        raise ValueError(f"at most {len(UNIVERSE)} symbols")
    return UNIVERSE[:n]


# --- readiness ----------------------------------------------------------------------------------------


def _books_missing(stack: Stack, syms: Sequence[str]) -> str:
    """The symbols whose book is not in Redis yet ("" when every book streams)."""
    pipe = stack.store.client.pipeline(transaction=False)
    for s in syms:
        pipe.hlen(keys.book(s).name)
    shallow = [s for s, n in zip(syms, pipe.execute(), strict=True) if int(n) < BOOK_FIELDS]
    return f"books not streaming yet: {len(shallow)} ({', '.join(shallow[:5])}…)" if shallow else ""


def _not_ready(stack: Stack, syms: Sequence[str]) -> str:
    """What is still missing ("" when the stack is ready to be measured)."""
    if books := _books_missing(stack, syms):
        return books
    if _cycles(stack, "chains") < 1:
        return "`qc chains` has not finished its first cycle"
    pipe = stack.store.client.pipeline(transaction=False)
    for s in syms:
        pipe.hgetall(keys.gex(s).name)
    pending = [s for s, raw in zip(syms, pipe.execute(), strict=True)
               if not isinstance(gex_from_redis(raw, key=keys.gex(s).name), GexSnapshot)]
    return f"no positioning yet for {len(pending)} symbols ({', '.join(pending[:5])}…)" if pending else ""


def _cycles(stack: Stack, module: str) -> int:
    raw = stack.store.client.hget(keys.worker_registry().name, module)
    entry = WorkerEntry.from_redis(raw, key=f"{keys.worker_registry().name}[{module}]")
    return 0 if isinstance(entry, Absent) else entry.cycles


def _wait_ready(stack: Stack, missing_now: Callable[[], str], on_chains_done: Callable[[], None]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    chains_seen = "chains" not in stack.procs
    while (missing := missing_now()) and time.monotonic() < deadline:
        for name in stack.procs:
            code = stack.procs[name].poll()
            if code is not None:
                raise RuntimeError(f"qc {name} exited ({code}) before the stack was ready:\n{_tail(stack, name)}")
        if not chains_seen and _cycles(stack, "chains") >= 1:
            chains_seen = True
            on_chains_done()
        time.sleep(0.25)
    if missing:
        raise RuntimeError(f"not ready after {READY_TIMEOUT_S:g} s: {missing}\n"
                           + "\n".join(f"--- {w}:\n{_tail(stack, w)}" for w in stack.procs))
    if not chains_seen:
        on_chains_done()


def _tail(stack: Stack, name: str, lines: int = 15) -> str:
    return "\n".join(stack.log(name).splitlines()[-lines:])


# --- the window ---------------------------------------------------------------------------------------


def _times(stack: Stack) -> CycleTimes:
    key = keys.cycle_times("analytics")
    got = CycleTimes.from_redis(stack.store.hgetall(key), key=key.name)
    if isinstance(got, Absent):
        raise RuntimeError(f"no analytics cycle times: {got}")
    return got


def _latency(stack: Stack) -> IngestLatency | None:
    key = keys.ingest_latency()
    got = IngestLatency.from_redis(stack.store.hgetall(key), key=key.name)
    return None if isinstance(got, Absent) or "depth" not in got.feeds else got


def _pids(stack: Stack) -> dict[str, int]:
    assert stack.redis.process is not None
    return {"sim": stack.sim.proc.pid, **{w: stack.procs[w].pid for w in WORKERS},
            "redis": stack.redis.process.pid}


def _histogram(stack: Stack) -> FeedHistogram:
    key = keys.ingest_latency_histogram()
    got = LatencyHistogram.from_redis(stack.store.hgetall(key), key=key.name)
    if isinstance(got, Absent) or "depth" not in got.feeds:
        raise RuntimeError(f"`qc stream` published no depth latency histogram: {got}")
    return got.feeds["depth"]


@dataclass(frozen=True)
class Window:
    histogram: FeedHistogram  # the window's depth writes
    snapshots: list[IngestLatency]
    positioning_s: list[float]
    first: CycleTimes
    last: CycleTimes
    cpu: dict[str, float]
    writes_per_s: float


def _window(stack: Stack) -> Window:
    pids = _pids(stack)
    first = _times(stack)
    seen = first.tasks["positioning"].count if "positioning" in first.tasks else 0
    lat0 = _latency(stack)
    hist0 = _histogram(stack)
    cpu0, t0 = {name: _cpu_s(pid) for name, pid in pids.items()}, time.monotonic()
    snapshots: list[IngestLatency] = []
    runs: list[float] = []
    last = first
    tick = t0
    while tick + SAMPLE_S <= t0 + WINDOW_S:
        tick += SAMPLE_S
        time.sleep(max(0.0, tick - time.monotonic()))  # the sampling cadence, not a readiness wait
        if (lat := _latency(stack)) is not None:
            snapshots.append(lat)
        last = _times(stack)
        pos = last.tasks.get("positioning")
        if pos is not None and pos.count > seen:
            runs.append(pos.last_us / 1e6)
            seen = pos.count
    t1 = time.monotonic()
    cpu = {name: (_cpu_s(pid) - cpu0[name]) / (t1 - t0) for name, pid in pids.items()}
    histogram = _histogram(stack).minus(hist0)
    if not snapshots or lat0 is None:
        raise RuntimeError("`qc stream` published no depth latency during the window")
    return Window(histogram, snapshots, runs, first, last, cpu, (snapshots[-1].writes - lat0.writes) / (t1 - t0))


def _mean_ms(first: CycleTimes, last: CycleTimes, task: str) -> float:
    a, b = first.tasks.get(task), last.tasks[task]
    count = b.count - (a.count if a else 0)
    return (b.sum_us - (a.sum_us if a else 0)) / count / 1e3 if count else float("nan")


# --- positioning after a chain refresh ------------------------------------------------------------------


def _cold_positioning(stack: Stack, syms: tuple[str, ...]) -> tuple[float, str]:
    """One positioning run that decodes every chain (a fresh reader), timed, then again under cProfile."""
    now = stack.sim_now()
    cyc = AnalyticsCycle(stack.store, syms)
    cyc.warm_start(now)

    def run() -> None:
        cyc.read_chain = ChainReader(stack.store)  # nothing decoded yet: as after `qc chains` rewrote every chain
        for sym in syms:
            cyc._guarded("positioning", sym, cyc.positioning, now)
        if cyc.failed:
            raise RuntimeError(f"positioning failed: {cyc.failed[:3]}")

    t0 = time.perf_counter()
    run()
    took = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.runcall(run)
    return took, _where(pstats.Stats(prof))


Func = tuple[str, int, str]


def _where(stats: pstats.Stats, top: int = 6) -> str:
    """What ``AnalyticsCycle.positioning`` spends its time in: each callee's share (cumulative), largest first,
    and the same one level down for the largest."""
    raw: dict[Func, tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    root = next((f for f in raw if f[2] == "positioning" and f[0].endswith(os.path.join("cycle", "loop.py"))), None)
    if root is None or not raw[root][3]:
        return "AnalyticsCycle.positioning not in the profile"
    total = raw[root][3]

    def callees(parent: Func) -> list[tuple[Func, float]]:
        found = [(f, float(v[4][parent][3])) for f, v in raw.items() if parent in v[4]]
        return sorted(found, key=lambda fc: -fc[1])

    def label(f: Func) -> str:
        path, line, name = f
        return name if not line else f"{Path(path).parent.name}/{Path(path).name}:{name}"

    first = callees(root)
    parts = [f"{label(f)} {100 * t / total:.0f} %" for f, t in first[:top]]
    if first:
        inner = callees(first[0][0])[:3]
        parts.append(f"inside {label(first[0][0])}: "
                     + ", ".join(f"{label(f)} {100 * t / total:.0f} %" for f, t in inner))
    return "; ".join(parts)


# --- one N ----------------------------------------------------------------------------------------------


def measure(n: int) -> Measured:
    syms = symbols(n)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        stack = Stack(Path(tmp), ["--start", START, "--seed", "42", "--depth-rate", f"{DEPTH_RATE_HZ:g}",
                                  "--av-rpm", str(SIM_AV_RPM), "--depth-limit", str(n)], symbols=",".join(syms),
                      extra_env={"QC_ALPHA_VANTAGE_RPM": str(AV_RPM)})
        try:
            stack.start("stream")  # alone first: see the module docstring
            _wait_ready(stack, lambda: _books_missing(stack, syms), lambda: None)
            stack.start("chains")
            stack.start("analytics")
            chains_cpu: list[float] = []
            _wait_ready(stack, lambda: _not_ready(stack, syms),
                        lambda: chains_cpu.append(_cpu_s(stack.procs["chains"].pid)))
            ready_s = time.monotonic() - started
            w = _window(stack)
            info = stack.store.client.info("memory")
            redis_keys = int(stack.store.client.dbsize())
            load = os.getloadavg()[0]
            cold, profile = _cold_positioning(stack, syms)
        finally:
            _close(stack)
    p99s = [s.feeds["depth"].p99_ms for s in w.snapshots]
    return Measured(
        n=n, ready_s=ready_s, chains_cycle_cpu_s=chains_cpu[0], positioning_s=w.positioning_s,
        cold_positioning_s=cold, cycle_mean_ms=_mean_ms(w.first, w.last, "cycle"),
        tasks_mean_ms={t: _mean_ms(w.first, w.last, t) for t in ("vpin", "imbalance", "positioning", "flow")
                       if t in w.last.tasks},
        depth_p99_ms=w.histogram.quantile_ms(0.99), depth_within_target=w.histogram.share_within(5.0),
        depth_p50_ms=w.histogram.quantile_ms(0.5),
        depth_p99_worst_snapshot_ms=max(p99s), depth_p99_median_ms=statistics.median(p99s),
        depth_max_ms=max(s.feeds["depth"].max_ms for s in w.snapshots),
        handed_p99_ms=max((s.feeds["depth_handed"].p99_ms for s in w.snapshots if "depth_handed" in s.feeds),
                          default=float("nan")),
        writes_per_s=w.writes_per_s, cpu=w.cpu, redis_mib=float(info["used_memory"]) / 2**20,
        redis_keys=redis_keys, load=load, profile=profile)


def _close(stack: Stack) -> None:
    """Stop every process (SIGTERM, then SIGKILL after 20 s) and the Redis, whatever one of them does."""
    for proc in [*(stack.procs.pop(name) for name in list(stack.procs)), stack.sim.proc]:
        try:
            stop_process(proc)
        except subprocess.TimeoutExpired:  # stop_process killed it; the figures are still good
            print(f"bench_scale: pid {proc.pid} ({str(proc.args)[:60]}) ignored SIGTERM for 20 s; killed",
                  file=sys.stderr, flush=True)
    stack.store.close()
    stack.redis.kill()


# --- the report ---------------------------------------------------------------------------------------


def _figures(m: Measured, base: Measured) -> list[Figure]:
    """One N's rows; the two targets on the largest N, with the smallest N's figures as baselines."""
    largest = m.n == max(SIZES)
    runs = ", ".join(f"{t:.2f}" for t in m.positioning_s)
    cpu = ", ".join(f"{name} {v:.2f}" for name, v in m.cpu.items())
    tasks = ", ".join(f"{t} {v:.1f}" for t, v in m.tasks_mean_ms.items())
    pos_base = (f"{base.n} symbols: {base.worst_positioning_s:.3f} s; " if largest else "") + (
        f"worker's runs in the window {runs} s; after a chain refresh (every chain decoded) "
        f"{m.cold_positioning_s:.2f} s")
    ingest_base = (f"{base.n} symbols: p99 {base.depth_p99_ms:.2f} ms; " if largest else "") + (
        f"{m.depth_within_target:.2%} of the window's writes within 5 ms; p50 {m.depth_p50_ms:.2f} ms; "
        f"snapshots of the last 4,096 writes, p99 median {m.depth_p99_median_ms:.2f} / worst "
        f"{m.depth_p99_worst_snapshot_ms:.2f} ms; max {m.depth_max_ms:.1f} ms; "
        f"qc's own part (hand-over → reply) p99 {m.handed_p99_ms:.2f} ms; {m.writes_per_s:,.0f} writes/s")
    return [
        Figure(f"{m.n} symbols: positioning of all symbols, one run", m.worst_positioning_s, "s",
               "< 30 s" if largest else "", pos_base, m.worst_positioning_s < 30.0 if largest else None),
        Figure(f"{m.n} symbols: L2 ingest p99 (every write of the window)", m.depth_p99_ms, "ms",
               "< 5 ms" if largest else "", ingest_base, m.depth_within_target >= 0.99 if largest else None),
        Figure(f"{m.n} symbols: analytics cycle (every 1 s), mean", m.cycle_mean_ms, "ms", "",
               f"task means, ms: {tasks}"),
        Figure(f"{m.n} symbols: CPU of the stack", sum(m.cpu.values()), "CPU-s/s", "",
               f"{cpu}; load average {m.load:.2f} (2 cores)"),
        Figure(f"{m.n} symbols: `qc chains` first cycle, CPU", m.chains_cycle_cpu_s, "CPU-s", "",
               f"start → first positioning of every symbol {m.ready_s:.0f} s"),
        Figure(f"{m.n} symbols: Redis used memory", m.redis_mib, "MiB", "", f"{m.redis_keys:,} keys"),
    ]


def _growth(ms: list[Measured]) -> list[Figure]:
    """Per measure: the largest N's cost over the smallest's (×), and the cost per symbol at each N."""
    lo, hi = ms[0], ms[-1]
    measures: list[tuple[str, Callable[[Measured], float], str]] = [
        ("positioning run", lambda m: m.worst_positioning_s * 1e3, "ms"),
        ("positioning run after a chain refresh", lambda m: m.cold_positioning_s * 1e3, "ms"),
        ("analytics 1-s cycle, mean", lambda m: m.cycle_mean_ms, "ms"),
        ("`qc stream` CPU", lambda m: m.cpu["stream"], "CPU-s/s"),
        ("`qc sim` CPU", lambda m: m.cpu["sim"], "CPU-s/s"),
        ("`qc analytics` CPU", lambda m: m.cpu["analytics"], "CPU-s/s"),
        ("redis-server CPU", lambda m: m.cpu["redis"], "CPU-s/s"),
        ("`qc chains` first cycle CPU", lambda m: m.chains_cycle_cpu_s, "CPU-s"),
        ("Redis used memory", lambda m: m.redis_mib, "MiB"),
    ]
    out = []
    for name, get, unit in measures:
        per = "; ".join(f"{get(m) / m.n:.4g} at {m.n}" for m in ms)
        out.append(Figure(f"growth {lo.n} → {hi.n} symbols ({hi.n / lo.n:.1f}×): {name}", get(hi) / get(lo), "×",
                          "", f"per symbol, {unit}: {per}"))
    out.append(Figure(f"growth {lo.n} → {hi.n} symbols: L2 ingest p99", hi.depth_p99_ms / lo.depth_p99_ms, "×", "",
                      "; ".join(f"{m.depth_p99_ms:.2f} ms at {m.n}" for m in ms)))
    return out


def _unmeasured(n: int, why: str) -> list[Figure]:
    """An N whose stack never got ready: its target rows say so (missed), with the first line of why."""
    largest = n == max(SIZES)
    reason = why.splitlines()[0][:300]
    return [Figure(f"{n} symbols: positioning of all symbols, one run", float("nan"), "s",
                   "< 30 s" if largest else "", f"not measured: {reason}", False if largest else None),
            Figure(f"{n} symbols: L2 ingest p99", float("nan"), "ms", "< 5 ms" if largest else "",
                   f"not measured: {reason}", False if largest else None)]


def run() -> list[Figure]:
    figures: list[Figure] = []
    ms: list[Measured] = []
    for n in SIZES:
        try:
            m = measure(n)
        except RuntimeError as exc:  # a stack that never got ready: the other sizes are still reported
            print(f"bench_scale: {n} symbols not measured: {exc}", file=sys.stderr, flush=True)
            figures += _unmeasured(n, str(exc))
            continue
        ms.append(m)
        figures += _figures(m, ms[0])
    if len(ms) > 1:
        figures += _growth(ms)
    if ms:
        figures.append(Figure(f"{ms[-1].n} symbols: where a positioning run after a chain refresh spends its time",
                              ms[-1].cold_positioning_s, "s", "", f"cProfile, cumulative: {ms[-1].profile}"))
    return figures


if __name__ == "__main__":
    for fig in run():
        print(fig)
