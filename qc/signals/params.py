"""Each strategy's defaults, and the operator's overrides (``QC_SIGNALS_0DTE`` …) applied on top.

The defaults are the reference's starting priors (signals-and-auctions.md §4 and §6), to be tuned:

- 0DTE: direction from the last 30 s of order flow, VPIN-filtered book imbalance and microprice,
  flow clusters (walls, skew and news weigh little: gamma is the regime, not the direction); the
  order flow must confirm (same sign, |flow| ≥ 0.30); delta 0.35–0.60 (with $1 strikes a 0DTE
  band of 0.40–0.55 is often empty by midday: gamma makes delta jump from strike to strike);
  spread ≤ 10 % of mid and ≤ $0.05, OI ≥ 500, volume ≥ 100; take profit +50 %, stop −25 %, time
  stop 60 min; a contract fingerprint dwells 5 min, a symbol cools down 5 min.
- 1DTE: the same inputs plus the last half hour (read from close − 30 min) and news; flow confirms
  at |flow| ≥ 0.25; delta 0.35–0.50, spread ≤ 5 %; time stop 2 h; dwell 15 min.
- 14DTE: slower inputs weigh more (walls, skew, news); delta 0.30–0.45; time stop one day; dwell 60 min.
- MOC: liquidity provision against a large closing imbalance (contra side), else the last half hour
  (momentum, stronger in short gamma); trades the shares, exits at the next open.

Weights are relative: only their ratios matter after renormalisation over present factors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from qc.core.config import Settings
from qc.core.errors import ConfigError
from qc.signals.gates import GateParams
from qc.signals.model import (
    AUCTION,
    BOOK_IMBALANCE,
    FLOW_CLUSTER,
    GAMMA_MODE,
    IV_RV,
    LAST_HALF_HOUR,
    MICROPRICE,
    NEWS,
    ORDER_FLOW,
    SKEW_0DTE,
    VPIN_CHANGE,
    VPIN_LEVEL,
    WALLS,
    BracketParams,
    ContractFilter,
    StrategyName,
    StrategyParams,
)

_CONDITIONERS = {GAMMA_MODE: 1.0, VPIN_LEVEL: 1.0, VPIN_CHANGE: 1.0, IV_RV: 1.0}
_FLOW_CORE = (BOOK_IMBALANCE, VPIN_LEVEL, GAMMA_MODE)  # without analytics' book, toxicity and regime: no trade

DEFAULTS: Mapping[StrategyName, StrategyParams] = {
    "0dte": StrategyParams(
        "0dte", threshold=0.25,
        weights={ORDER_FLOW: 4.0, BOOK_IMBALANCE: 1.0, MICROPRICE: 0.5, FLOW_CLUSTER: 0.5, WALLS: 0.5,
                 SKEW_0DTE: 0.25, NEWS: 0.25, **_CONDITIONERS},
        contract=ContractFilter(0.35, 0.60, max_spread_pct=0.10, max_spread_abs=0.05),
        bracket=BracketParams(0.50, 0.25, 60.0), dwell_s=300.0, cooldown_s=300.0, lead=ORDER_FLOW, lead_min=0.30,
        required=_FLOW_CORE),
    "1dte": StrategyParams(
        "1dte", threshold=0.35,
        weights={ORDER_FLOW: 2.0, BOOK_IMBALANCE: 1.0, MICROPRICE: 0.5, FLOW_CLUSTER: 1.0, WALLS: 0.5,
                 SKEW_0DTE: 0.25, NEWS: 0.5, LAST_HALF_HOUR: 1.5, **_CONDITIONERS},
        contract=ContractFilter(0.35, 0.50, max_spread_pct=0.05, max_spread_abs=0.05),
        bracket=BracketParams(0.50, 0.25, 120.0), dwell_s=900.0, cooldown_s=900.0, lead=ORDER_FLOW, lead_min=0.25,
        required=_FLOW_CORE),
    "14dte": StrategyParams(
        "14dte", threshold=0.40,
        weights={ORDER_FLOW: 1.5, BOOK_IMBALANCE: 0.5, FLOW_CLUSTER: 1.0, WALLS: 1.0, SKEW_0DTE: 0.5, NEWS: 1.5,
                 **_CONDITIONERS},
        contract=ContractFilter(0.30, 0.45, max_spread_pct=0.05, max_spread_abs=0.0),
        bracket=BracketParams(0.50, 0.25, 1440.0), dwell_s=3600.0, cooldown_s=3600.0, required=(GAMMA_MODE,)),
    "moc": StrategyParams(
        "moc", threshold=0.30,
        weights={AUCTION: 3.0, LAST_HALF_HOUR: 2.0, GAMMA_MODE: 1.0},
        contract=ContractFilter(0.0, 1.0, max_spread_pct=0.002, max_spread_abs=0.0, min_open_interest=0,
                                min_volume=0, max_quote_age_s=10.0),
        bracket=BracketParams(0.005, 0.005, 0.0), dwell_s=3600.0, cooldown_s=3600.0, min_factors=1),
}
MOC_MIN_IMBALANCE_RATIO = 0.20  # |imbalance| / paired below this: no liquidity to provide


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """Every strategy's parameters, the gates and the MOC imbalance floor, as the worker uses them."""

    strategies: Mapping[StrategyName, StrategyParams]
    gates: GateParams
    moc_min_imbalance_ratio: float
    pending_cap: int


def _apply(base: StrategyParams, over: Mapping[str, float]) -> StrategyParams:
    weights = dict(base.weights)
    contract: dict[str, Any] = {}
    bracket: dict[str, Any] = {}
    top: dict[str, Any] = {}
    contract_names = {f.name for f in fields(ContractFilter)}
    bracket_names = {"take_profit_pct", "stop_pct", "time_stop_min", "trail_pct"}
    for name, value in over.items():
        if name.startswith("w_"):
            weights[name[2:]] = value
        elif name in contract_names:
            contract[name] = int(value) if name in ("min_open_interest", "min_volume") else value
        elif name in bracket_names:
            bracket[name] = value
        elif name == "lead_min":
            top[name] = value
        elif name == "min_factors":
            top[name] = max(1, int(value))
        elif name != "min_imbalance_ratio":
            top[name] = value
    merged = replace(base, weights=weights, contract=replace(base.contract, **contract),
                     bracket=replace(base.bracket, **bracket), **top)
    if merged.contract.delta_lo > merged.contract.delta_hi:
        raise ConfigError(f"QC_SIGNALS_{base.name.upper()}: delta_lo",
                          f"{merged.contract.delta_lo:g} is above delta_hi {merged.contract.delta_hi:g}")
    return merged


def from_settings(settings: Settings) -> SignalSettings:
    """The defaults with the operator's overrides; a contradictory pair is a ConfigError naming it."""
    overrides: Mapping[StrategyName, Mapping[str, float]] = {
        "0dte": settings.signals_0dte, "1dte": settings.signals_1dte, "14dte": settings.signals_14dte,
        "moc": settings.signals_moc}
    strategies = {name: _apply(DEFAULTS[name], overrides[name]) for name in DEFAULTS}
    gates = replace(GateParams(), **dict(settings.signals_gates))
    ratio = settings.signals_moc.get("min_imbalance_ratio", MOC_MIN_IMBALANCE_RATIO)
    return SignalSettings(strategies, gates, ratio, settings.signals_pending_cap)
