"""Only keys.py spells a Redis key; the runbook lines of DESIGN.md §4 resolve to keys.py's keys.

The runbook lines are copied here from DESIGN.md §4 (the suite never reads ../shared: it must pass on
a lone clone); they are the operators' public contract, so a change to them is a change to this test.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from redis.crc import key_slot

from qc.core import keys

ROOT = Path(__file__).parents[2]
NAMESPACES = ("market", "options", "analytics", "signals", "positions", "orders", "execution", "risk",
              "distribution", "heartbeat", "monitoring", "ibkr")
LITERAL = re.compile(r"""["'](""" + "|".join(NAMESPACES) + "):")


def test_no_module_but_keys_spells_a_key() -> None:
    offenders = []
    for path in (ROOT / "qc").rglob("*.py"):
        if path == ROOT / "qc" / "core" / "keys.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if LITERAL.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


RUNBOOK = """
redis-cli get heartbeat:ibkr_ingestion   # recent timestamp
redis-cli hlen market:SPY:book           # number of depth levels
redis-cli hget analytics:SPY:vpin value  # toxicity score
redis-cli hget analytics:SPY:gex total   # gamma exposure
redis-cli llen signals:pending:SPY       # pending signal count
"""


def test_runbook_lines_match_design_md() -> None:
    lines = re.findall(r"^redis-cli (\S+ \S+(?: \S+)?)\s+#", RUNBOOK, flags=re.M)
    assert len(lines) == 5
    for line in lines:
        name = line.split()[1]
        key = keys.RUNBOOK_KEYS[line.strip()]
        assert key.name == name, line


def test_every_key_but_positions_expires() -> None:
    samples = [keys.heartbeat("x"), keys.book("SPY"), keys.bars_1min("SPY"), keys.option_chain("SPY"),
               keys.vpin("SPY"), keys.gex("SPY"), keys.flow_clusters("SPY"), keys.signals_pending("SPY"),
               keys.order_pending(1), keys.fills("SPY"), keys.risk_breaches_count(), keys.distribution_queue("premium"),
               keys.data_stale(), keys.ibkr_connected(), keys.alpha_vantage_metrics(), keys.sim_clock()]
    assert all(k.ttl_s is not None and k.ttl_s > 0 for k in samples)
    assert keys.position_open("DU1", 1).ttl_s is None


def test_namespace_ttls_follow_design() -> None:
    assert keys.option_chain("SPY").ttl_s == 900
    assert keys.gex("SPY").ttl_s == 300
    assert keys.signals_pending("SPY").ttl_s == 3600
    assert keys.risk_breaches_count().ttl_s == 86400
    assert 60 <= keys.book("SPY").ttl_s <= 3600  # type: ignore[operator]


def test_each_signal_hand_off_is_one_cluster_slot() -> None:
    """`qc execute` and `qc distribute` read every symbol's hand-off stream in one XREADGROUP, which a Redis Cluster
    accepts only within one slot: the hand-offs carry a hash tag each, and no other key carries one."""
    symbols = ("SPY", "QQQ", "IWM", "DIA", "AAPL", "BRK.B")
    hand_offs = (keys.signals_execution, keys.signals_distribution)
    slots = [{key_slot(hand_off(sym).name.encode()) for sym in symbols} for hand_off in hand_offs]
    assert [len(s) for s in slots] == [1, 1]
    assert len({key_slot(keys.book(sym).name.encode()) for sym in symbols}) > 1  # a symbol's other keys spread
    tagged = []
    for name, fn in vars(keys).items():
        if inspect.isfunction(fn) and fn.__module__ == keys.__name__ and fn not in hand_offs:
            got = fn(*["x"] * len(inspect.signature(fn).parameters))
            if isinstance(got, keys.Key) and "{" in got.name:
                tagged.append(name)
    assert tagged == []
