"""CLI arguments are outside input: random argv for every `qc` verb and subcommand through the real Click tree.

The argv is drawn per command (walked from ``qc.cli.cli``): root options (``--redis-url``, ``--config``,
``--log-level``) with right and wrong values, the command's words (now and then mistyped), then the
command's own options and arguments with values of their type, out of range, NaN/inf, missing, unknown
options, stray words, ``--`` and ``--help``. ``--debug`` is never given.

Nothing may reach a network, a subprocess or a long-running loop, so each argv is first parsed with
Click's own parser without running any command (``make_context`` down the tree, as ``Group.invoke``
does). Then it is run for real through ``CliRunner``:

- when the parse fails or asks for help: the real run must exit 2 (0 for help/version), print
  ``Error:`` naming the offending option, argument or word (or the setting, when the root options'
  Settings fail first);
- when the parse succeeds for a command that only reads or writes Redis and exits (``status``, ``ps``,
  ``fills``…): it runs with every address (Redis, IB, Alpha Vantage, channels, the simulator's control
  port, the embedded Redis port) pointing at a 127.0.0.1 port that is bound but not listening, so it
  fails fast: exit 0, 1 or 2;
- a successful parse of a worker, `qc up`, `qc sim` or a `qc sim ctl` fault (whose port default is not
  a setting) is counted and not run.

Always: exit code 0, 1 or 2; no traceback and no "internal error"; no secret (every one holds ``MARK``).
Outcomes are tallied per command path.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from qc.cli import build_settings, cli
from qc.core import config
from qc.core.errors import ConfigError
from tests.fuzz.tally import FUZZ, TIMEOUT, Tally, reporting
from tests.unit.test_config import MARK

pytestmark = TIMEOUT
TALLY = Tally()
SAFE_TO_RUN = {("status",), ("ps",), ("fills",), ("orders",), ("positions",), ("gex",), ("restart",),
               ("signals", "show"), ("signals", "explain"), ("signals", "stats"), ("risk", "status"),
               ("distribute", "status"), ("distribute", "enable")}  # they read or write Redis once and exit
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24).filter(lambda t: MARK not in t)
ANY_TEXT = st.text(max_size=16).filter(lambda t: MARK not in t and "\x00" not in t)


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree with its words (the root is ``()``)."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))


@dataclass
class Stage:
    """Where the dry parse stopped and why: ``run`` (it would invoke ``path``), ``exit`` (help or version,
    code 0) or ``usage`` (``error``); the root options as parsed."""

    outcome: str
    path: tuple[str, ...]
    error: click.UsageError | None = None
    root: dict[str, Any] | None = None


def dry_parse(argv: list[str]) -> Stage:
    """Click's parse of ``argv`` down the tree, no callback run (Group.invoke's steps, without invoking)."""
    command: click.Command = cli
    name, args, parent = "qc", list(argv), None
    path: tuple[str, ...] = ()
    root: dict[str, Any] | None = None
    runner = CliRunner()
    with runner.isolation():  # --help and --version print while parsing
        while True:
            try:
                ctx = command.make_context(name, args, parent=parent)
            except click.exceptions.Exit:
                return Stage("exit", path, root=root)
            except click.UsageError as exc:
                return Stage("usage", path, exc, root)
            if parent is None:
                root = dict(ctx.params)
            if not isinstance(command, click.Group):
                return Stage("run", path, root=root)
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                return Stage("run", path, root=root)  # invoke_without_command: the group's own callback
            try:
                sub_name, sub, rest = command.resolve_command(ctx, rest)
            except click.exceptions.Exit:  # an unknown word like "--version" is parsed as options first
                return Stage("exit", path, root=root)
            except click.UsageError as exc:
                return Stage("usage", path, exc, root)
            assert sub is not None and sub_name is not None
            command, name, args, parent, path = sub, sub_name, rest, ctx, (*path, sub_name)


# --- argv ---------------------------------------------------------------------------------------------------


def value_for(param: click.Parameter) -> st.SearchStrategy[str]:
    """A value of ``param``'s type: in range, at and past the bounds, NaN/inf, or any text."""
    kind = param.type
    junk = st.sampled_from(["", "nan", "inf", "-inf", "1e999", "-1", "0", "abc", "0x10", "1_0", "--json", "-"])
    if isinstance(kind, click.Choice):
        choices = [str(c) for c in kind.choices]
        return st.one_of(st.sampled_from(choices), st.sampled_from([c.upper() for c in choices]), junk, PRINTABLE)
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        lo, hi = kind.min, kind.max
        edges = [str(v) for b in (lo, hi) if b is not None for v in (b, b - 1, b + 1)]
        inside = st.integers(int(lo if lo is not None else -10), int(hi if hi is not None else 10**6)).map(str)
        if isinstance(kind, click.FloatRange):
            inside = st.floats(lo if lo is not None else -10.0, hi if hi is not None else 1e6).map(repr)
        return st.one_of(inside, inside, st.sampled_from(edges or ["1"]), junk, PRINTABLE)
    if kind is click.INT or kind is click.FLOAT:
        return st.one_of(st.integers(-(2**65), 2**65).map(str), junk, PRINTABLE)
    return st.one_of(st.sampled_from(["SPY", "qqq", "telegram", "main", "2026-11-24", "1h", "today", "sig_01HZX",
                                      "stream", ""]), PRINTABLE, ANY_TEXT)


@st.composite
def root_options(draw: st.DrawFn, port: int) -> list[str]:
    """The root group's options, each right or wrong (never ``--debug``)."""
    argv: list[str] = []
    for opt in draw(st.lists(st.sampled_from(["--redis-url", "--config", "--log-level"]), max_size=2, unique=True)):
        values = {"--redis-url": st.sampled_from([f"redis://127.0.0.1:{port}/0", f"redis://:{MARK}pw@127.0.0.1:{port}/0",
                                                  "http://x", f"redis://127.0.0.1:{port}/x", "redis://h:99999",
                                                  f"redis://:{MARK}p/w@127.0.0.1:{port}/0", ""]),
                  "--config": st.sampled_from(["good.toml", "bad.toml", "broken.toml", "missing.toml", "."]),
                  "--log-level": st.sampled_from(["debug", "INFO", "loud", ""])}[opt]
        argv += [opt, draw(values)]
    return argv


@st.composite
def token(draw: st.DrawFn, params: list[click.Parameter]) -> list[str]:
    """One piece of a command's own arguments: an option and its value, an argument, or something wrong."""
    kind = draw(st.sampled_from(["param"] * 6 + ["unknown", "word", "separator", "help", "dangling"]))
    options = [o for p in params if isinstance(p, click.Option) and not p.is_flag for o in p.opts]
    if kind == "param" and params:
        param = draw(st.sampled_from(params))
        if not isinstance(param, click.Option):
            return [draw(value_for(param))]
        opt = draw(st.sampled_from(param.opts))
        if param.is_flag:
            return [opt if draw(st.integers(0, 5)) else f"{opt}=1"]
        return [opt, draw(value_for(param))]
    if kind == "unknown":
        return [draw(st.sampled_from(["--nope", "-x", "--jsn", "--once-wait", "---", "-"]))]
    if kind == "word":
        return [draw(ANY_TEXT)]
    if kind == "separator":
        return ["--"]
    if kind == "help" and draw(st.integers(0, 3)) == 3:
        return [draw(st.sampled_from(["--help", "-h"]))]
    if kind == "dangling" and options:
        return [draw(st.sampled_from(options))]  # an option without its value
    return []


@st.composite
def argvs(draw: st.DrawFn, port: int, target: tuple[tuple[str, ...], click.Command]) -> list[str]:
    path, command = target
    argv = draw(root_options(port))
    words = list(path)
    if words and draw(st.integers(0, 7)) == 7:  # a mistyped or unknown word (hypothesis favours 0)
        i = draw(st.integers(0, len(words) - 1))
        words[i] = draw(st.sampled_from([words[i][:-1], words[i].upper(), words[i] + "s", "frobnicate", ""]))
    argv += words
    params = [p for p in command.params if p.name != "help"]
    for _ in range(draw(st.integers(0, 4))):
        argv += draw(token(params))
    return argv


# --- the environment: every address a closed loopback port ----------------------------------------------------


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port bound but never listening: a connect to it is refused at once, and nobody else gets it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@dataclass
class World:
    port: int
    env: dict[str, str]


@pytest.fixture(scope="module")
def world(closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A working directory with config files, and an environment with every address on the closed port
    (set per example: the suite's autouse fixture strips QC_* before each test)."""
    home = tmp_path_factory.mktemp("cli-fuzz")
    (home / "good.toml").write_text("ib_port = 4001\n")
    (home / "bad.toml").write_text("ib_prot = 4001\n")
    (home / "broken.toml").write_text("ib_port = [\n")
    local = f"http://127.0.0.1:{closed_port}"
    env = {"QC_REDIS_URL": f"redis://:{MARK}env@127.0.0.1:{closed_port}/0", "QC_DATA_DIR": str(home / "var"),
           "QC_EMBEDDED_REDIS_PORT": str(closed_port), "QC_IB_HOST": "127.0.0.1", "QC_IB_PORT": str(closed_port),
           "QC_SIM_CTL_PORT": str(closed_port), "QC_ALPHA_VANTAGE_URL": f"{local}/query",
           "QC_TELEGRAM_BASE_URL": local, "QC_X_BASE_URL": local, "QC_ALPHA_VANTAGE_API_KEY": f"{MARK}av",
           "QC_TELEGRAM_BOT_TOKEN": f"1:{MARK}tg", "QC_DASHBOARD_TOKEN": f"{MARK}dashboard-token",
           "QC_OPERATOR_TOKEN": f"{MARK}operator"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        yield World(closed_port, env)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    with reporting(TALLY):
        yield


def root_failure(stage: Stage) -> ConfigError | None:
    """The ConfigError the root callback would raise building Settings from the parsed root options, if any."""
    root = stage.root or {}
    try:
        build_settings(root.get("redis_url"), root.get("config_path"), root.get("log_level"))
    except ConfigError as exc:
        return exc
    return None


def named(error: click.UsageError) -> list[str]:
    """The spellings a usage error must show: the option, the argument or the unknown word."""
    if isinstance(error, (click.NoSuchOption, click.BadOptionUsage)):
        return [error.option_name]
    if isinstance(error, click.BadParameter) and error.param is not None:
        param = error.param
        shown = [str(c) for c in param.type.choices] if isinstance(param.type, click.Choice) else []
        return [*param.opts, param.human_readable_name, (param.name or "").upper(), *shown]  # a choice's metavar
    return []


@FUZZ
@given(data=st.data())
def test_any_argv_exits_0_1_2_naming_what_is_wrong(world: World, data: st.DataObject) -> None:
    safe = [(path, command) for path, command in COMMANDS if path in SAFE_TO_RUN]
    target = data.draw(st.sampled_from(COMMANDS) | st.sampled_from(safe))  # the runnable ones twice as often
    argv = data.draw(argvs(world.port, target))
    with environment(world.env):
        check_argv(world, target[0], argv)


def check_argv(world: World, words: tuple[str, ...], argv: list[str]) -> None:
    stage = dry_parse(argv)
    label = "cli " + (" ".join(words) or "qc")
    if stage.outcome == "run" and stage.path not in SAFE_TO_RUN:
        TALLY.add(label, f"parsed, not run: {' '.join(stage.path) or 'qc'}")
        return
    # the root callback builds Settings once the first word resolved to a verb, before the verb parses
    failed_first = root_failure(stage) if stage.path else None
    if stage.outcome == "run" and failed_first is None:
        addresses = [os.environ[n] for n in ("QC_REDIS_URL", "QC_EMBEDDED_REDIS_PORT", "QC_IB_PORT")]
        assert all(str(world.port) in a for a in addresses), "a command would run against a live address"
        url = (stage.root or {}).get("redis_url")
        assert url is None or url == "" or f":{world.port}/" in url, url
    result = CliRunner().invoke(cli, argv, prog_name="qc")
    out = result.output
    assert result.exit_code in (0, 1, 2), (argv, result.exit_code, out)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
    assert "Traceback (most recent call last)" not in out and "internal error:" not in out, (argv, out)
    assert MARK not in out, f"a secret reached the output of {argv}: {out}"
    if failed_first is not None:
        assert result.exit_code == 2 and f"{failed_first.field}:" in out, (argv, out)
        TALLY.add(label, f"refused:setting {failed_first.field}")
        return
    if stage.outcome == "run":
        TALLY.add(label, f"ran:exit {result.exit_code}")
        return
    if stage.outcome == "exit":
        assert result.exit_code == 0, (argv, out)
        TALLY.add(label, "help or version")
        return
    assert stage.error is not None
    assert result.exit_code == 2 and ("Error:" in out or "Usage:" in out), (argv, out)
    names = named(stage.error)
    assert not names or any(n and (n in out or repr(n)[1:-1] in out) for n in names), (argv, names, out)  # escaped
    TALLY.add(label, f"usage:{type(stage.error).__name__}")


def test_every_command_is_reached() -> None:
    """The walk sees every verb and subcommand, and the safe set names only commands that exist."""
    paths = {path for path, _ in COMMANDS}
    assert {("status",), ("sim", "ctl", "jump"), ("risk", "halt"), ("distribute", "run")} <= paths
    assert paths >= SAFE_TO_RUN
    assert all(not isinstance(dict(COMMANDS)[p], click.Group) for p in SAFE_TO_RUN)
    assert config.SPEC_BY_NAME["sim_ctl_port"].env == "QC_SIM_CTL_PORT"
