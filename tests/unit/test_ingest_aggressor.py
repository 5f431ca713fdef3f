"""Aggressor inference: quote rule against the book, tick rule inside the spread."""

from __future__ import annotations

from qc.ingest.aggressor import BUY, SELL, UNKNOWN, infer_side


def test_quote_rule_at_or_through_the_touch() -> None:
    assert infer_side(10.02, 10.00, 10.02, None, UNKNOWN) == BUY
    assert infer_side(10.03, 10.00, 10.02, 10.05, SELL) == BUY  # through the ask, whatever the tick
    assert infer_side(10.00, 10.00, 10.02, None, UNKNOWN) == SELL
    assert infer_side(9.99, 10.00, 10.02, 9.90, BUY) == SELL


def test_tick_rule_inside_the_spread() -> None:
    assert infer_side(10.01, 10.00, 10.02, 10.00, SELL) == BUY  # uptick
    assert infer_side(10.01, 10.00, 10.02, 10.02, BUY) == SELL  # downtick
    assert infer_side(10.01, 10.00, 10.02, 10.01, SELL) == SELL  # zero tick keeps the last sign
    assert infer_side(10.01, 10.00, 10.02, None, UNKNOWN) == UNKNOWN


def test_without_a_book_or_with_a_crossed_one_the_tick_rule_decides() -> None:
    assert infer_side(10.01, None, None, 10.00, UNKNOWN) == BUY
    assert infer_side(10.01, 10.02, 10.00, 10.05, UNKNOWN) == SELL  # crossed: the quote is not trusted
