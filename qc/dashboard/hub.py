"""The push hub: ONE poller per dashboard process, however many browsers watch, fanning panels out over SSE.

While at least one subscriber is connected, every ``interval_s`` the hub runs ``build()`` (the panels'
``build_all``) on its own thread, so Redis never blocks the event loop; it serialises each panel with orjson
into a ready Server-Sent-Events frame and queues to each subscriber only the panels whose bytes changed
(the panels round their ages to whole seconds, so a quiet panel is re-sent once a second, not every poll).
A new subscriber gets every panel of the next build first (never a snapshot kept from before it came: its
ages would look fresher than they are), and the poller wakes at once for it. With nobody connected, it
sleeps: an idle dashboard costs Redis nothing.

Each subscriber has a bounded queue; one too slow to drain it is dropped (its stream closes, EventSource
reconnects and gets a full snapshot), so a stalled browser can never grow the server's memory.

Redis down: the hub never dies. It logs once, pushes every known panel again marked ``stale`` with the
error, and a ``health`` document saying Redis is unreachable, then retries with a capped backoff; the first
good build after that is pushed as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from qc.core.backoff import backoff_s
from qc.dashboard.security import SecretScrubber
from qc.runtime.store import REDIS_ERRORS

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Build = Callable[[], Mapping[str, Mapping[str, Any]]]

DEFAULT_INTERVAL_S = 0.2
QUEUE_FRAMES = 256  # frames a subscriber may have waiting: many full snapshots; beyond it, it is too slow
OUTAGE_BACKOFF_CAP_S = 2.0
HEALTH = "health"
CLOSE = b""  # queued to a dropped subscriber: its stream ends
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(value: Any, scrubber: SecretScrubber) -> bytes:
    """JSON bytes of ``value`` with any known secret masked (a last guard: documents should never hold one)."""
    data = orjson.dumps(value, option=JSON_OPTIONS)
    if scrubber.found(data):
        log.warning("a secret was about to leave the dashboard; masked (find which document carries it)")
        data = orjson.dumps(scrubber.scrub(value), option=JSON_OPTIONS)
    return data


@dataclass(eq=False)
class Subscriber:
    """One push connection: its queue of ready SSE frames, and whether it still needs a full snapshot."""

    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAMES))
    fresh: bool = True
    closed: bool = False


def unserialisable(pid: str, exc: Exception) -> Doc:
    """What a panel that orjson refuses shows instead of breaking the others."""
    return {"as_of": None, "age_s": None, "stale": True, "stale_after_s": 0.0,
            "missing": f"panel {pid} could not be serialised ({type(exc).__name__}: {exc})"}


class Hub:
    """Build the panels on one thread while anyone watches; push each change once to every subscriber."""

    def __init__(self, build: Build, *, interval_s: float = DEFAULT_INTERVAL_S, address: str = "Redis",
                 scrubber: SecretScrubber | None = None, queue_frames: int = QUEUE_FRAMES) -> None:
        self.build = build
        self.interval_s = interval_s
        self.address = address  # where Redis is, for the outage message (already redacted)
        self.scrubber = scrubber or SecretScrubber(())
        self.queue_frames = queue_frames
        self.builds = 0  # build() calls, failed ones included
        self.error: str | None = None  # the current outage, None while builds succeed
        self.failures = 0  # consecutive failed builds
        self._subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._sent: dict[str, bytes] = {}  # panel id -> the frame last pushed
        self._good: dict[str, Doc] = {}  # the last successful build: what an outage marks stale
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="dashboard-build")
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Start the poller on the running loop (it sleeps until someone subscribes)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dashboard-hub")

    async def stop(self) -> None:
        """End every stream, stop the poller; a build in flight finishes on its thread and is discarded."""
        self._closed = True
        for sub in list(self._subscribers):
            self._drop(sub, "the server is stopping")
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    def subscribe(self) -> Subscriber:
        """A new push client: it gets every panel of the next build, which starts now."""
        sub = Subscriber(asyncio.Queue(self.queue_frames))
        if self._closed:
            self._drop(sub, "the server is stopping")
            return sub
        self._subscribers.add(sub)
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    async def snapshot(self) -> dict[str, Doc]:
        """Every panel now, built on the hub's thread (``GET /api/panels``); Redis errors propagate."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._build_once)

    def _build_once(self) -> dict[str, Doc]:
        self.builds += 1
        return {str(pid): dict(doc) for pid, doc in self.build().items()}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            if not self._subscribers:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._wake.clear()
            delay = await self._cycle(loop)
            if self.closed:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _cycle(self, loop: asyncio.AbstractEventLoop) -> float:
        """One build and push; the seconds to wait before the next."""
        try:
            docs = await loop.run_in_executor(self._executor, self._build_once)
        except REDIS_ERRORS as exc:
            return self._outage(f"Redis unreachable at {self.address}: {str(exc).rstrip('.')}; retrying")
        except Exception as exc:
            log.exception("building the dashboard panels failed; retrying")
            return self._outage(f"building the panels failed: {type(exc).__name__}: {str(exc).rstrip('.')}; retrying")
        if self.failures:
            log.info("dashboard panels build again after %d failed attempt(s)", self.failures)
        self.failures, self.error = 0, None
        self._good = docs
        self._publish(docs)
        return self.interval_s

    def _outage(self, message: str) -> float:
        """Mark every known panel stale with ``message``, say so in ``health``, and back off."""
        self.failures += 1
        if message != self.error:
            log.warning("dashboard: %s", message)
        self.error = message
        docs: dict[str, Doc] = {pid: {**doc, "stale": True, "error": message} for pid, doc in self._good.items()}
        health = docs.get(HEALTH) or {"as_of": None, "age_s": None, "stale_after_s": 0.0}
        docs[HEALTH] = {**health, "stale": True, "error": message, "missing": message, "redis_reachable": False}
        self._publish(docs)
        return backoff_s(self.failures, base_s=max(self.interval_s, 0.1), cap_s=OUTAGE_BACKOFF_CAP_S)

    def _encode(self, pid: str, doc: Doc) -> bytes:
        """The panel's SSE frame (secrets masked; a document orjson refuses replaced by one saying so)."""
        try:
            data = orjson.dumps({"id": pid, "doc": doc}, option=JSON_OPTIONS)
            if self.scrubber.found(data):
                log.warning("panel %s carried a secret; masked", pid)
                data = orjson.dumps({"id": pid, "doc": self.scrubber.scrub(doc)}, option=JSON_OPTIONS)
        except (orjson.JSONEncodeError, TypeError) as exc:
            log.error("panel %s could not be serialised: %s", pid, exc)
            return self._encode(pid, unserialisable(pid, exc))
        return b"event: panel\ndata: " + data + b"\n\n"

    def _publish(self, docs: Mapping[str, Doc]) -> None:
        frames: dict[str, bytes] = {}
        changed: list[str] = []
        for pid, doc in docs.items():
            frame = frames[pid] = self._encode(pid, doc)
            if self._sent.get(pid) != frame:
                self._sent[pid] = frame
                changed.append(pid)
        for sub in list(self._subscribers):
            wanted = list(frames) if sub.fresh else changed
            sub.fresh = False
            for pid in wanted:
                try:
                    sub.queue.put_nowait(frames[pid])
                except asyncio.QueueFull:
                    self._drop(sub, f"too slow: {self.queue_frames} frames waiting")
                    break

    def _drop(self, sub: Subscriber, why: str) -> None:
        """Close one subscriber's stream: its backlog is discarded, the handler sees ``CLOSE`` next."""
        self._subscribers.discard(sub)
        if sub.closed:
            return
        sub.closed = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(CLOSE)
        log.info("dashboard push client dropped: %s", why)
