"""The ``qc`` root group: global options, Settings built once, lazy verbs, errors mapped to exit codes.

Verbs are imported only when invoked, so ``qc --help`` and ``qc status`` never load numpy, pandas,
scikit-learn or ib_async (checked by a test with ``python -X importtime``).

Exit codes: 0 success; 1 runtime failure (``QcError``) or unhealthy status; 2 bad flag, argument,
config key or ``QC_*`` value. Anything unexpected prints ``internal error: …; rerun with --debug``
and exits 1; the traceback only shows with ``--debug``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from qc import __version__
from qc.core import config, logs
from qc.core.errors import ConfigError, QcError

log = logging.getLogger("qc")

VERBS: dict[str, str] = {
    "analytics": "qc.commands.analytics",
    "chains": "qc.commands.chains",
    "dashboard": "qc.commands.dashboard",
    "distribute": "qc.commands.distribute",
    "execute": "qc.commands.execute",
    "fills": "qc.commands.fills",
    "gex": "qc.commands.gex",
    "orders": "qc.commands.orders",
    "positions": "qc.commands.positions",
    "ps": "qc.commands.ps",
    "restart": "qc.commands.restart",
    "risk": "qc.commands.risk",
    "signals": "qc.commands.signals",
    "sim": "qc.commands.sim",
    "status": "qc.commands.status",
    "stream": "qc.commands.stream",
    "up": "qc.commands.up",
}


class QcFailure(click.ClickException):
    """A QcError on its way to the shell: one line, the error's own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a class attribute


class LazyVerbs(click.Group):
    """Map verb names to modules and import a module only when its verb runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        command: click.Command = importlib.import_module(VERBS[cmd_name]).command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QcError as exc:
            raise QcFailure(_redacted(ctx, str(exc)), exc.exit_code) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.meta.get("qc.debug"):
                raise
            message = f"internal error: {type(exc).__name__}: {exc}; rerun with --debug"
            raise QcFailure(_redacted(ctx, message), 1) from None


def _redacted(ctx: click.Context, message: str) -> str:
    """``message`` with every secret masked: a safety net for errors whose text quotes a setting or a URL.

    Before Settings exist (an error while building them) the raw environment and ``--redis-url`` stand in.
    """
    if isinstance(ctx.obj, config.Settings):
        secrets = ctx.obj.secrets()
    else:
        secrets = config.raw_secrets(os.environ, [ctx.params.get("redis_url")])
    return logs.redact(message, secrets)


def build_settings(redis_url: str | None, config_path: str | None, log_level: str | None) -> config.Settings:
    """Resolve settings from the flags, the environment, ./.env and the config file."""
    toml_path = Path(config_path) if config_path else Path(config.DEFAULT_CONFIG_FILE)
    field = str(toml_path)
    if config_path:
        field = "QC_CONFIG" if config_path == os.environ.get("QC_CONFIG") else "--config"
    toml = config.read_toml(toml_path, field) if config_path or toml_path.exists() else {}
    dotenv = _read_dotenv() if Path(".env").is_file() else {}
    flags = {"redis_url": redis_url, "log_level": log_level}
    return config.resolve(flags, os.environ, dotenv, toml)


def _read_dotenv() -> dict[str, str | None]:
    """./.env as a mapping; unreadable or not UTF-8 is a ConfigError naming it, not a traceback."""
    from dotenv import dotenv_values

    try:
        return dict(dotenv_values(".env"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(".env", f"cannot read it: {reason}",
                          "fix its permissions (chmod u+r .env) or remove it") from None


@click.group(cls=LazyVerbs, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Run `qc VERB --help` for a verb's options and examples.")
@click.option("--redis-url", metavar="URL", help="Redis to use (overrides QC_REDIS_URL). [env var: QC_REDIS_URL]")
@click.option("--config", "config_path", metavar="PATH", envvar="QC_CONFIG", show_envvar=True,
              help="qc.toml with settings (default: ./qc.toml if present).")
@click.option("--log-level", type=click.Choice(config.LOG_LEVELS, case_sensitive=False),
              help="Log verbosity (overrides QC_LOG_LEVEL).")
@click.option("--debug", is_flag=True, envvar="QC_DEBUG", help="Show tracebacks for internal errors.")
@click.version_option(__version__, "--version", prog_name="qc")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, config_path: str | None, log_level: str | None,
        debug: bool) -> None:
    """qc: QuantiCity Capital's options-trading platform, one verb per subsystem, Redis in between."""
    ctx.meta["qc.debug"] = debug
    settings = build_settings(redis_url, config_path, log_level)
    logs.setup("DEBUG" if debug else settings.log_level, settings.log_format, settings.secrets())
    for warning in config.unknown_env_names(os.environ):
        log.warning(warning)
    ctx.obj = settings


def main() -> None:
    """Console-script entry point: click's own handling, plus a quiet exit 141 when stdout's reader leaves.

    ``qc status | head -1``: Python ignores SIGPIPE, so the next write raises BrokenPipeError, which
    ``LazyVerbs`` would report as an internal error. It is recognised here, as the context of that
    report, before anything prints; stdout goes to devnull so the interpreter's final flush stays
    silent, and the exit is 141 (128 + SIGPIPE), what a shell sees of ``yes | head``. (With ``--debug``
    the raw error meets click's own EPIPE handling first: quiet too, exit 1.) Restoring SIGPIPE's
    default instead would also kill a worker whose Redis or IB socket closes mid-write.
    """
    try:
        try:
            code = cli.main(prog_name="qc", standalone_mode=False)
            sys.stdout.flush()
        except click.ClickException as exc:
            cause: BaseException | None = exc
            for _ in range(8):  # the report's chain of causes, bounded (a chain may loop)
                if cause is None or isinstance(cause, BrokenPipeError):
                    break
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, BrokenPipeError):
                raise cause from None
            exc.show()
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
