"""The typed shape of every Redis value `qc signals` writes: the signal, its outcome, the last evaluation.

A :class:`Signal` is one JSON document (``v`` = :data:`SCHEMA`) stored by id
(``signals:record:{id}``), pushed on ``signals:pending:{sym}`` and carried by the execution and
distribution streams (field ``signal``). Execution and distribution extend ``lineage`` (order ids,
deliveries) without touching the rest. Readers get the value or an ``Absent`` naming the field.

Ids sort by creation time: 13 digits of market-clock milliseconds, then 8 random hex digits (two
processes creating a signal in the same millisecond still differ).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    loads_object,
    need,
    opt_float,
    req_float,
    req_instant,
    req_int,
    req_str,
)
from qc.signals.model import STRATEGIES, Contract, Contribution, Decision, Gate, Quote, StrategyName

SCHEMA = 1
ExitReason = Literal["take_profit", "stop", "time_stop", "unpriced"]
EXIT_REASONS: tuple[ExitReason, ...] = ("take_profit", "stop", "time_stop", "unpriced")


def new_id(now: datetime) -> str:
    """Sortable and unique: market-clock milliseconds, then 32 random bits."""
    return f"{int(now.timestamp() * 1000):013d}{secrets.token_hex(4)}"


def is_signal_id(text: str) -> bool:
    return len(text) == 21 and all(c in "0123456789" for c in text[:13]) and all(c in "0123456789abcdef"
                                                                                 for c in text[13:])


def _contract_doc(c: Contract) -> dict[str, Any]:
    return {"symbol": c.symbol, "sec_type": c.sec_type, "expiry": c.expiry.isoformat() if c.expiry else None,
            "strike": c.strike, "right": c.right, "multiplier": c.multiplier, "exchange": c.exchange,
            "primary_exchange": c.primary_exchange}


def _contract(doc: Mapping[str, Any]) -> Contract:
    sec_type = req_str(need(doc, "sec_type"), "contract.sec_type", choices=("OPT", "STK"))
    expiry, strike, right = doc.get("expiry"), doc.get("strike"), doc.get("right")
    if sec_type == "OPT" and (not expiry or strike is None or right not in ("C", "P")):
        raise Malformed("contract", "an option needs expiry, strike and right C or P")
    return Contract(req_str(need(doc, "symbol"), "contract.symbol", empty=False), "OPT" if sec_type == "OPT" else "STK",
                    _expiry(expiry) if expiry else None,
                    req_float(strike, "contract.strike", lo=1e-9) if strike is not None else None,
                    "C" if right == "C" else "P" if right == "P" else None,
                    req_int(need(doc, "multiplier"), "contract.multiplier", lo=1),
                    req_str(need(doc, "exchange"), "contract.exchange"),
                    req_str(doc.get("primary_exchange", ""), "contract.primary_exchange"))


def _expiry(raw: Any) -> date:
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise Malformed("contract.expiry", f"is {raw!r}, not a YYYY-MM-DD date ({exc})") from None


def _contribution_doc(c: Contribution) -> dict[str, Any]:
    return {"name": c.name, "value": c.value, "weight": c.weight, "contribution": c.contribution, "age_s": c.age_s,
            "reason": c.reason}


def _contribution(doc: Mapping[str, Any]) -> Contribution:
    return Contribution(req_str(need(doc, "name"), "factor.name"),
                        opt_float(need(doc, "value"), "factor.value", lo=-1.0, hi=1.0),
                        req_float(need(doc, "weight"), "factor.weight", lo=0.0),
                        req_float(need(doc, "contribution"), "factor.contribution", lo=-1.0, hi=1.0),
                        opt_float(need(doc, "age_s"), "factor.age_s"), req_str(doc.get("reason", ""), "factor.reason"))


def _gate_doc(g: Gate) -> dict[str, Any]:
    return {"name": g.name, "open": g.open, "reason": g.reason,
            "closes_at": g.closes_at.isoformat() if g.closes_at else None}


def _gate(doc: Mapping[str, Any]) -> Gate:
    closes = doc.get("closes_at")
    is_open = need(doc, "open")
    if not isinstance(is_open, bool):
        raise Malformed("gate.open", f"is {is_open!r}, not true or false")
    return Gate(req_str(need(doc, "name"), "gate.name"), is_open, req_str(doc.get("reason", ""), "gate.reason"),
                req_instant(closes, "gate.closes_at") if closes else None)


@dataclass(frozen=True, slots=True)
class Signal:
    """One emitted signal: what to trade, at what limit, with which exits, and why."""

    id: str
    created_at: datetime
    strategy: StrategyName
    contract: Contract
    side: Literal["BUY", "SELL"]
    direction: int                    # +1 bullish, −1 bearish (a put bought is −1)
    order_type: Literal["LMT", "LOC"]
    limit: float
    take_profit: float                # the option's (or share's) price that takes profit
    stop: float
    time_stop: datetime
    score: float
    threshold: float
    mode: str
    size_multiplier: float
    quote: Quote
    contributions: tuple[Contribution, ...]
    factor_inputs: Mapping[str, Mapping[str, Any]]
    gates: tuple[Gate, ...]
    fingerprint: str
    notes: tuple[str, ...] = ()
    lineage: Mapping[str, Any] = field(default_factory=dict)
    trail_pct: float = 0.0            # > 0: the protective stop trails this % below the best premium (qc-managed)

    @property
    def symbol(self) -> str:
        return self.contract.symbol

    def to_redis(self) -> str:
        return dumps({
            VERSION_FIELD: SCHEMA, "id": self.id, "created_at": self.created_at.isoformat(), "strategy": self.strategy,
            "contract": _contract_doc(self.contract), "side": self.side, "direction": self.direction,
            "order_type": self.order_type, "limit": self.limit, "take_profit": self.take_profit, "stop": self.stop,
            "time_stop": self.time_stop.isoformat(), "score": self.score, "threshold": self.threshold,
            "mode": self.mode, "size_multiplier": self.size_multiplier,
            "quote": {"bid": self.quote.bid, "ask": self.quote.ask, "mark": self.quote.mark, "delta": self.quote.delta,
                      "open_interest": self.quote.open_interest, "volume": self.quote.volume,
                      "age_s": self.quote.age_s},
            "factors": [_contribution_doc(c) for c in self.contributions],
            "factor_inputs": {k: dict(v) for k, v in self.factor_inputs.items()},
            "gates": [_gate_doc(g) for g in self.gates], "fingerprint": self.fingerprint, "notes": list(self.notes),
            "lineage": dict(self.lineage), "trail_pct": self.trail_pct})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> Signal | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, raw: str) -> Signal:
        d = loads_object(raw, "signal")
        check_version(d, SCHEMA)
        q = need(d, "quote")
        quote = Quote(req_float(need(q, "bid"), "quote.bid", lo=0.0), req_float(need(q, "ask"), "quote.ask", lo=0.0),
                      req_float(need(q, "mark"), "quote.mark", lo=0.0), opt_float(q.get("delta"), "quote.delta"),
                      req_int(need(q, "open_interest"), "quote.open_interest", lo=0),
                      req_int(need(q, "volume"), "quote.volume", lo=0), req_float(need(q, "age_s"), "quote.age_s"))
        strategy = req_str(need(d, "strategy"), "strategy", choices=STRATEGIES)
        side = req_str(need(d, "side"), "side", choices=("BUY", "SELL"))
        order_type = req_str(need(d, "order_type"), "order_type", choices=("LMT", "LOC"))
        direction = req_int(need(d, "direction"), "direction", lo=-1, hi=1)
        if direction == 0:
            raise Malformed("direction", "is 0: a signal has a direction")
        inputs = need(d, "factor_inputs")
        if not isinstance(inputs, dict):
            raise Malformed("factor_inputs", "is not an object")
        return cls(
            req_str(need(d, "id"), "id", empty=False), req_instant(need(d, "created_at"), "created_at"),
            next(s for s in STRATEGIES if s == strategy), _contract(need(d, "contract")),
            "BUY" if side == "BUY" else "SELL", direction, "LMT" if order_type == "LMT" else "LOC",
            req_float(need(d, "limit"), "limit", lo=1e-9), req_float(need(d, "take_profit"), "take_profit", lo=0.0),
            req_float(need(d, "stop"), "stop", lo=0.0), req_instant(need(d, "time_stop"), "time_stop"),
            req_float(need(d, "score"), "score", lo=-1.0, hi=1.0), req_float(need(d, "threshold"), "threshold", lo=0.0),
            req_str(need(d, "mode"), "mode"), req_float(need(d, "size_multiplier"), "size_multiplier", lo=0.0),
            quote, tuple(_contribution(c) for c in need(d, "factors")),
            {str(k): dict(v) for k, v in inputs.items()}, tuple(_gate(g) for g in need(d, "gates")),
            req_str(need(d, "fingerprint"), "fingerprint", empty=False),
            tuple(str(n) for n in d.get("notes", [])), dict(d.get("lineage") or {}),
            req_float(d.get("trail_pct", 0.0), "trail_pct", lo=0.0, hi=99.99))  # absent: written before trails


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a signal ended, judged on its own exits: ``return_pct`` on the entry (signed for the side)."""

    signal_id: str
    symbol: str
    strategy: StrategyName
    exit_reason: ExitReason
    entry: float
    exit_price: float | None
    return_pct: float | None
    held_s: float
    decided_at: datetime

    @property
    def hit(self) -> bool:
        return self.return_pct is not None and self.return_pct > 0

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, "signal_id": self.signal_id, "symbol": self.symbol,
                      "strategy": self.strategy, "exit_reason": self.exit_reason, "entry": self.entry,
                      "exit_price": self.exit_price, "return_pct": self.return_pct, "held_s": self.held_s,
                      "decided_at": self.decided_at.isoformat()})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> Outcome | Absent:
        def parse(text: str) -> Outcome:
            d = loads_object(text, "outcome")
            check_version(d, SCHEMA)
            strategy = req_str(need(d, "strategy"), "strategy", choices=STRATEGIES)
            reason = req_str(need(d, "exit_reason"), "exit_reason", choices=EXIT_REASONS)
            return cls(req_str(need(d, "signal_id"), "signal_id", empty=False), req_str(need(d, "symbol"), "symbol"),
                       next(s for s in STRATEGIES if s == strategy), next(r for r in EXIT_REASONS if r == reason),
                       req_float(need(d, "entry"), "entry", lo=1e-9),
                       opt_float(need(d, "exit_price"), "exit_price", lo=0.0),
                       opt_float(need(d, "return_pct"), "return_pct", lo=-1e6),
                       req_float(need(d, "held_s"), "held_s", lo=0.0), req_instant(need(d, "decided_at"), "decided_at"))

        return decode(key, raw, parse)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """``signals:last:{sym}`` field per strategy: the last verdict, every factor and gate, and the outcome."""

    decision: Decision
    at: datetime
    factor_inputs: Mapping[str, Mapping[str, Any]]
    result: str                   # "emitted <id>", "duplicate of <id>", "cooldown", "no contract: …", or the block
    signal_id: str = ""

    def to_redis(self) -> str:
        d, s = self.decision, self.decision.score
        return dumps({VERSION_FIELD: SCHEMA, "at": self.at.isoformat(), "strategy": d.strategy, "symbol": d.symbol,
                      "direction": d.direction, "score": s.score, "mode": s.mode,
                      "size_multiplier": s.size_multiplier, "score_reason": s.reason,
                      "factors": [_contribution_doc(c) for c in s.contributions],
                      "factor_inputs": {k: dict(v) for k, v in self.factor_inputs.items()},
                      "gates": [_gate_doc(g) for g in d.gates], "reason": d.reason, "notes": list(d.notes),
                      "result": self.result, "signal_id": self.signal_id})


@dataclass(frozen=True, slots=True)
class LastEvaluation:
    """An :class:`Evaluation` as a reader gets it back (the parts `explain` prints)."""

    at: datetime
    strategy: str
    symbol: str
    direction: int
    score: float | None
    mode: str
    reason: str
    result: str
    signal_id: str
    contributions: tuple[Contribution, ...]
    gates: tuple[Gate, ...]
    factor_inputs: Mapping[str, Mapping[str, Any]]
    notes: tuple[str, ...]

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> LastEvaluation | Absent:
        def parse(text: str) -> LastEvaluation:
            d = loads_object(text, "evaluation")
            check_version(d, SCHEMA)
            return cls(req_instant(need(d, "at"), "at"), req_str(need(d, "strategy"), "strategy", choices=STRATEGIES),
                       req_str(need(d, "symbol"), "symbol"), req_int(need(d, "direction"), "direction", lo=-1, hi=1),
                       opt_float(need(d, "score"), "score", lo=-1.0, hi=1.0), req_str(need(d, "mode"), "mode"),
                       req_str(need(d, "reason"), "reason"), req_str(need(d, "result"), "result"),
                       req_str(need(d, "signal_id"), "signal_id"),
                       tuple(_contribution(c) for c in need(d, "factors")),
                       tuple(_gate(g) for g in need(d, "gates")),
                       {str(k): dict(v) for k, v in need(d, "factor_inputs").items()},
                       tuple(str(n) for n in d.get("notes", [])))

        return decode(key, raw, parse)
