"""The chaos run's end checks over hand-made broker, Redis and channel records."""

from __future__ import annotations

from typing import Any

from chaos.collect import sim_routing
from chaos.invariants import (
    counted,
    duplicate_deliveries,
    duplicate_orders,
    fills_once,
    signals_lost,
    unprotected_positions,
)

SID, SID2 = "1795000000000abcdef01", "1795000000001abcdef02"


def order(ref: str, status: str = "Submitted", con_id: int = 7, remaining: float = 1) -> dict[str, Any]:
    return {"orderRef": ref, "status": status, "conId": con_id, "remaining": remaining}


def test_a_qc_order_reference_twice_at_the_broker_is_a_duplicate_and_foreign_ones_are_ignored() -> None:
    ok = duplicate_orders([order(f"qc:{SID}:entry:0"), order(f"qc:{SID}:stop:0"), order("manual"), order("manual")])
    assert ok.ok and ok.got == "0" and ok.info["qc_orders"] == 2
    bad = duplicate_orders([order(f"qc:{SID}:entry:0"), order(f"qc:{SID}:entry:0", "Filled")])
    assert not bad.ok and bad.got == "1" and bad.offenders == (f"qc:{SID}:entry:0 x2",)


def test_an_option_position_needs_working_stops_for_all_of_it() -> None:
    pos = [{"secType": "OPT", "conId": 7, "qty": 2, "symbol": "SPY"}, {"secType": "STK", "conId": 1, "qty": 100}]
    covered = unprotected_positions([order(f"qc:{SID}:stop:0", remaining=2), order(f"qc:{SID}:tp:0", remaining=2)],
                                    pos)
    assert covered.ok and covered.info["option_positions"] == 1 and covered.info["other_positions"]
    half = unprotected_positions([order(f"qc:{SID}:stop:0", remaining=1)], pos)
    assert not half.ok and "2 held, 1 under stop" in half.offenders[0]
    dead = unprotected_positions([order(f"qc:{SID}:stop:0", "Cancelled", remaining=2)], pos)
    assert not dead.ok  # a cancelled stop protects nothing
    other = unprotected_positions([order(f"qc:{SID}:stop:0", con_id=8, remaining=2)], pos)
    assert not other.ok  # a stop on another contract neither
    flat = unprotected_positions([], [{"secType": "OPT", "conId": 7, "qty": 0}])
    assert flat.ok


def test_every_execution_of_qc_orders_is_recorded_exactly_once() -> None:
    execs = [{"execId": "e1", "orderRef": f"qc:{SID}:entry:0"}, {"execId": "e2", "orderRef": f"qc:{SID}:stop:0"},
             {"execId": "s1", "orderRef": ""}]  # a settlement: the broker's own, not qc's
    assert fills_once(execs, ["e1", "e2"]).ok
    missing = fills_once(execs, ["e1"])
    assert not missing.ok and missing.got == "1/2" and missing.offenders == ("e2 not recorded",)
    twice = fills_once(execs, ["e1", "e2", "e2"])
    assert not twice.ok and twice.offenders == ("e2 x2",)


EXPECTED = [("premium", "telegram", "premium"), ("premium", "webhook", "sim")]


def test_a_signal_is_lost_without_an_intent_or_rejection_or_without_a_delivery_record_or_dead_letter() -> None:
    full = dict.fromkeys(EXPECTED, "sent")
    ok = signals_lost([SID, SID2], {SID: "closed", SID2: None}, {SID2: False}, {SID: full, SID2: full}, [], EXPECTED)
    assert ok.ok and ok.info["intent_states"] == {"closed": 1, "risk rejected": 1}
    lettered = signals_lost([SID], {SID: "rejected"}, {}, {SID: {EXPECTED[0]: "sent"}},
                            [(SID, "premium", "webhook", "sim")], EXPECTED)
    assert lettered.ok
    no_intent = signals_lost([SID], {SID: None}, {SID: True}, {SID: full}, [], EXPECTED)
    assert not no_intent.ok and no_intent.got == "1 + 0"
    no_delivery = signals_lost([SID], {SID: "closed"}, {}, {SID: {EXPECTED[0]: "uncertain"}}, [], EXPECTED)
    assert not no_delivery.ok and no_delivery.got == "0 + 1" and "premium:webhook:sim" in no_delivery.offenders[0]


def _received(chat: str, times: int, timed_out: bool = False) -> dict[str, dict[str, Any]]:
    row = {"text": f"signal {SID} SPY", "delivered": True, "target": chat, "sim_time": 1.0, "timed_out": timed_out}
    return {"telegram": {"received": [row] * times}, "webhook": {"received": []}, "x": {"received": []}}


def test_a_delivery_landing_twice_is_a_duplicate_unless_qc_recorded_it_uncertain() -> None:
    _, channels = sim_routing()
    chat = channels.chats["premium"]
    sent = {SID: {("premium", "telegram", "premium"): "sent"}}
    once = duplicate_deliveries(_received(chat, 1), channels, [SID], sent)
    assert once.ok and once.info["landed"] == 1
    twice = duplicate_deliveries(_received(chat, 2), channels, [SID], sent)
    assert not twice.ok and twice.offenders == (f"{SID} telegram/premium x2 (sent)",)
    uncertain = duplicate_deliveries(_received(chat, 2, True), channels, [SID],
                                     {SID: {("premium", "telegram", "premium"): "uncertain"}})
    assert uncertain.ok and uncertain.info["uncertain_landed_twice"] == 1


def test_qc_ups_simulated_routing_reaches_every_tier_on_telegram_and_the_webhook_and_x_for_the_last() -> None:
    expected, channels = sim_routing()
    tiers = [t for t, c, _ in expected if c == "telegram"]
    assert sorted(tiers) == ["basic", "free", "premium"]
    assert sorted(t for t, c, _ in expected if c == "webhook") == sorted(tiers)
    assert [t for t, c, _ in expected if c == "x"] == ["free"]
    assert channels.hook == "sim" and set(channels.chats) == set(tiers)


def test_counted_lists_its_offenders() -> None:
    assert counted("faults not injected", []).ok
    bad = counted("faults not injected", [f"#{i}" for i in range(20)])
    assert not bad.ok and bad.got == "20" and len(bad.offenders) == 8
