"""A strategy's composite score: the weighted mean of its present directional factors, conditioned.

Pure: factors and parameters in, a :class:`~qc.signals.model.Score` out.

The rules, in order:

1. **Configured** factors are the names in ``params.weights`` with a weight > 0; a conditioner
   (gamma mode, VPIN level and change, IV - RV) is used only when configured, and its weight only
   marks it used (conditioners never enter the mean). **Present** means ``value is not None``; a
   configured factor missing from ``factors`` abstains ("not computed").
2. **VPIN filter.** With VPIN level present, the flow factors' weights (``FLOW_FACTORS``) are
   multiplied by ``f = 0.5 + 0.5 * (vpin_level + 1) / 2``: calm, uninformed flow halves them, toxic
   flow keeps them whole; with VPIN change also present, ``f *= 1 + 0.25 * max(0, vpin_change)``
   (rising toxicity trusts flow more, falling is no extra evidence). Without VPIN level, f = 1.
3. **Gamma mode** ``g`` (the gamma factor's value, 0 when it abstains or is not configured):
   momentum factors' weights (order flow, last half hour, flow cluster, book imbalance, microprice)
   are multiplied by ``1 - 0.25 g`` and the reversion factor's (walls) by ``1 + 0.5 g``. Dealers long
   gamma (g > 0) damp moves, so support/resistance matters more and chasing less; short gamma the
   reverse. The momentum tilt is the smaller one: gamma is the regime, flow is the direction.
   ``mode``: "mean_reversion" (g > 0), "momentum" (g < 0), "neutral" (g == 0: on the flip, or gamma
   not configured), "unknown" (gamma configured but abstaining).
4. **Score** = Σ w_eff·v / Σ w_eff over present directional factors; every effective weight is
   positive (each multiplier is > 0) and |v| ≤ 1, so |score| ≤ 1. None, with the reason, when
   fewer than ``params.min_factors`` (at least 1) directional factors are present.
5. **Size multiplier** = ``(1 - 0.5 max(0, -g)) * (1 + 0.25 iv_rv)``, halved when gamma is configured
   but abstains, clipped to [0.25, 1.25]. Short gamma widens the distribution of outcomes (up to
   half size); cheap options (iv_rv > 0) allow up to 1.25x, rich ones shrink it. An unknown regime
   is sized like the worst known one (g = -1 gives 0.5): not knowing whether dealers amplify moves
   is no reason to bet full size that they do not.

The key property: an abstaining factor gives exactly the score of the same parameters with that
factor removed from the weights (renormalisation; never counted as zero). For conditioners this
holds for the score (an abstaining VPIN or gamma is f = 1 or g = 0, exactly as unconfigured); the
size multiplier deliberately differs for an abstaining gamma.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from qc.signals.model import (
    ALL_FACTORS,
    BOOK_IMBALANCE,
    CONDITIONERS,
    DIRECTIONAL,
    FLOW_CLUSTER,
    FLOW_FACTORS,
    GAMMA_MODE,
    IV_RV,
    LAST_HALF_HOUR,
    MICROPRICE,
    ORDER_FLOW,
    VPIN_CHANGE,
    VPIN_LEVEL,
    WALLS,
    Contribution,
    Factor,
    Score,
    StrategyParams,
)

MOMENTUM_FACTORS: frozenset[str] = frozenset({ORDER_FLOW, LAST_HALF_HOUR, FLOW_CLUSTER, BOOK_IMBALANCE, MICROPRICE})
REVERSION_FACTORS: frozenset[str] = frozenset({WALLS})
# Gamma sets the regime more than the direction (reference §6): it tilts momentum inputs by at most a
# quarter, so informed flow is still followed in a long-gamma market, and support/resistance by half.
MOMENTUM_TILT = 0.25
REVERSION_TILT = 0.5
SIZE_MIN, SIZE_MAX = 0.25, 1.25
UNKNOWN_REGIME_SIZE = 0.5


def _reading(factors: Mapping[str, Factor], name: str) -> tuple[float | None, float | None, str]:
    """(value, age, reason) of a configured factor; an unusable value abstains with why, never reads as 0."""
    got = factors.get(name)
    if got is None:
        return None, None, "not computed"
    if got.value is None:
        return None, got.age_s, got.reason or "abstained (no reason given)"
    if not math.isfinite(got.value) or not -1.0 <= got.value <= 1.0:
        return None, got.age_s, f"value {got.value!r} outside [-1, 1]"
    return got.value, got.age_s, ""


def _configured(params: StrategyParams) -> dict[str, float]:
    """The factors this strategy uses (weight > 0), after refusing names and weights that cannot be meant."""
    unknown = sorted(set(params.weights) - set(ALL_FACTORS))
    if unknown:
        raise ValueError(f"{params.name}: weights name unknown factors {unknown}; known: {', '.join(ALL_FACTORS)}")
    bad = {n: w for n, w in params.weights.items() if not math.isfinite(w)}
    if bad:
        raise ValueError(f"{params.name}: weights are not finite: {bad}")
    return {n: params.weights[n] for n in ALL_FACTORS if params.weights.get(n, 0.0) > 0}


def _multiplier(name: str, vpin_f: float, g: float) -> float:
    m = vpin_f if name in FLOW_FACTORS else 1.0
    if name in MOMENTUM_FACTORS:
        m *= 1.0 - MOMENTUM_TILT * g
    if name in REVERSION_FACTORS:
        m *= 1.0 + REVERSION_TILT * g
    return m


def score(factors: Mapping[str, Factor], params: StrategyParams) -> Score:
    """The composite of ``params``' configured factors (see the module docstring for every rule)."""
    configured = _configured(params)
    readings = {n: _reading(factors, n) for n in configured}

    def conditioner(name: str) -> float | None:
        return readings[name][0] if name in configured else None

    vpin_f = 1.0
    level, change = conditioner(VPIN_LEVEL), conditioner(VPIN_CHANGE)
    if level is not None:
        vpin_f = 0.5 + 0.5 * (level + 1.0) / 2.0
        if change is not None:
            vpin_f *= 1.0 + 0.25 * max(0.0, change)
    gamma = conditioner(GAMMA_MODE)
    g = gamma if gamma is not None else 0.0
    gamma_unknown = GAMMA_MODE in configured and gamma is None
    mode = "unknown" if gamma_unknown else "mean_reversion" if g > 0 else "momentum" if g < 0 else "neutral"
    iv = conditioner(IV_RV)
    size = (1.0 - 0.5 * max(0.0, -g)) * (1.0 + 0.25 * iv if iv is not None else 1.0)
    if gamma_unknown:
        size *= UNKNOWN_REGIME_SIZE
    size = max(SIZE_MIN, min(SIZE_MAX, size))

    directional = [n for n in configured if n in DIRECTIONAL]
    w_eff = {n: configured[n] * _multiplier(n, vpin_f, g) for n in directional}
    present = {n: v for n in directional if (v := readings[n][0]) is not None}
    total_w = sum(w_eff[n] for n in present)
    need = max(1, params.min_factors)
    value: float | None = None
    reason = ""
    if not directional:
        reason = "no directional factor configured"
    elif len(present) < need:
        missing = "; ".join(f"{n}: {readings[n][2]}" for n in directional if readings[n][0] is None)
        reason = f"only {len(present)} of {len(directional)} directional factors present (need {need}): {missing}"
    elif total_w > 0:
        value = max(-1.0, min(1.0, sum(w_eff[n] * v for n, v in present.items()) / total_w))
    else:
        reason = "present directional factors have no weight"

    contributions = []
    for n in configured:
        v, age, why = readings[n]
        if n in CONDITIONERS:
            contributions.append(Contribution(n, v, configured[n], 0.0, age, why))
        elif v is None:
            contributions.append(Contribution(n, None, 0.0, 0.0, age, why))
        else:
            part = v * w_eff[n] / total_w if value is not None else 0.0
            contributions.append(Contribution(n, v, w_eff[n], part, age, ""))
    return Score(value, mode, size, tuple(contributions), reason)
