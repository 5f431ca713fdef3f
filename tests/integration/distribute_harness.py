"""A stack for `qc distribute`'s whole-process tests: Redis (AOF on), `qc sim` with its channel stand-ins, and
`qc distribute` processes, started, killed and restarted by name.

Signals are published as `qc signals` publishes them (the record, then ``signals:{distribution}:SPY`` with the
group created first). What arrived is counted where it lands: the simulator's ``channels`` query. Each
test draws its own :class:`Channels` (a bot token, chats, an endpoint and an X account of its own), so the
simulator's per-bot, per-chat and per-account windows and duplicate checks never mix two tests.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis
import requests

from qc.core import keys
from qc.core.config import Settings
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import Store, connect
from qc.signals.codec import Signal, new_id
from qc.signals.model import Contract, Quote

from .conftest import RedisServer, eventually
from .stream_harness import stop_process

ROOT = Path(__file__).parents[2]
TIERS = ("premium", "basic", "free")
DELAYS = {"premium": 0.0, "basic": 60.0, "free": 300.0}
SIM_LABELS = ("ib", "alpha", "control", "clock", "channels")


@dataclass(frozen=True)
class Channels:
    """One test's identities at the simulator, and the environment that points `qc distribute` at them."""

    tag: str
    token: str
    chats: dict[str, str]  # tier -> chat id
    hook: str
    secret: str
    x_token: str

    @classmethod
    def draw(cls, n: int) -> Channels:
        tag = secrets.token_hex(3)
        chats = {tier: f"-100{2_000_000_000 + 10 * n + i}" for i, tier in enumerate(TIERS)}
        return cls(tag, f"{700000 + n}:tok-{tag}", chats, f"hook{n}",
                   "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(), f"access-{tag}")

    def env(self, base: str) -> dict[str, str]:
        return {"QC_TELEGRAM_BASE_URL": base, "QC_X_BASE_URL": base, "QC_TELEGRAM_BOT_TOKEN": self.token,
                "QC_TELEGRAM_CHATS": ",".join(f"{t}={c}" for t, c in self.chats.items()),
                "QC_WEBHOOKS": f"{self.hook}={base}/hooks/{self.hook}|{'+'.join(TIERS)}",
                f"QC_WEBHOOK_SECRET_{self.hook.upper()}": self.secret, "QC_X_API_KEY": "ck-test",
                "QC_X_API_SECRET": "cs-test", "QC_X_ACCESS_TOKEN": self.x_token, "QC_X_ACCESS_SECRET": "as-test",
                "QC_X_TIERS": "free"}

    def tier_of_chat(self, chat: str) -> str | None:
        return next((t for t, c in self.chats.items() if c == chat), None)


class Stack:
    """Redis + `qc sim` (channels on a free port) + `qc distribute` processes."""

    def __init__(self, tmp: Path, speed: float) -> None:
        self.tmp = tmp
        self.speed = speed
        self.redis = RedisServer(tmp / "redis", appendonly=True)
        self.redis.start()
        self.store: Store = connect(Settings(redis_url=self.redis.url))
        env = {**os.environ, "QC_REDIS_URL": self.redis.url}
        self.sim_proc = subprocess.Popen(
            [sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port", "0",
             "--channels-port", "0", "--symbols", "SPY", "--speed", f"{speed:g}", "--start", "2026-11-24 10:00",
             "--seed", "11"], cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.sim_proc.stdout is not None
        lines: list[str] = []
        while len(lines) < len(SIM_LABELS):
            line = self.sim_proc.stdout.readline()
            assert line, "qc sim exited early"
            lines.append(line.strip())
        self.ports = {label: int(re.search(r"127\.0\.0\.1:(\d+)", next(x for x in lines if x.startswith(label)))
                                 .group(1))  # type: ignore[union-attr]
                      for label in ("control", "channels")}
        eventually(lambda: read_sim_anchor(self.store) is not None, timeout_s=10)
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._drawn = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['channels']}"

    def channels_for_test(self) -> Channels:
        self._drawn += 1
        ch = Channels.draw(self._drawn)
        self.ctl("channel_secret", name=ch.hook, secret=ch.secret)  # the receiver checks every signature
        return ch

    def env(self, ch: Channels, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
        return {**base, "QC_REDIS_URL": self.redis.url, "QC_SYMBOLS": "SPY", "QC_DATA_DIR": str(self.tmp / "var"),
                "QC_LOG_LEVEL": "INFO", **ch.env(self.base), **extra}

    # --- processes ------------------------------------------------------------------------------------

    def start(self, name: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        log = (self.tmp / f"{name}.log").open("a")
        proc = subprocess.Popen([sys.executable, "-m", "qc", "distribute", *args], cwd=self.tmp, env=env, text=True,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> int:
        return stop_process(self.procs.pop(name))

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        stop_process(self.sim_proc)
        self.store.close()
        self.redis.kill()

    def reset(self) -> None:
        """Between tests: an empty Redis (the simulator re-publishes its anchor within a second)."""
        assert not self.procs, "stop every qc distribute first"
        self.store.client.flushdb()
        eventually(lambda: read_sim_anchor(self.store) is not None, timeout_s=10)

    # --- the simulator ----------------------------------------------------------------------------------

    def ctl(self, fault: str, **args: Any) -> dict[str, Any]:
        reply = requests.post(f"http://127.0.0.1:{self.ports['control']}/fault", json={"fault": fault, **args},
                              timeout=30)
        assert reply.status_code == 200, reply.text
        doc: dict[str, Any] = reply.json()
        return doc

    def received(self) -> dict[str, dict[str, Any]]:
        reply = requests.get(f"http://127.0.0.1:{self.ports['control']}/query/channels", timeout=60)
        assert reply.status_code == 200, reply.text
        return {row["channel"]: row for row in reply.json()["channels"]}

    def sim_now(self) -> float:
        anchor = read_sim_anchor(self.store)
        assert anchor is not None
        from qc.core.clock import wall_epoch

        return anchor.anchor.sim_at(wall_epoch())

    # --- signals -------------------------------------------------------------------------------------------

    def publish(self, signal_: Signal) -> None:
        """What `qc signals` does for distribution: the record, then the stream (its group created first)."""
        c = self.store.client
        stream = keys.signals_distribution(signal_.symbol).name
        try:
            c.xgroup_create(stream, "distribution", id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        record = keys.signal_record(signal_.id)
        pipe = c.pipeline(transaction=False)
        pipe.set(record.name, signal_.to_redis(), ex=record.ttl_s)
        pipe.xadd(stream, {"id": signal_.id, "signal": signal_.to_redis()})
        pipe.execute()

    def signal_record(self, signal_id: str) -> Signal:
        key = keys.signal_record(signal_id).name
        got = Signal.from_redis(self.store.client.get(key), key=key)
        assert isinstance(got, Signal), got
        return got


def make_signal(created: float, n: int = 0, strike: float = 600.0) -> Signal:
    """A 0DTE call signal created at ``created`` (qc epoch seconds), as `qc signals` would emit it."""
    now = datetime.fromtimestamp(created, timezone.utc)
    return Signal(
        id=new_id(now), created_at=now, strategy="0dte",
        contract=Contract("SPY", "OPT", date(2026, 11, 24), strike + n % 7, "C", 100, "SMART", "ARCA"),
        side="BUY", direction=1, order_type="LMT", limit=2.05, take_profit=3.08, stop=1.54,
        time_stop=now + timedelta(minutes=60), score=0.41, threshold=0.25, mode="long_gamma", size_multiplier=1.0,
        quote=Quote(2.0, 2.1, 2.05, 0.48, 5000, 900, 1.0), contributions=(), factor_inputs={}, gates=(),
        fingerprint=f"test-{n}-{created}", notes=(f"burst item {n}",), lineage={"source": "test"})


# --- what landed, per (target, signal) --------------------------------------------------------------------

ID_RE = re.compile(r"(\d{13}[0-9a-f]{8})")


def signal_id_of(row: dict[str, Any]) -> str | None:
    """The signal a received request was about: the id in the text (Telegram, X) or the webhook id."""
    text = row.get("webhook_id") or row.get("text") or ""
    found = ID_RE.search(text)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Landed:
    """One delivered request at the simulator: channel, tier, signal, simulated arrival time, and whether the
    simulator held its answer past the sender's timeout."""

    channel: str
    tier: str
    signal_id: str
    sim_time: float
    timed_out: bool


def landed(received: dict[str, dict[str, Any]], ch: Channels, ids: Iterable[str]) -> list[Landed]:
    wanted = set(ids)
    out = []
    for channel, doc in received.items():
        for row in doc["received"]:
            sid = signal_id_of(row)
            if sid not in wanted or not row["delivered"]:
                continue
            if channel == "telegram":
                tier = ch.tier_of_chat(row["target"])
            elif channel == "webhook":
                tier = row["webhook_id"].split(":")[1] if row["target"] == ch.hook else None
            else:
                tier = "free"
            if tier is not None and sid is not None:
                out.append(Landed(channel, tier, sid, float(row["sim_time"]), bool(row["timed_out"])))
    return out


def statuses(received: dict[str, dict[str, Any]], ids: Iterable[str]) -> dict[str, Counter[int]]:
    """Per channel, how often each HTTP status was answered to requests about ``ids``."""
    wanted = set(ids)
    return {channel: Counter(int(r["status"]) for r in doc["received"] if signal_id_of(r) in wanted)
            for channel, doc in received.items()}


def status_json(stack: Stack, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "qc", "distribute", "status", "--json"], cwd=stack.tmp, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def totals(doc: dict[str, Any], counter: str, channel: str | None = None) -> int:
    return sum(int(row[counter]) for row in doc["channels"] if channel in (None, row["channel"]))
