"""`qc execute`'s asyncio main: lease (or standby), the IB connection, intake, the management loops.

- **Standby**: until this process holds the account's lease it only writes its status every second;
  it reads no signal and opens no IB connection (the leader holds the client id).
- **Leader**: claims the fencing token, connects to IB with ``QC_EXECUTE_CLIENT_ID``, reconciles,
  then reads the signal streams (consumer group ``execution``; its own pending entries first, so a
  signal a dead leader read but never acknowledged is taken again, and deduplicated by intent id).
- Lease renewal every ``RENEW_EVERY_S`` in its own task for the leader's whole life (lost → stop at
  once, exit 1): a reconciliation holds up the management loop for 8-11 s on a loaded machine, longer
  than the lease lives. A loop that is blocked (not awaiting) runs no task at all, so it still loses
  the lease; one awaiting forever is the watchdog's (``WATCHDOG=1`` comes only from the management loop).
- Every second: the pricing inputs, time stops and the hard close, the halt request of `qc risk halt`,
  the heartbeat; every ``reconcile_s`` and whenever something asks for it: reconciliation.
- After a clean reconciliation (no mismatch, every held contract under a live stop) that ran wholly
  against the Redis server of now, the account's ``redis_restarted`` latch, if it was set before that
  reconciliation started, is lowered (by ``executor:<lease holder>``, in the transition log); nothing
  else is.
- Latency: the signal path should never wait behind a full garbage collection (measured: 26-31 ms,
  with the startup heap, and in the middle of a changed chain's decode; 12-29 ms later on, with
  ib_async's trades and tickers, traced with ``gc.callbacks`` under `make bench`), so the collector is
  off while a chain is read, that heap and each newly decoded chain are frozen (``gc.freeze``), and the
  collector never starts a full collection by itself: the once-a-second step runs one every
  ``FULL_COLLECTION_EVERY_S``, when no intent is between intake and the socket (or at the latest after
  three periods, so a steady stream of signals cannot postpone it for ever), then freezes what
  survived. Young collections (≤ 3 ms) still run by themselves.
- ``Fenced`` (another executor took over, or `qc risk halt` fenced this one) ends the process with
  exit code 1 after dropping the IB socket, so the client id is free for whoever fenced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal as signals
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from ib_async import Contract

from qc.core import clock as clocks
from qc.core import keys
from qc.core.clock import Clock
from qc.execute.cycle.engine import ExecOptions, Executor
from qc.execute.cycle.lease import RENEW_EVERY_S, Lease
from qc.execute.cycle.pricing import Pricing
from qc.execute.cycle.reconcile import ReconcileFailed, reconcile
from qc.execute.cycle.records import Records
from qc.ib.connection import ConnectionOptions, IBConnection
from qc.ib.errors import Action
from qc.risk.codec import HaltRequest
from qc.risk.cycle import latches
from qc.risk.model import Limits
from qc.risk.state import REDIS_RESTARTED, TradingState, escalate, lowered_after_reconcile
from qc.runtime.fence import Fenced
from qc.runtime.store import REDIS_ERRORS, Store
from qc.runtime.worker import SystemdNotifier, deregister, registry_entry, write_heartbeat
from qc.signals.codec import Signal

log = logging.getLogger(__name__)
NAME = "execute"
GROUP = "execution"  # the consumer group `qc signals` creates on keys.signals_execution(sym)
READ_BLOCK_MS = 500


@dataclass(frozen=True)
class RunOptions:
    exec: ExecOptions
    connection: ConnectionOptions
    limits: Limits
    broker_account: str = ""   # QC_IB_ACCOUNT; empty: the gateway's first managed account
    notifier: SystemdNotifier | None = None


class ExecConnection(IBConnection):
    """The executor's IB connection: reconcile on every connect; report order errors to the engine."""

    def __init__(self, options: ConnectionOptions, broker_account: str) -> None:
        super().__init__(options)
        self.broker_account = broker_account
        self.executor: Executor | None = None

    async def on_connected(self, first: bool) -> None:
        ex = self.executor
        assert ex is not None
        if not self.broker_account:
            accounts = self.ib.managedAccounts()
            self.broker_account = accounts[0] if accounts else ""
        ex.broker_account = self.broker_account
        keep = ex.rt.contracts
        ex.rt = type(ex.rt)(contracts=keep)
        ex.connected = True
        await reconcile(ex, self.broker_account, "connected" if first else "reconnected")

    def on_state(self, connected: bool) -> None:
        ex = self.executor
        if ex is None:
            return
        ex.connected = connected
        if not connected:
            ex.accepting = False
            ex.disconnected()
            ex.records.status({"state": "disconnected", "since": ex.now().isoformat()})

    def on_ib_error(self, action: Action, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        super().on_ib_error(action, req_id, code, message, contract)
        if self.executor is not None:
            self.executor.on_error(req_id, code, message)


class Intake:
    """Reads the signal streams in a thread (XREADGROUP blocks) and hands entries to the loop."""

    def __init__(self, store: Store, symbols: tuple[str, ...], consumer: str,
                 deliver: Callable[[str, str, dict[str, str]], None], loop: asyncio.AbstractEventLoop) -> None:
        self.store, self.symbols, self.consumer, self.deliver, self.loop = store, symbols, consumer, deliver, loop
        self.stop = threading.Event()
        self.enabled = threading.Event()
        self.thread = threading.Thread(target=self._run, name="qc-execute-intake", daemon=True)
        self.errors = 0
        self.rewound = threading.Event()

    def start(self) -> None:
        self.thread.start()

    def rewind(self) -> None:
        """Read this consumer's pending entries again before new ones: one was delivered but not taken (Redis
        failed under the loop), and a running intake reads only new entries: nothing else hands it back."""
        self.rewound.set()

    def _ensure_groups(self) -> None:
        for sym in self.symbols:
            try:
                self.store.client.xgroup_create(keys.signals_execution(sym).name, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _run(self) -> None:
        backlog = True  # first our own pending entries (read by a dead leader, never acknowledged)
        while not self.stop.is_set():
            if not self.enabled.wait(0.2):
                continue
            if self.rewound.is_set():
                self.rewound.clear()
                backlog = True
            try:
                self._ensure_groups()
                streams = {keys.signals_execution(s).name: "0" if backlog else ">" for s in self.symbols}
                reply = self.store.client.xreadgroup(GROUP, self.consumer, streams, count=50,
                                                     block=None if backlog else READ_BLOCK_MS) or []
                got = 0
                for stream, entries in reply:
                    for entry_id, fields in entries:
                        got += 1
                        if fields:
                            self.loop.call_soon_threadsafe(self.deliver, stream, entry_id, fields)
                if backlog and got == 0:
                    backlog = False
            except REDIS_ERRORS as exc:
                self.errors += 1
                backlog = True  # what was delivered and not taken meanwhile is pending: read it again first
                log.warning("execute intake: Redis: %s; retrying", exc)
                clocks.real_sleep(1.0, self.stop)
            except redis.ResponseError as exc:
                self.errors += 1
                log.warning("execute intake: %s; recreating the groups", exc)
                clocks.real_sleep(0.5, self.stop)


class Runner:
    def __init__(self, store: Store, clock: Clock, options: RunOptions) -> None:
        self.store, self.clock, self.o = store, clock, options
        self.stop = asyncio.Event()
        self.code = 0
        self.lease = Lease(store, options.exec.account, options.connection.client_id)
        self.started = clocks.wall_epoch()
        self.cycles = 0
        self.full_collected = clocks.monotonic()
        self.last_ack: str | None = None
        self.redis_id = ""
        self.redis_seen = 0.0  # monotonic: when this process first saw ``redis_id``
        self.lease_lost = False
        self.notifier = options.notifier or SystemdNotifier(None)

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        # ib_async logs every order and status at INFO, formatting whole Trade objects: ~0.5 ms per
        # placeOrder on the order path (`make bench`); its warnings and errors still reach the log
        logging.getLogger("ib_async").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        self.notifier.notify("READY=1")  # a standby is a healthy, running service too
        await self._standby()
        if self.stop.is_set():
            return self.code
        try:
            return await self._lead(loop)
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                self.lease.release()
                deregister(self.store, NAME)

    def _status(self, fields: dict[str, str]) -> None:
        self.store.hset(keys.execution_status(self.o.exec.account), fields)

    async def _standby(self) -> None:
        announced = False
        while not self.stop.is_set():
            try:
                if self.lease.acquire():
                    log.info("execute: leader for %s (fencing token %d)", self.o.exec.account, self.lease.token)
                    return
                holder = self.lease.holder()
                self._status({"standby": self.lease.me, "standby_since": self.clock.now().isoformat()})
                if not announced:
                    log.info("execute: standby: %s leads %s; taking over when its lease lapses", holder,
                             self.o.exec.account)
                    announced = True
            except REDIS_ERRORS as exc:
                log.warning("execute: Redis unavailable (%s); standing by", exc)
            self.notifier.notify("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1.0)

    async def _lead(self, loop: asyncio.AbstractEventLoop) -> int:
        o = self.o
        records = Records(self.store, o.exec.account, self.lease.token)
        pricing = Pricing(self.store, o.exec.account, o.exec.symbols, o.limits)
        conn = ExecConnection(o.connection, o.broker_account)
        ex = Executor(conn.ib, records, pricing, self.clock, o.exec)
        conn.executor = ex
        ex.hook()
        ex.on_fenced = lambda exc: self._fenced(exc, conn)
        ex.on_reconciled = lambda started, started_at, clean: self._reconciled(ex, started, started_at, clean)
        self._status({"role": "leader", "leader": self.lease.me, "pid": str(_pid()), "token": str(self.lease.token),
                      "standby": "", "leader_since": self.clock.now().isoformat()})
        pricing.refresh(self.clock.now())
        self._full_collection()  # before trading
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NEVER)  # full collections only in `_every_second`, at a quiet moment
        intake = Intake(self.store, o.exec.symbols, f"executor-{o.exec.account}",
                        lambda s, i, f: self._deliver(ex, intake, s, i, f), loop)
        intake.start()
        connection = asyncio.ensure_future(conn.run(self.stop))
        manage = asyncio.ensure_future(self._manage(ex, conn, intake, pricing))
        renewal = asyncio.ensure_future(self._keep_lease(ex, conn, manage))
        try:
            await manage
        except asyncio.CancelledError:
            if not self.lease_lost:  # cancelled from outside, not by ``_keep_lease``
                raise
        finally:
            self.notifier.notify("STOPPING=1")
            renewal.cancel()
            try:
                records.flush()
            except (Fenced, *REDIS_ERRORS) as exc:  # the next leader's reconciliation restores what is not written
                log.warning("execute: held-back order updates not written at exit (%s)", exc)
            intake.stop.set()
            self.stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection, 10)
            conn.disconnect()
        return self.code

    def _deliver(self, ex: Executor, intake: Intake, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """One stream entry on the loop: an intent (saved), then the acknowledgement, then its submission."""
        try:
            got = Signal.from_redis(fields.get("signal"), key=f"{stream}#{entry_id}")
            if isinstance(got, Signal):
                intent = ex.accept(got)
            else:
                ex.records.count("unreadable_signals")
                log.error("execute: %s", got)
                intent = None
            self.store.client.xack(stream, GROUP, entry_id)
            if intent is not None:
                ex.spawn(self._submit(ex, intent))
        except Fenced as exc:
            self._fenced(exc, None)
        except REDIS_ERRORS as exc:
            log.warning("execute: Redis unavailable taking %s (%s); it stays pending and comes back", entry_id, exc)
            intake.rewind()

    async def _submit(self, ex: Executor, intent: Any) -> None:
        try:
            await ex.submit(intent)
        except Fenced as exc:
            self._fenced(exc, None)
        except Exception:
            ex.records.count("errors")
            log.exception("execute: submitting %s failed; reconciling", intent.id)
            ex.needs_reconcile.set()

    async def _keep_lease(self, ex: Executor, conn: ExecConnection, manage: asyncio.Future[None]) -> None:
        """Renew the lease every ``RENEW_EVERY_S`` whatever the management loop is awaiting; when it is no longer
        ours, or could not be renewed before it lapsed (Redis away), stop trading at once: the IB socket
        dropped and the management loop cancelled, even in the middle of a reconciliation."""
        while not self.stop.is_set():
            lost: Fenced | None = None
            try:
                if not self.lease.renew():
                    lost = Fenced("the execution lease lapsed and another process holds it")
                wait = RENEW_EVERY_S
            except REDIS_ERRORS as exc:
                log.warning("execute: lease not renewed (%s); %.1f s of it left", exc, self.lease.valid_for_s())
                wait = min(RENEW_EVERY_S, 0.5)
            if lost is None and self.lease.valid_for_s() <= 0:
                lost = Fenced("the execution lease could not be renewed in time")
            if lost is not None:
                ex.accepting = False
                self.lease_lost = True
                self._fenced(lost, conn)
                manage.cancel()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), wait)

    def _fenced(self, exc: Exception, conn: ExecConnection | None) -> None:
        log.error("execute: %s; stopping now", exc)
        self.code = 1
        if conn is not None:
            conn.disconnect()
        self.stop.set()

    async def _manage(self, ex: Executor, conn: ExecConnection, intake: Intake, pricing: Pricing) -> None:
        last_reconcile = last_second = clocks.monotonic()
        self.last_ack = self.store.get(keys.execute_halt_ack(self.o.exec.account))
        self.redis_id = _redis_identity(self.store)
        self.redis_seen = clocks.monotonic()
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.1)
            mono = clocks.monotonic()
            try:
                if self.lease.valid_for_s() <= 0:  # ``_keep_lease`` renews it; this loop only checks it
                    raise Fenced("the execution lease could not be renewed in time")
                if ex.accepting != intake.enabled.is_set():  # signals are read only while trading
                    (intake.enabled.set if ex.accepting else intake.enabled.clear)()
                if mono - last_second >= 1.0:
                    last_second = mono
                    await self._every_second(ex, pricing)
                if conn.up and ex.connected and (mono - last_reconcile >= self.o.exec.reconcile_s
                                                 or ex.needs_reconcile.is_set()):
                    ex.needs_reconcile.clear()
                    last_reconcile = mono
                    try:
                        await reconcile(ex, conn.broker_account, "periodic")
                    except ReconcileFailed as exc:
                        log.error("execute: reconciliation failed (%s); not trading until it succeeds", exc)
                        ex.needs_reconcile.set()
            except Fenced as exc:
                self._fenced(exc, conn)
            except REDIS_ERRORS as exc:
                ex.accepting = False
                ex.needs_reconcile.set()
                log.warning("execute: Redis unavailable (%s); not trading until it is back and reconciled", exc)
                await asyncio.sleep(1.0)

    async def _every_second(self, ex: Executor, pricing: Pricing) -> None:
        """Pricing inputs, time stops and the hard close, the halt request, Redis's identity, the heartbeat.

        On the loop, in short steps that each yield: a signal that arrives meanwhile runs between two
        steps instead of after all of them (the pricing inputs, the heartbeat and Redis's identity were one
        1.5-3 ms step: a signal in ~1 % of seconds waited behind it, which was the p99). A thread was
        measured worse, twice (`make bench`: p99 62 ms when every refresh decoded the chain; p99 11.9 ms
        with the chain decoded only when its stamp moved): the reads' decoding holds the GIL.
        """
        self.cycles += 1
        self.notifier.notify("WATCHDOG=1")
        self._refresh(pricing, ex.now(), [i.symbol for i in ex.intents.values()])
        await asyncio.sleep(0)
        write_heartbeat(self.store, NAME, registry_entry(self.started, self.cycles))
        await asyncio.sleep(0)
        now_id = _redis_identity(self.store)
        await asyncio.sleep(0)
        await ex.tick(ex.now())
        await asyncio.sleep(0)
        self.last_ack = self._halt(ex, self.last_ack)
        if full_collection_due(clocks.monotonic() - self.full_collected, ex.in_flight()):
            self._full_collection()
        if now_id != self.redis_id:
            log.warning("execute: Redis changed under us (%s → %s: a restart or failover); its last writes are "
                        "suspect: reconciling with the broker before trading on", self.redis_id, now_id)
            ex.accepting = False
            ex.needs_reconcile.set()
            self.redis_id, self.redis_seen = now_id, clocks.monotonic()
        ex.records.flush_counts()

    def _reconciled(self, ex: Executor, started: float, started_at: datetime, clean: bool) -> None:
        """A reconciliation ended (``started``: monotonic, ``started_at``: its clock time). When it was clean and
        Redis was the same server from before it began until now (same run and replication ids; a change is
        noticed once a second, so one seen after it began may predate it), lower the ``redis_restarted``
        latch set before it began. Redis changing again as it is lowered raises it again."""
        if not clean or not self.redis_id or self.redis_seen >= started:
            return
        by = f"executor:{self.lease.me}"
        try:
            if _redis_identity(self.store) != self.redis_id:
                return  # changed under this reconciliation: the next second notices and reconciles again
            ex.records.guard()  # still the leader
            lowered = lower_redis_latch(self.store, self.o.exec.account, started_at, by, self.clock.now())
            if lowered is not None and _redis_identity(self.store) != self.redis_id:
                relatch_redis(self.store, self.o.exec.account, by, self.clock.now())
        except Fenced:
            raise
        except (*REDIS_ERRORS, RuntimeError) as exc:  # RuntimeError: writers raced on the latch every attempt
            log.warning("execute: the redis_restarted latch not lowered (%s); the next reconciliation tries again",
                        exc)

    def _full_collection(self) -> None:
        """Everything unfrozen and collected, then what survived frozen: later collections scan only newer objects."""
        started = clocks.monotonic()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.full_collected = clocks.monotonic()
        log.debug("execute: full garbage collection in %.1f ms", (self.full_collected - started) * 1000)

    def _refresh(self, pricing: Pricing, now: datetime, symbols: list[str]) -> None:
        """The pricing inputs (spots, positioning, VPIN, chains when their stamp moved, the exposure snapshot)."""
        gc.disable()  # a changed chain's decode allocates ~10^5 objects: no full collection in the middle of it
        try:
            fresh = pricing.refresh(now, symbols)
        finally:
            gc.enable()
        if fresh:
            gc.freeze()  # the new chain's rows live until the next one: never scanned by a collection

    def _halt(self, ex: Executor, last_ack: str | None) -> str | None:
        key = keys.risk_halt_request(self.o.exec.account)
        raw = self.store.get(key)
        if not raw:
            return last_ack
        request = HaltRequest.from_redis(raw, key=key.name)
        if not isinstance(request, HaltRequest):  # `qc risk halt` fences this executor off if it never acks
            log.error("execute: %s: ignored", request)
            return last_ack
        request_id = request.id
        if request_id == last_ack:
            return last_ack
        ex.halt(request_id)
        self.store.set(keys.execute_halt_ack(self.o.exec.account), request_id)
        return request_id


def full_collection_due(since_last_s: float, in_flight: bool) -> bool:
    """Time for the leader's full garbage collection: its period passed and nothing is on its way to the
    broker, or three periods passed whatever is."""
    return (since_last_s >= FULL_COLLECTION_EVERY_S and not in_flight) or since_last_s >= FULL_COLLECTION_OVERDUE_S


def lower_redis_latch(store: Store, account: str, reconciled_from: datetime, by: str,
                      now: datetime) -> latches.Transition | None:
    """Lower the account's ``redis_restarted`` latch if it was set no later than ``reconciled_from`` (the
    start of a clean reconciliation against this Redis server); None when there was nothing to lower."""
    reason = "reconciled with the broker after the Redis restart: orders and positions agree, every position " \
             "under its stop"
    return latches.update(store, account, latches.ACCOUNT_SCOPE,
                          lambda current: lowered_after_reconcile(current, REDIS_RESTARTED, by, reason,
                                                                  reconciled_from, now), now)


def relatch_redis(store: Store, account: str, by: str, now: datetime) -> latches.Transition | None:
    """Redis changed while its latch was being lowered: raise it again (REDUCING) for the next reconciliation."""
    return latches.update(store, account, latches.ACCOUNT_SCOPE,
                          lambda current: escalate(current, TradingState.REDUCING, REDIS_RESTARTED, by,
                                                   "Redis changed again as its latch was lowered", now), now)


def _redis_identity(store: Store) -> str:
    """The Redis server's run id and replication id (each primary's, on a Cluster): either changes when Redis
    restarts or fails over."""
    return ",".join(sorted(store.server_ids()))


def _pid() -> int:
    import os

    return os.getpid()


SWITCH_INTERVAL_S = 0.0005
FULL_COLLECTION_EVERY_S = 300.0
FULL_COLLECTION_OVERDUE_S = 3 * FULL_COLLECTION_EVERY_S
NEVER = 1_000_000  # the oldest generation's threshold: no full collection starts by itself


def run(store: Store, clock: Clock, options: RunOptions) -> int:
    # The intake thread must get the GIL back soon after its XREADGROUP returns: at Python's default
    # (5 ms) a busy loop thread held a signal that long before the loop even heard of it.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return asyncio.run(Runner(store, clock, options).main())
