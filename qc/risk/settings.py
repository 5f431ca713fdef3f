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

from qc.core.config import RISK_WHOLE_NAMES, SPEC_BY_NAME, Settings, fmt_number
from qc.core.errors import ConfigError
from qc.risk.breakers import BreakerLimits
from qc.risk.model import Limits

LIMITS_ENV = SPEC_BY_NAME["risk_limits"].env      # QC_RISK_LIMITS
BREAKERS_ENV = SPEC_BY_NAME["risk_breakers"].env  # QC_RISK_BREAKERS
_FROM_LIMITS = {"daily_loss_usd": "daily_loss_limit_usd", "drawdown_usd": "drawdown_limit_usd"}


def _whole(env: str, values: dict[str, object]) -> None:
    """Turn the int fields' overrides into ints (``inf`` stays: it disables the limit)."""
    for name, least in RISK_WHOLE_NAMES.items():
        value = values.get(name)
        if isinstance(value, float) and math.isfinite(value):
            if value != int(value) or value < least:
                raise ConfigError(env, f"{name}: must be a whole number ≥ {least}, got {fmt_number(value)}")
            values[name] = int(value)


def _rejected(env: str, exc: ValueError) -> ConfigError:
    """A dataclass's ValueError (``Limits.name: ...`` or ``name: ...``) as a one-line ConfigError naming ``env``."""
    message = " ".join(str(exc).split())
    return ConfigError(env, message.removeprefix("Limits.").removeprefix("BreakerLimits."))


def limits_from(settings: Settings) -> Limits:
    """The default :class:`Limits` with ``settings.risk_limits`` applied; ConfigError naming QC_RISK_LIMITS."""
    defaults = Limits()
    values: dict[str, object] = {}
    buckets: dict[str, dict[str, float]] = {}
    for name, value in settings.risk_limits.items():
        base, dot, bucket = name.partition(".")
        if dot:  # one bucket of a per-bucket limit: the other buckets keep their defaults
            buckets.setdefault(base, dict(getattr(defaults, base)))[bucket] = value
        else:
            values[name] = value
    values.update({base: MappingProxyType(per) for base, per in buckets.items()})
    _whole(LIMITS_ENV, values)
    try:
        return Limits(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _rejected(LIMITS_ENV, exc) from None
    except TypeError as exc:  # a name Limits does not have (Settings built by hand, not by resolve)
        raise ConfigError(LIMITS_ENV, str(exc)) from None


def breakers_from(settings: Settings) -> BreakerLimits:
    """The default :class:`BreakerLimits` with ``settings.risk_breakers`` applied, loss and drawdown the limits'.

    ConfigError naming QC_RISK_BREAKERS, or QC_RISK_LIMITS when the loss or drawdown limit is one the
    breaker cannot take (0: the breaker needs a positive amount).
    """
    limits = limits_from(settings)
    shared = {name: getattr(limits, of) for name, of in _FROM_LIMITS.items()}
    for name, value in shared.items():
        if not value > 0:
            raise ConfigError(LIMITS_ENV, f"{_FROM_LIMITS[name]}: must be > 0 (it is also the {name} breaker's "
                                          f"threshold), got {fmt_number(value)}", "off disables both")
    values: dict[str, object] = dict(settings.risk_breakers)
    _whole(BREAKERS_ENV, values)
    try:
        return BreakerLimits(**shared, **values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _rejected(BREAKERS_ENV, exc) from None
    except TypeError as exc:  # an unknown or a shared name (Settings built by hand, not by resolve)
        raise ConfigError(BREAKERS_ENV, str(exc)) from None


def _show(value: float) -> str:
    return "off" if math.isinf(value) else fmt_number(value)


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, value, source) for every limit and breaker threshold; validates them first.

    Names as ``QC_RISK_LIMITS`` spells them (per-bucket limits as ``<field>.<bucket>``), breaker
    thresholds as ``breaker.<field>``; a disabled limit reads ``off``; the source is ``default`` unless
    the name was overridden, then where QC_RISK_LIMITS / QC_RISK_BREAKERS came from (env, .env, qc.toml, flag).
    """
    limits, breakers = limits_from(settings), breakers_from(settings)

    def source(setting: str, overrides: Mapping[str, float], name: str) -> str:
        return settings.sources.get(setting, "default") if name in overrides else "default"

    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(Limits):
        value = getattr(limits, f.name)
        if isinstance(value, Mapping):
            for bucket, per in value.items():
                name = f"{f.name}.{bucket}"
                rows.append((name, _show(per), source("risk_limits", settings.risk_limits, name)))
        else:
            rows.append((f.name, _show(value), source("risk_limits", settings.risk_limits, f.name)))
    for f in dataclasses.fields(BreakerLimits):
        if f.name in _FROM_LIMITS:
            continue  # the limits' daily_loss_limit_usd / drawdown_limit_usd rows above
        rows.append((f"breaker.{f.name}", _show(getattr(breakers, f.name)),
                     source("risk_breakers", settings.risk_breakers, f.name)))
    return rows
