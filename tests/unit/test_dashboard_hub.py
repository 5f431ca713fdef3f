"""The push hub on its own (no socket, no Redis): snapshot then changes, one poller, drops, outages, secrets.

The build functions here are plain callables returning documents; the hub's contract with the real panels
and a real Redis is proven in tests/integration/test_dashboard_server.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest
import redis

from qc.dashboard.hub import CLOSE, Hub, Subscriber
from qc.dashboard.security import SecretScrubber


class Source:
    """Documents the test edits between builds; counts the builds; can fail like a dead Redis."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {
            "symbol:SPY": {"as_of": "t0", "age_s": 0.0, "stale": False, "stale_after_s": 15.0, "vpin": 0.4},
            "risk": {"as_of": "t0", "age_s": 0.0, "stale": False, "stale_after_s": 30.0, "trading_state": "ACTIVE"},
            "health": {"as_of": "t0", "age_s": 0.0, "stale": False, "stale_after_s": 30.0, "state": "healthy"},
        }
        self.calls = 0
        self.fail: Exception | None = None

    def __call__(self) -> Mapping[str, Mapping[str, Any]]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return {pid: dict(doc) for pid, doc in self.docs.items()}


def frames(sub: Subscriber) -> list[tuple[str, dict[str, Any]]]:
    """Every frame queued so far, decoded (CLOSE as ("CLOSE", {}))."""
    out: list[tuple[str, dict[str, Any]]] = []
    while not sub.queue.empty():
        frame = sub.queue.get_nowait()
        if frame == CLOSE:
            out.append(("CLOSE", {}))
            continue
        head, data = frame.decode().split("\n", 1)
        assert head == "event: panel" and data.startswith("data: ") and frame.endswith(b"\n\n")
        doc = json.loads(data[len("data: "):])
        out.append((doc["id"], doc["doc"]))
    return out


def outage(hub: Hub) -> str | None:
    return hub.error


async def settle(hub: Hub, builds: int) -> None:
    """Let the poller run until it has built ``builds`` more times."""
    target = hub.builds + builds
    for _ in range(500):
        if hub.builds >= target:
            await asyncio.sleep(0.01)  # the publish after the build
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the hub built {hub.builds} times, not {target}")


def test_snapshot_first_then_only_changed_panels_and_one_poller_for_all() -> None:
    async def scenario() -> None:
        source = Source()
        hub = Hub(source, interval_s=0.02)
        hub.start()
        await asyncio.sleep(0.1)
        assert source.calls == 0  # nobody watches: no build
        a = hub.subscribe()
        await settle(hub, 1)
        assert sorted(pid for pid, _ in frames(a)) == ["health", "risk", "symbol:SPY"]
        await settle(hub, 3)
        assert frames(a) == []  # nothing changed: nothing sent
        source.docs["risk"]["trading_state"] = "HALTED"
        source.docs["health"]["age_s"] = 1.0  # a panel whose data stopped: its age alone moves, once a second
        await settle(hub, 2)
        got = dict(frames(a))
        assert sorted(got) == ["health", "risk"] and got["risk"]["trading_state"] == "HALTED"
        assert got["health"]["age_s"] == 1.0
        b = hub.subscribe()
        await settle(hub, 2)
        assert sorted(pid for pid, _ in frames(b)) == ["health", "risk", "symbol:SPY"]  # a newcomer: everything
        assert frames(a) == []
        before = source.calls
        await asyncio.sleep(0.2)
        assert source.calls - before <= 0.2 / 0.02 + 2  # two subscribers, one poller
        hub.unsubscribe(a)
        hub.unsubscribe(b)
        await asyncio.sleep(0.05)
        idle = source.calls
        await asyncio.sleep(0.15)
        assert source.calls == idle  # nobody left: the poller sleeps
        await hub.stop()

    asyncio.run(scenario())


def test_a_subscriber_that_does_not_drain_is_dropped_and_closed() -> None:
    async def scenario() -> None:
        source = Source()
        hub = Hub(source, interval_s=0.01, queue_frames=4)
        hub.start()
        slow = hub.subscribe()
        await settle(hub, 1)  # 3 frames of 4
        source.docs["risk"]["trading_state"] = "REDUCING"
        source.docs["health"]["state"] = "unhealthy"
        for _ in range(500):  # the next build queues 2 more: over the bound
            if slow.closed:
                break
            await asyncio.sleep(0.005)
        assert hub.subscribers == 0 and slow.closed
        assert frames(slow) == [("CLOSE", {})]  # its backlog discarded, its stream told to end
        await hub.stop()

    asyncio.run(scenario())


def test_redis_down_marks_every_panel_stale_says_so_in_health_and_recovers() -> None:
    async def scenario() -> None:
        source = Source()
        hub = Hub(source, interval_s=0.01, address="redis://127.0.0.1:1/0")
        hub.start()
        sub = hub.subscribe()
        await settle(hub, 1)
        frames(sub)
        source.fail = redis.ConnectionError("Connection refused")
        await settle(hub, 1)
        got = dict(frames(sub))
        assert set(got) == {"health", "risk", "symbol:SPY"}
        unreachable = "Redis unreachable at redis://127.0.0.1:1/0"
        assert all(doc["stale"] and unreachable in doc["error"] for doc in got.values())
        assert got["symbol:SPY"]["vpin"] == 0.4  # the last data stays, greyed, with its age
        assert got["health"]["redis_reachable"] is False and got["health"]["missing"] == got["health"]["error"]
        assert outage(hub) is not None and hub.subscribers == 1
        await settle(hub, 2)
        assert frames(sub) == []  # the same outage is said once
        source.fail = None
        await settle(hub, 1)
        back = dict(frames(sub))
        assert set(back) == {"health", "risk", "symbol:SPY"} and not any("error" in d for d in back.values())
        assert outage(hub) is None
        await hub.stop()

    asyncio.run(scenario())


def test_a_bug_in_the_build_is_survived_like_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        source = Source()
        source.fail = KeyError("oops")
        hub = Hub(source, interval_s=0.01)
        hub.start()
        sub = hub.subscribe()
        await settle(hub, 2)
        got = dict(frames(sub))
        assert "building the panels failed: KeyError" in got["health"]["error"]
        await hub.stop()

    asyncio.run(scenario())
    assert "building the dashboard panels failed" in caplog.text


def test_secrets_are_masked_and_one_unserialisable_panel_costs_only_itself() -> None:
    async def scenario() -> None:
        source = Source()
        source.docs["health"]["note"] = "url?apikey=av-secret-0123456789"
        source.docs["risk"]["bad"] = {1, 2}  # a set: not JSON
        hub = Hub(source, interval_s=0.01, scrubber=SecretScrubber(["av-secret-0123456789"]))
        hub.start()
        sub = hub.subscribe()
        await settle(hub, 1)
        queued = list(sub.queue._queue)  # type: ignore[attr-defined]  # the raw bytes, before decoding
        assert not any(b"av-secret-0123456789" in frame for frame in queued)
        got = dict(frames(sub))
        assert got["health"]["note"] == "url?apikey=***"
        assert got["risk"]["stale"] and "could not be serialised" in got["risk"]["missing"]
        assert got["symbol:SPY"]["vpin"] == 0.4
        await hub.stop()

    asyncio.run(scenario())


def test_stop_closes_every_stream() -> None:
    async def scenario() -> None:
        hub = Hub(Source(), interval_s=0.01)
        hub.start()
        subs = [hub.subscribe(), hub.subscribe()]
        await settle(hub, 1)
        await hub.stop()
        assert all(frames(s)[-1] == ("CLOSE", {}) for s in subs)
        late = hub.subscribe()
        assert frames(late) == [("CLOSE", {})]

    asyncio.run(scenario())
