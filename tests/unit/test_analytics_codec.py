"""The values `qc analytics` writes: every codec round-trips, and every reader turns a missing, partial,
old-version or malformed value into ``Absent`` with the reason, never an exception or a zero."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.analytics.codec import (
    GAMMA_REGIMES,
    GEX_LABELS,
    GEX_NUMBERS,
    REGIME_LABELS,
    STRIKE_COLUMNS,
    VOL_BANDS,
    FlowClusters,
    FlowModelDoc,
    GexPending,
    GexProfile,
    GexSnapshot,
    GexStrikes,
    Imbalance,
    Regime,
    RegimeDay,
    Vpin,
    gex_from_redis,
)
from qc.core.codec import Absent

AS_OF = datetime(2026, 11, 24, 20, 59, 30, tzinfo=timezone.utc)
KEY = "analytics:SPY:x"

NAIVE_2000, NAIVE_2100 = (datetime(y, 1, 1, tzinfo=timezone.utc).replace(tzinfo=None) for y in (2000, 2100))
instants = st.datetimes(min_value=NAIVE_2000, max_value=NAIVE_2100, timezones=st.just(timezone.utc))


def finite(lo: float = -1e15, hi: float = 1e15) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def maybe(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


ages = maybe(finite(0.0, 1e7))
reasons = st.text(max_size=30)
names = st.text(min_size=1, max_size=12)

vpins = st.builds(Vpin, maybe(finite(0.0, 1.0)), maybe(finite(1e-6, 1e12)), st.integers(0, 10_000), names,
                  reasons, reasons, instants, ages, reasons)
imbalances = st.builds(Imbalance, maybe(finite(-1.0, 1.0)), maybe(finite(1e-6, 1e6)), maybe(finite(-10.0, 10.0)),
                       maybe(st.integers(0, 100)), instants, ages, reasons)
prices = finite(1e-3, 1e6)


@st.composite
def gex_snapshots(draw: st.DrawFn) -> GexSnapshot:
    numbers = {n: draw(maybe(prices if n in ("zero_gamma", "call_wall", "put_wall", "call_oi_wall", "put_oi_wall")
                             else finite(0.0, 1.0) if n == "share_0_1dte_abs_gex" else finite())) for n in GEX_NUMBERS}
    labels = {n: draw(reasons) for n in GEX_LABELS} | {"regime": draw(st.sampled_from(REGIME_LABELS)),
                                                        "gamma_regime": draw(st.sampled_from(GAMMA_REGIMES))}
    expiries = tuple(draw(st.lists(st.dates(date(2020, 1, 1), date(2040, 1, 1)), max_size=5)))
    return GexSnapshot(numbers, labels, draw(prices), draw(st.sampled_from(("quote", "chain"))), draw(ages),
                       draw(reasons), expiries, draw(st.integers(0, 10**6)), draw(instants), draw(instants),
                       draw(finite(-1e6, 1e7)), draw(reasons))


pendings = st.builds(GexPending, instants, st.text(min_size=1, max_size=30))


@st.composite
def strikes_docs(draw: st.DrawFn) -> GexStrikes:
    strike = tuple(sorted(set(draw(st.lists(prices, max_size=8)))))
    return GexStrikes(strike, {n: tuple(draw(maybe(finite())) for _ in strike) for n in STRIKE_COLUMNS})


@st.composite
def profiles(draw: st.DrawFn) -> GexProfile:
    levels = tuple(draw(st.lists(prices, max_size=8)))
    return GexProfile(levels, tuple(draw(maybe(finite())) for _ in levels), draw(prices), draw(maybe(prices)),
                      tuple(draw(st.lists(prices, max_size=3))))


regimes = st.builds(Regime, maybe(finite(0.0, 10.0)), maybe(finite(0.0, 10.0)), maybe(finite(0.0, 10.0)),
                    maybe(finite(-10.0, 10.0)), maybe(finite(0.0, 10.0)), maybe(finite(0.0, 100.0)),
                    st.integers(0, 500), st.integers(0, 390), instants, st.sampled_from(GAMMA_REGIMES),
                    st.sampled_from(VOL_BANDS), st.sampled_from(REGIME_LABELS))
regime_days = st.builds(RegimeDay, st.dates(date(2000, 1, 1), date(2100, 1, 1)), finite(0.0, 10.0))


@st.composite
def flow_models(draw: st.DrawFn) -> FlowModelDoc:
    d, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    row = st.lists(finite(), min_size=d, max_size=d).map(tuple)
    return FlowModelDoc(tuple(f"f{i}" for i in range(d)), tuple(f"l{i}" for i in range(k)), draw(row),
                        tuple(draw(st.lists(finite(1e-6, 1e6), min_size=d, max_size=d))),
                        tuple(draw(row) for _ in range(k)))


flow_clusters = st.builds(FlowClusters, instants, st.integers(0, 1000), st.integers(0, 10**6), ages, maybe(names),
                          maybe(reasons), st.dictionaries(names, st.integers(0, 1000), max_size=3),
                          maybe(flow_models()))


@pytest.mark.parametrize(("codec", "values"), [
    (Vpin, vpins), (Imbalance, imbalances), (GexSnapshot, gex_snapshots()), (GexPending, pendings),
    (GexStrikes, strikes_docs()), (GexProfile, profiles()), (Regime, regimes), (RegimeDay, regime_days),
    (FlowModelDoc, flow_models()), (FlowClusters, flow_clusters),
], ids=lambda x: getattr(x, "__name__", ""))
def test_every_codec_round_trips(codec: Any, values: st.SearchStrategy[Any]) -> None:
    @given(values)
    def round_trip(value: Any) -> None:
        raw = value.to_redis()
        assert codec.from_redis(raw, key=KEY) == value
        if isinstance(raw, dict):
            assert all(isinstance(v, str) for v in raw.values()) and raw["v"] == "1"
        else:
            json.loads(raw)  # plain JSON any reader parses: no NaN, no Infinity

    round_trip()


# --- absent, partial, old, malformed: one example per reader ------------------------------------

SNAP = GexSnapshot(dict.fromkeys(GEX_NUMBERS, 1.0) | {"share_0_1dte_abs_gex": 0.5, "zero_gamma": None},
                   dict.fromkeys(GEX_LABELS, "") | {"regime": "trend", "gamma_regime": "negative",
                                                     "zero_gamma_reason": "no sign change within ±20 %"},
                   600.0, "quote", 1.5, "", (date(2026, 11, 24),), 812, AS_OF, AS_OF - timedelta(seconds=95), 95.0, "")
EXAMPLES: dict[str, tuple[Any, str, str, Any]] = {  # codec, a required field, a number field, a bad value for it
    "vpin": (Vpin(0.41, 1.2e5, 50, "bvc", "", "redis", AS_OF, 1.0, ""), "buckets_in_window", "value", "1.5"),
    "imbalance": (Imbalance(0.2, 600.01, 0.02, 20, AS_OF, 0.5, ""), "microprice", "imbalance", "nan"),
    "gex": (SNAP, "spot", "total", "inf"),
    "strikes": (GexStrikes((590.0, 600.0), dict.fromkeys(STRIKE_COLUMNS, (1.0, None))), "dex_usd", "strike",
                [600.0, 590.0]),
    "profile": (GexProfile((590.0, 600.0), (-1.0, 1.0), 600.0, 595.0, (595.0,)), "spot", "levels", ["x", 1.0]),
    "regime": (Regime(0.12, 0.15, 0.17, 0.03, 1.1, 40.0, 250, 390, AS_OF, "positive", "normal", "mean_reversion"),
               "label", "rv_percentile", "101"),
    "regime_day": (RegimeDay(date(2026, 11, 24), 0.12), "rv", "rv", -0.1),
    "flow_model": (FlowModelDoc(("a", "b"), ("x",), (0.0, 1.0), (1.0, 2.0), ((0.5, 0.5),)), "scale", "scale",
                   [1.0, 0.0]),
    "flow_clusters": (FlowClusters(AS_OF, 30, 900, 1.0, "x", None, {"x": 30}, None), "counts", "windows", -1),
}


def mutate(raw: Any, change: Callable[[dict[str, Any]], None]) -> Any:
    """Apply ``change`` to a hash (dict of str) or to a JSON document, returning the stored form."""
    if isinstance(raw, dict):
        out = dict(raw)
        change(out)
        return out
    doc = json.loads(raw)
    change(doc)
    return json.dumps(doc)


@pytest.mark.parametrize("name", EXAMPLES)
def test_missing_partial_old_and_malformed_values_are_absent_with_the_reason(name: str) -> None:
    value, required, number, bad = EXAMPLES[name]
    codec, raw = type(value), value.to_redis()
    assert codec.from_redis(raw, key=KEY) == value
    empty = {} if isinstance(raw, dict) else ""
    for stored in (None, empty):
        got = codec.from_redis(stored, key=KEY)
        assert isinstance(got, Absent) and got.reason == "missing" and str(got) == f"{KEY}: missing"

    def drop(d: dict[str, Any]) -> None:
        del d[required]

    def unversioned(d: dict[str, Any]) -> None:
        del d["v"]

    def newer(d: dict[str, Any]) -> None:
        d["v"] = "2" if isinstance(raw, dict) else 2

    def corrupt(d: dict[str, Any]) -> None:
        d[number] = bad

    cases = [(drop, f"malformed: {required} missing (partial value)"), (unversioned, "old version"),
             (newer, "old version"), (corrupt, f"malformed: {number}")]
    for change, why in cases:
        got = codec.from_redis(mutate(raw, change), key=KEY)
        assert isinstance(got, Absent) and why in got.reason, (change.__name__, got)
    broken = "{not json" if isinstance(raw, str) else {"v": "1"}
    assert isinstance(codec.from_redis(broken, key=KEY), Absent)


def test_gex_hash_tells_the_pending_marker_from_positioning() -> None:
    pending = GexPending(AS_OF, "no option chain in Redis (options:QQQ:chain): is `qc chains` running?")
    raw = pending.to_redis()
    assert raw["total"] == "" and raw["stale"] == "1"  # what `hget analytics:QQQ:gex total` shows: a null
    assert gex_from_redis(raw, key=KEY) == pending
    got = GexSnapshot.from_redis(raw, key=KEY)
    assert isinstance(got, Absent) and got.reason.startswith("no positioning yet: no option chain in Redis")
    assert isinstance(GexPending.from_redis(SNAP.to_redis(), key=KEY), Absent)
    assert isinstance(gex_from_redis({"v": "1", "kind": "other"}, key=KEY), Absent)


def test_gex_hash_keeps_the_runbook_field_and_nulls_as_empty_strings() -> None:
    raw = SNAP.to_redis()
    assert raw["total"] == "1.0" and raw["zero_gamma"] == "" and raw["zero_gamma_reason"]
    assert (raw["spot"], raw["spot_source"], raw["spot_age_s"]) == ("600.0", "quote", "1.5")
    assert raw["expiries"] == "2026-11-24" and raw["contracts_used"] == "812" and raw["stale"] == "0"


def test_stale_flag_and_its_reason_must_agree() -> None:
    raw = Vpin(None, None, 0, "bvc", "no bucket volume", "none", AS_OF, None, "no input yet").to_redis()
    assert raw["stale"] == "1" and raw["value"] == ""
    assert isinstance(Vpin.from_redis(raw | {"stale": "0"}, key=KEY), Absent)
    assert isinstance(Vpin.from_redis(raw | {"stale": "yes"}, key=KEY), Absent)


def test_non_finite_numbers_are_never_good_data() -> None:
    raw = EXAMPLES["imbalance"][0].to_redis()
    for bad in ("nan", "inf", "-inf", "1e400", "abc", "2"):
        got = Imbalance.from_redis(raw | {"imbalance": bad}, key=KEY)
        assert isinstance(got, Absent) and "imbalance" in got.reason, bad
    assert isinstance(Regime.from_redis(EXAMPLES["regime"][0].to_redis() | {"as_of": "2026-11-24T15:00:00"},
                                        key=KEY), Absent)  # a naive instant: its zone would be a guess
    with pytest.raises(ValueError, match="not JSON compliant"):
        RegimeDay(date(2026, 11, 24), math.nan).to_redis()  # the writer refuses NaN rather than storing it
