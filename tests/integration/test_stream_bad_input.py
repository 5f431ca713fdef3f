"""`qc stream XYZ`: one line naming the symbol and the fix, exit 1 (an in-process gateway, no clock anchor)."""

from __future__ import annotations

import subprocess
import sys

from qc.core import keys
from qc.runtime.store import Store

from .conftest import RedisServer
from .ib_sim_harness import start_gateway, stop_gateway
from .stream_harness import stream_env


def test_unknown_symbol_is_one_line_and_exit_1(redis_server: RedisServer, store: Store) -> None:
    gateway = start_gateway()
    try:
        done = subprocess.run([sys.executable, "-m", "qc", "stream", "XYZ"], capture_output=True, text=True,
                              timeout=60, env=stream_env(redis_server.url, gateway.port, 13), check=False)
    finally:
        stop_gateway(gateway)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: no security definition for XYZ (check the spelling: qc stream takes US stock symbols such as SPY)"]
    assert store.hgetall(keys.data_stale()) == {}  # it left no stale marks behind
