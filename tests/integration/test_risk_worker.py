"""The `qc risk` worker against a real Redis: exposure snapshot, breakers moving latches, verdicts on signals.

Inputs are written through their owners' codecs (as `qc stream`, `qc chains`, `qc analytics`,
`qc signals` and the executor write them), and the cycle runs with the time passed in, so each
step is exact: a move of spot through zero gamma, VPIN over its threshold, a loss past the limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from qc.analytics.codec import GEX_LABELS, GEX_NUMBERS, GexSnapshot, Vpin
from qc.core import keys
from qc.core.clock import NEW_YORK
from qc.core.config import Settings
from qc.ingest.codec import ChainRow, OptionChain, Quote
from qc.risk.breakers import BreakerLimits
from qc.risk.cycle import latches
from qc.risk.cycle.loop import RiskCycle
from qc.risk.model import ContractKey, Limits, Position, Right
from qc.risk.position_codec import PositionRecord, position_to_redis
from qc.risk.snapshot import ExposureSnapshot, snapshot_from_redis
from qc.risk.state import Latch, TradingState, escalate, resume
from qc.runtime.codec import IbkrConnected
from qc.runtime.store import Store, connect
from qc.signals.cycle.publish import Publisher
from tests.unit.test_signals_build import build

from .conftest import RedisServer, eventually

ACCOUNT = "default"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK)  # the signals fixtures' session (0DTE expiry 2026-12-03)
EXPIRY = date(2026, 12, 4)
SAME_DAY = date(2026, 12, 3)  # what the signals fixtures trade
CALL = ContractKey("SPY", "OPT", EXPIRY, 600.0, "C")
ZERO_GAMMA = 600.0
ROOT = Path(__file__).parents[2]


def write_market(store: Store, now: datetime, spot: float, vpin: float = 0.30, call_mark: float = 3.0) -> None:
    epoch = now.timestamp()
    store.hset(keys.quote("SPY"), Quote(epoch, spot - 0.01, spot + 0.01, 100, 100, spot).to_redis())
    numbers: dict[str, float | None] = dict.fromkeys(GEX_NUMBERS)
    numbers.update(total=1e9, zero_gamma=ZERO_GAMMA)
    labels = {**dict.fromkeys(GEX_LABELS, ""), "regime": "unknown", "gamma_regime": "unknown"}
    gex = GexSnapshot(numbers, labels, spot, "quote", 1.0, "", (EXPIRY,), 100, now, now - timedelta(seconds=60),
                      60.0, "")
    store.hset(keys.gex("SPY"), gex.to_redis())
    store.hset(keys.vpin("SPY"), Vpin(vpin, 1e5, 50, "bvc", "", "redis", now, 1.0, "").to_redis())
    quotes: tuple[tuple[date, Right, float, float], ...] = (
        (EXPIRY, "C", 600.0, call_mark), (EXPIRY, "P", 600.0, 2.0), (SAME_DAY, "C", 600.0, 2.0),
        (SAME_DAY, "P", 595.0, 1.0))
    rows = tuple(ChainRow(expiry, right, strike, mark - 0.05, mark + 0.05, mark, 100, 1000, 0.003, 0.2, "mark",
                          False, 0.5, 0.05, 0.1, -0.5, 0.01, 0.0, 0.0)
                 for expiry, right, strike, mark in quotes)
    chain = OptionChain("SPY", now - timedelta(seconds=60), spot, 0.04, 0.01, (SAME_DAY, EXPIRY), rows)
    store.set(keys.option_chain("SPY"), chain.to_redis())
    store.set(keys.ibkr_connected(), IbkrConnected(True).to_redis())


def hold(store: Store, qty: int = 2, cost: float = 2.5) -> None:
    rec = PositionRecord(1001, Position(CALL, qty, cost, "1dte"))
    store.hset(keys.position_open(ACCOUNT, 1001), position_to_redis(rec))


def state(store: Store, scope: str) -> TradingState:
    return latches.load(store, ACCOUNT).get(scope, Latch()).state


@pytest.fixture
def cycle(store: Store) -> RiskCycle:
    return RiskCycle(store, ACCOUNT, ("SPY",), Limits(), BreakerLimits())


def test_the_snapshot_prices_positions_and_shows_usage(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0, call_mark=3.0)
    hold(store, qty=2, cost=2.5)
    cycle(NOW)
    snap = snapshot_from_redis(store.get(keys.risk_exposure(ACCOUNT)), key="x")
    assert isinstance(snap, ExposureSnapshot)
    [pos] = snap.positions
    assert pos.mark == 3.0 and pos.unrealised_usd == pytest.approx(100.0)  # (3.00 − 2.50) × 2 × 100
    assert snap.per_underlying["SPY"].delta > 0 and snap.per_bucket["1dte"].delta > 0
    assert {u.name for u in snap.usage} >= {"max_position_per_contract", "delta_usd_per_pct_per_underlying",
                                            "daily_loss_limit_usd"}
    assert store.client.ttl(keys.risk_exposure(ACCOUNT).name) > 0


def test_a_move_through_zero_gamma_reduces_the_underlying_and_clears_away_from_it(
        store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0)
    cycle(NOW)
    assert state(store, "SPY") is TradingState.ACTIVE
    later = NOW + timedelta(seconds=1)
    write_market(store, later, spot=599.9)  # crossed below the flip, still within 0.25 % of it
    cycle(later)
    latch = latches.load(store, ACCOUNT)["SPY"]
    assert (latch.state, latch.cause, latch.by) == (TradingState.REDUCING, "zero_gamma_cross",
                                                    "breaker:zero_gamma_cross")
    assert "zero_gamma=600" in latch.reason and "side=below" in latch.reason
    assert state(store, "account") is TradingState.ACTIVE  # one underlying, not the account
    write_market(store, later + timedelta(seconds=1), spot=599.5)  # 0.083 % away: still near
    cycle(later + timedelta(seconds=1))
    assert state(store, "SPY") is TradingState.REDUCING
    write_market(store, later + timedelta(seconds=2), spot=597.0)  # 0.5 % away: the new regime holds
    cycle(later + timedelta(seconds=2))
    assert state(store, "SPY") is TradingState.ACTIVE
    assert [t["to"] for t in latches.transitions(store, ACCOUNT)] == ["ACTIVE", "REDUCING"]
    assert store.count_events(keys.risk_breaches_log(), 0) == 1


def test_the_side_of_the_flip_survives_a_worker_restart(store: Store) -> None:
    write_market(store, NOW, spot=601.0)
    RiskCycle(store, ACCOUNT, ("SPY",), Limits(), BreakerLimits())(NOW)
    restarted = RiskCycle(store, ACCOUNT, ("SPY",), Limits(), BreakerLimits())
    write_market(store, NOW + timedelta(seconds=5), spot=599.9)
    restarted(NOW + timedelta(seconds=5))
    assert state(store, "SPY") is TradingState.REDUCING


def test_toxic_flow_and_a_daily_loss_trip_their_breakers(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0, vpin=0.65)
    cycle(NOW)
    assert latches.load(store, ACCOUNT)["SPY"].cause == "vpin_high"
    write_market(store, NOW + timedelta(seconds=1), spot=601.0, vpin=0.55)  # between clear and trip: held
    cycle(NOW + timedelta(seconds=1))
    assert state(store, "SPY") is TradingState.REDUCING
    write_market(store, NOW + timedelta(seconds=2), spot=601.0, vpin=0.45)
    cycle(NOW + timedelta(seconds=2))
    assert state(store, "SPY") is TradingState.ACTIVE
    hold(store, qty=40, cost=3.0)
    write_market(store, NOW + timedelta(seconds=3), spot=601.0, call_mark=1.5)  # −1.50 × 40 × 100 = −6,000
    cycle(NOW + timedelta(seconds=3))
    account = latches.load(store, ACCOUNT)["account"]
    assert (account.state, account.cause) == (TradingState.REDUCING, "daily_loss")
    write_market(store, NOW + timedelta(seconds=4), spot=601.0, call_mark=3.0)  # recovered: a loss latch holds
    cycle(NOW + timedelta(seconds=4))
    assert state(store, "account") is TradingState.REDUCING


def test_new_signals_are_rejected_while_halted_and_approved_after_resume(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0)
    cycle(NOW)  # the first cycle marks where the signal streams stand
    latches.update(store, ACCOUNT, "account", lambda c: escalate(
        c, TradingState.HALTED, "operator_halt", "operator:ann", "drill", NOW), NOW)
    publisher = Publisher(store, pending_cap=100)
    first = build(1, now=NOW)
    assert publisher.claim(first, 300, 0).result == "emitted"
    cycle(NOW + timedelta(seconds=1))
    verdict = json.loads(store.get(keys.risk_verdict(first.id)) or "{}")
    assert verdict["approved"] is False and "TRADING_HALTED" in verdict["codes"], verdict
    restarted = RiskCycle(store, ACCOUNT, ("SPY",), Limits(), BreakerLimits())  # `qc risk` restarted
    restarted(NOW + timedelta(seconds=1, milliseconds=500))
    again = build(1, strategy="1dte", now=NOW + timedelta(seconds=1, milliseconds=600))
    assert publisher.claim(again, 300, 0).result == "emitted"
    restarted(NOW + timedelta(seconds=1, milliseconds=700))
    verdict = json.loads(store.get(keys.risk_verdict(again.id)) or "{}")
    assert "TRADING_HALTED" in verdict["codes"], verdict  # the latch outlived the worker
    latches.update(store, ACCOUNT, "account", lambda c: resume(c, "ann", "checked", NOW), NOW)
    second = build(-1, now=NOW + timedelta(seconds=2))
    assert publisher.claim(second, 300, 0).result == "emitted"
    restarted(NOW + timedelta(seconds=2))
    verdict = json.loads(store.get(keys.risk_verdict(second.id)) or "{}")
    assert verdict["approved"] is True, verdict
    assert store.client.xlen(keys.risk_verdicts().name) == 3


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "aof", appendonly=True)
    server.start()
    yield server
    server.kill()


def test_a_halt_survives_a_redis_restart_and_status_shows_it(aof_redis: RedisServer, tmp_path: Path) -> None:
    store = connect(Settings(redis_url=aof_redis.url))
    latches.update(store, ACCOUNT, "account", lambda c: escalate(
        c, TradingState.HALTED, "operator_halt", "operator:ann", "weekend drill", NOW), NOW)
    store.close()
    aof_redis.kill()  # SIGKILL: only what the AOF holds comes back
    aof_redis.start()
    store = connect(Settings(redis_url=aof_redis.url))
    eventually(lambda: store.client.ping())
    assert state(store, "account") is TradingState.HALTED
    env = {"PATH": "/usr/bin:/bin", "QC_REDIS_URL": aof_redis.url, "QC_SYMBOLS": "SPY",
           "QC_DATA_DIR": str(tmp_path / "var"), "QC_RISK_LIMITS": "max_qty_per_order=5"}
    shown = subprocess.run([sys.executable, "-m", "qc", "risk", "status", "--json"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["states"][0] == {"scope": "account", "state": "HALTED", "cause": "operator_halt",
                                "by": "operator:ann", "reason": "weekend drill", "since": NOW.isoformat()}
    assert {"name": "max_qty_per_order", "value": "5", "source": "env"} in doc["limits"]
    assert doc["exposure"] is None and "is `qc risk` running?" in doc["exposure_problem"]
    table = subprocess.run([sys.executable, "-m", "qc", "risk", "status"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=60, check=False)
    assert table.returncode == 0 and "HALTED" in table.stdout and "weekend drill" in table.stdout
    bad = subprocess.run([sys.executable, "-m", "qc", "risk", "status"], env={**env, "QC_RISK_LIMITS": "qty=-1"},
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "QC_RISK_LIMITS" in bad.stderr
    store.close()


def test_qc_risk_once_publishes_the_snapshot(store: Store, redis_server: RedisServer, tmp_path: Path) -> None:
    from qc.core import clock

    now = datetime.fromtimestamp(clock.wall_epoch(), tz=NEW_YORK)
    write_market(store, now, spot=601.0)
    hold(store)
    env = {"PATH": "/usr/bin:/bin", "QC_REDIS_URL": redis_server.url, "QC_SYMBOLS": "SPY",
           "QC_DATA_DIR": str(tmp_path / "var")}
    ran = subprocess.run([sys.executable, "-m", "qc", "risk", "--once"], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    snap = snapshot_from_redis(store.get(keys.risk_exposure(ACCOUNT)), key="x")
    assert isinstance(snap, ExposureSnapshot) and len(snap.positions) == 1
    shown = subprocess.run([sys.executable, "-m", "qc", "risk", "status"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "limit usage" in shown.stdout and "delta_usd_per_pct_per_underlying" in shown.stdout
    assert "breakers (now)" in shown.stdout and "spot 601, zero gamma 600 (+0.17 %)" in shown.stdout
    doc = json.loads(subprocess.run([sys.executable, "-m", "qc", "risk", "status", "--json"], env=env, cwd=ROOT,
                                    capture_output=True, text=True, timeout=60, check=True).stdout)
    assert {(b["scope"], b["breaker"]) for b in doc["breakers"]} == {
        ("account", "daily_loss"), ("account", "drawdown"), ("account", "rejects"),
        ("account", "broker_disconnected"), ("SPY", "zero_gamma_cross"), ("SPY", "vpin_high")}


def test_breaker_trips_are_breaches_and_qc_status_turns_unhealthy_above_three_an_hour(
        store: Store, redis_server: RedisServer, cycle: RiskCycle, tmp_path: Path) -> None:
    from qc.core import clock

    env = {"PATH": "/usr/bin:/bin", "QC_REDIS_URL": redis_server.url, "QC_SYMBOLS": "SPY",
           "QC_DATA_DIR": str(tmp_path / "var")}

    def breaches_check() -> dict[str, object]:
        shown = subprocess.run([sys.executable, "-m", "qc", "status", "--json"], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
        return next(c for c in json.loads(shown.stdout)["checks"] if c["check"] == "risk breaches/h")

    start = datetime.fromtimestamp(clock.wall_epoch(), tz=NEW_YORK)  # `qc status` counts the last wall hour
    for i in range(4):  # toxic flow trips, clears, trips again: each trip is a breach
        at = start + timedelta(seconds=2 * i)
        write_market(store, at, spot=601.0, vpin=0.65)
        cycle(at)
        if i == 2:
            assert breaches_check()["ok"] is True  # three in the hour: at the threshold, still healthy
        write_market(store, at + timedelta(seconds=1), spot=601.0, vpin=0.40)
        cycle(at + timedelta(seconds=1))
    check = breaches_check()
    assert (check["value"], check["threshold"], check["ok"]) == (4, 3, False)


def test_rejected_orders_in_a_window_halt_the_account(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0)
    def failed(at: datetime, what: str) -> None:  # the executor logs each rejected or failed order by time
        store.record_event(keys.orders_failed_count(), keys.orders_failed_log(), at.timestamp(), what)

    for i in range(4):
        failed(NOW - timedelta(minutes=i), f"order {i}")
    failed(NOW - timedelta(minutes=30), "old")  # outside the 10-minute window
    cycle(NOW)
    assert state(store, "account") is TradingState.ACTIVE  # 4 < 5
    failed(NOW, "order 4")
    cycle(NOW + timedelta(seconds=1))
    latch = latches.load(store, ACCOUNT)["account"]
    assert (latch.state, latch.cause) == (TradingState.HALTED, "rejects") and "rejects=5" in latch.reason


def test_a_garbled_position_is_skipped_logged_and_counted_not_fatal(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0)
    hold(store)
    store.client.hset(keys.position_open(ACCOUNT, 2002).name, mapping={"v": "1", "qty": "1.5"})
    cycle(NOW)
    snap = snapshot_from_redis(store.get(keys.risk_exposure(ACCOUNT)), key="x")
    assert isinstance(snap, ExposureSnapshot) and [p.con_id for p in snap.positions] == [1001]
    assert store.hget(keys.worker_errors(), "risk") == "1"
    cycle(NOW + timedelta(seconds=1))
    assert store.hget(keys.worker_errors(), "risk") == "2"  # every cycle that meets it


def test_a_redis_restart_under_a_running_worker_reduces_until_resumed(aof_redis: RedisServer) -> None:
    store = connect(Settings(redis_url=aof_redis.url))
    worker = RiskCycle(store, ACCOUNT, ("SPY",), Limits(), BreakerLimits())
    write_market(store, NOW, spot=601.0)
    worker(NOW)
    assert state(store, "account") is TradingState.ACTIVE
    aof_redis.kill()
    aof_redis.start()
    eventually(lambda: store.client.ping())
    write_market(store, NOW + timedelta(seconds=1), spot=601.0)
    worker(NOW + timedelta(seconds=1))
    latch = latches.load(store, ACCOUNT)["account"]
    assert (latch.state, latch.cause) == (TradingState.REDUCING, "redis_restarted")
    worker(NOW + timedelta(seconds=2))
    assert state(store, "account") is TradingState.REDUCING  # until reconciled and resumed
    store.close()


def test_ib_down_reduces_the_account_after_it_was_up_and_clears_when_back(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0)
    store.set(keys.ibkr_connected(), IbkrConnected(False).to_redis())  # a stack still connecting
    cycle(NOW)
    assert state(store, "account") is TradingState.ACTIVE
    store.set(keys.ibkr_connected(), IbkrConnected(True).to_redis())
    cycle(NOW + timedelta(seconds=1))
    store.set(keys.ibkr_connected(), IbkrConnected(False).to_redis())  # lost
    cycle(NOW + timedelta(seconds=2))
    assert latches.load(store, ACCOUNT)["account"].cause == "broker_disconnected"
    store.set(keys.ibkr_connected(), IbkrConnected(True).to_redis())
    cycle(NOW + timedelta(seconds=3))
    assert state(store, "account") is TradingState.ACTIVE


def test_a_garbled_high_water_mark_is_counted_and_restarted_not_fatal(store: Store, cycle: RiskCycle) -> None:
    write_market(store, NOW, spot=601.0, call_mark=3.0)
    hold(store, qty=2, cost=2.5)
    store.client.hset(keys.risk_pnl_high_water(ACCOUNT).name, NOW.date().isoformat(), "nan")
    cycle(NOW)
    snap = snapshot_from_redis(store.get(keys.risk_exposure(ACCOUNT)), key="x")
    assert isinstance(snap, ExposureSnapshot) and snap.pnl_high_water_usd == pytest.approx(100.0)
    assert store.hget(keys.worker_errors(), "risk") == "1"
    assert store.client.hget(keys.risk_pnl_high_water(ACCOUNT).name, NOW.date().isoformat()) == "100.0"
