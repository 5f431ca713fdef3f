"""`qc signals show | explain | stats` and `qc signals SYM --once` against a real redis-server.

Signals are published through the worker's own Publisher (record, claim, pending list, streams,
log), outcomes and block counters through their codecs, so the queries read what the worker writes.
"""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from qc.cli import cli
from qc.core import keys
from qc.runtime.store import Store
from qc.signals.codec import LastEvaluation, Outcome, Signal
from qc.signals.cycle.publish import Publisher
from tests.unit.test_signals_build import NOW, build

from .conftest import RedisServer


def run(redis_server: RedisServer, *args: str) -> tuple[int, str, str]:
    got = CliRunner().invoke(cli, ["--redis-url", redis_server.url, *args], env={"QC_SYMBOLS": "SPY,QQQ"})
    return got.exit_code, got.stdout, got.stderr


def publish(store: Store, *signals: Signal) -> None:
    publisher = Publisher(store, pending_cap=100)
    for s in signals:
        assert publisher.claim(s, 300, 0).result == "emitted"


def test_show_lists_signals_newest_first_with_their_outcome(store: Store, redis_server: RedisServer) -> None:
    older, newer = build(1, now=NOW), build(-1, now=NOW + timedelta(minutes=1))
    publish(store, older, newer)
    outcome = Outcome(older.id, "SPY", "0dte", "take_profit", older.limit, 3.6, 0.5, 600.0, NOW + timedelta(minutes=10))
    store.client.hset(keys.signal_outcomes().name, older.id, outcome.to_redis())
    code, out, _ = run(redis_server, "signals", "show", "SPY")
    assert code == 0
    lines = out.splitlines()
    assert lines[2].startswith(newer.id) and lines[3].startswith(older.id)
    assert "SPY 2026-12-03 595P x100" in lines[2] and "open" in lines[2]
    assert "SPY 2026-12-03 600C x100" in lines[3] and "take_profit +50.0%" in lines[3]
    code, out, _ = run(redis_server, "signals", "show", "--json")
    doc = json.loads(out)
    assert [s["id"] for s in doc["signals"]] == [newer.id, older.id]
    assert doc["signals"][1]["outcome"]["return_pct"] == 0.5
    assert store.client.llen(keys.signals_pending("SPY").name) == 2


def test_explain_an_id_prints_every_factor_gate_and_the_contract(store: Store, redis_server: RedisServer) -> None:
    signal = build(1)
    publish(store, signal)
    code, out, _ = run(redis_server, "signals", "explain", signal.id)
    assert code == 0, out
    assert f"signal {signal.id}  0dte  SPY 2026-12-03 600C x100" in out
    assert "take profit" in out and "order_flow" in out and "0dte_cutoff" in out and "cycle=3" in out
    code, out, _ = run(redis_server, "signals", "explain", signal.id, "--json")
    assert json.loads(out)["contract"]["strike"] == 600.0


def test_bad_ids_and_symbols_are_one_line_exit_1(store: Store, redis_server: RedisServer) -> None:
    for args in (("explain", "1764864012345deadbeef"), ("explain", "12345-not-an-id"), ("show", "IWM"),
                 ("explain", "IWM"), ("explain", "SPY")):
        code, out, err = run(redis_server, "signals", *args)
        assert code == 1, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
    code, _, err = run(redis_server, "signals", "stats", "--since", "yesterday-ish")
    assert code == 2 and "--since" in err and len(err.strip().splitlines()) == 1


def test_stats_counts_outcomes_and_blocks(store: Store, redis_server: RedisServer) -> None:
    win, loss = build(1, now=NOW), build(-1, now=NOW + timedelta(minutes=1))
    publish(store, win, loss)
    ended = (Outcome(win.id, "SPY", "0dte", "take_profit", win.limit, win.limit * 1.5, 0.5, 300.0, NOW),
             Outcome(loss.id, "SPY", "0dte", "stop", loss.limit, loss.limit * 0.75, -0.25, 300.0, NOW))
    for o in ended:
        store.client.hset(keys.signal_outcomes().name, o.signal_id, o.to_redis())
    store.client.hset(keys.signals_blocked("2026-12-03").name, mapping={"SPY:0dte:filter:spread": 3,
                                                                        "SPY:moc:moc_window": 7})
    code, out, _ = run(redis_server, "signals", "stats", "--since", "2026-12-01", "--json")
    assert code == 0, out
    lines = {(x["strategy"], x["symbol"]): x for x in json.loads(out)["lines"]}
    zero = lines[("0dte", "SPY")]
    assert (zero["count"], zero["decided"], zero["hits"], zero["hit_rate"]) == (2, 2, 1, 0.5)
    assert zero["mean_return"] == 0.125 and zero["blocked"] == {"filter:spread": 3}
    assert lines[("moc", "SPY")]["blocked"] == {"moc_window": 7}


def test_once_on_an_empty_redis_says_why_each_strategy_did_not_fire(store: Store, redis_server: RedisServer) -> None:
    code, _, err = run(redis_server, "signals", "SPY", "--once")
    assert code == 0, err
    key = keys.signals_last("SPY").name
    for strategy in ("0dte", "1dte", "14dte", "moc"):
        e = LastEvaluation.from_redis(store.client.hget(key, strategy), key=key)
        assert isinstance(e, LastEvaluation) and e.direction == 0 and e.reason, e
    assert store.client.llen(keys.signals_pending("SPY").name) == 0
    code, out, _ = run(redis_server, "signals", "explain", "SPY")
    assert code == 0 and "0dte on SPY" in out and "moc on SPY" in out


