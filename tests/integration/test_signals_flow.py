"""`qc signals` against `qc sim` with the whole ingestion and analytics stack as processes.

One stack for the module, its tests in order: a calm market yields no flow signal; an informed-flow
burst yields a 0DTE signal in its direction within two cycles, handed to execution and distribution
through streams whose consumer groups lose nothing; the same opportunity seen again and again, by a
restarted worker and a second one, stays one signal; stale analytics make the factors abstain and
nothing is emitted, with the reason in `qc signals explain`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis

from qc.core import clock, keys
from qc.core.config import Settings
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import connect
from qc.signals.codec import LastEvaluation, Signal
from qc.signals.model import BOOK_IMBALANCE, GAMMA_MODE, ORDER_FLOW, VPIN_LEVEL
from qc.sim.market.params import SimParams
from qc.sim.market.underlying import burst_schedule

from .conftest import RedisServer, eventually
from .signals_harness import Stack, factor, factor_reason

DAY = date(2026, 12, 3)
SEED = 42  # no seeded SPY burst on DAY (asserted below): the calm is the market's, not luck
CYCLE_S = 30.0  # the worker's interval in simulated seconds (3 s real at 10x)
SIM = ("--start", "2026-12-03 10:30", "--speed", "10", "--seed", str(SEED), "--depth-rate", "20")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("signals-flow"), SIM)
    try:
        s.start("stream", "SPY")
        s.start("chains", "SPY")
        s.start("analytics", "SPY")
        s.start("signals", "SPY", "--interval-s", f"{CYCLE_S:g}")

        def scored() -> bool:
            e = s.evaluation("0dte")
            return isinstance(e, LastEvaluation) and all(
                factor(e, n) is not None for n in (GAMMA_MODE, BOOK_IMBALANCE, VPIN_LEVEL, ORDER_FLOW))

        eventually(scored, timeout_s=90, every_s=0.5)
        yield s
    finally:
        s.close()


def cycles(s: Stack) -> int:
    return int(s.store.client.hget(keys.signals_metrics().name, "cycles") or 0)


def flow_signals(s: Stack) -> list[Signal]:
    return [x for x in s.signals() if x.strategy in ("0dte", "1dte")]


def test_a_calm_market_yields_no_flow_signal(stack: Stack) -> None:
    assert burst_schedule(SEED, "SPY", SimParams(), clock.session(DAY)) == []  # type: ignore[arg-type]
    start = cycles(stack)
    eventually(lambda: cycles(stack) >= start + 6, timeout_s=60, every_s=0.5)  # six evaluations, 3 sim-minutes
    e = stack.evaluation("0dte")
    assert isinstance(e, LastEvaluation) and all(g.open for g in e.gates), e  # it was scoring, not gated
    assert flow_signals(stack) == []


def test_an_informed_flow_burst_yields_a_0dte_signal_in_its_direction_within_two_cycles(stack: Stack) -> None:
    injected = stack.sim_now()
    stack.sim.ctl("informed-flow", "SPY", "400", "--direction", "sell")  # still on for the replay below
    eventually(lambda: any(x.strategy == "0dte" for x in stack.signals()), timeout_s=30, every_s=0.2)
    signal = next(x for x in stack.signals() if x.strategy == "0dte")
    assert signal.direction == -1 and signal.side == "BUY" and signal.contract.right == "P"
    assert signal.contract.expiry == DAY and signal.contract.sec_type == "OPT" and signal.contract.multiplier == 100
    assert signal.created_at - injected <= timedelta(seconds=2 * CYCLE_S + 5), (injected, signal.created_at)
    flow = next(c for c in signal.contributions if c.name == ORDER_FLOW)
    assert flow.value is not None and flow.value <= -0.3 and flow.contribution < 0
    assert signal.take_profit > signal.limit > signal.stop > 0 and signal.score <= -signal.threshold
    # handed on: one entry on each stream, each with its consumer group from the first item
    handoffs = ((keys.signals_execution("SPY"), "execution"), (keys.signals_distribution("SPY"), "distribution"))
    for stream, group in handoffs:
        entries = stack.store.client.xrange(stream.name)
        assert [e[1]["id"] for e in entries].count(signal.id) == 1
        groups = {g["name"]: g for g in stack.store.client.xinfo_groups(stream.name)}
        assert groups[group]["last-delivered-id"] == "0-0"  # nobody consumed yet: all of it is still due


def test_a_consumer_dying_mid_item_loses_nothing(stack: Stack) -> None:
    stream = keys.signals_execution("SPY").name
    c = stack.store.client
    got = c.xreadgroup("execution", "executor-a", {stream: ">"}, count=1)
    first_id = got[0][1][0][0]
    # executor-a dies here without XACK; its entry stays pending and another consumer claims it
    pending = c.xpending(stream, "execution")
    assert pending["pending"] == 1
    claimed = c.xautoclaim(stream, "execution", "executor-b", min_idle_time=0, start_id="0-0")[1]
    assert [entry[0] for entry in claimed] == [first_id]
    c.xack(stream, "execution", first_id)
    assert c.xpending(stream, "execution")["pending"] == 0


def test_the_same_opportunity_seen_ten_times_across_a_restart_and_two_workers_is_one_signal(
        stack: Stack, tmp_path: Path) -> None:
    """The burst, frozen: every input copied to a fresh Redis mid-burst, the clock held at that instant."""
    signal = next(x for x in stack.signals() if x.strategy == "0dte")
    replay = RedisServer(tmp_path / "redis")
    replay.start()
    stop = threading.Event()
    try:
        frozen_at = stack.sim_now()
        copy_inputs(stack, replay)
        ib_port = 1  # nothing listens: the anchor only has to name it for the worker to adopt the clock
        anchor = SimClockAnchor(clock.wall_epoch(), frozen_at.timestamp(), 0.1, ib_port, 2)  # ~frozen
        beat = threading.Thread(target=keep_anchor, args=(replay, anchor, stop), daemon=True)
        beat.start()
        env = {"QC_REDIS_URL": replay.url, "QC_IB_PORT": str(ib_port), "QC_SYMBOLS": "SPY",
               "QC_SIGNALS_0DTE": "cooldown_s=0"}  # only the fingerprint stands between repeats
        args = ("SPY", "--interval-s", "0.1")  # a tenth of a simulated second: a cycle per real second
        store = connect(Settings(redis_url=replay.url))
        metrics = keys.signals_metrics().name

        def counted(name: str) -> int:
            return int(store.client.hget(metrics, name) or 0)

        first = stack.start("signals#a", *args, env=env)
        eventually(lambda: counted("cycles") >= 4, timeout_s=30, every_s=0.2)
        e = LastEvaluation.from_redis(store.client.hget(keys.signals_last("SPY").name, "0dte"), key="last")
        assert isinstance(e, LastEvaluation) and e.direction == -1, e  # the burst's opportunity, seen again
        stack.kill("signals#a")  # a restart in the middle, the hard way
        assert first.returncode == -9
        stack.start("signals#a2", *args, env=env)
        stack.start("signals#b", *args, env=env)
        eventually(lambda: counted("cycles") >= 14, timeout_s=60, every_s=0.2)
        stack.stop("signals#a2")
        stack.stop("signals#b")
        stop.set()
        pending = store.client.lrange(keys.signals_pending("SPY").name, 0, -1)
        ours = [s for s in (Signal.from_redis(r, key="pending") for r in pending)
                if isinstance(s, Signal) and s.strategy == "0dte"]
        assert len(ours) == 1, [s.id for s in ours]
        assert ours[0].direction == signal.direction and ours[0].contract.expiry == signal.contract.expiry
        assert len(store.client.xrange(keys.signals_execution("SPY").name)) == 1
        assert counted("emitted") == 1 and counted("duplicate") >= 9
        e = LastEvaluation.from_redis(store.client.hget(keys.signals_last("SPY").name, "0dte"), key="last")
        assert isinstance(e, LastEvaluation) and e.result == f"duplicate of {ours[0].id}", e
        store.close()
    finally:
        stop.set()  # before the server goes: the anchor thread must not write to a dead Redis
        replay.kill()


INPUTS = ("gex", "vpin", "book_imbalance", "regime", "flow_clusters", "quote", "auction_imbalance", "news_sentiment",
          "trades", "bars_1min", "option_chain")


def copy_inputs(stack: Stack, target: RedisServer) -> None:
    """Every key `qc signals` reads for SPY, DUMPed from the live stack and RESTOREd without a TTL."""
    dst = redis.Redis.from_url(target.url)
    src = redis.Redis.from_url(stack.redis.url)
    for name in INPUTS:
        key = getattr(keys, name)("SPY").name
        dumped = src.dump(key)
        if dumped is not None:
            dst.restore(key, 0, dumped, replace=True)
    dst.close()
    src.close()


def keep_anchor(target: RedisServer, anchor: SimClockAnchor, stop: threading.Event) -> None:
    """Re-publish the frozen anchor (it lapses after 10 s, like a live simulator's)."""
    store = connect(Settings(redis_url=target.url))
    while not stop.is_set():
        store.hset(keys.sim_clock(), anchor.to_redis())
        stop.wait(1.0)
    store.close()


def test_stale_analytics_abstain_and_nothing_is_emitted_with_the_reason_shown(stack: Stack) -> None:
    stack.stop("analytics")
    before = {x.id for x in stack.signals()}

    def missing_input() -> bool:
        e = stack.evaluation("0dte")
        return isinstance(e, LastEvaluation) and e.reason.startswith("missing input")

    eventually(missing_input, timeout_s=40, every_s=0.5)  # analytics older than 120 simulated seconds
    stack.sim.ctl("informed-flow", "SPY", "240", "--direction", "buy")
    start = cycles(stack)
    eventually(lambda: cycles(stack) >= start + 4, timeout_s=40, every_s=0.5)
    e = stack.evaluation("0dte")
    assert isinstance(e, LastEvaluation), e
    assert e.reason.startswith("missing input") and "book_imbalance abstains (stale" in e.reason, e.reason
    assert "stale" in factor_reason(e, BOOK_IMBALANCE) and factor(e, BOOK_IMBALANCE) is None
    assert {x.id for x in stack.signals() if x.strategy in ("0dte", "1dte")} <= before  # nothing new
    day = keys.signals_blocked(DAY.isoformat()).name
    assert int(stack.store.client.hget(day, "SPY:0dte:missing_input") or 0) >= 4
    shown = subprocess.run([sys.executable, "-m", "qc", "signals", "explain", "SPY"], capture_output=True, text=True,
                           env=stack.env, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "missing input: book_imbalance abstains (stale" in shown.stdout
