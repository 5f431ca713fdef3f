"""`qc sim` and `qc stream` as subprocesses on loopback, for the stream's integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from qc.core import keys
from qc.runtime.store import Store

from .conftest import RedisServer, eventually

SIM_ARGS = ["--start", "2026-03-10 10:30", "--speed", "10", "--seed", "11", "--symbols", "SPY,QQQ",
            "--depth-rate", "100"]
STREAM_FLAGS = ["--max-backoff", "0.5", "--resubscribe-every", "1"]


class SimProcess:
    """A running `qc sim` and its announced ports."""

    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc, self.lines = proc, lines

    def port(self, label: str) -> int:
        line = next(line for line in self.lines if line.startswith(label))
        return int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]

    def ctl(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", str(self.port("control")),
                               *args], capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr


def start_sim(redis_url: str, cwd: Path, args: Sequence[str] = tuple(SIM_ARGS)) -> SimProcess:
    """`qc sim` on free ports with ``args``; returns once it has announced its four endpoints."""
    env = {**os.environ, "QC_REDIS_URL": redis_url}
    proc = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0",
                             "--ctl-port", "0", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 4:
        line = proc.stdout.readline()
        assert line, "qc sim exited early"
        lines.append(line.strip())
    return SimProcess(proc, lines)


def stop_process(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture(scope="module")
def sim(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    running = start_sim(redis_server.url, tmp_path_factory.mktemp("sim"))
    yield running
    stop_process(running.proc)


def stream_env(redis_url: str, ib_port: int, client_id: int) -> dict[str, str]:
    return {**os.environ, "QC_REDIS_URL": redis_url, "QC_IB_PORT": str(ib_port), "QC_IB_CLIENT_ID": str(client_id)}


def start_stream(store: Store, redis_url: str, sim: SimProcess, client_id: int, *args: str) -> subprocess.Popen[str]:
    """`qc stream` against the simulator, started once the simulator's clock anchor is in Redis."""
    eventually(lambda: store.hgetall(keys.sim_clock()), timeout_s=10)
    return subprocess.Popen([sys.executable, "-m", "qc", "stream", *args, *STREAM_FLAGS],
                            env=stream_env(redis_url, sim.port("ib"), client_id), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def book_levels(store: Store, symbol: str = "SPY") -> int:
    return int(store.client.hlen(keys.book(symbol).name))


def writes(store: Store) -> int:
    return int(float(store.hget(keys.ingest_latency(), "writes") or 0))
