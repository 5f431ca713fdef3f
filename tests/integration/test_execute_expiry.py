"""0DTE positions held through the close (the hard close disabled): the simulated broker settles them, qc agrees.

The session starts at 15:53 New York at 10x, so the close comes a minute or two after the stack
is ready. A same-day call above spot and a put below it are bought (their quotes held still), then SPY
is pinned just over the call's strike: the call is exercised into 100 shares, the put expires.
After the close the broker's lifecycle executions and positions reach qc, and reconciliation must
end the intents as exercised and expired, hold the shares it did not buy (and say so in an
alert), and agree with the broker's positions, as `qc positions` shows them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from qc.core import keys
from qc.execute.model import State
from qc.ingest.codec import ChainRow

from .conftest import eventually
from .execute_harness import (
    ROOT,
    chain,
    live_ask,
    make_signal,
    option_con_id,
    publish,
    sim_ctl_json,
    start_stack,
    trading,
    wait_state,
)
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 15:53", "--speed", "10", "--seed", "5", "--depth-rate", "20")
ENV = {"QC_EXECUTE_HARD_CLOSE_MIN": "0", "QC_RISK_LIMITS": "zero_dte_cutoff_min=0,price_band_pct=50,max_spread_pct=off"}
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("execute-expiry"), SIM, ENV)
    s.start("execute")
    eventually(lambda: trading(s.store), timeout_s=60)
    yield s
    s.close()


def same_day_pair(stack: Stack) -> tuple[ChainRow, ChainRow]:
    """Today's first call above spot and first put below it, each with an IV (risk prices them)."""
    c = chain(stack)
    today = stack.sim_now().date()
    rows = [r for r in c.rows if r.expiry == today and r.iv is not None]
    calls = sorted((r for r in rows if r.right == "C" and r.strike > c.spot), key=lambda r: r.strike)
    puts = sorted((r for r in rows if r.right == "P" and r.strike < c.spot), key=lambda r: -r.strike)
    assert calls and puts, f"no same-day options around {c.spot}: {[(r.right, r.strike) for r in rows][:40]}"
    return calls[0], puts[0]


def test_a_0dte_position_held_through_the_close_is_exercised_or_expires(stack: Stack) -> None:
    call, put = same_day_pair(stack)
    ids = {}
    for name, row in (("call", call), ("put", put)):
        # each option's quote held still (a collapsing 0DTE bid would trip the stop before the close)
        mark = max(row.mark, 0.30)
        stack.sim.ctl("pin-quote", str(option_con_id(stack, row)), f"{mark - 0.02:.2f}", f"{mark + 0.02:.2f}")
        signal = make_signal(stack, row, limit=round(live_ask(stack, row) + 0.02, 2), strategy="0dte",
                             tp_pct=50.0, stop_pct=0.99)  # exits out of reach: the position meets the close
        publish(stack, signal)
        got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
        assert got.state is State.PROTECTED, (name, got.reasons)
        ids[name] = got
    # the close prints half a dollar over the call's strike: the call ends in the money, the put out of it
    stack.sim.ctl("pin-quote", "SPY", f"{call.strike + 0.49:.2f}", f"{call.strike + 0.51:.2f}")
    exercised = wait_state(stack, ids["call"].id, "exercised", "expired", timeout_s=300)
    expired = wait_state(stack, ids["put"].id, "expired", "exercised", timeout_s=120)
    assert exercised.state is State.EXERCISED, exercised.history
    assert expired.state is State.EXPIRED, expired.history

    broker = {p["conId"]: p["qty"] for p in sim_ctl_json(stack, "positions")["positions"]}
    shares = next(con for con, qty in broker.items() if qty and con not in (exercised.con_id, expired.con_id))
    assert broker[shares] == 100 * exercised.filled_qty
    assert broker.get(exercised.con_id, 0) == 0 and broker.get(expired.con_id, 0) == 0

    def ours() -> dict[int, int]:
        out = subprocess.run([sys.executable, "-m", "qc", "positions", "--json", "--all"], cwd=ROOT, env=stack.env,
                             capture_output=True, text=True, timeout=60, check=True)
        return {p["con_id"]: p["qty"] for p in json.loads(out.stdout)["positions"]}

    eventually(lambda: {k: v for k, v in ours().items() if v} == {k: v for k, v in broker.items() if v},
               timeout_s=60, every_s=1.0)
    alerts = [f["kind"] for _, f in stack.store.client.xrange(keys.execution_alerts().name)]
    assert "shares_held" in alerts or "exercised" in alerts, alerts
