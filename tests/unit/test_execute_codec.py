"""The stored intent and fill: exact round trips, and every corruption read as an Absent naming its field."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.core.codec import Absent
from qc.core.order_ref import LEGS
from qc.execute.bracket import bracket
from qc.execute.codec import fill_from_redis, fill_to_redis, intent_from_redis, intent_to_redis
from qc.execute.machine import move
from qc.execute.model import DONE_STATUSES, WORKING_STATUSES, Fill, Intent, LegOrder, State, Transition
from qc.risk.model import BUCKETS, ContractKey, stock
from tests.unit.execute_helpers import T0, make_fill, make_intent

FAST = settings(max_examples=200, deadline=None)
KEY = "orders:intent:sig1"
FKEY = "orders:fill:x1"
NY = timezone(timedelta(hours=-5))


def _good_intent() -> Intent:
    intent = make_intent("BUY", 3, trail_pct=12.5, con_id=123456, token=7, best_premium=2.31)
    intent = move(move(move(intent, State.APPROVED, T0, "risk ok"), State.SUBMITTING, T0, "sending"),
                  State.ACKNOWLEDGED, T0.astimezone(NY), "acked")
    orders = tuple(replace(p.order, status="Submitted", perm_id=900 + n) for n, p in enumerate(bracket(intent, 41)))
    return replace(intent, orders=orders, filled_qty=2, entry_avg=2.01, exit_qty=1, exit_avg=2.55,
                   commission_usd=1.95, reasons=("risk ok", "k=v"), exit_reason="take_profit")


GOOD_INTENT = _good_intent()
GOOD_FILL = make_fill("SELL", 2, 2.55, "0000e0d5.6553f0e3.01.01", order_ref="qc:sig1:tp:0", perm_id=901,
                      order_id=42, intent_id="sig1", leg="tp", commission_usd=1.3, con_id=123456)
INTENT_DOC: dict[str, Any] = json.loads(intent_to_redis(GOOD_INTENT))
FILL_DOC: dict[str, Any] = json.loads(fill_to_redis(GOOD_FILL))


def dump(doc: Any) -> str:
    """JSON as a corrupt writer might have left it: NaN and Infinity literals allowed."""
    return json.dumps(doc)


def read_intent(doc: Any) -> Intent | Absent:
    return intent_from_redis(dump(doc), key=KEY)


def read_fill(doc: Any) -> Fill | Absent:
    return fill_from_redis(dump(doc), key=FKEY)


def naming(got: object, field: str, key: str = KEY) -> str:
    """"" when ``got`` is an Absent at ``key`` whose reason names ``field``; else what is wrong."""
    if not isinstance(got, Absent):
        return f"read {got!r}"
    if got.key != key or not got.reason.startswith("malformed: "):
        return f"{got}"
    return "" if field in got.reason else f"{field!r} not named in {got.reason!r}"


def absent_naming(got: object, field: str, key: str = KEY) -> None:
    problem = naming(got, field, key)
    assert not problem, problem


def all_named(field: str, values: list[Any], read: Callable[[Any], object], key: str = KEY,
              name: str | None = None) -> None:
    """Every value written into ``field`` reads as an Absent naming it (all failures listed at once)."""
    problems = []
    for value in values:
        try:
            problem = naming(read(value), name or field, key)
        except Exception as exc:
            problem = f"raised {type(exc).__name__}: {exc}"
        if problem:
            problems.append(f"{field}={value!r}: {problem}")
    assert not problems, "\n".join(problems)


# --- round trips ------------------------------------------------------------------------------------------


def test_an_intent_reads_back_exactly() -> None:
    assert intent_from_redis(intent_to_redis(GOOD_INTENT), key=KEY) == GOOD_INTENT


def test_a_fill_reads_back_exactly() -> None:
    assert fill_from_redis(fill_to_redis(GOOD_FILL), key=FKEY) == GOOD_FILL
    broker = make_fill(kind="assignment", commission_usd=None)  # no order reference, no commission yet
    assert fill_from_redis(fill_to_redis(broker), key=FKEY) == broker


def test_the_documents_carry_the_schema_version_and_are_plain_json() -> None:
    assert INTENT_DOC["v"] == 1 and FILL_DOC["v"] == 1
    assert "NaN" not in intent_to_redis(GOOD_INTENT) and "Infinity" not in fill_to_redis(GOOD_FILL)
    assert INTENT_DOC["state"] == "acknowledged" and INTENT_DOC["orders"][2]["leg"] == "stop"


def test_shares_and_no_hard_close_read_back() -> None:
    intent = replace(GOOD_INTENT, contract=stock("SPY"), hard_close=None, orders=(), history=())
    assert intent_from_redis(intent_to_redis(intent), key=KEY) == intent


zones = st.sampled_from([timezone.utc, NY, timezone(timedelta(hours=5, minutes=30))])
instants = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=zones)  # noqa: DTZ001
texts = st.text("aZ09 _:-.é€😀\"\\\n\t\x00", max_size=20)  # quotes, escapes, control and non-BMP characters
ids = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=40)
symbols = st.text(string.ascii_uppercase, min_size=1, max_size=5)
prices = st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False)
money = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
contracts = st.one_of(
    st.builds(ContractKey, symbols, st.just("OPT"),
              st.dates(date(2000, 1, 1), date(2100, 1, 1)), st.floats(0.5, 1e5, allow_nan=False),
              st.sampled_from(["C", "P"]), st.sampled_from([1, 10, 100])),
    st.builds(stock, symbols))
statuses = st.sampled_from(["", *sorted(WORKING_STATUSES), *sorted(DONE_STATUSES)])
leg_orders = st.builds(
    LegOrder, st.sampled_from(LEGS), st.integers(0, 9999), st.integers(0, 2**31 - 1),
    st.sampled_from(["BUY", "SELL"]), st.integers(1, 10_000), st.sampled_from(["LMT", "STP", "MKT"]),
    limit=st.none() | prices, aux=st.none() | prices, parent_id=st.integers(0, 2**31 - 1), oca_group=texts,
    perm_id=st.integers(0, 2**53), status=statuses, filled=st.integers(0, 10_000),
    avg_price=st.floats(0.0, 1e6, allow_nan=False))
transitions = st.builds(Transition, instants, st.sampled_from(list(State)), texts)
intents = st.builds(
    Intent, id=ids, account=ids, symbol=symbols, strategy=texts,
    bucket=st.sampled_from(BUCKETS), contract=contracts, side=st.sampled_from(["BUY", "SELL"]),
    quantity=st.integers(1, 10_000), limit=prices, take_profit=prices, stop=prices,
    trail_pct=st.floats(0.0, 99.99), time_stop=instants, hard_close=st.none() | instants, created=instants,
    state=st.sampled_from(list(State)), con_id=st.integers(0, 2**31), token=st.integers(0, 2**53),
    orders=st.lists(leg_orders, max_size=2).map(tuple), filled_qty=st.integers(0, 10_000),
    entry_avg=st.floats(0.0, 1e6, allow_nan=False), exit_qty=st.integers(0, 10_000),
    exit_avg=st.floats(0.0, 1e6, allow_nan=False), commission_usd=money,
    best_premium=st.floats(0.0, 1e6, allow_nan=False), reasons=st.lists(texts, max_size=3).map(tuple),
    exit_reason=texts, absent_since=st.none() | instants, history=st.lists(transitions, max_size=2).map(tuple))
fills = st.builds(
    Fill, exec_id=texts.filter(bool), account=texts, symbol=symbols,
    con_id=st.integers(0, 2**31), side=st.sampled_from(["BUY", "SELL"]), quantity=st.integers(1, 10_000),
    price=st.floats(0.0, 1e6, allow_nan=False), at=instants, order_ref=texts, perm_id=st.integers(0, 2**53),
    order_id=st.integers(-(2**31), 2**31), intent_id=texts, leg=st.sampled_from(["", *LEGS]),
    commission_usd=st.none() | money, kind=st.sampled_from(["trade", "exercise", "assignment", "expiry"]))


@FAST
@given(intents)
def test_any_intent_reads_back_exactly(intent: Intent) -> None:
    raw = intent_to_redis(intent)
    got = intent_from_redis(raw, key=KEY)
    assert got == intent
    assert isinstance(got, Intent) and intent_to_redis(got) == raw


@FAST
@given(fills)
def test_any_fill_reads_back_exactly(fill: Fill) -> None:
    raw = fill_to_redis(fill)
    got = fill_from_redis(raw, key=FKEY)
    assert got == fill
    assert isinstance(got, Fill) and fill_to_redis(got) == raw


def test_every_trail_the_model_accepts_reads_back() -> None:
    """Intent accepts trail_pct in [0, 100) but the reader caps it at 99.99: 99.995 is written, then unreadable."""
    intent = replace(GOOD_INTENT, trail_pct=99.995)
    assert intent_from_redis(intent_to_redis(intent), key=KEY) == intent


# --- corruption: the document --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, ""])
def test_nothing_stored_is_missing(raw: str | None) -> None:
    assert intent_from_redis(raw, key=KEY) == Absent(KEY, "missing")
    assert fill_from_redis(raw, key=FKEY) == Absent(FKEY, "missing")


@pytest.mark.parametrize("raw", ["[]", "[1, 2]", "1", "2.5", "null", "true", '"an intent"', "NaN", "Infinity"])
def test_json_that_is_not_an_object_is_malformed(raw: str) -> None:
    absent_naming(intent_from_redis(raw, key=KEY), "intent")
    absent_naming(fill_from_redis(raw, key=FKEY), "fill", FKEY)


@pytest.mark.parametrize("raw", ["{", "{]", "not json", '{"v": 1,}', "\x00\x01\x02", "{'v': 1}", "\ufeff{}",
                                 '{"v": 1', "\udcff"])
def test_garbage_is_malformed(raw: str) -> None:
    for got in (intent_from_redis(raw, key=KEY), fill_from_redis(raw, key=FKEY)):
        assert isinstance(got, Absent) and got.reason.startswith("malformed")


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfa", b"\x80{", b"{\"v\": 1, \"id\": \"\xc3\x28\"}"])
def test_garbage_bytes_are_malformed(raw: bytes) -> None:
    for got in (intent_from_redis(cast(str, raw), key=KEY), fill_from_redis(cast(str, raw), key=FKEY)):
        assert isinstance(got, Absent) and got.reason.startswith("malformed")


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_random_input_never_raises(raw: bytes | str) -> None:
    for got in (intent_from_redis(cast(str, raw), key=KEY), fill_from_redis(cast(str, raw), key=FKEY)):
        assert isinstance(got, (Absent, Intent, Fill))


def test_deeply_nested_json_is_malformed_not_a_recursion_error() -> None:
    """orjson refuses nesting past 1024, and the std-lib fallback (qc.core.codec.loads_json) then
    raises RecursionError, which decode() does not catch: the reader raises instead of returning Absent."""
    for raw in ("[" * 100_000, '{"a":' * 100_000):
        assert isinstance(intent_from_redis(raw, key=KEY), Absent)
        assert isinstance(fill_from_redis(raw, key=FKEY), Absent)


@pytest.mark.parametrize("version", [2, 0, -1, "2", 1.5, True, None, [1], {"v": 1}])
def test_another_schema_version_is_refused(version: object) -> None:
    absent_naming(read_intent({**INTENT_DOC, "v": version}), "v")
    absent_naming(read_fill({**FILL_DOC, "v": version}), "v", FKEY)


def test_a_missing_version_is_refused() -> None:
    absent_naming(read_intent({k: v for k, v in INTENT_DOC.items() if k != "v"}), "v")
    absent_naming(read_fill({k: v for k, v in FILL_DOC.items() if k != "v"}), "v", FKEY)


# --- corruption: each field ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(INTENT_DOC))
def test_an_intent_missing_any_field_is_malformed(field: str) -> None:
    absent_naming(read_intent({k: v for k, v in INTENT_DOC.items() if k != field}), field)


@pytest.mark.parametrize("field", sorted(FILL_DOC))
def test_a_fill_missing_any_field_is_malformed(field: str) -> None:
    absent_naming(read_fill({k: v for k, v in FILL_DOC.items() if k != field}), field, FKEY)


NAN, INF = float("nan"), float("inf")
ANY_TYPE: list[Any] = [[], {}, True]
STR_BAD: list[Any] = [5, 2.5, None, *ANY_TYPE]
INT_BAD: list[Any] = ["abc", "", 1.5, None, "nan", NAN, INF, -INF, 1e300, "1e3", *ANY_TYPE]
FLOAT_BAD: list[Any] = ["abc", "", None, "nan", "NaN", "inf", "-Infinity", NAN, INF, -INF, *ANY_TYPE]
INSTANT_BAD: list[Any] = [5, "not a time", "2026-03-02T15:00:00", "2026-03-02", "2026-13-02T15:00:00+00:00",
                          [], {}, True]
LIST_BAD: list[Any] = [5, "x", {}, True, None]

INTENT_BAD: dict[str, list[Any]] = {
    "id": [*STR_BAD, ""], "account": [*STR_BAD, ""], "symbol": [*STR_BAD, ""], "strategy": STR_BAD,
    "exit_reason": STR_BAD,
    "bucket": [*STR_BAD, "", "0DTE", "weekly"], "side": [*STR_BAD, "", "buy", "SHORT", "BOT"],
    "state": [*STR_BAD, "", "open", "CLOSED", "partial"],
    "quantity": [*INT_BAD, 0, -1, -3, 10**12], "con_id": [*INT_BAD, -1], "token": [*INT_BAD, -1],
    "filled_qty": [*INT_BAD, -1], "exit_qty": [*INT_BAD, -1],
    "limit": [*FLOAT_BAD, -1.0, 0.0, 1e12], "take_profit": [*FLOAT_BAD, -1.0, 0.0],
    "stop": [*FLOAT_BAD, -2.0, 0.0], "trail_pct": [*FLOAT_BAD, -1.0, 100.0, 250.0],
    "entry_avg": [*FLOAT_BAD, -0.5], "exit_avg": [*FLOAT_BAD, -0.5], "best_premium": [*FLOAT_BAD, -0.5],
    "commission_usd": FLOAT_BAD,
    "time_stop": [*INSTANT_BAD, None, ""], "created": [*INSTANT_BAD, None, ""], "hard_close": INSTANT_BAD,
    "absent_since": INSTANT_BAD,
    "orders": LIST_BAD, "reasons": [*LIST_BAD, [1], [None], ["ok", 2]], "history": LIST_BAD,
    "contract": [5, "SPY", [], None, True],
}
FILL_BAD: dict[str, list[Any]] = {
    "exec_id": [*STR_BAD, ""], "account": STR_BAD, "symbol": [*STR_BAD, ""], "order_ref": STR_BAD,
    "intent_id": STR_BAD, "leg": [*STR_BAD, "bogus", "ENTRY", "take_profit"],
    "side": [*STR_BAD, "", "BOT", "SLD", "sell"], "kind": [*STR_BAD, "", "fill", "TRADE"],
    "con_id": [*INT_BAD, -1], "quantity": [*INT_BAD, 0, -1, -2], "perm_id": [*INT_BAD, -1],
    "order_id": [*INT_BAD, -(2**40)], "price": [*FLOAT_BAD, -0.01, 1e12],
    "commission_usd": [f for f in FLOAT_BAD if f is not None] + [1e9], "at": [*INSTANT_BAD, None, ""],
}


def test_every_intent_field_has_corruption_cases() -> None:
    assert set(INTENT_BAD) == set(INTENT_DOC) - {"v"}
    assert set(FILL_BAD) == set(FILL_DOC) - {"v"}


@pytest.mark.parametrize("field", sorted(INTENT_BAD))
def test_a_corrupt_intent_field_is_named(field: str) -> None:
    all_named(field, INTENT_BAD[field], lambda value: read_intent({**INTENT_DOC, field: value}))


@pytest.mark.parametrize("field", sorted(FILL_BAD))
def test_a_corrupt_fill_field_is_named(field: str) -> None:
    all_named(field, FILL_BAD[field], lambda value: read_fill({**FILL_DOC, field: value}), FKEY)


ORDER_BAD: dict[str, list[Any]] = {
    "leg": [*STR_BAD, "", "bogus", "ENTRY", "take_profit"], "action": [*STR_BAD, "", "buy", "BOT"],
    "order_type": [*STR_BAD, "", "TRAIL", "lmt"], "oca_group": STR_BAD, "status": STR_BAD,
    "attempt": [*INT_BAD, -1, 10_000], "order_id": [*INT_BAD, -1], "quantity": [*INT_BAD, 0, -1],
    "parent_id": [*INT_BAD, -1], "perm_id": [*INT_BAD, -1], "filled": [*INT_BAD, -1],
    "limit": [f for f in FLOAT_BAD if f is not None] + [-1.0], "aux": [f for f in FLOAT_BAD if f is not None] + [-1.0],
    "avg_price": [*FLOAT_BAD, -1.0],
}


def test_every_order_field_has_corruption_cases() -> None:
    assert set(ORDER_BAD) == set(INTENT_DOC["orders"][0])


@pytest.mark.parametrize("field", sorted(ORDER_BAD))
def test_a_corrupt_order_field_is_named(field: str) -> None:
    def read(value: Any) -> object:
        orders = [dict(o) for o in INTENT_DOC["orders"]]
        orders[1][field] = value
        return read_intent({**INTENT_DOC, "orders": orders})

    all_named(field, ORDER_BAD[field], read, name=f"orders[1].{field}")


@pytest.mark.parametrize("field", sorted(INTENT_DOC["orders"][0]))
def test_an_order_missing_any_field_is_malformed(field: str) -> None:
    orders = [dict(o) for o in INTENT_DOC["orders"]]
    del orders[2][field]
    absent_naming(read_intent({**INTENT_DOC, "orders": orders}), field)


@pytest.mark.parametrize("order", [5, "x", [], None, True])
def test_an_order_that_is_not_an_object_is_named(order: Any) -> None:
    absent_naming(read_intent({**INTENT_DOC, "orders": [INTENT_DOC["orders"][0], order]}), "orders[1]")


CONTRACT_BAD: dict[str, list[Any]] = {
    "underlying": [*STR_BAD, ""], "sec_type": [*STR_BAD, "", "FUT", "opt"],
    "expiry": [5, True, "", "2026-02-30", "tomorrow", [], {}], "strike": [*[f for f in FLOAT_BAD if f is not None],
                                                                       0.0, -600.0, 1e8],
    "right": [5, True, "", "CALL", "c", [], {}], "multiplier": [*INT_BAD, 0, -100],
}


@pytest.mark.parametrize("field", sorted(CONTRACT_BAD))
def test_a_corrupt_contract_field_is_named(field: str) -> None:
    all_named(field, CONTRACT_BAD[field],
              lambda value: read_intent({**INTENT_DOC, "contract": {**INTENT_DOC["contract"], field: value}}))


@pytest.mark.parametrize("field", ["expiry", "strike", "right"])
def test_an_option_without_expiry_strike_or_right_is_malformed(field: str) -> None:
    absent_naming(read_intent({**INTENT_DOC, "contract": {**INTENT_DOC["contract"], field: None}}), "contract")


@pytest.mark.parametrize("field", sorted(INTENT_DOC["contract"]))
def test_a_contract_missing_any_field_is_malformed(field: str) -> None:
    doc = {k: v for k, v in INTENT_DOC["contract"].items() if k != field}
    absent_naming(read_intent({**INTENT_DOC, "contract": doc}), field)


def test_shares_with_a_strike_are_malformed() -> None:
    shares = json.loads(intent_to_redis(replace(GOOD_INTENT, contract=stock("SPY"))))
    absent_naming(read_intent({**shares, "contract": {**shares["contract"], "strike": 600.0}}), "contract")


HISTORY_BAD: dict[str, list[Any]] = {"at": INSTANT_BAD, "state": [*STR_BAD, "", "bogus"], "why": STR_BAD}


@pytest.mark.parametrize("field", sorted(HISTORY_BAD))
def test_a_corrupt_history_entry_is_named(field: str) -> None:
    def read(value: Any) -> object:
        history = [dict(t) for t in INTENT_DOC["history"]]
        history[0][field] = value
        return read_intent({**INTENT_DOC, "history": history})

    all_named(field, HISTORY_BAD[field], read, name=f"history[0].{field}")


@pytest.mark.parametrize("entry", [5, "x", [], None])
def test_a_history_entry_that_is_not_an_object_is_named(entry: Any) -> None:
    absent_naming(read_intent({**INTENT_DOC, "history": [entry]}), "history[0]")


@pytest.mark.parametrize(("field", "value"), [("limit", 10**400), ("quantity", 10**400), ("price", 10**400),
                                               ("commission_usd", -(10**400))],
                         ids=["limit", "quantity", "price", "commission"])
def test_a_number_too_big_for_a_float_is_malformed_not_an_overflow_error(field: str, value: int) -> None:
    """orjson refuses integers past 64 bits, the std-lib fallback reads them as ints, and to_float's
    ``float(raw)`` then raises OverflowError (qc.core.codec.to_float catches only TypeError and ValueError,
    decode() does not catch ArithmeticError): the reader raises instead of returning Absent."""
    if field in INTENT_DOC:
        absent_naming(read_intent({**INTENT_DOC, field: value}), field)
    if field in FILL_DOC:
        absent_naming(read_fill({**FILL_DOC, field: value}), field, FKEY)


def test_a_naive_time_anywhere_is_refused() -> None:
    naive = "2026-03-02T15:00:00"
    for field in ("time_stop", "created", "hard_close", "absent_since"):
        absent_naming(read_intent({**INTENT_DOC, field: naive}), field)
    absent_naming(read_fill({**FILL_DOC, "at": naive}), "at", FKEY)


def test_the_model_s_own_checks_are_reported_not_raised() -> None:
    # limit 0 passes the field check (lo=0) but the model refuses it: still an Absent naming it
    absent_naming(read_intent({**INTENT_DOC, "limit": 0.0}), "limit")
    absent_naming(read_intent({**INTENT_DOC, "created": None}), "created")


@FAST
@given(st.sampled_from(sorted(INTENT_DOC)), st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts,
                                                    st.lists(st.integers(), max_size=2),
                                                    st.dictionaries(texts, st.integers(), max_size=2)))
def test_any_value_in_any_intent_field_never_raises(field: str, value: Any) -> None:
    got = read_intent({**INTENT_DOC, field: value})
    assert isinstance(got, (Intent, Absent))
    if isinstance(got, Absent):
        assert got.reason.startswith("malformed: ")


@FAST
@given(st.sampled_from(sorted(FILL_DOC)), st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts,
                                                  st.lists(st.integers(), max_size=2)))
def test_any_value_in_any_fill_field_never_raises(field: str, value: Any) -> None:
    got = read_fill({**FILL_DOC, field: value})
    assert isinstance(got, (Fill, Absent))
