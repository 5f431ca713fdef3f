"""A reader that leaves early (`qc status | head -1`) ends qc quietly with 141, through a real pipe."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from qc.core import clock, keys
from qc.runtime.codec import ChildStatus, Heartbeat, SupervisorChildren, WorkerEntry, WorkerRegistry
from qc.runtime.store import Store
from qc.runtime.supervisor import SUPERVISOR_NAME

from .conftest import RedisServer

MANY = 400  # rows: well past the 4 KiB pipe below, so the writer blocks until the reader leaves
PIPE_BYTES = 4096
NOISE = ("internal error", "Traceback", "BrokenPipe", "Exception ignored", "Errno 32")


def fill(store: Store) -> None:
    """A busy stack: a supervisor with many children, many workers beating."""
    now = clock.wall_epoch()
    workers = {f"worker_{i:04d}": WorkerEntry(pid=10_000 + i, host="box", started=now - 60, cycles=1)
               for i in range(MANY)}
    workers[SUPERVISOR_NAME] = WorkerEntry(pid=9_999, host="box", started=now - 60, cycles=1)
    store.hset(keys.worker_registry(), WorkerRegistry(workers).to_redis())
    pipe = store.client.pipeline(transaction=False)
    for module in workers:
        beat = keys.heartbeat(module)
        pipe.set(beat.name, Heartbeat(now).to_redis(), ex=beat.ttl_s)
    pipe.execute()
    store.hset(keys.supervisor_children(), SupervisorChildren(
        {f"child_{i:04d}": ChildStatus(10_000 + i, "running", 0) for i in range(MANY)}).to_redis())


def small_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return read_end, write_end


def start(url: str, args: list[str], stdout: int, unbuffered: bool = False) -> subprocess.Popen[bytes]:
    """qc with stdout block-buffered as in a shell, unless ``unbuffered`` (PYTHONUNBUFFERED=1)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, "-m", "qc", "--redis-url", url, *args], stdout=stdout,
                            stderr=subprocess.PIPE, env=env)


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["ps"], ["ps", "--json"], ["--help"]])
def test_reader_leaving_after_one_line_ends_qc_quietly(store: Store, redis_server: RedisServer,
                                                       args: list[str]) -> None:
    fill(store)
    read_end, write_end = small_pipe()
    proc = start(redis_server.url, args, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()  # `head -1`: one line, then gone
    _, err = proc.communicate(timeout=120)
    assert first.strip()
    if args == ["--help"]:  # short: written whole before the reader leaves
        assert proc.returncode == 0
    else:
        assert proc.returncode == 141, err.decode()
    assert not [n for n in NOISE if n in err.decode()], err.decode()


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["ps"]])
def test_reader_gone_before_the_first_line(store: Store, redis_server: RedisServer, args: list[str]) -> None:
    fill(store)
    read_end, write_end = small_pipe()
    os.close(read_end)
    proc = start(redis_server.url, args, write_end)
    os.close(write_end)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()
    assert not [n for n in NOISE if n in err.decode()], err.decode()


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["ps"], ["ps", "--json"]])
def test_unbuffered_stdout_is_quiet_too(store: Store, redis_server: RedisServer, args: list[str]) -> None:
    """PYTHONUNBUFFERED=1: a single large write may end short without an error (CPython writes it once),
    so the exit may be the command's own; it is never an error message."""
    fill(store)
    read_end, write_end = small_pipe()
    proc = start(redis_server.url, args, write_end, unbuffered=True)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert reader.readline().strip()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1, 141), err.decode()
    assert not [n for n in NOISE if n in err.decode()], err.decode()
