"""`qc gex` against a real redis-server: a real chain from the simulator's AV server, a real positioning hash.

The ``analytics:{sym}:gex`` hash is written here from ``positioning()`` on that chain, in the worker's
contract shape, so these tests do not wait for `qc analytics`. Time is the simulator's: a fresh
clock anchor in Redis makes `qc gex` measure ages in simulated time, as it does under `qc sim`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from qc.analytics.positioning import Positioning, positioning
from qc.analytics.regime import gamma_regime
from qc.analytics.report import chain_from_doc
from qc.cli import cli
from qc.core import clock, keys
from qc.core.clock import FakeClock, SimAnchor
from qc.core.config import Settings
from qc.runtime.store import Store, connect
from qc.runtime.worker import Worker

from .av_chains_harness import NOW, ScriptedAV, cycle_for, settings_for, sim_market
from .conftest import RedisServer

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
        store.hset(keys.quote("SPY"), {"bid": q.bid, "ask": q.ask, "last": q.last, "as_of": NOW.timestamp()})
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
    store.hset(keys.sim_clock(), SimAnchor(clock.wall_epoch(), at.timestamp(), 1.0).to_fields())


def _blank(value: float | None) -> str | float:
    return "" if value is None else value


def write_positioning(store: Store, pos: Positioning, doc: dict[str, Any], as_of: datetime,
                      stale_reason: str | None = None) -> None:
    """The worker's contract: the gex hash, by-strike JSON and profile JSON from one positioning()."""
    d = pos.to_dict()
    zg, w = d["zero_gamma"]["level"], d["walls"]
    chain_as_of = datetime.fromisoformat(doc["as_of"])
    store.hset(keys.gex("SPY"), {
        "total": d["gex_usd_per_1pct"], "dex_usd": d["dex_usd"], "vanna_usd_per_volpt": d["vanna_usd_per_volpt"],
        "charm_usd_per_day": d["charm_usd_per_day"], "zero_gamma": _blank(zg),
        "zero_gamma_reason": d["zero_gamma"]["reason"] or "",
        "zero_gamma_distance_pct": _blank(None if zg is None else 100 * (zg - pos.spot) / pos.spot),
        "call_wall": _blank(w["call_gamma_strike"]), "put_wall": _blank(w["put_gamma_strike"]),
        "call_oi_wall": _blank(w["call_oi_strike"]), "put_oi_wall": _blank(w["put_oi_strike"]),
        "share_0_1dte_abs_gex": _blank(d["share_0_1dte_abs_gex"]), "skew_25d": 0.0312,
        "skew_25d_normalised": 0.21, "skew_moneyness": 0.011, "skew_reason": "", "regime": "calm_positive_gamma",
        "gamma_regime": gamma_regime(pos.spot, zg, d["gex_usd_per_1pct"]).value, "spot": pos.spot,
        "expiries": ",".join(d["expiries_used"]), "convention": d["convention"], "gamma_source": d["gamma_source"],
        "contracts_used": d["contracts_used"], "as_of": as_of.isoformat(), "chain_as_of": doc["as_of"],
        "chain_age_s": (as_of - chain_as_of).total_seconds(), "stale": "1" if stale_reason else "0",
        "stale_reason": stale_reason or ""})
    store.set(keys.gex_by_strike("SPY"), json.dumps(d["by_strike"]))
    store.set(keys.gex_profile("SPY"), json.dumps({**d["profile"], "spot": pos.spot, "zero_gamma": zg,
                                                   "crossings": d["zero_gamma"]["crossings"]}))


@pytest.fixture
def full(store: Store, chain_json: str) -> Positioning:
    """Chain and a fresh worker snapshot over all its expiries, computed AGE_S before now."""
    store.set(keys.option_chain("SPY"), chain_json)
    doc = json.loads(chain_json)
    pos = positioning(chain_from_doc(doc))
    write_positioning(store, pos, doc, NOW)
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
    assert "$ per 1 % move" in out and "calm_positive_gamma" in out
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
    assert zero["as_of"] == json.loads(gex(redis_server.url, "SPY", "--json")[1])["chain_as_of"]
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
    doc = json.loads(chain_json)
    write_positioning(store, full, doc, NOW, stale_reason="option chain 1260 s old")
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
