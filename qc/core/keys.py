"""THE Redis key schema and TTL policy: nothing else in qc spells a key.

Every write goes through a :class:`Key`, which carries its namespace's TTL, so no value outlives
the promise its namespace makes (DESIGN.md §4). ``positions:*``, the latched trading state
(``risk:state:{account}``) and the executor's fencing token alone never expire.

The runbook lines operators type are a public contract (tested against this module)::

    redis-cli get heartbeat:ibkr_ingestion   # recent timestamp
    redis-cli hlen market:SPY:book           # number of depth levels
    redis-cli hget analytics:SPY:vpin value  # toxicity score
    redis-cli hget analytics:SPY:gex total   # gamma exposure
    redis-cli llen signals:pending:SPY       # pending signal count

Redis Cluster: these names carry no hash tags (the runbook keys must stay exactly as operators type
them), so every key hashes to its own slot, even two keys of one symbol. Hence the rule every
writer follows: no Lua script and no MULTI/EXEC spans two keys (the shared Alpha Vantage token
bucket is one hash, and pipelines are only batches, never transactions, on Cluster).

The one exception is the signal hand-off streams, which their consumers read in one blocking
XREADGROUP over every symbol: ``signals:{execution}:SPY`` and ``signals:{distribution}:SPY`` carry a
hash tag (the braces are part of the name), so each hand-off's streams share one slot whatever the
symbols. No other key carries a tag, and no command spans the two hand-offs.
"""

from __future__ import annotations

from typing import NamedTuple

# --- TTLs by namespace (seconds) --------------------------------------------------------------
MARKET_BOOK_TTL_S = 60
MARKET_SERIES_TTL_S = 3600
OPTIONS_TTL_S = 900
ANALYTICS_TTL_S = 300
SESSION_SERIES_TTL_S = 86400  # a session's per-second history, kept into the next day
SIGNALS_TTL_S = 3600
SIGNALS_HISTORY_TTL_S = 30 * 86400  # records, outcomes and block counts: the scorecard's memory
ORDERS_TTL_S = 7 * 86400
EXECUTION_TTL_S = 7 * 86400
RISK_TTL_S = 86400
DISTRIBUTION_TTL_S = 86400
HEARTBEAT_TTL_S = 120  # longer than the 30 s alert threshold, so status can show a late worker's age
MONITORING_TTL_S = 300
AV_METRICS_TTL_S = 900  # `qc chains` runs every 300 s: a missed cycle must not blank the metrics
WORKER_REGISTRY_TTL_S = 86400
SIM_CLOCK_TTL_S = 10  # the simulator refreshes it every second; a dead simulator steers nothing
SUPERVISOR_COMMANDS_TTL_S = 10  # `qc up` pops requests every second; older ones are void


class Key(NamedTuple):
    """A Redis key and the TTL every write to it must set (None: never expires)."""

    name: str
    ttl_s: int | None


# --- monitoring -------------------------------------------------------------------------------


def heartbeat(module: str) -> Key:
    """Wall-clock Unix time of the module's last completed cycle."""
    return Key(f"heartbeat:{module}", HEARTBEAT_TTL_S)


def worker_registry() -> Key:
    """Hash: module -> JSON {pid, host, started}; a worker leaves it on a clean stop only."""
    return Key("monitoring:workers", WORKER_REGISTRY_TTL_S)


def worker_errors() -> Key:
    """Hash: module -> count of cycle errors logged and survived today."""
    return Key("monitoring:errors", RISK_TTL_S)


def input_rejects() -> Key:
    """Hash: "{surface}:{reason}" -> outside values refused today (HINCRBY), e.g. "av.chain:negative_bid"."""
    return Key("monitoring:rejects", RISK_TTL_S)


def ibkr_connected() -> Key:
    """"1" while the IB API socket is up, "0" otherwise."""
    return Key("ibkr:connected", MONITORING_TTL_S)


def data_stale() -> Key:
    """Hash: "{symbol}:{feed}" -> wall-clock Unix time of that feed's last data, for stale feeds only."""
    return Key("monitoring:data:stale", MONITORING_TTL_S)


def alpha_vantage_metrics() -> Key:
    """Hash: tokens_left, requests, and one counter per response class; outlives three chain cycles."""
    return Key("monitoring:alpha_vantage:metrics", AV_METRICS_TTL_S)


def cycle_times(module: str) -> Key:
    """Hash: how long the module's cycles and the tasks in them take (real time): ``{task}:last_us``, and
    ``{task}:sum_us`` / ``{task}:count`` added every run, so a scraper derives the mean over any window."""
    return Key(f"monitoring:cycle:{module}", MONITORING_TTL_S)


def supervisor_children() -> Key:
    """Hash: child name -> JSON {pid, state, restarts} as `qc up` sees them."""
    return Key("monitoring:supervisor", MONITORING_TTL_S)


def supervisor_commands() -> Key:
    """List of operator requests (`qc restart`) the running `qc up` pops every cycle; short-lived,
    so a request no supervisor took in time never fires later by surprise."""
    return Key("monitoring:supervisor:commands", SUPERVISOR_COMMANDS_TTL_S)


def sim_clock() -> Key:
    """Hash published by `qc sim`: real_epoch, sim_epoch, speed."""
    return Key("monitoring:sim:clock", SIM_CLOCK_TTL_S)


# --- events counted per hour ------------------------------------------------------------------


def risk_breaches_count() -> Key:
    """Risk-limit breaches today (INCR)."""
    return Key("risk:breaches:count", RISK_TTL_S)


def risk_breaches_log() -> Key:
    """Sorted set of breach events scored by wall-clock time, for breaches per hour."""
    return Key("risk:breaches:log", RISK_TTL_S)


def trading_state(account: str) -> Key:
    """Hash: scope ("account" or an underlying) -> the latched trading state (JSON). Never expires: a
    HALTED latch must outlive a weekend and a Redis restart (AOF); only `qc risk resume` lowers it."""
    return Key(f"risk:state:{account}", None)


def trading_state_counts(account: str) -> Key:
    """Hash: "{cause}:{state}" -> trading-state transitions today (HINCRBY)."""
    return Key(f"risk:state:counts:{account}", RISK_TTL_S)


def trading_state_log(account: str) -> Key:
    """List of trading-state transitions (JSON, newest first, capped): cause, by, reason, when."""
    return Key(f"risk:state:log:{account}", 30 * 86400)


def risk_exposure(account: str) -> Key:
    """The live exposure snapshot (JSON, ``qc.risk.snapshot``) the `qc risk` worker publishes every interval."""
    return Key(f"risk:exposure:{account}", MONITORING_TTL_S)


def risk_pnl_high_water(account: str) -> Key:
    """Hash: New York date -> today's high-water mark of P&L ($), so a restarted worker keeps its drawdown."""
    return Key(f"risk:pnl:hwm:{account}", RISK_TTL_S)


def risk_regime(account: str) -> Key:
    """Hash: underlying -> last side of zero gamma (+1 above, -1 below), so a restart sees a crossing."""
    return Key(f"risk:regime:{account}", RISK_TTL_S)


def risk_breaker_readings(account: str) -> Key:
    """The breakers' current readings (JSON list: scope, breaker, value, trips at, clears at), every cycle."""
    return Key(f"risk:breakers:{account}", MONITORING_TTL_S)


def risk_verdicts() -> Key:
    """Stream of pre-trade verdicts on new signals (signal id, approved, reasons), capped."""
    return Key("risk:verdicts", RISK_TTL_S)


def risk_verdict(signal_id: str) -> Key:
    """One signal's pre-trade verdict (JSON), for `qc execute` and `qc risk status`."""
    return Key(f"risk:verdict:{signal_id}", SIGNALS_TTL_S)


def risk_halt_request(account: str) -> Key:
    """The latest `qc risk halt` request (JSON: id, at, by, reason) the executor must acknowledge."""
    return Key(f"risk:halt:{account}", RISK_TTL_S)


def execute_halt_ack(account: str) -> Key:
    """Id of the last halt request `qc execute` acted on (its entries cancelled, its loop paused)."""
    return Key(f"execution:halt_ack:{account}", RISK_TTL_S)


def execute_fence(account: str) -> Key:
    """Hash: the executor's fencing token and its holder (pid, host, client id). Never expires: a token
    must never go back, or a fenced-off executor would be trusted again."""
    return Key(f"execution:fence:{account}", None)


def orders_failed_count() -> Key:
    """Orders rejected or failed today (INCR)."""
    return Key("orders:failed:count", RISK_TTL_S)


def orders_failed_log() -> Key:
    """Sorted set of failed-order events scored by wall-clock time, for failures per hour."""
    return Key("orders:failed:log", RISK_TTL_S)


# --- market data ------------------------------------------------------------------------------


def book(symbol: str) -> Key:
    """Hash: "{side}:{level}" -> JSON {price, size, venue}; HLEN is the number of depth levels."""
    return Key(f"market:{symbol}:book", MARKET_BOOK_TTL_S)


def bars_1min(symbol: str) -> Key:
    return Key(f"market:{symbol}:bars:1min", MARKET_SERIES_TTL_S)


def trades(symbol: str) -> Key:
    return Key(f"market:{symbol}:trades", MARKET_SERIES_TTL_S)


def quote(symbol: str) -> Key:
    return Key(f"market:{symbol}:quote", MARKET_BOOK_TTL_S)


def venue_shares(symbol: str) -> Key:
    """Hash: "{side}:{venue}" -> share of displayed depth, plus per-side concentration."""
    return Key(f"market:{symbol}:venues", MARKET_BOOK_TTL_S)


def auction_imbalance(symbol: str) -> Key:
    """Hash: the latest closing-auction imbalance (signed shares, paired, indicative price, as_of)."""
    return Key(f"market:{symbol}:auction", MARKET_SERIES_TTL_S)


def news_sentiment(symbol: str) -> Key:
    """Hash: relevance-weighted news sentiment for the symbol, article count, as_of."""
    return Key(f"market:{symbol}:news", MARKET_SERIES_TTL_S)


def ingest_latency() -> Key:
    """Hash: message-arrival-to-Redis-write latency percentiles per feed, from `qc stream`."""
    return Key("monitoring:ingest:latency", MONITORING_TTL_S)


def ingest_latency_histogram() -> Key:
    """Hash: `qc stream`'s writes counted by latency bucket per feed since it started (``LatencyHistogram``)."""
    return Key("monitoring:ingest:latency:hist", MONITORING_TTL_S)


def ingest_recoveries() -> Key:
    """Hash: "{symbol}:{feed}" -> resubscriptions of that silent feed; "reconnects" -> IB reconnects."""
    return Key("monitoring:ingest:recoveries", MONITORING_TTL_S)


def option_chain(symbol: str) -> Key:
    return Key(f"options:{symbol}:chain", OPTIONS_TTL_S)


def av_requests_log() -> Key:
    """Sorted set of Alpha Vantage requests by wall-clock time, from every `qc chains` process."""
    return Key("monitoring:alpha_vantage:requests", AV_METRICS_TTL_S)


def av_token_bucket() -> Key:
    """Hash: the Alpha Vantage token bucket every `qc chains` process shares (tokens, updated_at)."""
    return Key("monitoring:alpha_vantage:bucket", MONITORING_TTL_S)


# --- analytics --------------------------------------------------------------------------------


def vpin(symbol: str) -> Key:
    """Hash with ``value`` (VPIN in [0, 1]) and its inputs."""
    return Key(f"analytics:{symbol}:vpin", ANALYTICS_TTL_S)


def toxicity_series(symbol: str) -> Key:
    """Stream: one entry per analytics second (``t`` market epoch, ``vpin``, ``imbalance``), capped at a
    session's worth, for the dashboard's VPIN and imbalance over the session."""
    return Key(f"analytics:{symbol}:tox:series", SESSION_SERIES_TTL_S)


def gex(symbol: str) -> Key:
    """Hash with ``total`` (net GEX, $ per 1 % move) and the rest of dealer positioning."""
    return Key(f"analytics:{symbol}:gex", ANALYTICS_TTL_S)


def gex_by_strike(symbol: str) -> Key:
    """JSON: GEX/DEX/vanna/charm by strike for the expiries behind ``analytics:{sym}:gex``."""
    return Key(f"analytics:{symbol}:gex:strikes", ANALYTICS_TTL_S)


def gex_profile(symbol: str) -> Key:
    """JSON: the spot-shift gamma profile (levels, GEX $ per 1 %) and every zero-gamma crossing."""
    return Key(f"analytics:{symbol}:gex:profile", ANALYTICS_TTL_S)


def book_imbalance(symbol: str) -> Key:
    """Hash: depth-weighted order-book imbalance, microprice, spread, as_of."""
    return Key(f"analytics:{symbol}:imbalance", ANALYTICS_TTL_S)


def regime(symbol: str) -> Key:
    """Hash: realised vols, IV − RV, term structure, gamma regime, percentile band and label."""
    return Key(f"analytics:{symbol}:regime", ANALYTICS_TTL_S)


def regime_history(symbol: str) -> Key:
    """Sorted set of daily regime inputs (JSON) by session date, for trailing percentiles."""
    return Key(f"analytics:{symbol}:regime:history", 400 * 86400)


def flow_clusters(symbol: str) -> Key:
    return Key(f"analytics:flow_clusters:{symbol}", ANALYTICS_TTL_S)


def flow_model(symbol: str) -> Key:
    """JSON ``FlowModel.to_dict()``: kept a week so a restarted `qc analytics` refits with its labels."""
    return Key(f"analytics:flow_model:{symbol}", 7 * 86400)


# --- signals, orders, positions ---------------------------------------------------------------


def signals_pending(symbol: str) -> Key:
    """List of signals (JSON), newest first and capped; LLEN is the pending count."""
    return Key(f"signals:pending:{symbol}", SIGNALS_TTL_S)


def signals_execution(symbol: str) -> Key:
    """Stream of signals for `qc execute` (consumer group ``execution``: nothing lost when it dies mid-item).
    Hash-tagged ``{execution}``: every symbol's stream is in one Cluster slot, read by one XREADGROUP."""
    return Key(f"signals:{{execution}}:{symbol}", SIGNALS_TTL_S)


def signals_distribution(symbol: str) -> Key:
    """Stream of signals for `qc distribute` (consumer group ``distribution``); hash-tagged like the above."""
    return Key(f"signals:{{distribution}}:{symbol}", SIGNALS_TTL_S)


def signal_emitted(fingerprint: str) -> Key:
    """The id of the signal that claimed this contract-level fingerprint; SET NX EX with the strategy's dwell
    (≤ the namespace TTL), so a repeat within the dwell returns the earlier id."""
    return Key(f"signals:emitted:{fingerprint}", SIGNALS_TTL_S)


def signal_cooldown(symbol: str, strategy: str) -> Key:
    """Set with the strategy's cooldown after a signal: no second one for this symbol until it expires."""
    return Key(f"signals:cooldown:{symbol}:{strategy}", SIGNALS_TTL_S)


def signal_record(signal_id: str) -> Key:
    """The signal itself (JSON) by id, for `qc signals explain` and the scorecard: kept a month."""
    return Key(f"signals:record:{signal_id}", SIGNALS_HISTORY_TTL_S)


def signals_log() -> Key:
    """Sorted set of signal ids by emission time (market clock), for `qc signals show` and stats."""
    return Key("signals:log", SIGNALS_HISTORY_TTL_S)


def signals_open() -> Key:
    """Sorted set of signal ids still awaiting their outcome, scored by their time stop (market epoch)."""
    return Key("signals:open", SIGNALS_HISTORY_TTL_S)


def signal_outcomes() -> Key:
    """Hash: signal id -> its outcome (JSON): exit reason, return, holding time."""
    return Key("signals:outcomes", SIGNALS_HISTORY_TTL_S)


def signals_blocked(day: str) -> Key:
    """Hash for one New York day: "{symbol}:{strategy}:{gate or filter}" -> evaluations it blocked."""
    return Key(f"signals:blocked:{day}", SIGNALS_HISTORY_TTL_S)


def signals_last(symbol: str) -> Key:
    """Hash: strategy -> the last evaluation (JSON: factors, gates, decision, reason), for `explain SYM`."""
    return Key(f"signals:last:{symbol}", SIGNALS_TTL_S)


def signals_metrics() -> Key:
    """Hash of worker counters today: cycles, emitted, duplicates, cooldowns, ..."""
    return Key("signals:metrics", RISK_TTL_S)


def position_open(account: str, con_id: int) -> Key:
    """An open position: never expires."""
    return Key(f"positions:open:{account}:{con_id}", None)


def position_open_pattern(account: str) -> str:
    """SCAN pattern of every open position of ``account``."""
    return f"positions:open:{account}:*"


def order_pending(order_id: int) -> Key:
    """JSON of one order qc has working at IB under this connection's ``orderId`` (order reference, permId,
    intent, leg, status): a view for operators, deleted when the order is done. Never a lookup key for
    qc's own state (a gateway restart reissues order ids): that is the intent, by order reference."""
    return Key(f"orders:pending:{order_id}", ORDERS_TTL_S)


def order_intent(intent_id: str) -> Key:
    """One order intent (JSON, ``qc.execute.codec``): the signal's bracket, its state, orders and fills.
    Kept a week after its last write, which every state change refreshes."""
    return Key(f"orders:intent:{intent_id}", ORDERS_TTL_S)


def order_intents_open(account: str) -> Key:
    """Sorted set of the account's intents not yet in a terminal state, scored by creation (market epoch).
    Never expires: an open intent (a position and its stop) outlives any process."""
    return Key(f"orders:open:{account}", None)


def order_intents_log() -> Key:
    """Sorted set of every intent id by creation (market epoch), for `qc orders`."""
    return Key("orders:log", ORDERS_TTL_S)


def fills(symbol: str) -> Key:
    """Hash: IB execId -> the fill (JSON, ``qc.execute.codec``), one field per execution: exactly once by
    construction (HSETNX), with its commission written into it when IB's report comes."""
    return Key(f"execution:fills:{symbol}", EXECUTION_TTL_S)


def execution_lease(account: str) -> Key:
    """The executor's leadership lease (SET NX PX): the holder's identity; standbys wait for it to lapse."""
    return Key(f"execution:lease:{account}", 10)


def execution_status(account: str) -> Key:
    """Hash: the executor's role (leader/standby), IB connection, last reconciliation and its result."""
    return Key(f"execution:status:{account}", MONITORING_TTL_S)


def execution_locked(account: str) -> Key:
    """Hash: conId -> why qc will not trade it (a position the broker reports that qc cannot explain).
    Never expires: only an operator (or a later reconciliation that explains it) clears one."""
    return Key(f"execution:locked:{account}", None)


def execution_sent(account: str) -> Key:
    """Stream (capped) of the executor's order writes: intent, orders, and the wall time the last byte went
    into the gateway's socket, where qc's part of the order path ends (`make bench` measures from it)."""
    return Key(f"execution:sent:{account}", EXECUTION_TTL_S)


def execution_alerts() -> Key:
    """Stream of execution alerts (a position mismatch, shares left by an exercise, a stop re-placed)."""
    return Key("execution:alerts", EXECUTION_TTL_S)


def execution_metrics() -> Key:
    """Hash of the executor's counters today: intents, submitted, fills, duplicates, reconciliations, ..."""
    return Key("execution:metrics", RISK_TTL_S)


# --- distribution -----------------------------------------------------------------------------


def distribution_queue(tier: str) -> Key:
    return Key(f"distribution:{tier}:queue", DISTRIBUTION_TTL_S)


def distribution_metrics() -> Key:
    return Key("distribution:metrics", DISTRIBUTION_TTL_S)


def distribution_outbox(tier: str, channel: str) -> Key:
    """Stream of queue members due for one tier on one channel (consumer group ``distribute``): only the
    mover writes it, senders read, acknowledge after the outcome is recorded, and reclaim a dead one's."""
    return Key(f"distribution:{tier}:{channel}:outbox", DISTRIBUTION_TTL_S)


def distribution_sent(signal_id: str, tier: str, channel: str, target: str) -> Key:
    """One delivery's idempotency state (SET NX EX before the network call): sending, sent or uncertain."""
    return Key(f"distribution:sent:{signal_id}:{tier}:{channel}:{target}", DISTRIBUTION_TTL_S)


def distribution_bucket(limit: str) -> Key:
    """Hash: one rate limit's token bucket (tokens, at: qc time), shared by every `qc distribute` process."""
    return Key(f"distribution:bucket:{limit}", DISTRIBUTION_TTL_S)


def distribution_latency(tier: str, channel: str) -> Key:
    """List of the latest delivery latencies (sent − due, seconds of qc time), newest first and capped."""
    return Key(f"distribution:{tier}:{channel}:latency", DISTRIBUTION_TTL_S)


def distribution_dead() -> Key:
    """Stream of dead letters: the queue member, tier, channel, reason (expired, permanent, exhausted,
    uncertain), detail."""
    return Key("distribution:dead", DISTRIBUTION_TTL_S)


def distribution_disabled() -> Key:
    """Set of ``{channel}:{target}`` that get nothing more (a webhook answered 410, a bot was blocked, X asked
    for payment). Never expires: only an operator re-enables one (``qc distribute enable``)."""
    return Key("distribution:disabled", None)


RUNBOOK_KEYS: dict[str, Key] = {
    "get heartbeat:ibkr_ingestion": heartbeat("ibkr_ingestion"),
    "hlen market:SPY:book": book("SPY"),
    "hget analytics:SPY:vpin value": vpin("SPY"),
    "hget analytics:SPY:gex total": gex("SPY"),
    "llen signals:pending:SPY": signals_pending("SPY"),
}
