"""The four strategies' verdicts: gates, then the composite score against the threshold.

0/1/14DTE share one shape (``scoring.score`` over the strategy's weights; the gamma regime sets the
mode and the size multiplier). MOC differs in one way, from the evidence (reference §6): it provides
liquidity *against* a large closing imbalance, so the auction factor enters contra-side, and only
when |imbalance| / paired reaches the strategy's floor. Without auction data for the ETF (IB may not
send tick 225 for Arca/Nasdaq ETFs) it runs on the gamma and last-half-hour inputs and says so.

A strategy does not trade without its core inputs (``required``: for 0/1DTE the book imbalance,
VPIN and the gamma regime; stale analytics make them abstain, and the verdict names each one).
The flow strategies (0DTE, 1DTE) also need their lead factor, the last 30 s of order flow, to
confirm: same sign as the score and at least ``lead_min`` strong. A book leaning one way with no
aggressors behind it is not the informed flow these strategies follow.

The score is computed even when a gate is closed, so `qc signals explain` shows what the gate stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from qc.signals.model import AUCTION, Decision, Factor, Gate, StrategyParams
from qc.signals.scoring import score

NO_AUCTION_NOTE = "no auction data: ran on gamma and last-half-hour inputs"


def moc_view(factors: Mapping[str, Factor], min_ratio: float) -> tuple[dict[str, Factor], tuple[str, ...]]:
    """The factors as MOC reads them: the auction contra-side, abstaining below the imbalance floor."""
    view = dict(factors)
    got = factors.get(AUCTION)
    if got is None or got.value is None:
        return view, (NO_AUCTION_NOTE,)
    if abs(got.value) < min_ratio:
        view[AUCTION] = replace(got, value=None, reason=f"|imbalance| / paired {abs(got.value):.3f} "
                                                        f"below the floor {min_ratio:.3f}")
        return view, (f"auction imbalance too small to provide against ({abs(got.value):.3f} < {min_ratio:.3f})",)
    view[AUCTION] = replace(got, value=-got.value, inputs={**got.inputs, "side": "contra"})
    return view, ("contra-side liquidity against the closing imbalance",)


def evaluate(params: StrategyParams, symbol: str, factors: Mapping[str, Factor], gates: tuple[Gate, ...],
             *, moc_min_ratio: float = 0.0) -> Decision:
    """Fire (+1 bullish / −1 bearish) when every gate is open and |score| reaches the threshold."""
    view, notes = moc_view(factors, moc_min_ratio) if params.name == "moc" else (dict(factors), ())
    composite = score(view, params)
    closed = next((g for g in gates if not g.open), None)
    if closed is not None:
        return Decision(params.name, symbol, 0, composite, gates, f"gate {closed.name}: {closed.reason}", notes)
    missing = [view[name] if name in view else Factor(name, None, None, {}, "not computed")
               for name in params.required if name not in view or view[name].value is None]
    if missing:
        why = "; ".join(f"{m.name} abstains ({m.reason})" for m in missing)
        return Decision(params.name, symbol, 0, composite, gates, f"missing input: {why}", notes)
    if composite.score is None:
        return Decision(params.name, symbol, 0, composite, gates, f"no score: {composite.reason}", notes)
    if abs(composite.score) < params.threshold:
        return Decision(params.name, symbol, 0, composite, gates,
                        f"below threshold: |{composite.score:+.3f}| < {params.threshold:.2f}", notes)
    if params.lead is not None and params.lead_min > 0:
        lead = view.get(params.lead)
        value = None if lead is None else lead.value
        if value is None or value * composite.score < 0 or abs(value) < params.lead_min:
            shown = "abstains" if value is None else f"{value:+.3f}"
            return Decision(params.name, symbol, 0, composite, gates,
                            f"no lead: {params.lead} {shown} does not confirm {composite.score:+.3f} "
                            f"(needs the same sign and |value| ≥ {params.lead_min:.2f})", notes)
    return Decision(params.name, symbol, 1 if composite.score > 0 else -1, composite, gates, "", notes)


def block_key(decision: Decision) -> str:
    """The counter a non-firing decision increments: the gate's name, ``missing_input``, ``no_score``,
    ``below_threshold`` or ``no_lead``."""
    if decision.reason.startswith("gate "):
        return next(g.name for g in decision.gates if not g.open)
    if decision.reason.startswith("missing input"):
        return "missing_input"
    if decision.reason.startswith("no lead"):
        return "no_lead"
    return "no_score" if decision.reason.startswith("no score") else "below_threshold"
