"""Run the simulated IB Gateway in its own process for ``bench_sim_ib`` (so its CPU time is its own).

Usage: ``python -m benchmarks.ib_sim_runner DEPTH_RATE_HZ SPEED``. Prints the port on the first
line, then answers each stdin line: ``mark`` prints one JSON line with the process CPU seconds,
the monotonic time and the server's ``stats()``; ``stop`` does the same and exits.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import threading
import time
from datetime import datetime, timezone

from qc.core import clock
from qc.core.clock import NEW_YORK, SimAnchor, SimClock
from qc.sim.broker.engine import SimBroker
from qc.sim.ib.server import IBGatewayServer
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

START = datetime(2026, 3, 10, 11, 0, tzinfo=NEW_YORK).astimezone(timezone.utc)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(rate: float, speed: float) -> None:
    model = SimMarket(START, SimParams(depth_rate_hz=rate))
    server = IBGatewayServer(model, SimBroker({"DU1234567": 1e6}), SimClock(SimAnchor(clock.wall_epoch(),
                                                                                      START.timestamp(), speed)))
    port = await server.start()
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def report(command: str) -> None:
        print(json.dumps({"cpu_s": cpu_seconds(), "mono": time.monotonic(), "stats": server.stats()}), flush=True)
        if command == "stop":
            done.set()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(report, line.strip())
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=read_stdin, daemon=True).start()
    await done.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), float(sys.argv[2])))
