"""The whole stack from `qc up` on the simulator, with its dashboard, and a real headless Chromium to look at it.

Chromium is Debian's (``/usr/bin/chromium``, provisioned by ``.ci/run``), driven by Playwright without any
browser download. Where it is missing the browser tests skip with the command that installs it, except under
CI (``CI`` set), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from qc.core import keys
from qc.core.config import Settings
from qc.runtime.store import Store, connect

from .conftest import eventually, free_port

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]
OPERATOR_TOKEN = "op-" + "t3st" * 5  # a test value, never a real credential
ARTIFACTS = Path(os.environ.get("QC_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "var" / "test-artifacts"))


def chromium_path() -> str:
    """Debian's Chromium, or a skip (a failure under CI) saying how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    why = "Debian's chromium is not installed: sudo apt-get install chromium (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class DeskStack:
    """`qc up` running in ``root`` with the dashboard on ``url``."""

    root: Path
    env: dict[str, str]
    proc: subprocess.Popen[str]
    store: Store
    url: str

    @property
    def client(self) -> redis.Redis:
        c: redis.Redis = self.store.client
        return c

    def qc(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qc", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout_s, check=False)


def stack_env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "QC_DATA_DIR": str(root / "var"), "QC_EMBEDDED_REDIS_PORT": str(free_port()),
            "QC_SIM_IB_PORT": str(free_port()), "QC_SIM_AV_PORT": str(free_port()),
            "QC_SIM_CTL_PORT": str(free_port()), "QC_SIM_CHANNELS_PORT": str(free_port()),
            "QC_DASHBOARD_PORT": str(free_port()), "QC_SIM_START": "2026-11-24 10:30", "QC_SIM_SPEED": "5",
            "QC_OPERATOR_TOKEN": OPERATOR_TOKEN, **extra}


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def desk_stack(root: Path, **extra: str) -> Iterator[DeskStack]:
    """`qc up` in ``root``; yields once the dashboard answers and every symbol's positioning is in Redis."""
    env = stack_env(root, **extra)
    log = (root / "up.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "qc", "up"], cwd=root, env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    store: Store | None = None
    try:
        eventually(lambda: (root / "var" / "redis" / "redis.pid").exists() or proc.poll() is not None, 60)
        store = connect(Settings(data_dir=str(root / "var"), embedded_redis_port=int(env["QC_EMBEDDED_REDIS_PORT"])))
        url = f"http://127.0.0.1:{env['QC_DASHBOARD_PORT']}/"
        eventually(lambda: _answers(url + "healthz") or proc.poll() is not None, 90, every_s=0.2)
        assert proc.poll() is None, (root / "up.log").read_text()
        for sym in ("SPY", "QQQ", "IWM"):  # `qc chains` then `qc analytics`: the first cycle of each
            eventually(_positioning_of(store, sym), 150, every_s=0.5)
        yield DeskStack(root, env, proc, store, url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if store is not None:
            store.close()


def _positioning_of(store: Store, symbol: str) -> Callable[[], bool]:
    def stored() -> bool:
        try:
            return bool(store.hget(keys.gex(symbol), "total"))
        except redis.ConnectionError:
            return False

    return stored
