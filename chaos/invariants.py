"""The end checks of a chaos run, over records already collected. Pure: no Redis, no simulator, no clock.

Why pure: each check must be testable on hand-made records (tests/unit/test_chaos_invariants.py), and a
run's records are kept in its JSON, so a verdict can be recomputed from them. The broker-side rules are
those of ``tests.integration.execute_harness.assert_broker_consistent`` and the delivery rules those of
``tests.integration.test_distribute_flow`` (what landed, counted with ``distribute_harness.landed``),
here counted instead of asserted, so the table can say how many and which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qc.core.order_ref import parse
from tests.integration.distribute_harness import Channels, landed

WORKING = ("Submitted", "PreSubmitted")  # as assert_broker_consistent counts a working stop
SHOWN = 8  # offenders listed per check in the report


@dataclass(frozen=True)
class Verdict:
    """One row of the table: the check, what is wanted, what was found, and the offenders (the first few)."""

    name: str
    want: str
    got: str
    ok: bool
    offenders: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


def duplicate_orders(orders: Sequence[Mapping[str, Any]]) -> Verdict:
    """No qc order reference twice at the broker (``orderRef`` that parses as qc's; foreign ones ignored)."""
    refs = Counter(str(o.get("orderRef") or "") for o in orders if parse(str(o.get("orderRef") or "")))
    dup = sorted(r for r, k in refs.items() if k > 1)
    extra = sum(refs[r] - 1 for r in dup)
    return Verdict("duplicate orders at the broker (by orderRef)", "0", str(extra), not dup,
                   tuple(f"{r} x{refs[r]}" for r in dup[:SHOWN]), {"qc_orders": sum(refs.values())})


def unprotected_positions(orders: Sequence[Mapping[str, Any]], positions: Sequence[Mapping[str, Any]]) -> Verdict:
    """Every option position covered by qc's working stops for all of it (stop legs' remaining = |qty|)."""
    working = [o for o in orders if o.get("status") in WORKING and parse(str(o.get("orderRef") or ""))]
    bad: list[str] = []
    held = 0
    for p in positions:
        if p.get("secType") != "OPT" or not p.get("qty"):
            continue
        held += 1
        con_id, qty = p.get("conId"), abs(float(p["qty"]))
        covered = sum(float(o.get("remaining") or 0) for o in working
                      if o.get("conId") == con_id and getattr(parse(str(o.get("orderRef"))), "leg", "") == "stop")
        if covered != qty:
            bad.append(f"conId {con_id} {p.get('symbol', '')} {p.get('expiry', '')} {p.get('strike', '')}"
                       f"{p.get('right', '')}: {p['qty']:g} held, {covered:g} under stop")
    others = [f"{p.get('secType')} {p.get('symbol')} {p.get('qty')}" for p in positions
              if p.get("secType") != "OPT" and p.get("qty")]
    return Verdict("positions without a full protective stop", "0", str(len(bad)), not bad, tuple(bad[:SHOWN]),
                   {"option_positions": held, "other_positions": others})


def fills_once(executions: Sequence[Mapping[str, Any]], recorded: Iterable[str]) -> Verdict:
    """Every execution of qc's orders at the broker recorded exactly once in ``execution:fills:*``.

    ``recorded``: the execIds of every fill field in every symbol's hash (one per field, so a repeat
    means the same execId under two symbols)."""
    ours = [str(e["execId"]) for e in executions if parse(str(e.get("orderRef") or ""))]
    counts = Counter(recorded)
    missing = sorted(x for x in set(ours) if counts[x] == 0)
    twice = sorted(x for x, k in counts.items() if k > 1)
    once = sum(1 for x in set(ours) if counts[x] == 1)
    offenders = tuple([f"{x} not recorded" for x in missing[:SHOWN]] + [f"{x} x{counts[x]}" for x in twice[:SHOWN]])
    return Verdict("fills recorded once each", f"all ({len(set(ours))})", f"{once}/{len(set(ours))}",
                   not missing and not twice, offenders, {"broker_executions": len(ours), "recorded": len(counts)})


def _targets(expected: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return sorted(set(expected))


def signals_lost(signals: Sequence[str], intents: Mapping[str, str | None], verdicts: Mapping[str, bool],
                 deliveries: Mapping[str, Mapping[tuple[str, str, str], str]],
                 dead: Iterable[tuple[str, str, str, str]], expected: Iterable[tuple[str, str, str]]) -> Verdict:
    """Every published signal reached execution (an intent in any state, or qc risk's recorded rejection)
    and distribution (per expected (tier, channel, target): a final delivery record or a dead letter).

    ``intents``: signal id -> its intent's state (None: no intent); ``verdicts``: signal id -> approved;
    ``deliveries``: signal id -> {(tier, channel, target): outcome}; ``dead``: (signal id, tier, channel,
    target) of each dead letter; ``expected``: the routing's (tier, channel, target) triples."""
    targets = _targets(expected)
    lettered = set(dead)
    no_exec = [s for s in signals if intents.get(s) is None and verdicts.get(s) is not False]
    no_dist = [(s, t) for s in signals for t in targets
               if t not in deliveries.get(s, {}) and (s, *t) not in lettered]
    states = Counter(intents.get(s) or ("risk rejected" if verdicts.get(s) is False else "none") for s in signals)
    outcomes = Counter(o for s in signals for o in deliveries.get(s, {}).values())
    offenders = tuple([f"{s}: no intent, no rejection" for s in no_exec[:SHOWN]]
                      + [f"{s}: {':'.join(t)} neither delivered nor dead-lettered" for s, t in no_dist[:SHOWN]])
    return Verdict("signals lost (signals -> execution -> distribution)", "0",
                   f"{len(no_exec)} + {len(no_dist)}", not no_exec and not no_dist, offenders,
                   {"signals": len(signals), "intent_states": dict(states), "delivery_outcomes": dict(outcomes),
                    "dead_letters": len(lettered), "lost_to_execution": len(no_exec),
                    "deliveries_lost": len(no_dist)})


def duplicate_deliveries(received: dict[str, dict[str, Any]], channels: Channels, signals: Sequence[str],
                         deliveries: Mapping[str, Mapping[tuple[str, str, str], str]]) -> Verdict:
    """Nothing landed twice at one target unless qc recorded that delivery ``uncertain`` (sent, answer lost).

    ``received``: the simulator's ``channels`` query by channel; what landed is counted per (channel,
    tier, signal) by ``distribute_harness.landed``."""
    per = Counter((x.channel, x.tier, x.signal_id) for x in landed(received, channels, signals))
    outcome_of = {(ch, tier, sid): outcome for sid, recs in deliveries.items()
                  for (tier, ch, _target), outcome in recs.items()}
    dup = sorted(k for k, n in per.items() if n > 1 and outcome_of.get(k) != "uncertain")
    uncertain_twice = sum(1 for k, n in per.items() if n > 1 and outcome_of.get(k) == "uncertain")
    return Verdict("deliveries duplicated outside 'uncertain'", "0", str(len(dup)), not dup,
                   tuple(f"{sid} {ch}/{tier} x{per[(ch, tier, sid)]} ({outcome_of.get((ch, tier, sid))})"
                         for ch, tier, sid in dup[:SHOWN]),
                   {"landed": sum(per.values()), "uncertain_landed_twice": uncertain_twice})


def counted(name: str, bad: Sequence[str], want: str = "0") -> Verdict:
    """A check that is a list of offenders (faults not injected, faults not healed, a dirty stop)."""
    return Verdict(name, want, str(len(bad)), not bad, tuple(bad[:SHOWN]))
