"""`qc gex` against a real redis-server: a real chain from the simulator's AV server, a real positioning hash.

The ``analytics:{sym}:gex`` hash is written here from ``positioning()`` on that chain through the
worker's codecs (qc.analytics.codec), so these tests do not wait for `qc analytics`. Time is the simulator's: a fresh
clock anchor in Redis makes `qc gex` measure ages in simulated time, as it does under `qc sim`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from qc.analytics.chain_input import chain_for_positioning
from qc.analytics.codec import GexSnapshot
from qc.analytics.cycle.loop import AnalyticsCycle
from qc.analytics.cycle.positioning_task import profile_value, strikes_value
from qc.analytics.positioning import Positioning, positioning
from qc.analytics.regime import gamma_regime
from qc.cli import cli
from qc.core import clock, keys
from qc.core.clock import FakeClock
from qc.core.config import Settings
from qc.ingest.codec import OptionChain, Quote
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import Store, connect
from qc.runtime.worker import Worker

from .av_chains_harness import NOW, ScriptedAV, cycle_for, settings_for, sim_market
from .conftest import RedisServer, eventually
from .stream_harness import start_sim, stop_process

AGE_S = 42.0


@pytest.fixture(scope="module")
def chain_json(redis_server: RedisServer) -> Iterator[str]:
    """One real `qc chains` cycle against the simulator's AV server; the chain JSON it wrote."""
    market = sim_market()
    av = ScriptedAV(market, rpm=1000)
    av.start()
    settings = Settings(redis_url=redis_server.url)
    store = connect(settings)
    try:
        store.client.flushdb()
        q = market.quote("SPY")
        store.hset(keys.quote("SPY"), Quote(NOW.timestamp(), q.bid, q.ask, last=q.last).to_redis())
        cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
        assert Worker("chains", cycle, store, FakeClock(NOW), 300.0).run(once=True) == 0
        raw = store.get(keys.option_chain("SPY"))
        assert raw is not None
        yield raw
    finally:
        store.close()
        av.stop()


def sim_now(store: Store, at: datetime) -> None:
    """Publish the simulator's clock anchor: `qc gex` then reads ``at`` (running at 1x) as now."""
    anchor = SimClockAnchor(clock.wall_epoch(), at.timestamp(), 1.0, ib_port=4002, av_port=8765)  # the defaults
    store.hset(keys.sim_clock(), anchor.to_redis())


def stored_chain(chain_json: str) -> OptionChain:
    chain = OptionChain.from_redis(chain_json, key="options:SPY:chain")
    assert isinstance(chain, OptionChain), chain
    return chain


def write_positioning(store: Store, pos: Positioning, chain: OptionChain, as_of: datetime,
                      stale_reason: str = "") -> None:
    """The worker's values from one positioning(): the gex hash, by-strike and profile documents."""
    d = pos.to_dict()
    zg, w = d["zero_gamma"]["level"], d["walls"]
    numbers = {
        "total": d["gex_usd_per_1pct"], "dex_usd": d["dex_usd"], "vanna_usd_per_volpt": d["vanna_usd_per_volpt"],
        "charm_usd_per_day": d["charm_usd_per_day"], "zero_gamma": zg,
        "zero_gamma_distance_pct": None if zg is None else 100 * (zg - pos.spot) / pos.spot,
        "call_wall": w["call_gamma_strike"], "put_wall": w["put_gamma_strike"], "call_oi_wall": w["call_oi_strike"],
        "put_oi_wall": w["put_oi_strike"], "share_0_1dte_abs_gex": d["share_0_1dte_abs_gex"], "skew_25d": 0.0312,
        "skew_25d_normalised": 0.21, "skew_moneyness": 0.011}
    labels = {"zero_gamma_reason": d["zero_gamma"]["reason"] or "", "skew_reason": "", "regime": "mean_reversion",
              "gamma_regime": gamma_regime(pos.spot, zg, d["gex_usd_per_1pct"]).value,
              "convention": d["convention"], "gamma_source": d["gamma_source"]}
    snap = GexSnapshot(numbers, labels, pos.spot, "chain", (as_of - chain.as_of).total_seconds(),
                       "no usable quote (test)", tuple(date.fromisoformat(e) for e in d["expiries_used"]),
                       d["contracts_used"], as_of, chain.as_of, (as_of - chain.as_of).total_seconds(), stale_reason)
    store.hset(keys.gex("SPY"), snap.to_redis())
    store.set(keys.gex_by_strike("SPY"), strikes_value(pos).to_redis())
    store.set(keys.gex_profile("SPY"), profile_value(pos).to_redis())


@pytest.fixture
def full(store: Store, chain_json: str) -> Positioning:
    """Chain and a fresh worker snapshot over all its expiries, computed AGE_S before now."""
    store.set(keys.option_chain("SPY"), chain_json)
    chain = stored_chain(chain_json)
    pos = positioning(chain_for_positioning(chain, chain.spot, chain.as_of))
    write_positioning(store, pos, chain, NOW)
    sim_now(store, NOW + timedelta(seconds=AGE_S))
    return pos


def gex(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--redis-url", url, "gex", *args])
    return result.exit_code, result.stdout, result.stderr


def test_table_shows_figures_and_age_against_the_simulated_clock(redis_server: RedisServer, full: Positioning) -> None:
    code, out, err = gex(redis_server.url, "SPY")
    assert code == 0, err
    assert "STALE" not in out and "recomputed" not in out
    assert f"spot {full.spot:.2f}" in out and "age 4" in out  # 42-43 s, simulated
    for measure in ("net GEX", "DEX", "vanna", "charm", "zero gamma", "call wall", "put wall", "gamma regime"):
        assert measure in out
    assert "$ per 1 % move" in out and "mean_reversion" in out
    assert "chain, 4" in out and "no usable quote (test)" in out  # the spot's source, its age now and why
    assert f"{full.walls.call_gamma_strike:.2f}" in out


def test_json_units_in_names_as_of_and_age(redis_server: RedisServer, full: Positioning) -> None:
    code, out, _ = gex(redis_server.url, "SPY", "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["as_of"] == NOW.isoformat() and AGE_S <= doc["age_s"] < AGE_S + 5
    assert doc["stale"] is False and doc["stale_reason"] is None and doc["recomputed"] is False
    assert doc["net_gex_usd_per_1pct"] == pytest.approx(full.gex_usd_per_1pct)
    assert doc["dex_usd"] == pytest.approx(full.dex_usd)
    assert doc["vanna_usd_per_volpt"] == pytest.approx(full.vanna_usd_per_volpt)
    assert doc["charm_usd_per_day"] == pytest.approx(full.charm_usd_per_day)
    assert doc["zero_gamma_usd"] == pytest.approx(full.zero_gamma.level)
    assert doc["call_wall_usd"] == full.walls.call_gamma_strike and doc["put_wall_usd"] == full.walls.put_gamma_strike
    assert doc["skew_25d_volpts"] == pytest.approx(3.12) and doc["contracts_used"] == full.contracts_used
    assert len(doc["expiries"]) == 4 and "by_strike" not in doc


def test_profile_marks_spot_and_flip_within_100_columns(redis_server: RedisServer, full: Positioning) -> None:
    code, out, _ = gex(redis_server.url, "SPY", "--profile")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "GEX by strike" in out and "Net dealer GEX if spot moved" in out
    assert sum("<- spot" in line or ", spot" in line for line in lines) == 2  # one per chart
    assert full.zero_gamma.level is not None and f"flip {full.zero_gamma.level:.2f}" in out
    assert "█" in out
    doc = json.loads(gex(redis_server.url, "SPY", "--profile", "--json")[1])
    assert len(doc["profile"]["spot_level_usd"]) == len(full.profile.levels)


def test_0dte_recomputes_from_the_chain_and_differs_from_all(redis_server: RedisServer, full: Positioning) -> None:
    everything = json.loads(gex(redis_server.url, "SPY", "--json")[1])
    code, out, _ = gex(redis_server.url, "SPY", "--expiries", "0dte", "--json")
    zero = json.loads(out)
    assert code == 0 and zero["recomputed"] is True and zero["expiries_selection"] == "0dte"
    assert zero["expiries"] == [NOW.date().isoformat()] and zero["contracts_used"] < everything["contracts_used"]
    assert zero["net_gex_usd_per_1pct"] != pytest.approx(everything["net_gex_usd_per_1pct"])
    # the worker's computation, now: valued at the current time, at the chain's spot (no quote here)
    assert zero["as_of"] == zero["now"] and zero["chain_as_of"] == everything["chain_as_of"]
    assert zero["spot_source"] == "chain" and "no usable quote" in zero["spot_reason"]
    table = gex(redis_server.url, "SPY", "--expiries", "0dte")[1]
    assert table.startswith(f"recomputed from the chain for --expiries 0dte ({NOW.date().isoformat()})")
    same = json.loads(gex(redis_server.url, "SPY", "--expiries", "all", "--json")[1])
    assert same["recomputed"] is False and same["net_gex_usd_per_1pct"] == everything["net_gex_usd_per_1pct"]


def test_unknown_symbol_is_one_line_exit_1(redis_server: RedisServer, full: Positioning) -> None:
    code, out, err = gex(redis_server.url, "XYZ")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "XYZ is not in QC_SYMBOLS (SPY,QQQ,IWM)" in err


def test_missing_hash_with_chain_present_says_run_the_worker(redis_server: RedisServer, store: Store,
                                                             full: Positioning) -> None:
    store.delete(keys.gex("SPY"))
    code, out, err = gex(redis_server.url, "SPY")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no positioning for SPY" in err and "is `qc analytics` running?" in err and "qc status" in err
    assert "option chain is in Redis, 42 s old" in err or "43 s old" in err


def test_stale_hash_prints_stale_line_above_table_and_in_json(redis_server: RedisServer, store: Store,
                                                              chain_json: str, full: Positioning) -> None:
    write_positioning(store, full, stored_chain(chain_json), NOW, stale_reason="option chain 1260 s old")
    code, out, _ = gex(redis_server.url, "SPY")
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("STALE (option chain 1260 s old") and "age 4" in first
    j = json.loads(gex(redis_server.url, "SPY", "--json")[1])
    assert j["stale"] is True and j["stale_reason"] == "option chain 1260 s old"


def test_old_snapshot_is_stale_by_its_age(redis_server: RedisServer, store: Store, full: Positioning) -> None:
    sim_now(store, NOW + timedelta(seconds=250))
    j = json.loads(gex(redis_server.url, "SPY", "--json")[1])
    assert j["stale"] is True and "positioning is 25" in j["stale_reason"]


def test_past_ttl_says_no_data_or_stale_chain(redis_server: RedisServer, store: Store, full: Positioning) -> None:
    for key in (keys.gex("SPY"), keys.gex_by_strike("SPY"), keys.gex_profile("SPY"), keys.option_chain("SPY")):
        store.delete(key)
    code, out, err = gex(redis_server.url, "SPY")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no data for SPY" in err and "qc chains SPY" in err
    since = NOW - timedelta(seconds=1200)
    store.hset(keys.data_stale(), {"SPY:options_chain": since.timestamp()})
    err = gex(redis_server.url, "SPY", "--json")[2]
    assert err.count("\n") == 1 and f"stale: no chain for SPY since {since.isoformat(timespec='seconds')}" in err
    assert "0dte: no option chain" in gex(redis_server.url, "SPY", "--expiries", "0dte")[2]


def test_before_the_first_chain_says_what_to_start_in_one_line(redis_server: RedisServer, store: Store) -> None:
    """Right after the stack starts: `qc analytics` has run, `qc chains` has not yet written QQQ's chain."""
    AnalyticsCycle(store, ("QQQ",), tasks=("positioning",))(NOW)
    assert store.hget(keys.gex("QQQ"), "stale") == "1" and store.hget(keys.gex("QQQ"), "total") == ""
    for args in (("QQQ",), ("QQQ", "--json"), ("QQQ", "--profile")):
        code, out, err = gex(redis_server.url, *args)
        assert code == 1 and out == "" and err.count("\n") == 1, (args, err)
        assert "no dealer positioning for QQQ yet: no option chain in Redis (options:QQQ:chain)" in err
        assert "start `qc chains` and `qc analytics` (or `qc up`)" in err and "internal error" not in err


@pytest.mark.parametrize(("fields", "why"), [
    ({"total": "1.5e9", "spot": "500.0"}, "old version"),  # written before the schema had a version
    ({"v": "2", "kind": "positioning", "total": "1.5e9"}, "old version"),  # a newer writer's schema
    ({"v": "1", "kind": "positioning", "total": "1.5e9"}, "partial value"),
    ({"v": "1", "kind": "pending", "total": "", "stale": "1", "stale_reason": "", "as_of": NOW.isoformat()},
     "malformed"),
])
def test_unreadable_hash_is_one_line_never_internal_error(redis_server: RedisServer, store: Store,
                                                          fields: dict[str, str], why: str) -> None:
    store.hset(keys.gex("SPY"), fields)
    code, out, err = gex(redis_server.url, "SPY")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "cannot read dealer positioning for SPY: analytics:SPY:gex" in err and why in err
    assert "restart `qc analytics`" in err and "internal error" not in err


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_qc_gex_right_after_the_stack_starts_without_a_chain(redis_server: RedisServer, store: Store,
                                                              tmp_path: Path) -> None:
    """`qc sim`, `qc stream` and `qc analytics` as processes, no `qc chains` yet: `qc gex QQQ` is one line, exit 1."""
    sim = start_sim(redis_server.url, tmp_path)
    base = {**os.environ, "QC_REDIS_URL": redis_server.url, "QC_IB_PORT": str(sim.port("ib"))}
    procs = [
        subprocess.Popen([sys.executable, "-m", "qc", "stream", "QQQ"], cwd=tmp_path, text=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**base, "QC_IB_CLIENT_ID": "44"}),
        subprocess.Popen([sys.executable, "-m", "qc", "analytics", "QQQ", "--task", "positioning"], cwd=tmp_path,
                         text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=base)]
    try:
        eventually(lambda: store.hget(keys.gex("QQQ"), "kind") == "pending", timeout_s=90)
        got = subprocess.run([sys.executable, "-m", "qc", "gex", "QQQ"], cwd=tmp_path, env=base, text=True,
                             capture_output=True, timeout=60)
        assert got.returncode == 1 and got.stdout == "" and got.stderr.count("\n") == 1, got.stderr
        assert "no dealer positioning for QQQ yet" in got.stderr and "qc chains" in got.stderr
        assert "internal error" not in got.stderr and "Traceback" not in got.stderr
    finally:
        for p in procs:
            stop_process(p)
        stop_process(sim.proc)
