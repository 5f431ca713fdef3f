"""The risk limits and breaker thresholds from settings: defaults, the operator's overrides, their sources.

``QC_RISK_LIMITS`` overrides fields of :class:`~qc.risk.model.Limits` (a per-bucket Greek limit as
``<field>.<bucket>``, replacing that bucket only); ``QC_RISK_BREAKERS`` those of
:class:`~qc.risk.breakers.BreakerLimits`, whose loss and drawdown are always the limits' own (one
number each). Values the dataclasses refuse (vpin_clear ≥ vpin_trip, a fractional rejects_n) are a
one-line ConfigError naming the variable and the field, so `qc risk` fails at start, never mid-day.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType

from qc.core.config import Settings
from qc.core.errors import ConfigError
from qc.risk.breakers import BreakerLimits
from qc.risk.model import Limits

LIMITS_ENV = "QC_RISK_LIMITS"
BREAKERS_ENV = "QC_RISK_BREAKERS"


def _limit_values(overrides: Mapping[str, float]) -> dict[str, object]:
    defaults = Limits()
    values: dict[str, object] = {}
    buckets: dict[str, dict[str, float]] = {}
    for name, value in overrides.items():
        base, dot, bucket = name.partition(".")
        if dot:
            buckets.setdefault(base, dict(getattr(defaults, base)))[bucket] = value
        else:
            values[name] = value
    values.update({base: MappingProxyType(per) for base, per in buckets.items()})
    return values


def limits_from(settings: Settings) -> Limits:
    values = _limit_values(settings.risk_limits)
    for name in ("max_open_orders_per_side", "max_msgs_per_s"):
        value = values.get(name)
        if isinstance(value, float) and math.isfinite(value):
            if value != int(value):
                raise ConfigError(f"{LIMITS_ENV}: {name}", f"must be a whole number, got {value:g}")
            values[name] = int(value)
    try:
        return Limits(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(LIMITS_ENV, str(exc)) from None


def breakers_from(settings: Settings) -> BreakerLimits:
    limits = limits_from(settings)
    values: dict[str, float | int] = dict(settings.risk_breakers)
    if "rejects_n" in values:
        n = values["rejects_n"]
        if n != int(n):
            raise ConfigError(f"{BREAKERS_ENV}: rejects_n", f"must be a whole number, got {n:g}")
        values["rejects_n"] = int(n)
    try:
        return BreakerLimits(daily_loss_usd=limits.daily_loss_limit_usd, drawdown_usd=limits.drawdown_limit_usd,
                             **values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(BREAKERS_ENV, str(exc)) from None


def _show(value: float) -> str:
    return "off" if math.isinf(value) else f"{value:g}"


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, value, source) for every limit and breaker threshold; validates them first."""
    limits, breakers = limits_from(settings), breakers_from(settings)
    limits_source = settings.sources.get("risk_limits", "default")
    breakers_source = settings.sources.get("risk_breakers", "default")
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(Limits):
        value = getattr(limits, f.name)
        if isinstance(value, Mapping):
            for bucket, per in value.items():
                name = f"{f.name}.{bucket}"
                rows.append((name, _show(per), limits_source if name in settings.risk_limits else "default"))
        else:
            rows.append((f.name, _show(value), limits_source if f.name in settings.risk_limits else "default"))
    for f in dataclasses.fields(BreakerLimits):
        if f.name in ("daily_loss_usd", "drawdown_usd"):
            continue
        rows.append((f"breaker.{f.name}", _show(getattr(breakers, f.name)),
                     breakers_source if f.name in settings.risk_breakers else "default"))
    return rows
