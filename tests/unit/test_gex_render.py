"""Pure rendering of `qc gex`: money, bars, charts that fit 100 columns with spot and flip marked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from qc.analytics import render as r
from qc.analytics.report import NUMBERS, SOURCE_WORKER, Curve, GexReport

AS_OF = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def report(stale: tuple[str, ...] = (), zero_gamma: float | None = 99.0, age_s: float = 12.0) -> GexReport:
    fields: dict[str, float | None] = dict.fromkeys(NUMBERS)
    fields.update(total=1.23e9, zero_gamma=zero_gamma, call_wall=104.0, put_wall=95.0, zero_gamma_distance_pct=-1.0)
    strikes = tuple(80.0 + i for i in range(41))
    levels = tuple(80.0 + 0.25 * i for i in range(121))
    return GexReport("SPY", SOURCE_WORKER, None, AS_OF, AS_OF + timedelta(seconds=age_s), 100.0, fields,
                     dict.fromkeys(("zero_gamma_reason", "skew_reason", "regime", "gamma_regime", "convention",
                                    "gamma_source")), ("2026-11-24",), 10, AS_OF, stale,
                     Curve(strikes, tuple((s - 99.0) * 1e7 for s in strikes)),
                     Curve(levels, tuple((x - 99.0) * 1e8 for x in levels)))


@pytest.mark.parametrize(("value", "text"), [
    (1.234e9, "$1.23B"), (-45.64e6, "-$45.6M"), (812.4, "$812"), (123.4e9, "$123B"), (9.999e8, "$1.00B"),
    (2.5e12, "$2.50T"), (0.0, "$0"), (None, "—"), (float("nan"), "—"), (1500.0, "$1.50K"),
])
def test_money(value: float | None, text: str) -> None:
    assert r.money(value) == text


def test_bar_halves_and_sides() -> None:
    assert r.bar(3.0, 1.0) == ("", "███")
    assert r.bar(2.5, 1.0) == ("", "██▌")
    assert r.bar(-2.5, 1.0) == ("▐██", "")
    assert r.bar(1e9, 1.0) == ("", "█" * r.HALF)  # clipped to the half-width
    assert r.bar(0.0, 1.0) == ("", "")


def test_group_strikes_sums_equal_counts_per_row() -> None:
    c, k = r.group_strikes(Curve((1.0, 2.0, 3.0, 4.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0)), max_rows=2)
    assert k == 3 and c == Curve((2.0, 4.5), (6.0, 9.0))
    assert r.group_strikes(Curve((1.0,), (7.0,)), 5) == (Curve((1.0,), (7.0,)), 1)


def test_sample_keeps_the_ends() -> None:
    c = r.sample(Curve(tuple(float(i) for i in range(121)), tuple(float(i) for i in range(121))), 41)
    assert len(c.x) == 41 and (c.x[0], c.x[-1]) == (0.0, 120.0)


def test_charts_mark_spot_and_flip_and_fit_100_columns() -> None:
    for lines in (r.strike_chart(report()), r.profile_chart(report())):
        assert all(len(line) <= r.WIDTH for line in lines)
        spot = [line for line in lines if "spot 100.00" in line]
        flip = [line for line in lines if "flip 99.00" in line]
        assert len(spot) == 1 and len(flip) == 1
        rows = [float(line.split()[0]) for line in lines[2:]]
        half_row = (rows[1] - rows[0]) / 2
        assert abs(float(spot[0].split()[0]) - 100.0) <= half_row and abs(float(flip[0].split()[0]) - 99.0) <= half_row
        assert any("▐" in line or "█│" in line for line in lines) and any("│█" in line for line in lines)


def test_a_flip_outside_the_chart_is_listed_not_pinned_to_an_edge() -> None:
    lines = r.strike_chart(report(zero_gamma=50.0))
    assert lines[-1].strip() == "off the chart: flip 50.00"
    assert not any("<- " in line and "flip" in line for line in lines)


def test_stale_line_and_json_carry_reason_and_age() -> None:
    assert r.stale_line(report()) is None
    stale = report(stale=("option chain 1260 s old",), age_s=75.0)
    assert r.stale_line(stale) == "STALE (option chain 1260 s old, age 75 s)"
    doc = r.to_json(stale, with_curves=True)
    assert doc["stale"] is True and doc["stale_reason"] == "option chain 1260 s old" and doc["age_s"] == 75.0
    assert doc["net_gex_usd_per_1pct"] == 1.23e9 and doc["as_of"] == AS_OF.isoformat()
    assert len(doc["by_strike"]["strike_usd"]) == 41 and len(doc["profile"]["spot_level_usd"]) == 121
    numeric = [k for k, v in doc.items() if isinstance(v, float) and k not in ("age_s", "chain_age_s")]
    assert all(k.endswith(("_usd", "_pct", "_1pct", "_volpt", "_day", "_volpts", "_ratio")) for k in numeric)


def test_table_rows_show_money_and_missing_as_dash() -> None:
    rows = {row[0]: row[1:] for row in r.table_rows(report(zero_gamma=None))}
    assert rows["net GEX"][0] == "$1.23B" and rows["zero gamma"][0] == "—" and rows["DEX"][0] == "—"
