"""`qc stream` at 2,000 depth updates/s per symbol for SPY, QQQ and IWM: latency to Redis, CPU.

Three processes: a real redis-server, `qc sim --depth-rate 2000` (real speed, inside the session)
and `qc stream SPY QQQ IWM`, all on loopback. After a warm-up, the stream's own figures are read
from ``monitoring:ingest:latency``: per coalesced book write, the time from the arrival of the
*first* message it carries (start of the socket read, see ``qc.ingest.ib_feed``) to the pipeline's
reply, p50 and p99 over the last 4,096 writes. The stream's CPU is read from ``/proc/PID/stat``
(user + system) over the window. Baseline: one 20-field HSET + EXPIRE pipeline round trip from
this process to the same Redis (the floor any write path pays). Targets: product sheet p99 < 5 ms;
ours p99 < 1 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks._report import Figure
from qc import keys
from qc.store import server_command

SYMBOLS = ("SPY", "QQQ", "IWM")
RATE_HZ = 2000
WARMUP_S = 8.0
WINDOW_S = 20.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise RuntimeError("benchmark setup timed out")


def _pipeline_floor_ms(client: redis.Redis, seconds: float, every_s: float = 0.0) -> tuple[float, float]:
    """p50 and p99 of one 20-field HSET + EXPIRE pipeline round trip, sampled for ``seconds``."""
    fields: dict[Any, Any] = {f"bid:{i}": '{"price":500.01,"size":300.0,"venue":"ARCA"}' for i in range(20)}
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        pipe.hset("bench:floor", mapping=fields)
        pipe.expire("bench:floor", 60)
        pipe.execute()
        samples.append((time.perf_counter() - start) * 1000)
        time.sleep(every_s)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def _measure(url: str, client: redis.Redis) -> tuple[dict[str, str], float, float, tuple[float, float]]:
    env = {**os.environ, "QC_REDIS_URL": url}
    sim = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port", "0",
                            "--depth-rate", str(RATE_HZ), "--start", "2026-03-10 11:00",
                            "--symbols", ",".join(SYMBOLS)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stream = None
    try:
        assert sim.stdout is not None
        port = sim.stdout.readline().split("127.0.0.1:")[1].split()[0]
        _wait(lambda: client.exists(keys.sim_clock().name), 20)
        stream = subprocess.Popen([sys.executable, "-m", "qc", "stream", *SYMBOLS], stderr=subprocess.DEVNULL,
                                  env={**env, "QC_IB_PORT": port, "QC_IB_CLIENT_ID": "7"})
        _wait(lambda: client.hlen(keys.book("IWM").name) == 20, 30)
        time.sleep(WARMUP_S)
        cpu0, t0 = _cpu_s(stream.pid), time.monotonic()
        writes0 = float(client.hget(keys.ingest_latency().name, "writes") or 0)
        floor = _pipeline_floor_ms(client, WINDOW_S, every_s=0.02)  # the same round trip under the same load
        cpu1, t1 = _cpu_s(stream.pid), time.monotonic()
        time.sleep(1.2)  # one more monitor cycle publishes the window's percentiles
        latency: dict[str, str] = client.hgetall(keys.ingest_latency().name)  # type: ignore[assignment]
        writes_per_s = (float(latency["writes"]) - writes0) / (t1 - t0)
        return latency, (cpu1 - cpu0) / (t1 - t0), writes_per_s, floor
    finally:
        for proc in (stream, sim):
            if proc is not None:
                proc.terminate()
                proc.wait(20)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = subprocess.Popen(server_command(Path(tmp), port, appendonly=False),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, decode_responses=True)
        try:
            _wait(lambda: _ping(client), 10)
            idle = _pipeline_floor_ms(client, 2.0)
            latency, cpu, writes_per_s, loaded = _measure(f"redis://127.0.0.1:{port}/0", client)
        finally:
            client.close()
            server.kill()
            server.wait()
    p50, p99 = float(latency["depth_p50_ms"]), float(latency["depth_p99_ms"])
    h50, h99 = float(latency["depth_handed_p50_ms"]), float(latency["depth_handed_p99_ms"])
    floor = (f"bare 20-field HSET pipeline round trip p50/p99: idle {idle[0]:.3f}/{idle[1]:.3f} ms, "
             f"during the run {loaded[0]:.3f}/{loaded[1]:.3f} ms")
    return [
        Figure("book: first-message arrival to Redis reply, p50", p50, "ms", "< 1 ms", floor, p50 < 1.0),
        Figure("book: first-message arrival to Redis reply, p99", p99, "ms", "< 1 ms (sheet: < 5 ms)",
               f"max {float(latency['depth_max_ms']):.2f} ms over {float(latency['depth_n']):.0f} writes", p99 < 1.0),
        Figure("book: ib_async hand-over to Redis reply, p50 (qc's own part)", h50, "ms", "< 1 ms",
               "excludes ib_async decoding the rest of the socket read", h50 < 1.0),
        Figure("book: ib_async hand-over to Redis reply, p99 (qc's own part)", h99, "ms", "< 1 ms", "", h99 < 1.0),
        Figure("qc stream CPU, 3 symbols x 2,000 depth/s", cpu, "CPU-s/s", "< 1 (one of 2 cores)",
               f"{writes_per_s:,.0f} coalesced pipeline writes/s", cpu < 1.0),
    ]


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
