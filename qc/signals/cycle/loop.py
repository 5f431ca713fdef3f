"""One `qc signals` cycle: inputs → factors → the four strategies → contract → dedup → publish.

Per symbol and strategy, every cycle: the gates and the score (always, so `qc signals explain SYM`
can say why nothing fired), and when the strategy fires: cooldown, contract choice from the chain
in Redis, the signal, the fingerprint claim and the hand-off (``publish.py``). What blocked an
evaluation is counted per New York day in ``signals:blocked:{day}`` (gate name, ``no_score``,
``below_threshold``, ``no_lead``, ``missing_input``, ``cooldown``, ``duplicate``,
``filter:<reason>``); each contract candidate a filter refused is counted in ``signals:metrics``
as ``rejected:<reason>``. Every ``SCORECARD_EVERY_S`` the open signals are judged against their
instrument's mark.

One symbol failing is logged and counted (``monitoring:errors``), the others go on; Redis errors
propagate to the Worker, which backs off.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.ingest.codec import OptionChain, Quote
from qc.runtime.store import REDIS_ERRORS, Store
from qc.runtime.worker import CycleIncomplete
from qc.signals import contracts, factor_set, gates, strategies
from qc.signals.build import build_signal
from qc.signals.codec import Evaluation, Outcome, Signal
from qc.signals.cycle.inputs import InputReader
from qc.signals.cycle.publish import Publisher
from qc.signals.model import STRATEGIES, Choice, Decision, Factor, NoContract, StrategyParams
from qc.signals.model import Quote as ContractQuote
from qc.signals.params import SignalSettings
from qc.signals.scorecard import judge

log = logging.getLogger(__name__)
NAME = "signals"
SCORECARD_EVERY_S = 15.0


def share_choice(symbol: str, quote: Quote | Absent, auction_price: float | None, now: datetime,
                 params: StrategyParams) -> Choice | NoContract:
    """MOC trades the shares: priced at the auction's reference price when published, else the mid."""
    if isinstance(quote, Absent):
        return NoContract(f"no quote: {quote.reason}", {"no_quote": 1})
    mid, age = quote.mid, max(0.0, now.timestamp() - quote.as_of)
    if mid is None or quote.bid is None or quote.ask is None:
        return NoContract("no two-sided quote", {"no_quote": 1})
    if age > params.contract.max_quote_age_s:
        return NoContract(f"quote {age:.0f} s old > {params.contract.max_quote_age_s:g} s", {"stale_quote": 1})
    if (quote.ask - quote.bid) / mid > params.contract.max_spread_pct:
        return NoContract(f"spread {(quote.ask - quote.bid) / mid:.2%} of mid", {"spread": 1})
    mark = auction_price if auction_price is not None and auction_price > 0 else mid
    return Choice(contracts.share_contract(symbol), ContractQuote(quote.bid, quote.ask, mark, None, 0, 0, age), {})


class SignalsCycle:
    """Callable ``cycle(now)`` for ``qc.runtime.worker.Worker``."""

    def __init__(self, store: Store, symbols: Sequence[str], config: SignalSettings, once: bool = False) -> None:
        self.store, self.symbols, self.config, self.once = store, tuple(symbols), config, once
        self.reader = InputReader(store, self.symbols)
        self.publisher = Publisher(store, config.pending_cap)
        self.last_scorecard = float("-inf")
        self.cycles = 0
        self.lineage = {"source": "qc signals", "host": socket.gethostname(), "pid": os.getpid()}

    def __call__(self, now: datetime) -> None:
        self.cycles += 1
        inputs = self.reader.read(now)
        blocked: Counter[str] = Counter()
        metrics: Counter[str] = Counter({"cycles": 1})
        evaluations: dict[str, dict[str, str]] = {}
        failed: list[str] = []
        for sym in self.symbols:
            try:
                evaluations[sym] = self.symbol(inputs[sym], now, blocked, metrics)
            except REDIS_ERRORS:
                raise
            except Exception as exc:  # one symbol's bad data never stops the others
                log.exception("%s failed this cycle: %s", sym, exc)
                self.store.hincrby(keys.worker_errors(), NAME)
                failed.append(f"{sym}: {type(exc).__name__}: {exc}")
        if now.timestamp() - self.last_scorecard >= SCORECARD_EVERY_S:
            metrics["outcomes"] += self.scorecard(now)
            self.last_scorecard = now.timestamp()
        self.write(now, evaluations, blocked, metrics)
        if self.once and failed:
            raise CycleIncomplete("; ".join(failed))

    def symbol(self, inputs: factor_set.SymbolInputs, now: datetime, blocked: Counter[str],
               metrics: Counter[str]) -> dict[str, str]:
        by_age: dict[float, dict[str, Factor]] = {}
        out: dict[str, str] = {}
        for name in STRATEGIES:
            params = self.config.strategies[name]
            factors = by_age.get(params.max_age_s)
            if factors is None:
                factors = by_age[params.max_age_s] = factor_set.compute(inputs, now, params.max_age_s)
            shut = gates.gates_for(name, inputs.symbol, now, self.config.gates)
            decision = strategies.evaluate(params, inputs.symbol, factors, shut,
                                           moc_min_ratio=self.config.moc_min_imbalance_ratio)
            result, signal_id = self.act(decision, inputs, params, factors, now, blocked, metrics)
            out[name] = Evaluation(decision, now, factor_set.inputs_of(factors), result, signal_id).to_redis()
        return out

    def act(self, decision: Decision, inputs: factor_set.SymbolInputs, params: StrategyParams,
            factors: Mapping[str, Factor], now: datetime, blocked: Counter[str],
            metrics: Counter[str]) -> tuple[str, str]:
        """What became of a decision: (result text, signal id or "")."""
        sym, name = inputs.symbol, params.name
        if not decision.fires:
            blocked[f"{sym}:{name}:{strategies.block_key(decision)}"] += 1
            return decision.reason, ""
        if self.publisher.cooling_down(sym, name):
            blocked[f"{sym}:{name}:cooldown"] += 1
            return f"cooldown: a {name} signal on {sym} within {params.cooldown_s:g} s", ""
        choice = self.choose(decision, inputs, params, now)
        for reason, n in choice.rejected.items():  # every candidate a filter refused, by reason
            metrics[f"rejected:{reason}"] += n
        if isinstance(choice, NoContract):
            top = max(choice.rejected, key=lambda r: choice.rejected[r]) if choice.rejected else "no_chain"
            blocked[f"{sym}:{name}:filter:{top}"] += 1
            return f"no contract: {choice.reason}", ""
        signal = build_signal(decision, choice, params, now, factor_set.inputs_of(factors),
                              {**self.lineage, "cycle": self.cycles})
        claim = self.publisher.claim(signal, params.dwell_s, params.cooldown_s)
        metrics[claim.result] += 1
        if claim.result == "duplicate":
            blocked[f"{sym}:{name}:duplicate"] += 1
            return f"duplicate of {claim.signal_id or 'a signal whose claim just expired'}", claim.signal_id
        log.info("signal %s: %s %s %s %s limit %.2f score %+.3f", claim.signal_id, name, signal.side,
                 signal.contract.describe(), "bullish" if signal.direction > 0 else "bearish", signal.limit,
                 signal.score)
        return f"{claim.result} {claim.signal_id}", claim.signal_id

    def choose(self, decision: Decision, inputs: factor_set.SymbolInputs, params: StrategyParams,
               now: datetime) -> Choice | NoContract:
        if params.name == "moc":
            price = None if isinstance(inputs.auction, Absent) else inputs.auction.indicative_price
            return share_choice(inputs.symbol, inputs.quote, price, now, params)
        chain = self.reader.chain(inputs.symbol)
        if isinstance(chain, Absent):
            return NoContract(f"no option chain: {chain}", {"no_chain": 1})
        return contracts.choose(chain, params.name, decision.direction, params.contract, now)

    def scorecard(self, now: datetime) -> int:
        """Judge every open signal against its instrument's mark now; returns how many ended."""
        c = self.store.client
        ids = [str(i) for i in c.zrange(keys.signals_open().name, 0, -1)]
        if not ids:
            return 0
        raws = self.store.mget([keys.signal_record(i).name for i in ids])
        chains: dict[str, OptionChain | Absent] = {}
        ended: list[Outcome] = []
        gone: list[str] = []
        for signal_id, raw in zip(ids, raws, strict=True):
            signal = Signal.from_redis(raw, key=keys.signal_record(signal_id).name)
            if isinstance(signal, Absent):
                gone.append(signal_id)
                continue
            outcome = judge(signal, self.mark(signal, now, chains), now)
            if outcome is not None:
                ended.append(outcome)
        if ended or gone:
            pipe = c.pipeline(transaction=False)
            outcomes = keys.signal_outcomes()
            for o in ended:
                pipe.hset(outcomes.name, o.signal_id, o.to_redis())
            pipe.expire(outcomes.name, outcomes.ttl_s)
            pipe.zrem(keys.signals_open().name, *[o.signal_id for o in ended], *gone)
            pipe.execute()
        return len(ended)

    def mark(self, signal: Signal, now: datetime, chains: dict[str, OptionChain | Absent]) -> float | None:
        sym = signal.symbol
        if signal.contract.sec_type == "STK":
            got = Quote.from_redis(self.store.client.hgetall(keys.quote(sym).name) or None, key=keys.quote(sym).name)
            return None if isinstance(got, Absent) else got.mid
        if sym not in chains:
            chains[sym] = self.reader.chain(sym) if sym in self.symbols else Absent(sym, "not scored here")
        chain = chains[sym]
        if isinstance(chain, Absent) or (now - chain.as_of).total_seconds() > 2 * 900:
            return None
        c = signal.contract
        for row in chain.rows:
            if row.expiry == c.expiry and row.right == c.right and row.strike == c.strike:
                return row.mark if row.mark >= 0 else None
        return None

    def write(self, now: datetime, evaluations: Mapping[str, Mapping[str, str]], blocked: Counter[str],
              metrics: Counter[str]) -> None:
        pipe = self.store.client.pipeline(transaction=False)
        for sym, fields in evaluations.items():
            last = keys.signals_last(sym)
            if fields:
                pipe.hset(last.name, mapping=dict(fields))
                pipe.expire(last.name, last.ttl_s)
        day = keys.signals_blocked(clock.new_york_date(now).isoformat())
        for name, n in blocked.items():
            pipe.hincrby(day.name, name, n)
        pipe.expire(day.name, day.ttl_s)
        m = keys.signals_metrics()
        for name, n in metrics.items():
            pipe.hincrby(m.name, name, n)
        pipe.expire(m.name, m.ttl_s)
        pipe.execute()
