"""The signals codec: Signal, Outcome and the last evaluation round-trip through their Redis JSON, and
every missing, old, broken or out-of-range document reads back as an Absent naming what is wrong;
signal ids sort by creation time and never collide."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.clock import NEW_YORK
from qc.core.codec import MISSING, Absent
from qc.signals.codec import (
    EXIT_REASONS,
    SCHEMA,
    Evaluation,
    LastEvaluation,
    Outcome,
    Signal,
    is_signal_id,
    new_id,
)
from qc.signals.model import (
    GAMMA_MODE,
    ORDER_FLOW,
    STRATEGIES,
    Contract,
    Contribution,
    Decision,
    Gate,
    Quote,
    Score,
)

UTC = timezone.utc
NOW = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
KEY = "signals:record:x"

# --- hypothesis strategies: valid values of every part ---------------------------------------------

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4))])
FIRST, LAST = datetime(2005, 1, 1), datetime(2099, 12, 31)  # noqa: DTZ001 (hypothesis bounds are naive)
instants = st.datetimes(min_value=FIRST, max_value=LAST, timezones=ZONES)
finite = st.floats(allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
non_negative = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)
names = st.text(min_size=1, max_size=12)
json_scalars = st.one_of(st.none(), st.text(max_size=10), finite, st.integers(-(2**53), 2**53))


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    symbol = draw(st.sampled_from(["SPY", "QQQ", "IWM", "BRK.B"]))
    if draw(st.booleans()):
        return Contract(symbol, "STK", None, None, None, draw(st.integers(1, 1000)), "SMART",
                        draw(st.sampled_from(["ARCA", "NASDAQ", "NYSE", ""])))
    return Contract(symbol, "OPT", draw(st.dates(date(2005, 1, 1), date(2099, 12, 31))),
                    draw(st.floats(min_value=0.5, max_value=10_000.0)), draw(st.sampled_from(["C", "P"])),
                    draw(st.integers(1, 1000)), draw(st.sampled_from(["SMART", "CBOE"])),
                    draw(st.sampled_from(["ARCA", "NASDAQ", ""])))


quotes = st.builds(Quote, non_negative, non_negative, non_negative, st.none() | finite, st.integers(0, 10**9),
                   st.integers(0, 10**9), finite)
contributions = st.builds(Contribution, names, st.none() | unit, non_negative, unit, st.none() | finite,
                          st.text(max_size=20))
gates = st.builds(Gate, names, st.booleans(), st.text(max_size=20), st.none() | instants)
factor_inputs = st.dictionaries(names, st.dictionaries(names, json_scalars, max_size=3), max_size=4)


@st.composite
def signals(draw: st.DrawFn) -> Signal:
    created = draw(instants)
    direction = draw(st.sampled_from([1, -1]))
    return Signal(
        id=new_id(created), created_at=created, strategy=draw(st.sampled_from(STRATEGIES)),
        contract=draw(contracts()), side=draw(st.sampled_from(["BUY", "SELL"])), direction=direction,
        order_type=draw(st.sampled_from(["LMT", "LOC"])), limit=draw(positive), take_profit=draw(non_negative),
        stop=draw(non_negative), time_stop=draw(instants), score=draw(unit), threshold=draw(non_negative),
        mode=draw(st.sampled_from(["momentum", "mean_reversion", "neutral", "unknown"])),
        size_multiplier=draw(non_negative), quote=draw(quotes),
        contributions=tuple(draw(st.lists(contributions, max_size=4))), factor_inputs=draw(factor_inputs),
        gates=tuple(draw(st.lists(gates, max_size=3))), fingerprint=draw(st.text(min_size=1, max_size=24)),
        notes=tuple(draw(st.lists(st.text(max_size=20), max_size=3))),
        lineage=draw(st.dictionaries(names, json_scalars, max_size=3)))


def a_signal(**changes: Any) -> Signal:
    """One valid option signal, built by hand."""
    fields: dict[str, Any] = {
        "id": "1796311800000a1b2c3d4", "created_at": NOW, "strategy": "0dte",
        "contract": Contract("SPY", "OPT", date(2026, 12, 3), 600.0, "C", 100, "SMART", "ARCA"), "side": "BUY",
        "direction": 1, "order_type": "LMT", "limit": 2.03, "take_profit": 3.05, "stop": 1.52,
        "time_stop": NOW + timedelta(hours=1), "score": 0.53, "threshold": 0.3, "mode": "neutral",
        "size_multiplier": 1.0, "quote": Quote(2.0, 2.04, 2.02, 0.47, 1000, 500, 60.0),
        "contributions": (Contribution(ORDER_FLOW, 0.6, 3.0, 0.4, 1.0, ""),
                          Contribution(GAMMA_MODE, None, 1.0, 0.0, None, "stale")),
        "factor_inputs": {ORDER_FLOW: {"buy": 600.0, "sell": 150.0, "side": "buy", "none": None}},
        "gates": (Gate("session", True), Gate("0dte_cutoff", True, "", NOW + timedelta(minutes=30))),
        "fingerprint": "abc123", "notes": ("a note",), "lineage": {"source": "qc signals", "cycle": 7}}
    fields.update(changes)
    return Signal(**fields)


def doc_of(signal: Signal) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(signal.to_redis())
    return got


def absent(got: object) -> Absent:
    assert isinstance(got, Absent), got
    return got


# --- round trips ------------------------------------------------------------------------------------

@given(signals())
def test_any_valid_signal_round_trips(signal: Signal) -> None:
    raw = signal.to_redis()
    back = Signal.from_redis(raw, key=KEY)
    assert back == signal
    assert isinstance(back, Signal) and back.to_redis() == raw  # a second trip writes the same text


def test_a_hand_built_signal_round_trips_field_by_field() -> None:
    signal = a_signal()
    back = Signal.from_redis(signal.to_redis(), key=KEY)
    assert isinstance(back, Signal)
    assert back == signal
    assert back.contract.expiry == date(2026, 12, 3) and back.contract.right == "C"
    assert back.time_stop == NOW + timedelta(hours=1)
    assert back.gates[1].closes_at == NOW + timedelta(minutes=30)
    assert back.contributions[1].value is None and back.contributions[1].age_s is None
    assert back.symbol == "SPY"


def test_a_share_signal_round_trips_with_no_expiry_strike_or_right() -> None:
    shares = Contract("QQQ", "STK", None, None, None, 1, "SMART", "NASDAQ")
    signal = a_signal(strategy="moc", contract=shares, side="SELL", direction=-1, order_type="LOC", limit=500.0,
                      take_profit=497.5, stop=502.5, quote=Quote(499.99, 500.01, 500.0, None, 0, 0, 1.0))
    back = Signal.from_redis(signal.to_redis(), key=KEY)
    assert back == signal
    doc = doc_of(signal)
    assert doc["v"] == SCHEMA
    assert doc["contract"]["expiry"] is None and doc["contract"]["strike"] is None and doc["contract"]["right"] is None


def test_the_document_uses_the_documented_field_names() -> None:
    doc = doc_of(a_signal())
    assert doc["factors"][0]["name"] == ORDER_FLOW  # contributions travel as "factors"
    assert doc["created_at"] == NOW.isoformat()
    assert doc["contract"]["expiry"] == "2026-12-03"
    assert doc["lineage"] == {"source": "qc signals", "cycle": 7}


@given(st.text(min_size=1, max_size=20), st.text(max_size=8), st.sampled_from(STRATEGIES),
       st.sampled_from(EXIT_REASONS), st.floats(min_value=1e-6, max_value=1e6), st.none() | non_negative,
       st.none() | st.floats(min_value=-1e6, max_value=1e6), non_negative, instants)
def test_any_outcome_round_trips(signal_id: str, symbol: str, strategy: Any, reason: Any, entry: float,
                                 exit_price: float | None, ret: float | None, held: float, at: datetime) -> None:
    outcome = Outcome(signal_id, symbol, strategy, reason, entry, exit_price, ret, held, at)
    assert Outcome.from_redis(outcome.to_redis(), key="signals:outcomes") == outcome


def test_an_outcome_says_hit_only_for_a_positive_return() -> None:
    base = Outcome("1", "SPY", "0dte", "take_profit", 1.0, 1.6, 0.6, 60.0, NOW)
    assert base.hit
    assert not Outcome("1", "SPY", "0dte", "stop", 1.0, 0.75, -0.25, 60.0, NOW).hit
    assert not Outcome("1", "SPY", "0dte", "time_stop", 1.0, 1.0, 0.0, 60.0, NOW).hit
    assert not Outcome("1", "SPY", "0dte", "unpriced", 1.0, None, None, 60.0, NOW).hit


@given(st.sampled_from(STRATEGIES), st.sampled_from([-1, 0, 1]), st.none() | unit,
       st.lists(contributions, max_size=4), st.lists(gates, max_size=3), factor_inputs, instants,
       st.lists(st.text(max_size=10), max_size=2))
def test_an_evaluation_reads_back_as_the_last_evaluation(strategy: Any, direction: int, value: float | None,
                                                         parts: list[Contribution], shut: list[Gate],
                                                         inputs: dict[str, dict[str, Any]], at: datetime,
                                                         notes: list[str]) -> None:
    reason = "" if direction else "below threshold: |+0.100| < 0.30"
    decision = Decision(strategy, "SPY", direction, Score(value, "momentum", 0.5, tuple(parts), "why not"),
                        tuple(shut), reason, tuple(notes))
    result = "emitted 1796311800000a1b2c3d4" if direction else reason
    signal_id = "1796311800000a1b2c3d4" if direction else ""
    back = LastEvaluation.from_redis(Evaluation(decision, at, inputs, result, signal_id).to_redis(), key="k")
    assert isinstance(back, LastEvaluation)
    assert back == LastEvaluation(at, strategy, "SPY", direction, value, "momentum", reason, result, signal_id,
                                  tuple(parts), tuple(shut), inputs, tuple(notes))


# --- what does not read back --------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [None, ""])
def test_a_missing_value_is_absent_missing(raw: str | None) -> None:
    for reader in (Signal.from_redis, Outcome.from_redis, LastEvaluation.from_redis):
        got = absent(reader(raw, key=KEY))
        assert (got.key, got.reason) == (KEY, MISSING)


@pytest.mark.parametrize("version", [2, 0, "2", None])
def test_another_schema_version_is_refused(version: object) -> None:
    doc = doc_of(a_signal())
    if version is None:
        del doc["v"]
    else:
        doc["v"] = version
    got = absent(Signal.from_redis(json.dumps(doc), key=KEY))
    assert got.reason.startswith("malformed: v ") and "old version" in got.reason


@pytest.mark.parametrize("raw", ["{", "not json", "[1, 2]", "42", '"a string"', "null"])
def test_broken_json_is_malformed(raw: str) -> None:
    for reader in (Signal.from_redis, Outcome.from_redis, LastEvaluation.from_redis):
        assert absent(reader(raw, key=KEY)).reason.startswith("malformed: ")


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        target[last] = value

    return change


def _drop_right(doc: dict[str, Any]) -> None:
    doc["contract"]["right"] = None


@pytest.mark.parametrize(("change", "field"), [
    (_set("score", 1.5), "score"),
    (_set("score", -1.01), "score"),
    (_set("direction", 0), "direction"),
    (_set("direction", 2), "direction"),
    (_drop_right, "contract"),
    (_set("contract.right", "X"), "contract"),
    (_set("contract.strike", None), "contract"),
    (_set("limit", -1.0), "limit"),
    (_set("limit", 0.0), "limit"),
    (_set("take_profit", -0.01), "take_profit"),
    (_set("stop", -0.01), "stop"),
    (_set("threshold", -0.1), "threshold"),
    (_set("size_multiplier", -1.0), "size_multiplier"),
    (_set("side", "HOLD"), "side"),
    (_set("order_type", "MKT"), "order_type"),
    (_set("strategy", "7dte"), "strategy"),
    (_set("id", ""), "id"),
    (_set("fingerprint", ""), "fingerprint"),
    (_set("created_at", "2026-12-03T15:30:00"), "created_at"),  # naive: its zone would be a guess
    (_set("time_stop", "tomorrow"), "time_stop"),
    (_set("quote.bid", -0.01), "quote.bid"),
    (_set("quote.open_interest", 1.5), "quote.open_interest"),
    (_set("contract.multiplier", 0), "contract.multiplier"),
    (_set("contract.sec_type", "FUT"), "contract.sec_type"),
    (_set("contract.symbol", ""), "contract.symbol"),
    (_set("factor_inputs", [1, 2]), "factor_inputs"),
])
def test_a_field_out_of_range_is_absent_naming_it(change: Callable[[dict[str, Any]], None], field: str) -> None:
    doc = doc_of(a_signal())
    change(doc)
    got = absent(Signal.from_redis(json.dumps(doc), key=KEY))
    assert got.key == KEY
    assert got.reason.startswith(f"malformed: {field} "), got.reason


@pytest.mark.parametrize("name", ["score", "limit", "quote", "contract", "gates", "factors", "fingerprint"])
def test_a_partial_signal_is_absent_naming_the_missing_field(name: str) -> None:
    doc = doc_of(a_signal())
    del doc[name]
    assert absent(Signal.from_redis(json.dumps(doc), key=KEY)).reason == f"malformed: {name} missing (partial value)"


@pytest.mark.parametrize(("path", "value", "field"), [
    ("factors.0.value", 1.5, "factor.value"),
    ("factors.0.contribution", -2.0, "factor.contribution"),
    ("factors.0.weight", -1.0, "factor.weight"),
])
def test_a_contribution_out_of_range_is_absent_naming_it(path: str, value: float, field: str) -> None:
    doc = doc_of(a_signal())
    _, index, name = path.split(".")
    doc["factors"][int(index)][name] = value
    assert absent(Signal.from_redis(json.dumps(doc), key=KEY)).reason.startswith(f"malformed: {field} ")


@pytest.mark.parametrize(("name", "value"), [
    ("exit_reason", "margin_call"), ("entry", 0.0), ("held_s", -1.0), ("exit_price", -0.5), ("strategy", "x"),
])
def test_an_outcome_field_out_of_range_is_absent_naming_it(name: str, value: object) -> None:
    doc = json.loads(Outcome("1", "SPY", "0dte", "stop", 1.0, 0.75, -0.25, 60.0, NOW).to_redis())
    doc[name] = value
    assert absent(Outcome.from_redis(json.dumps(doc), key=KEY)).reason.startswith(f"malformed: {name} ")


def test_a_last_evaluation_with_a_score_out_of_range_is_absent() -> None:
    decision = Decision("0dte", "SPY", 0, Score(0.2, "neutral", 1.0, ()), (), "below threshold")
    doc = json.loads(Evaluation(decision, NOW, {}, "below threshold").to_redis())
    doc["score"] = 1.5
    assert absent(LastEvaluation.from_redis(json.dumps(doc), key=KEY)).reason.startswith("malformed: score ")


def test_an_option_with_an_empty_expiry_is_malformed() -> None:
    doc = doc_of(a_signal())
    doc["contract"]["expiry"] = ""
    assert absent(Signal.from_redis(json.dumps(doc), key=KEY)).reason.startswith("malformed: contract")


def test_a_gate_whose_open_flag_is_not_a_boolean_is_malformed() -> None:
    doc = doc_of(a_signal())
    doc["gates"][0]["open"] = "false"
    assert absent(Signal.from_redis(json.dumps(doc), key=KEY)).reason.startswith("malformed: gate.open")


def test_a_bad_expiry_is_absent_naming_contract_expiry() -> None:
    doc = doc_of(a_signal())
    doc["contract"]["expiry"] = "2026-13-01"
    assert "contract.expiry" in absent(Signal.from_redis(json.dumps(doc), key=KEY)).reason


# --- ids ------------------------------------------------------------------------------------------------

def test_an_id_is_13_digits_of_milliseconds_then_8_hex() -> None:
    at = datetime(2026, 12, 3, 15, 30, 0, 123456, tzinfo=UTC)
    got = new_id(at)
    assert len(got) == 21
    assert got[:13] == "1796311800123"  # milliseconds, truncated (not rounded) from the microseconds
    assert all(c in "0123456789abcdef" for c in got[13:])
    assert is_signal_id(got)


def test_the_id_reads_the_instant_not_the_wall_clock_zone() -> None:
    assert new_id(datetime(2026, 12, 3, 10, 30, tzinfo=NEW_YORK))[:13] == new_id(NOW)[:13]


@given(st.lists(st.datetimes(min_value=FIRST, max_value=LAST), min_size=2,
                max_size=20, unique_by=lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)))
def test_ids_made_at_increasing_instants_sort_in_that_order(times: list[datetime]) -> None:
    instants_ = sorted(t.replace(tzinfo=UTC) for t in times)  # distinct milliseconds
    ids = [new_id(t) for t in instants_]
    assert sorted(ids) == ids


@given(instants)
def test_two_ids_at_the_same_instant_differ(at: datetime) -> None:
    a, b = new_id(at), new_id(at)
    assert a != b and a[:13] == b[:13]


@pytest.mark.parametrize(("text", "ok"), [
    ("1796311800123a1b2c3d4", True),
    ("0000000000000ffffffff", True),
    ("1796311800123a1b2c3d", False),     # 20 chars
    ("1796311800123a1b2c3d45", False),   # 22 chars
    ("1796311800123A1B2C3D4", False),    # upper-case hex: new_id never writes it
    ("179631180012xa1b2c3d4", False),    # a letter in the milliseconds
    ("1796311800123a1b2c3g4", False),    # not hex
    ("SPY", False),
    ("", False),
])
def test_is_signal_id(text: str, ok: bool) -> None:
    assert is_signal_id(text) is ok


def test_is_signal_id_refuses_non_ascii_digits() -> None:
    assert not is_signal_id("²" * 13 + "a1b2c3d4")
    assert not is_signal_id("١" * 13 + "a1b2c3d4")
