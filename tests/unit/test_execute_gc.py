"""When the leader runs its full garbage collection: never with an intent on its way, never postponed for ever."""

from __future__ import annotations

from qc.execute.cycle.run import FULL_COLLECTION_EVERY_S, FULL_COLLECTION_OVERDUE_S, full_collection_due


def test_due_after_its_period_when_nothing_is_in_flight() -> None:
    assert not full_collection_due(FULL_COLLECTION_EVERY_S - 1, in_flight=False)
    assert full_collection_due(FULL_COLLECTION_EVERY_S, in_flight=False)


def test_an_intent_in_flight_postpones_it_but_only_so_long() -> None:
    assert not full_collection_due(FULL_COLLECTION_EVERY_S, in_flight=True)
    assert not full_collection_due(FULL_COLLECTION_OVERDUE_S - 1, in_flight=True)
    assert full_collection_due(FULL_COLLECTION_OVERDUE_S, in_flight=True)
