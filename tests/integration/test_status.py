"""`qc status` against a real Redis: healthy, unhealthy, unreachable; secrets never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from qc.cli import cli
from qc.core import clock, keys
from qc.runtime.codec import (
    AlphaVantageMetrics,
    ChildStatus,
    Heartbeat,
    IbkrConnected,
    StaleFeeds,
    SupervisorChildren,
    WorkerEntry,
    WorkerRegistry,
)
from qc.runtime.store import Store

from .conftest import RedisServer, free_port


def run_status(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--redis-url", url, "status", *args], env=env)
    return result.exit_code, result.stdout


def register(store: Store, module: str) -> None:
    entry = WorkerEntry(pid=os.getpid(), host="test", started=clock.wall_epoch() - 60, cycles=1)
    store.hset(keys.worker_registry(), WorkerRegistry({module: entry}).to_redis())


def beat(store: Store, module: str, age_s: float, registered: bool = True) -> None:
    store.set(keys.heartbeat(module), Heartbeat(clock.wall_epoch() - age_s).to_redis())
    if registered:
        register(store, module)


def test_healthy(store: Store, redis_server: RedisServer) -> None:
    beat(store, "supervisor", age_s=1)
    code, out = run_status(redis_server.url, "--json")
    doc = json.loads(out)
    assert code == 0, out
    assert doc["healthy"] is True
    assert {c["check"] for c in doc["checks"]} >= {"heartbeat:supervisor", "ibkr:connected", "stale feeds",
                                                   "risk breaches/h", "failed orders/h", "alpha vantage tokens"}
    assert set(doc) == {"healthy", "state", "as_of", "redis_url", "checks", "stale_feeds", "rejects", "executor",
                        "distribution", "settings"}
    assert doc["distribution"] == []  # distribution has not run: no rows


def test_distribution_rows_warn_about_dead_letters_uncertain_and_disabled(store: Store,
                                                                          redis_server: RedisServer) -> None:
    from qc.distribute.cycle import metrics

    beat(store, "supervisor", age_s=1)
    metrics.record(store, "premium", "telegram", {"sent": 4, "uncertain": 1})
    metrics.dead_letter(store, "{}", "premium", "telegram", metrics.DeadReason.UNCERTAIN, "premium: timed out")
    store.client.sadd(keys.distribution_disabled().name, "webhook:alpha")
    code, out = run_status(redis_server.url, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["state"] == "warning", out
    rows = {r["check"]: r for r in doc["distribution"]}
    assert rows["distribution dead letters"]["value"] == 1 and rows["distribution dead letters"]["warn"]
    assert rows["distribution uncertain"]["value"] == 1 and rows["distribution disabled"]["text"] == "webhook:alpha"
    code, out = run_status(redis_server.url)
    assert code == 0 and "WARNING" in out and "distribution uncertain" in out


def test_json_numbers_are_numbers(store: Store, redis_server: RedisServer) -> None:
    beat(store, "supervisor", age_s=2)
    store.hset(keys.data_stale(), StaleFeeds({StaleFeeds.field("SPY", "depth"): clock.wall_epoch() - 25}).to_redis())
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(42))
    store.count_rejects("ib.depth", {"negative_size": 3, "not_finite": 1})
    code, out = run_status(redis_server.url, "--json")
    doc = json.loads(out)
    checks = {c["check"]: c for c in doc["checks"]}
    heartbeat = checks["heartbeat:supervisor"]
    assert isinstance(heartbeat["value"], float) and 1.5 <= heartbeat["value"] < 30 and heartbeat["unit"] == "s"
    assert heartbeat["threshold"] == 30.0 and heartbeat["text"].endswith("s old")
    assert checks["alpha vantage tokens"]["value"] == 42 and checks["alpha vantage tokens"]["threshold"] == 10
    assert checks["stale feeds"]["value"] == 1 and not checks["stale feeds"]["ok"]
    assert isinstance(doc["stale_feeds"]["SPY:depth"], float) and doc["stale_feeds"]["SPY:depth"] >= 25
    assert doc["rejects"] == {"ib.depth": {"negative_size": 3, "not_finite": 1}}
    assert code == 1


def test_an_expected_qc_up_child_without_a_heartbeat_is_unhealthy(store: Store, redis_server: RedisServer) -> None:
    """Right after `qc up` (re)starts, its children are expected before they ever registered."""
    beat(store, "supervisor", age_s=1)
    beat(store, "sim", age_s=1, registered=False)
    children = {"sim": ChildStatus(101, "running", 0), "stream": ChildStatus(102, "running", 0),
                "chains": ChildStatus(None, "exited 1", 2, last_exit=1)}
    store.hset(keys.supervisor_children(), SupervisorChildren(children).to_redis())
    code, out = run_status(redis_server.url, "--json")
    checks = {c["check"]: c for c in json.loads(out)["checks"]}
    assert code == 1
    assert checks["heartbeat:ibkr_ingestion"]["text"] == "none yet (starting: qc up child pid 102)"  # stream
    assert checks["heartbeat:chains"]["value"] is None and not checks["heartbeat:chains"]["ok"]
    assert checks["heartbeat:sim"]["ok"]
    assert not checks["qc up child chains"]["ok"] and checks["qc up child chains"]["value"] == 2
    assert checks["qc up child stream"]["ok"]


@pytest.mark.parametrize("breakage", ["late", "missing", "stale", "breaches", "failed", "tokens", "ibkr",
                                      "malformed"])
def test_unhealthy(store: Store, redis_server: RedisServer, breakage: str) -> None:
    beat(store, "supervisor", age_s=1)
    now = clock.wall_epoch()
    if breakage == "late":
        beat(store, "analytics", age_s=45)
    elif breakage == "missing":
        register(store, "analytics")
    elif breakage == "stale":
        store.hset(keys.data_stale(), StaleFeeds({StaleFeeds.field("SPY", "depth"): now - 25}).to_redis())
    elif breakage in ("breaches", "failed"):
        counter, log = ((keys.risk_breaches_count(), keys.risk_breaches_log()) if breakage == "breaches"
                        else (keys.orders_failed_count(), keys.orders_failed_log()))
        for i in range(6):
            store.record_event(counter, log, now - 60 * i, member=str(i))
    elif breakage == "tokens":
        store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(3))
    elif breakage == "ibkr":
        store.set(keys.ibkr_connected(), IbkrConnected(False).to_redis())
    elif breakage == "malformed":
        store.hset(keys.worker_registry(), {"analytics": "{}"})  # an entry from before the codec
    code, out = run_status(redis_server.url)
    assert code == 1, out
    assert "UNHEALTHY" in out and "ALERT" in out


def test_malformed_values_are_alerts_with_their_reason_in_json(store: Store, redis_server: RedisServer) -> None:
    beat(store, "supervisor", age_s=1)
    store.set(keys.ibkr_connected(), "yes")
    store.hset(keys.data_stale(), {"SPY:depth": "nan"})
    store.hset(keys.worker_registry(), {"analytics": '{"pid": 1}'})
    code, out = run_status(redis_server.url, "--json")
    assert code == 1, out
    checks = {c["check"]: c for c in json.loads(out)["checks"]}
    assert not checks["ibkr:connected"]["ok"] and "'yes'" in checks["ibkr:connected"]["text"]
    assert checks["ibkr:connected"]["value"] is None
    assert not checks["stale feeds"]["ok"] and "not finite" in checks["stale feeds"]["text"]
    assert "old version" in checks["monitoring:workers[analytics]"]["text"]


def test_no_workers_is_unhealthy(store: Store, redis_server: RedisServer) -> None:
    code, out = run_status(redis_server.url)
    assert code == 1
    assert "none running" in out


def test_unreachable_prints_one_line_naming_the_url() -> None:
    port = free_port()
    env = {**os.environ, "QC_REDIS_URL": f"redis://127.0.0.1:{port}"}
    proc = subprocess.run([sys.executable, "-m", "qc", "status"], env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"redis://127.0.0.1:{port}" in lines[0]


def test_secrets_never_appear(store: Store, redis_server: RedisServer) -> None:
    beat(store, "supervisor", age_s=1)
    secret, password = "AVKEY-sUpErSeCrEt-123", "pw-n0t-for-eyes"
    env = {"QC_ALPHA_VANTAGE_API_KEY": secret, "QC_TELEGRAM_BOT_TOKEN": "123:tg-secret-token",
           "QC_LOG_LEVEL": "DEBUG"}
    url_with_password = redis_server.url.replace("redis://", f"redis://default:{password}@")
    for args in (["--json"], []):
        result = CliRunner().invoke(cli, ["--redis-url", url_with_password, "status", *args], env=env)
        everything = result.output  # stdout and stderr (logs at DEBUG) together
        assert secret not in everything and password not in everything and "tg-secret" not in everything
        assert "***" in everything
    doc = json.loads(CliRunner().invoke(cli, ["--redis-url", url_with_password, "status", "--json"],
                                        env=env).stdout)
    assert doc["settings"]["alpha_vantage_api_key"] == {"value": "***", "source": "env",
                                                       "env": "QC_ALPHA_VANTAGE_API_KEY"}
