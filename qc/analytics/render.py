"""Pure rendering of a :class:`GexReport`: money and levels for people, JSON with units, terminal charts.

No Redis, no clock, no plotting library: strings in, strings out, so every format is unit-tested
and a chart always fits ``WIDTH`` (100) columns. Bars use full blocks and half blocks (▌ right of
the axis, ▐ left of it) so positive and negative GEX read at half-cell resolution either side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qc.analytics.report import SOURCE_RECOMPUTED, Curve, GexReport

WIDTH = 100
HALF = 26  # cells each side of the axis
MAX_ROWS = 41
STRIKE_WINDOW = 0.05  # by-strike chart: strikes within ±5 % of spot
_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
DASH = "—"


def money(value: float | None) -> str:
    """$1.23B, -$45.6M, $812: three significant figures, the sign before the dollar."""
    if value is None or not math.isfinite(value):
        return DASH
    sign, mag = ("-" if value < 0 else ""), abs(value)
    for scale, suffix in _SUFFIXES:
        if round(mag / scale, 2) >= 1:
            return f"{sign}${_three_figures(mag / scale)}{suffix}"
    return f"{sign}${mag:.0f}"


def _three_figures(x: float) -> str:
    return f"{x:.0f}" if x >= 99.95 else f"{x:.1f}" if x >= 9.995 else f"{x:.2f}"


def level(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def signed_pct(value: float | None) -> str:
    return DASH if value is None else f"{value:+.2f}%"


def seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f} s"


def stale_line(r: GexReport) -> str | None:
    """The warning a trader cannot miss, above the table: every reason, and the age."""
    if not r.stale:
        return None
    return f"STALE ({'; '.join(r.stale_reasons)}, age {r.age_s:.0f} s)"


def recompute_line(r: GexReport) -> str | None:
    if r.source != SOURCE_RECOMPUTED:
        return None
    return (f"recomputed from the chain for --expiries {r.selection} ({' '.join(r.expiries) or 'none'}); "
            "qc analytics uses another set")


def spot_note(r: GexReport) -> str:
    """Where the spot came from and how old it is now: "quote, 2 s old" or "chain, 95 s old"."""
    return f"{r.spot_source}, {seconds(r.spot_age_s)} old"


def headline(r: GexReport) -> str:
    when = r.as_of.isoformat(timespec="seconds")
    return (f"qc gex {r.symbol} — spot {level(r.spot)} — as of {when} (age {r.age_s:.0f} s) — "
            f"{'recomputed' if r.source == SOURCE_RECOMPUTED else 'qc analytics'}")


def table_rows(r: GexReport) -> list[list[str]]:
    """Measure, value, what it means: the trader's one-screen answer."""
    f, lab = r.fields, r.labels
    zg_note = lab["zero_gamma_reason"] or f"{signed_pct(f['zero_gamma_distance_pct'])} from spot"
    share = f["share_0_1dte_abs_gex"]
    return [
        ["spot", level(r.spot), f"{spot_note(r)}: {r.spot_reason}" if r.spot_reason else spot_note(r)],
        ["net GEX", money(f["total"]), "$ per 1 % move (dealer long calls, short puts)"],
        ["DEX", money(f["dex_usd"]), "$ delta"],
        ["vanna", money(f["vanna_usd_per_volpt"]), "$ delta per vol point"],
        ["charm", money(f["charm_usd_per_day"]), "$ delta per calendar day"],
        ["zero gamma", level(f["zero_gamma"]), zg_note],
        ["call wall", level(f["call_wall"]), f"OI wall {level(f['call_oi_wall'])}"],
        ["put wall", level(f["put_wall"]), f"OI wall {level(f['put_oi_wall'])}"],
        ["gamma regime", lab["gamma_regime"] or DASH, f"regime {lab['regime'] or DASH}"],
        ["0-1 DTE share", DASH if share is None else f"{100 * share:.0f}%", "of |GEX| across expiries"],
        ["25Δ skew", DASH if f["skew_25d"] is None else f"{100 * f['skew_25d']:+.2f}", "vol points, put − call"],
        ["expiries", f"{len(r.expiries)} ({r.contracts_used or 0} contracts)", " ".join(r.expiries) or DASH],
        ["as of", r.as_of.isoformat(timespec="seconds"), f"age {seconds(r.age_s)}; chain age {seconds(r.chain_age_s)}"],
    ]


def _volpts(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def to_json(r: GexReport, with_curves: bool = False) -> dict[str, Any]:
    """One document, units in every numeric name, ISO-8601 UTC times, staleness beside the numbers."""
    f, lab = r.fields, r.labels
    share = f["share_0_1dte_abs_gex"]
    doc: dict[str, Any] = {
        "symbol": r.symbol, "as_of": r.as_of.isoformat(), "now": r.now.isoformat(), "age_s": round(r.age_s, 3),
        "stale": r.stale, "stale_reason": "; ".join(r.stale_reasons) or None,
        "source": r.source, "recomputed": r.source == SOURCE_RECOMPUTED, "expiries_selection": r.selection,
        "expiries": list(r.expiries), "spot_usd": r.spot, "spot_source": r.spot_source,
        "spot_age_s": None if r.spot_age_s is None else round(r.spot_age_s, 3), "spot_reason": r.spot_reason or None,
        "net_gex_usd_per_1pct": f["total"], "dex_usd": f["dex_usd"], "vanna_usd_per_volpt": f["vanna_usd_per_volpt"],
        "charm_usd_per_day": f["charm_usd_per_day"], "zero_gamma_usd": f["zero_gamma"],
        "zero_gamma_distance_pct": f["zero_gamma_distance_pct"], "zero_gamma_reason": lab["zero_gamma_reason"],
        "call_wall_usd": f["call_wall"], "put_wall_usd": f["put_wall"], "call_oi_wall_usd": f["call_oi_wall"],
        "put_oi_wall_usd": f["put_oi_wall"], "share_0_1dte_abs_gex_pct": None if share is None else 100.0 * share,
        "skew_25d_volpts": _volpts(f["skew_25d"]), "skew_25d_normalised_ratio": f["skew_25d_normalised"],
        "skew_moneyness_volpts": _volpts(f["skew_moneyness"]), "skew_reason": lab["skew_reason"],
        "regime": lab["regime"], "gamma_regime": lab["gamma_regime"], "convention": lab["convention"],
        "gamma_source": lab["gamma_source"], "contracts_used": r.contracts_used,
        "chain_as_of": None if r.chain_as_of is None else r.chain_as_of.isoformat(),
        "chain_age_s": None if r.chain_age_s is None else round(r.chain_age_s, 3),
    }
    if with_curves:
        doc["by_strike"] = _curve_json(r.by_strike, "strike_usd")
        doc["profile"] = _curve_json(r.profile, "spot_level_usd")
    return doc


def _curve_json(c: Curve | None, x_name: str) -> dict[str, list[float]] | None:
    return None if c is None else {x_name: list(c.x), "gex_usd_per_1pct": list(c.gex_usd_per_1pct)}


# --- charts -----------------------------------------------------------------------------------


def bar(value: float, scale: float) -> tuple[str, str]:
    """(left of axis, right of axis) for one value; ``scale`` is dollars per cell."""
    halves = min(2 * HALF, round(2 * abs(value) / scale)) if scale > 0 else 0
    body = "█" * (halves // 2)
    if value >= 0:
        return "", body + ("▌" if halves % 2 else "")
    return ("▐" if halves % 2 else "") + body, ""


def window(c: Curve, lo: float, hi: float) -> Curve:
    pts = [(x, y) for x, y in zip(c.x, c.gex_usd_per_1pct, strict=True) if lo <= x <= hi]
    return Curve(tuple(p[0] for p in pts), tuple(p[1] for p in pts))


def group_strikes(c: Curve, max_rows: int) -> tuple[Curve, int]:
    """Sum runs of k consecutive strikes (k the least that fits): equal counts per row, so no bar is
    taller only because its bin caught one more strike. Each row is labelled by its mean strike."""
    k = max(1, math.ceil(len(c.x) / max_rows))
    xs, ys = [], []
    for i in range(0, len(c.x), k):
        xs.append(sum(c.x[i:i + k]) / len(c.x[i:i + k]))
        ys.append(sum(c.gex_usd_per_1pct[i:i + k]))
    return Curve(tuple(xs), tuple(ys)), k


def sample(c: Curve, max_rows: int) -> Curve:
    """At most ``max_rows`` evenly spaced points of a smooth curve (the spot-shift profile), ends kept."""
    if len(c.x) <= max_rows:
        return c
    step = (len(c.x) - 1) / (max_rows - 1)
    idx = [round(i * step) for i in range(max_rows)]
    return Curve(tuple(c.x[i] for i in idx), tuple(c.gex_usd_per_1pct[i] for i in idx))


def _row_of(xs: Sequence[float], target: float) -> int | None:
    """The row nearest ``target``, or None when it lies beyond the chart by more than half a row."""
    half = (xs[-1] - xs[0]) / (2 * (len(xs) - 1)) if len(xs) > 1 else 0.0
    if not xs[0] - half <= target <= xs[-1] + half:
        return None
    return min(range(len(xs)), key=lambda i: abs(xs[i] - target))


def chart(title: str, c: Curve, marks: dict[str, float | None]) -> list[str]:
    """Horizontal bars about a zero axis, one row per x, each mark (spot, flip, walls) on its nearest row."""
    if not c.x:
        return [title, "  (no data in range)"]
    scale = max(abs(v) for v in c.gex_usd_per_1pct) / HALF
    notes: dict[int, list[str]] = {}
    off: list[str] = []
    for name, at in marks.items():
        row = None if at is None else _row_of(c.x, at)
        if at is not None:
            (off if row is None else notes.setdefault(row, [])).append(f"{name} {at:.2f}")
    lines = [title, f"{'':>9} {'dealers short gamma ◂':>{HALF}}│{'▸ dealers long gamma':<{HALF}}"
                    f"  █ = {money(scale)}"]
    for i, (x, y) in enumerate(zip(c.x, c.gex_usd_per_1pct, strict=True)):
        left, right = bar(y, scale)
        note = f" <- {', '.join(notes[i])}" if i in notes else ""
        lines.append(f"{x:>9.2f} {left:>{HALF}}│{right:<{HALF}} {money(y):>9}{note}"[:WIDTH].rstrip())
    if off:
        lines.append(f"{'':>9} off the chart: {', '.join(off)}"[:WIDTH])
    return lines


def strike_chart(r: GexReport) -> list[str]:
    if r.by_strike is None:
        return ["GEX by strike: not in Redis (is `qc analytics` writing it?)"]
    c, k = group_strikes(window(r.by_strike, r.spot * (1 - STRIKE_WINDOW), r.spot * (1 + STRIKE_WINDOW)), MAX_ROWS)
    marks = {"spot": r.spot, "flip": r.fields["zero_gamma"], "call wall": r.fields["call_wall"],
             "put wall": r.fields["put_wall"]}
    per_row = f", {k} strikes summed per row" if k > 1 else ""
    return chart(f"GEX by strike ($ per 1 % move), strikes within ±{100 * STRIKE_WINDOW:.0f} % of spot{per_row}",
                 c, marks)


def profile_chart(r: GexReport) -> list[str]:
    if r.profile is None or not r.profile.x:
        return ["GEX profile: not in Redis (is `qc analytics` writing it?)"]
    return chart("Net dealer GEX if spot moved to each level ($ per 1 % move)", sample(r.profile, MAX_ROWS),
                 {"spot": r.spot, "flip": r.fields["zero_gamma"]})
