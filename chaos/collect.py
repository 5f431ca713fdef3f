"""The records the end checks judge: the simulator's own (through `qc sim ctl … --json`, as an operator
reads the broker) and Redis's (through qc's codecs). I/O only; the judging is ``chaos.invariants``.

Why collected before `qc up` stops: the simulator and the embedded Redis are `qc up`'s children, and
their records leave with them. Everything collected is kept in the run's JSON, so a verdict can be
recomputed without the stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qc.core import keys
from qc.core.codec import Absent
from qc.core.config import Settings
from qc.distribute import codec as distribute_codec
from qc.distribute import config as distribute_config
from qc.distribute.channels import routing_of
from qc.distribute.cycle import metrics as distribute_metrics
from qc.distribute.report import dead_doc
from qc.execute.codec import fill_from_redis, intent_from_redis
from qc.execute.model import Fill, Intent
from qc.execute.report import executor_status
from qc.runtime.store import Store
from qc.runtime.supervisor import sim_channels_env
from qc.signals.codec import Signal
from tests.integration.distribute_harness import Channels

SYMBOLS = ("SPY", "QQQ", "IWM")
ACCOUNT = "default"
DEAD_MAX = 100_000


def sim_ctl_json(root: Path, env: Mapping[str, str], ctl_port: int, query: str) -> list[dict[str, Any]]:
    """`qc sim ctl --ctl-port P QUERY --json`'s rows (as tests.integration.execute_harness.sim_ctl_json)."""
    out = subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", str(ctl_port), query, "--json"],
                         cwd=root, env=dict(env), capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(out.stdout)
    rows: list[dict[str, Any]] = doc[query] if isinstance(doc, dict) else doc
    return rows


def sim_routing() -> tuple[list[tuple[str, str, str]], Channels]:
    """What `qc up` gives `qc distribute` under the simulator (``sim_channels_env``): every (tier, channel,
    target) a signal must reach, and the chats and hook as ``distribute_harness.landed`` needs them."""
    settings = Settings()
    tiers = tuple(t.name for t in routing_of(settings).tiers)
    env = sim_channels_env(settings, tiers, "whsec_unused")
    routing = distribute_config.routing(tiers=settings.distribute_tiers, telegram=env["QC_TELEGRAM_CHATS"],
                                        webhooks=env["QC_WEBHOOKS"], x_tiers=env["QC_X_TIERS"],
                                        max_lateness=settings.distribute_max_lateness)
    expected = sorted({(tier, str(t.channel), t.name) for t in routing.targets for tier in t.tiers})
    chats = dict(pair.split("=", 1) for pair in env["QC_TELEGRAM_CHATS"].split(","))
    hook = env["QC_WEBHOOKS"].split("=", 1)[0]
    return expected, Channels("qc-up", env["QC_TELEGRAM_BOT_TOKEN"], chats, hook, "", env["QC_X_ACCESS_TOKEN"])


@dataclass
class Records:
    """Everything the end checks need, as plain data (JSON-ready)."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    received: dict[str, dict[str, Any]] = field(default_factory=dict)  # channel -> the `channels` query row
    fills: list[str] = field(default_factory=list)  # execId of every field of every execution:fills:{sym}
    signals: list[str] = field(default_factory=list)  # signals:log, oldest first
    intents: dict[str, str | None] = field(default_factory=dict)  # signal id -> intent state (None: none)
    verdicts: dict[str, bool] = field(default_factory=dict)  # signal id -> qc risk approved it
    deliveries: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {"tier:channel:target": outcome}
    dead: list[list[str]] = field(default_factory=list)  # [signal id, tier, channel, target] per dead letter
    executor: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # records that did not decode

    def delivery_map(self) -> dict[str, dict[tuple[str, str, str], str]]:
        out: dict[str, dict[tuple[str, str, str], str]] = {}
        for sid, recs in self.deliveries.items():
            out[sid] = {}
            for name, outcome in recs.items():
                tier, channel, target = name.split(":", 2)
                out[sid][(tier, channel, target)] = outcome
        return out

    def dead_set(self) -> list[tuple[str, str, str, str]]:
        return [(d[0], d[1], d[2], d[3]) for d in self.dead]


def from_simulator(records: Records, root: Path, env: Mapping[str, str], ctl_port: int) -> None:
    records.orders = sim_ctl_json(root, env, ctl_port, "orders")
    records.positions = sim_ctl_json(root, env, ctl_port, "positions")
    records.executions = sim_ctl_json(root, env, ctl_port, "executions")
    records.received = {row["channel"]: row for row in sim_ctl_json(root, env, ctl_port, "channels")}


def from_redis(records: Records, store: Store) -> None:
    c = store.client
    symbols = set(SYMBOLS) | {str(e.get("symbol")) for e in records.executions if e.get("symbol")}
    for sym in sorted(symbols):
        for name, raw in c.hgetall(keys.fills(sym).name).items():
            got = fill_from_redis(raw, key=f"{keys.fills(sym).name}[{name}]")
            if isinstance(got, Fill):
                records.fills.append(got.exec_id)
            else:
                records.problems.append(str(got))
    records.signals = [str(s) for s in c.zrange(keys.signals_log().name, 0, -1)]
    for sid in records.signals:
        _signal(records, store, sid)
    for letter in distribute_metrics.dead_letters(store, DEAD_MAX):
        doc = dead_doc(letter)
        if doc["signal_id"]:
            records.dead.append([str(doc["signal_id"]), letter.tier, letter.channel, str(doc["target"])])
    records.executor = executor_status(store, ACCOUNT, limit=20)


def _signal(records: Records, store: Store, sid: str) -> None:
    c = store.client
    key = keys.order_intent(sid).name
    intent = intent_from_redis(c.get(key), key=key)
    records.intents[sid] = intent.state.value if isinstance(intent, Intent) else None
    raw_verdict = c.get(keys.risk_verdict(sid).name)
    if raw_verdict:
        doc = json.loads(raw_verdict)
        if isinstance(doc, dict) and isinstance(doc.get("approved"), bool):
            records.verdicts[sid] = doc["approved"]
    record_key = keys.signal_record(sid).name
    signal = Signal.from_redis(c.get(record_key), key=record_key)
    if not isinstance(signal, Signal):
        records.problems.append(str(signal))
        return
    got = distribute_codec.deliveries_of(signal.lineage, key=record_key)
    if isinstance(got, Absent):
        records.problems.append(str(got))
        return
    records.deliveries[sid] = {d.field: d.outcome for d in got}
