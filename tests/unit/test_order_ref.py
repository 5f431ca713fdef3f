"""qc's order reference: one format, round trips, foreign references recognised as foreign."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.order_ref import LEGS, MAX_LEN, OrderRef, parse


def test_format_is_fixed() -> None:
    assert str(OrderRef("1796311971965e2656bd3", "entry", 0)) == "qc:1796311971965e2656bd3:entry:0"
    assert str(OrderRef("abc", "stop", 2)) == "qc:abc:stop:2"


@given(st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True), st.sampled_from(LEGS), st.integers(0, 9999))
def test_round_trip(intent: str, leg: str, attempt: int) -> None:
    ref = OrderRef(intent, leg, attempt)  # type: ignore[arg-type]
    assert parse(str(ref)) == ref and len(str(ref)) <= MAX_LEN


@pytest.mark.parametrize("raw", [None, "", "manual", "qc:", "qc:abc:entry", "qc:abc:entry:x", "qc:abc:bogus:0",
                                 "QC:abc:entry:0", "qc:a:b:entry:0", "qc:abc:entry:-1", "qc:abc:entry:١",
                                 "qc:" + "a" * 41 + ":entry:0", "qc:ab c:entry:0", "qc:abc:entry:10000",
                                 "x" * 200])
def test_anything_else_is_foreign(raw: str | None) -> None:
    assert parse(raw) is None


def test_only_stop_and_take_profit_legs_are_protective() -> None:
    assert [leg for leg in LEGS if OrderRef("a", leg).protective] == ["stop", "tp"]


@pytest.mark.parametrize(("intent", "leg", "attempt", "field"), [
    ("", "entry", 0, "intent"), ("a:b", "entry", 0, "intent"), ("a", "limit", 0, "leg"), ("a", "entry", -1, "attempt")])
def test_a_bad_reference_cannot_be_built(intent: str, leg: str, attempt: int, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} "):
        OrderRef(intent, leg, attempt)  # type: ignore[arg-type]
