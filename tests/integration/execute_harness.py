"""A whole stack for `qc execute`'s tests: Redis, `qc sim`, the data workers, the executor, and the broker's view.

The executor prices every order with `qc risk`'s full pre-trade check, so the stack runs what feeds
it: `qc stream` (spot), `qc chains` (the chain), `qc analytics` (positioning) and `qc risk` (the
exposure snapshot). Signals are built by hand for a liquid option of the simulated chain and
published as `qc signals` publishes them (the record, then the execution stream). What the broker
holds is read with `qc sim ctl orders|positions|executions`, as an operator would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from ib_async import IB, Option

from qc.analytics.codec import GexSnapshot, gex_from_redis
from qc.core import clock, keys
from qc.core.codec import Absent
from qc.execute.codec import intent_from_redis
from qc.execute.model import Intent
from qc.ingest.codec import ChainRow, OptionChain
from qc.runtime.store import Store
from qc.signals.codec import Signal, new_id
from qc.signals.model import Contract, Quote

from .conftest import eventually
from .signals_harness import Stack

ROOT = Path(__file__).parents[2]
ACCOUNT = "default"
EXECUTOR_CLIENT_ID = 7
GROUP = "execution"
FEEDERS = ("stream", "chains", "analytics")
EXEC_ENV = {"QC_EXECUTE_CLIENT_ID": str(EXECUTOR_CLIENT_ID), "QC_EXECUTE_RECONCILE_S": "5",
            "QC_EXECUTE_LOST_AFTER_S": "5", "QC_RISK_INTERVAL_S": "0.5"}


def start_stack(tmp: Path, sim_args: Sequence[str], extra_env: dict[str, str] | None = None) -> Stack:
    stack = Stack(tmp, sim_args, extra_env={**EXEC_ENV, **(extra_env or {})})
    for verb in FEEDERS:
        stack.start(verb, "SPY")
    stack.start("risk")
    eventually(lambda: priced(stack.store), timeout_s=150, every_s=0.5)
    return stack


def priced(store: Store, symbols: Sequence[str] = ("SPY",)) -> bool:
    """Everything the executor prices with is in Redis: each symbol's computed positioning, quote and chain, and
    the account's exposure. An executor started earlier refuses entries (STALE_ANALYTICS and the like)."""
    c = store.client
    return all(positioned(store, sym) and c.exists(keys.quote(sym).name) and c.exists(keys.option_chain(sym).name)
               for sym in symbols) and bool(c.exists(keys.risk_exposure(ACCOUNT).name))


def trading(store: Store) -> bool:
    return store.hget(keys.execution_status(ACCOUNT), "state") == "trading"


def positioned(store: Store, symbol: str) -> bool:
    """Dealer positioning computed, not only its pending marker (which the key also holds until the first
    computation): an executor started before it would refuse every entry as STALE_ANALYTICS."""
    key = keys.gex(symbol)
    return isinstance(gex_from_redis(store.hgetall(key) or None, key=key.name), GexSnapshot)


def chain(stack: Stack) -> OptionChain:
    key = keys.option_chain("SPY").name
    got = OptionChain.from_redis(stack.store.client.get(key), key=key)
    assert isinstance(got, OptionChain), got
    return got


def liquid_call(stack: Stack, days: int = 1) -> ChainRow:
    """The call nearest the money on the first expiry at least ``days`` away, with a two-sided quote."""
    c = chain(stack)
    today = stack.sim_now().date()
    expiry = min(e for e in c.expiries if (e - today).days >= days)
    rows = [r for r in c.rows if r.expiry == expiry and r.right == "C" and r.bid > 0.2 and r.ask > r.bid]
    return min(rows, key=lambda r: abs(r.strike - c.spot))


@contextmanager
def observer(stack: Stack, row: ChainRow, client_id: int) -> Iterator[tuple[IB, Option]]:
    """A read-only ib_async client of the simulated gateway and the chain row's option, qualified."""
    ib = IB()
    ib.connect("127.0.0.1", stack.sim.port("ib"), clientId=client_id, timeout=10, readonly=True)
    try:
        option = Option("SPY", row.expiry.strftime("%Y%m%d"), row.strike, row.right, "SMART")
        ib.qualifyContracts(option)
        assert option.conId, f"no contract for {option}"
        yield ib, option
    finally:
        ib.disconnect()


def live_ask(stack: Stack, row: ChainRow, client_id: int = 31) -> float:
    """The option's ask at the simulated gateway now (the chain's quote is minutes old)."""
    with observer(stack, row, client_id) as (ib, option):
        ticker = ib.reqMktData(option, "", False, False)
        deadline = clock.monotonic() + 10
        while not (ticker.ask == ticker.ask and ticker.ask > 0) and clock.monotonic() < deadline:
            ib.sleep(0.02)
        assert ticker.ask == ticker.ask and ticker.ask > 0, f"no live quote for {option}"
        return float(ticker.ask)


def option_con_id(stack: Stack, row: ChainRow, client_id: int = 32) -> int:
    """The conId the simulated gateway gives the chain row's option."""
    with observer(stack, row, client_id) as (_, option):
        return int(option.conId)


def marketable(stack: Stack, row: ChainRow) -> float:
    """A buy limit that fills now and passes the price band: a cent over the live ask."""
    return round(live_ask(stack, row) + 0.01, 2)


def make_signal(stack: Stack, row: ChainRow, *, limit: float | None = None, tp_pct: float = 0.5,
                stop_pct: float = 0.25, hold_min: float = 60.0, strategy: str = "1dte", trail_pct: float = 0.0,
                at: datetime | None = None) -> Signal:
    now = at or stack.sim_now()
    price = limit if limit is not None else round(row.ask, 2)
    lineage: dict[str, Any] = {"source": "test"}
    if trail_pct:
        lineage["trail_pct"] = trail_pct
    signal = Signal(
        id=new_id(now), created_at=now, strategy=strategy,  # type: ignore[arg-type]
        contract=Contract("SPY", "OPT", row.expiry, row.strike, row.right, 100, "SMART", "ARCA"),
        side="BUY", direction=1, order_type="LMT", limit=price, take_profit=round(price * (1 + tp_pct), 2),
        stop=max(0.01, round(price * (1 - stop_pct), 2)), time_stop=now + timedelta(minutes=hold_min), score=0.6,
        threshold=0.3, mode="neutral", size_multiplier=1.0,
        quote=Quote(row.bid, row.ask, row.mark, row.delta, row.open_interest, row.volume, 1.0),
        contributions=(), factor_inputs={}, gates=(), fingerprint=f"test-{now.timestamp()}", lineage=lineage,
        trail_pct=trail_pct)
    return signal


def publish(stack: Stack, signal: Signal) -> str:
    """What `qc signals` does for execution: the record, then the stream (group created first)."""
    c = stack.store.client
    stream = keys.signals_execution(signal.symbol).name
    try:
        c.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    c.set(keys.signal_record(signal.id).name, signal.to_redis(), ex=3600)
    return str(c.xadd(stream, {"id": signal.id, "signal": signal.to_redis()}))


def intent(stack: Stack, intent_id: str) -> Intent | Absent:
    key = keys.order_intent(intent_id).name
    return intent_from_redis(stack.store.client.get(key), key=key)


def wait_state(stack: Stack, intent_id: str, *states: str, timeout_s: float = 60.0) -> Intent:
    def reached() -> bool:
        got = intent(stack, intent_id)
        return isinstance(got, Intent) and got.state.value in states

    eventually(reached, timeout_s=timeout_s, every_s=0.1)
    got = intent(stack, intent_id)
    assert isinstance(got, Intent)
    return got


def sim_ctl_json(stack: Stack, *args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", str(stack.sim.port("control")), *args,
                          "--json"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def broker_orders(stack: Stack) -> list[dict[str, Any]]:
    got = sim_ctl_json(stack, "orders")
    return list(got["orders"] if isinstance(got, dict) else got)


def qc_json(stack: Stack, *args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "qc", *args, "--json"], cwd=ROOT, env=stack.env,
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def today(stack: Stack) -> date:
    return stack.sim_now().date()


def assert_broker_consistent(stack: Stack, ids: Sequence[str]) -> Counter[str]:
    """What every fault test ends with, read at the broker as an operator would; returns the intents' states.

    - no order reference twice at the broker (nothing duplicated);
    - every option position covered by qc's working stops for all of it (nothing naked);
    - every execution of qc's orders recorded once in Redis, and qc's positions equal the broker's.
    """
    from qc.core.order_ref import parse
    from qc.execute.codec import fill_from_redis
    from qc.execute.model import Fill
    from qc.risk.position_codec import PositionRecord, position_from_redis

    intents = [intent(stack, i) for i in ids]
    assert all(isinstance(i, Intent) for i in intents), intents
    states = Counter(i.state.value for i in intents if isinstance(i, Intent))
    orders = broker_orders(stack)
    refs = Counter(o["orderRef"] for o in orders if parse(o["orderRef"]))
    assert [r for r, k in refs.items() if k > 1] == [], "duplicate orders at the broker"
    working = [o for o in orders if o["status"] in ("Submitted", "PreSubmitted") and parse(o["orderRef"])]
    positions = {p["conId"]: p for p in sim_ctl_json(stack, "positions")["positions"] if p["secType"] == "OPT"}
    for con_id, p in positions.items():
        if p["qty"] == 0:
            continue
        stops = [o for o in working if o["conId"] == con_id and getattr(parse(o["orderRef"]), "leg", "") == "stop"]
        assert sum(o["remaining"] for o in stops) == abs(p["qty"]), f"conId {con_id}: {p['qty']} held, {stops}"
    executions = [e for e in sim_ctl_json(stack, "executions")["executions"] if parse(e["orderRef"])]
    symbols = {e["symbol"] for e in executions} | {"SPY"}
    recorded: Counter[str] = Counter()
    for sym in symbols:
        for k, v in stack.store.client.hgetall(keys.fills(sym).name).items():
            f = fill_from_redis(v, key=k)
            if isinstance(f, Fill):
                recorded[f.exec_id] += 1
    assert {e["execId"] for e in executions} <= set(recorded), "a fill of qc's orders was not recorded"
    assert max(recorded.values(), default=1) == 1
    for con_id, p in positions.items():
        key = keys.position_open(ACCOUNT, con_id)
        ours = position_from_redis(stack.store.hgetall(key), key=key.name)
        assert isinstance(ours, PositionRecord) and ours.position.quantity == p["qty"], (con_id, p, ours)
    return states
