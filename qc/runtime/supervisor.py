"""`qc up`'s engine: run the stack's processes, restart what dies, stop everything in order.

Children run in their own session, so a Ctrl-C in the terminal reaches only the supervisor, which
then stops them newest-first (workers before the Redis they write to). Each child also gets
PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves no orphan behind on Linux.
A child that dies is restarted after a capped, jittered backoff; one that keeps running for a
minute has its backoff reset.

Operators see the children with `qc ps` and restart one with `qc restart NAME`. Both go through Redis,
like every other qc conversation: the supervisor publishes its children each cycle
(``monitoring:supervisor``) and pops requests from a short-lived list (``monitoring:supervisor:commands``),
so they work from any host that reaches the stack's Redis, with its ACLs and TLS, and need no socket
file or port of their own. A request nobody takes within the list's TTL is void, never a late surprise.
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import requests

from qc.core import clock, keys
from qc.core.backoff import backoff_s
from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    check_version,
    decode,
    dumps,
    loads_object,
    need,
    req_epoch,
    req_str,
)
from qc.core.config import WEBHOOK_SECRET_PREFIX, Settings
from qc.runtime.codec import ChildStatus, Heartbeat, SupervisorChildren, WorkerEntry, WorkerRegistry, is_missing
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import REDIS_ERRORS, EmbeddedRedis, Store, die_with_parent

log = logging.getLogger(__name__)

HEALTHY_RUN_S = 60.0
SUPERVISOR_NAME = "supervisor"  # `qc up`'s own worker name: heartbeat:supervisor, its monitoring:workers entry
RESTART_GRACE_S = 15.0  # an operator restart waits this long for a graceful exit, then SIGKILLs
SUPERVISOR_GONE_S = 10.0  # it beats every second: this much silence means no `qc up` is running (or it hangs)
COMMANDS_PER_CYCLE = 32  # requests popped per cycle at most (a flood cannot stall supervision)
RESTART = "restart"


@dataclass(frozen=True)
class ChildSpec:
    """One process of the stack: a name, its command line, and what says it is ready for the next."""

    name: str
    argv: tuple[str, ...]
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 30.0
    setup: Callable[[], bool] | None = None  # after every (re)start, retried each poll until it returns True


def qc_child(name: str, *args: str, ready: Callable[[], bool] | None = None,
             setup: Callable[[], bool] | None = None) -> ChildSpec:
    """A child that runs ``qc ARGS…`` with this interpreter (works in a venv without PATH)."""
    return ChildSpec(name, (sys.executable, "-m", "qc", *args), ready, setup=setup)


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    failures: int = 0
    started_at: float = 0.0
    next_start_at: float = 0.0
    last_exit: int | None = None
    restart_deadline: float | None = None  # set while an operator restart waits for the old process to end
    needs_setup: bool = False  # its spec's setup has not succeeded since it last started

    @property
    def state(self) -> str:
        if self.process is None:
            return "waiting"
        if self.process.poll() is None:
            return "running" if self.restart_deadline is None else "restarting"
        return f"exited {self.process.returncode}"


class Supervisor:
    """Start, watch and stop the stack's children; the embedded Redis (if any) first up, last down."""

    def __init__(self, specs: Sequence[ChildSpec], env: Mapping[str, str], store: Store,
                 embedded: EmbeddedRedis | None = None) -> None:
        self.children = [Child(spec) for spec in specs]
        self.store = store
        self.env = dict(env)
        self.embedded = embedded
        self._published = False

    def start(self, stop: threading.Event | None = None) -> None:
        """Start Redis, then each child in order, waiting for a child's ``ready`` before the next."""
        if self.embedded is not None:
            self.embedded.start()
        for child in self.children:
            self._spawn(child)
            self._await_ready(child, stop)
            self._set_up(child)

    def _await_ready(self, child: Child, stop: threading.Event | None) -> None:
        check = child.spec.ready
        if check is None:
            return
        deadline = clock.monotonic() + child.spec.ready_timeout_s
        while clock.monotonic() < deadline and not (stop and stop.is_set()):
            if _quietly(check):
                return
            if child.process is not None and child.process.poll() is not None:
                break
            clock.real_sleep(0.1, stop)
        log.warning("%s is not ready after %.0f s; starting the rest anyway", child.spec.name,
                    child.spec.ready_timeout_s)

    def _set_up(self, child: Child) -> None:
        """Run the child's setup (e.g. the simulator's webhook secret) if it still needs it."""
        setup = child.spec.setup
        if child.needs_setup and setup is not None and _quietly(setup):
            child.needs_setup = False
            log.info("%s set up", child.spec.name)

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(list(child.spec.argv), env=self.env, start_new_session=True,
                                         preexec_fn=die_with_parent, stdin=subprocess.DEVNULL)
        child.started_at = clock.monotonic()
        child.needs_setup = child.spec.setup is not None
        log.info("started %s (pid %d)", child.spec.name, child.process.pid)

    def poll(self) -> None:
        """Restart the embedded Redis or any child that died, each after its backoff."""
        if self.embedded is not None and self.embedded.process is not None \
                and self.embedded.process.poll() is not None:
            log.error("embedded redis exited with %s; restarting it", self.embedded.process.returncode)
            self.embedded.start()
        now = clock.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.next_start_at:
                    self._spawn(child)
                continue
            code = child.process.poll()
            if code is None:
                self._watch_running(child, now)
                self._set_up(child)
                continue
            child.last_exit = code
            child.restarts += 1
            child.process = None
            if child.restart_deadline is not None:  # an operator's restart: no failure, no backoff
                child.restart_deadline, child.failures = None, 0
                log.info("%s stopped (exit %d) for its requested restart", child.spec.name, code)
                self._spawn(child)
                continue
            child.failures += 1
            delay = backoff_s(child.failures, base_s=1.0, cap_s=30.0)
            child.next_start_at = now + delay
            log.error("%s exited with %d; restart %d in %.1f s", child.spec.name, code, child.restarts, delay)

    def _watch_running(self, child: Child, now: float) -> None:
        """Reset the backoff of a child that stays up; SIGKILL one that outlives its restart grace."""
        if now - child.started_at > HEALTHY_RUN_S:
            child.failures = 0
        if child.restart_deadline is not None and now > child.restart_deadline and child.process is not None:
            log.warning("%s did not stop in %.0f s for its restart; killing it", child.spec.name, RESTART_GRACE_S)
            child.process.kill()

    def restart(self, name: str) -> bool:
        """Restart one child now (SIGTERM, SIGKILL after ``RESTART_GRACE_S``, start again without backoff).

        A child waiting out its backoff starts at the next poll. False when no child has that name.
        """
        child = next((c for c in self.children if c.spec.name == name), None)
        if child is None:
            return False
        if child.process is None:
            child.next_start_at = 0.0
            child.failures = 0
            log.info("restart of %s requested: starting it now", name)
        elif child.restart_deadline is None and child.process.poll() is None:
            log.info("restart of %s requested: stopping pid %d", name, child.process.pid)
            child.restart_deadline = clock.monotonic() + RESTART_GRACE_S
            child.process.terminate()
        return True

    def apply(self, command: SupervisorCommand) -> None:
        """Carry out one operator request taken from Redis (unknown children are logged and ignored)."""
        if command.action == RESTART and not self.restart(command.child):
            log.warning("restart requested for %r, which is not a child of this qc up (children: %s)",
                        command.child, ", ".join(c.spec.name for c in self.children))

    def states(self) -> dict[str, ChildStatus]:
        """Per child: pid, state, restarts, last exit code."""
        return {c.spec.name: ChildStatus(c.process.pid if c.process else None, c.state, c.restarts, c.last_exit)
                for c in self.children}

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the children newest first, wait, SIGKILL stragglers; then stop the embedded Redis."""
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                log.info("stopping %s (pid %d)", child.spec.name, child.process.pid)
                child.process.terminate()
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", child.spec.name, timeout_s)
                child.process.kill()
                child.process.wait()
        if self.embedded is not None:
            self.embedded.stop()

    def cycle(self, now: datetime) -> None:
        """One supervision step for the worker loop: restart the dead, carry out requests, publish the states.

        ``poll`` comes first and needs no Redis: with Redis down (the embedded one killed) the dead,
        Redis included, still come back before the first Redis call raises.
        """
        self.poll()
        for command in take_commands(self.store, clock.wall_epoch()):
            self.apply(command)
        states = self.states()
        if states:
            if not self._published:  # a previous `qc up` may have run other children: show only ours
                self.store.delete(keys.supervisor_children())
                self._published = True
            self.store.hset(keys.supervisor_children(), SupervisorChildren(states).to_redis())


# --- the operators' side: `qc restart` asks, `qc ps` looks ----------------------------------------

COMMAND_VERSION = 1


@dataclass(frozen=True, slots=True)
class SupervisorCommand:
    """One ``monitoring:supervisor:commands`` item: an operator's request to the running `qc up`."""

    action: str  # "restart"
    child: str
    at_epoch: float  # wall time of the request; one older than the list's TTL is void

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: COMMAND_VERSION, "action": self.action, "child": self.child,
                      "at": self.at_epoch})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> SupervisorCommand | Absent:
        def parse(text: str) -> SupervisorCommand:
            doc = loads_object(text, "command")
            check_version(doc, COMMAND_VERSION)
            return cls(req_str(need(doc, "action"), "action", choices=(RESTART,)),
                       req_str(need(doc, "child"), "child", empty=False), req_epoch(need(doc, "at"), "at"))

        return decode(key, raw, parse)


def send_command(store: Store, command: SupervisorCommand) -> None:
    """Queue a request for the running supervisor (the list's short TTL is refreshed with each one)."""
    key = keys.supervisor_commands()
    pipe = store.client.pipeline(transaction=False)
    pipe.rpush(key.name, command.to_redis())
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)
    pipe.execute()


def take_commands(store: Store, now_epoch: float) -> list[SupervisorCommand]:
    """Pop the pending requests, oldest first; malformed or outdated ones are logged and dropped."""
    key = keys.supervisor_commands()
    max_age_s = key.ttl_s if key.ttl_s is not None else 0
    taken: list[SupervisorCommand] = []
    for _ in range(COMMANDS_PER_CYCLE):
        raw: str | None = store.client.lpop(key.name)
        if raw is None:
            break
        command = SupervisorCommand.from_redis(raw, key=key.name)
        if isinstance(command, Absent):
            log.warning("ignoring a supervisor request: %s", command)
        elif now_epoch - command.at_epoch > max_age_s:
            log.warning("ignoring a %s request for %s made %.0f s ago (void after %d s)", command.action,
                        command.child, now_epoch - command.at_epoch, max_age_s)
        else:
            taken.append(command)
    return taken


@dataclass(frozen=True)
class ChildView:
    """One row of `qc ps`; ``uptime_s`` from the child's own ``monitoring:workers`` entry (None before it)."""

    name: str
    pid: int | None
    state: str
    restarts: int
    uptime_s: float | None
    last_exit: int | None


@dataclass(frozen=True)
class StackView:
    """What Redis says about `qc up`: its own entry and heartbeat age, and its children as last published."""

    supervisor: WorkerEntry | None
    heartbeat_age_s: float | None  # None: no heartbeat:supervisor at all
    children: tuple[ChildView, ...]
    unreadable: tuple[Absent, ...] = ()

    @property
    def running(self) -> bool:
        return self.heartbeat_age_s is not None and self.heartbeat_age_s <= SUPERVISOR_GONE_S

    def child(self, name: str) -> ChildView | None:
        return next((c for c in self.children if c.name == name), None)

    def why_not_running(self) -> str:
        """One line for an operator: which key says no supervisor runs."""
        beat = keys.heartbeat(SUPERVISOR_NAME).name
        if self.heartbeat_age_s is None:
            return f"no `qc up` is running ({beat} is missing)"
        return f"no `qc up` is running ({beat} is {self.heartbeat_age_s:.0f} s old, > {SUPERVISOR_GONE_S:.0f} s)"


def read_stack(store: Store, now_epoch: float) -> StackView:
    """Read the supervisor's heartbeat, the worker registry and the children hash through their codecs."""
    beat_key, registry_key, children_key = (keys.heartbeat(SUPERVISOR_NAME), keys.worker_registry(),
                                            keys.supervisor_children())
    beat = Heartbeat.from_redis(store.get(beat_key), key=beat_key.name)
    registry = WorkerRegistry.from_redis(store.hgetall(registry_key), key=registry_key.name)
    published = SupervisorChildren.from_redis(store.hgetall(children_key), key=children_key.name)
    workers = registry.workers if isinstance(registry, WorkerRegistry) else {}
    own = workers.get(SUPERVISOR_NAME)
    started = {(entry.pid, entry.host): entry.started for entry in workers.values()}
    host = own.host if own is not None else None
    rows: list[ChildView] = []
    unreadable: list[Absent] = []
    if isinstance(published, SupervisorChildren):
        for name, status in sorted(published.children.items()):
            since = started.get((status.pid, host)) if status.pid is not None and host is not None else None
            uptime = max(0.0, now_epoch - since) if since is not None else None
            rows.append(ChildView(name, status.pid, status.state, status.restarts, uptime, status.last_exit))
        unreadable += published.unreadable.values()
    elif not is_missing(published):
        unreadable.append(published)
    age = max(0.0, now_epoch - beat.at_epoch) if isinstance(beat, Heartbeat) else None
    return StackView(own, age, tuple(rows), tuple(unreadable))


def await_restart(store: Store, before: ChildView, timeout_s: float,
                  stop: threading.Event | None = None) -> ChildView | None:
    """Wait until ``before``'s child runs again under a new pid; None when it does not within ``timeout_s``."""
    deadline = clock.monotonic() + timeout_s
    while True:
        child = read_stack(store, clock.wall_epoch()).child(before.name)
        if child is not None and child.state == "running" and child.pid is not None and child.pid != before.pid:
            return child
        if clock.monotonic() >= deadline or clock.real_sleep(0.1, stop):
            return None


@dataclass(frozen=True)
class Stack:
    """What `qc up` runs, and the environment its children get on top of the operator's."""

    children: list[ChildSpec]
    env: dict[str, str]
    notes: list[str]


SIM_API_KEY = "sim-demo-key"  # the simulator accepts any non-empty key; this one is no credential
SIM_WEBHOOK = "sim"  # the loopback webhook endpoint `qc up` gives `qc distribute` under the simulator
SIM_CHANNEL_ENV = {  # the simulator accepts any token and any credentials; these are no credentials
    "QC_TELEGRAM_BOT_TOKEN": "100000001:qc-sim-bot", "QC_X_API_KEY": "qc-sim-consumer-key",
    "QC_X_API_SECRET": "qc-sim-consumer-secret", "QC_X_ACCESS_TOKEN": "qc-sim-access-token",
    "QC_X_ACCESS_SECRET": "qc-sim-access-secret",
}
X_CREDENTIALS = ("x_api_key", "x_api_secret", "x_access_token", "x_access_secret")


def channels_configured(settings: Settings) -> bool:
    """Any real distribution channel set (a Telegram chat, a webhook, X credentials)?"""
    return bool(settings.telegram_chats.strip() or settings.webhooks.strip()
                or any(getattr(settings, name) for name in X_CREDENTIALS))


def sim_channels_env(settings: Settings, tiers: Sequence[str], secret: str) -> dict[str, str]:
    """`qc distribute` pointed at the simulator: a chat per tier, one signed loopback webhook receiving every
    tier, X on the last tier (the free teaser), base URLs on the simulator's channels port."""
    base = f"http://127.0.0.1:{settings.sim_channels_port}"
    chats = ",".join(f"{tier}=-100{1_000_000_001 + i}" for i, tier in enumerate(tiers))
    return {**SIM_CHANNEL_ENV, "QC_TELEGRAM_BASE_URL": base, "QC_X_BASE_URL": base, "QC_TELEGRAM_CHATS": chats,
            "QC_WEBHOOKS": f"{SIM_WEBHOOK}={base}/hooks/{SIM_WEBHOOK}|{'+'.join(tiers)}",
            f"{WEBHOOK_SECRET_PREFIX}{SIM_WEBHOOK.upper()}": secret, "QC_X_TIERS": tiers[-1] if tiers else ""}


def install_sim_secret(ctl_port: int, name: str, secret: str) -> bool:
    """Make the simulator's receiver check ``/hooks/NAME`` signatures with ``secret`` (its control endpoint,
    loopback only; `qc sim ctl channel-secret` does the same). False when the simulator is not answering."""
    try:
        reply = requests.post(f"http://127.0.0.1:{ctl_port}/fault", json={"fault": "channel_secret", "name": name,
                                                                           "secret": secret}, timeout=2)
    except requests.RequestException as exc:
        log.debug("simulator control not answering yet: %s", type(exc).__name__)
        return False
    return reply.status_code == 200


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def dashboard_ready(settings: Settings) -> bool:
    """`qc dashboard` answers its /healthz (on loopback when it binds every interface; with its token if set)."""
    host = settings.dashboard_host.strip()
    probe = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in probe and not probe.startswith("["):
        probe = f"[{probe}]"
    headers = {"Authorization": f"Bearer {settings.dashboard_token}"} if settings.dashboard_token else {}
    try:
        reply = requests.get(f"http://{probe}:{settings.dashboard_port}/healthz", headers=headers, timeout=1)
    except requests.RequestException as exc:
        log.debug("dashboard not answering yet: %s", type(exc).__name__)
        return False
    return reply.status_code == 200


def plan_stack(settings: Settings, store: Store, tiers: Sequence[str] = ("premium", "basic", "free")) -> Stack:
    """The stack's children in start order: the simulator first when IB or Alpha Vantage is missing,
    then ingestion (`qc stream` for IB depth, bars, trades and quotes; `qc chains` for Alpha Vantage),
    `qc analytics`, `qc signals`, `qc risk`, `qc execute` on the simulator's paper account, `qc dashboard`
    (the page and /metrics), and `qc distribute` (to the simulator's channels when none is configured;
    ``tiers``: the routing's)."""
    children: list[ChildSpec] = []
    env: dict[str, str] = {}
    notes: list[str] = []
    needs_ib = not (settings.is_set("ib_host") or settings.is_set("ib_port"))
    needs_av = not settings.alpha_vantage_api_key
    sim_channels = not channels_configured(settings) and (needs_ib or needs_av)
    if needs_ib or needs_av:
        args = ["sim", "--ib-port", str(settings.sim_ib_port), "--av-port", str(settings.sim_av_port),
                "--ctl-port", str(settings.sim_ctl_port), "--channels-port", str(settings.sim_channels_port),
                "--speed", f"{settings.sim_speed:g}"]
        if settings.sim_start:
            args += ["--start", settings.sim_start]
        setup = None
        if sim_channels:
            secret = new_webhook_secret()
            env.update(sim_channels_env(settings, tiers, secret))
            setup = functools.partial(install_sim_secret, settings.sim_ctl_port, SIM_WEBHOOK, secret)
        children.append(qc_child("sim", *args, ready=lambda: bool(read_sim_anchor(store)), setup=setup))
        if needs_ib:
            env.update(QC_IB_HOST="127.0.0.1", QC_IB_PORT=str(settings.sim_ib_port))
            notes.append(f"no IB Gateway configured: simulated one on 127.0.0.1:{settings.sim_ib_port}")
        if needs_av:
            env.update(QC_ALPHA_VANTAGE_URL=f"http://127.0.0.1:{settings.sim_av_port}/query",
                       QC_ALPHA_VANTAGE_API_KEY=SIM_API_KEY)
            notes.append(f"no Alpha Vantage key: simulated API on 127.0.0.1:{settings.sim_av_port}")
        notes.append(f"faults:  qc sim ctl --ctl-port {settings.sim_ctl_port} drop-sockets | silence SPY depth | …")
    children += [qc_child("stream", "stream"), qc_child("chains", "chains"), qc_child("analytics", "analytics"),
                 qc_child("signals", "signals"), qc_child("risk", "risk")]
    if needs_ib:  # orders go to the simulated paper account; a real gateway's executor is started on purpose
        children.append(qc_child("execute", "execute"))
        notes.append("qc execute trades the simulated paper account (with a real gateway: `qc execute` or "
                     "qc@execute, started on purpose)")
    children.append(qc_child("dashboard", "dashboard", ready=functools.partial(dashboard_ready, settings)))
    if channels_configured(settings) or sim_channels:
        children.append(qc_child("distribute", "distribute"))
    if sim_channels:
        notes.append(f"no signal channel configured: qc distribute posts to the simulator's Telegram, webhook and X "
                     f"on 127.0.0.1:{settings.sim_channels_port} (qc sim ctl channels)")
    elif not channels_configured(settings):
        notes.append("no signal channel configured: qc distribute not started (QC_TELEGRAM_CHATS, QC_WEBHOOKS, QC_X_*)")
    return Stack(children, env, notes)


def _quietly(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except REDIS_ERRORS:
        return False
