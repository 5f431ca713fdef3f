"""Every panel of the dashboard as a JSON-able document, read from Redis: what the hub pushes to the page.

Panel ids: ``symbol:<SYM>`` for each of ``settings.symbols``, ``signals``, ``trading``, ``risk``,
``health``. Each document carries ``as_of`` (ISO-8601 or null), ``age_s`` (seconds on qc's clock —
simulated under `qc sim` — or null), ``stale``, ``stale_after_s`` and its data; one whose source is
missing or unreadable says so in ``missing`` (what to start) instead of raising, and one panel that
fails never costs the others (its document then says what failed). Numbers are numbers; a figure that
does not exist is null, never 0. No secret of the settings survives into a document (every string is
scrubbed when one would).

The panel builders are glue over the commands' own readers (one module each: ``panels_symbol``,
``panels_signals``, ``panels_trading``, ``panels_risk``, ``panels_health``); this module only runs them
and keeps them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from qc.core import clock
from qc.core.config import Settings
from qc.dashboard import memo, panels_health, panels_risk, panels_signals, panels_symbol, panels_trading
from qc.dashboard.docs import Doc, missing, scrub, usable_secrets
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)
HEALTH_EVERY_S = 1.0  # dozens of keys that change over seconds: not rebuilt at every poll
PANEL_IDS = ("signals", "trading", "risk", "health")


def account_of(settings: Settings) -> str:
    """The account qc's keys are scoped by (as `qc risk` and `qc execute` scope them)."""
    return settings.ib_account or "default"


def panel_ids(settings: Settings) -> list[str]:
    return [f"symbol:{s}" for s in settings.symbols] + list(PANEL_IDS)


def build_all(store: Store, settings: Settings, now_epoch: float, wall_epoch: float | None = None) -> dict[str, Doc]:
    """Panel id → document at ``now_epoch`` (qc's clock); ``wall_epoch`` (default: now) for liveness checks."""
    wall = clock.wall_epoch() if wall_epoch is None else wall_epoch
    account = account_of(settings)
    builders: dict[str, Callable[[], Doc]] = {
        f"symbol:{s}": (lambda s=s: panels_symbol.build(store, s, now_epoch))  # type: ignore[misc]
        for s in settings.symbols}
    builders["signals"] = lambda: panels_signals.build(store, settings.symbols, now_epoch)
    builders["trading"] = lambda: panels_trading.build(store, account, settings.symbols, now_epoch)
    builders["risk"] = lambda: panels_risk.build(store, settings, account, now_epoch)
    builders["health"] = lambda: memo.every(store, "health", HEALTH_EVERY_S, lambda: panels_health.build(
        store, settings, account, now_epoch, wall))
    secrets = usable_secrets(settings.secrets())
    return {panel: scrub(_guarded(panel, build), secrets) for panel, build in builders.items()}


def _guarded(panel: str, build: Callable[[], Doc]) -> Doc:
    """The panel's document, or one saying why there is none (Redis down, or a bug: logged with its traceback)."""
    try:
        return build()
    except REDIS_ERRORS as exc:
        return missing(f"Redis unreachable: {exc}", 0.0)
    except Exception as exc:  # one panel's failure must not blank the page: logged, shown, the others go on
        log.exception("dashboard panel %s failed", panel)
        return missing(f"panel failed: {type(exc).__name__}: {exc}", 0.0)


def explain(store: Store, signal_id: str, settings: Settings | None = None) -> Doc:
    """One signal's detail for the page (see ``panels_signals.explain``); scrubbed of ``settings``' secrets."""
    doc = panels_signals.explain(store, signal_id)
    return scrub(doc, usable_secrets(settings.secrets())) if settings is not None else doc
