"""The dashboard's panel documents against a real Redis, written by the workers' own codecs and writers.

Each panel's numbers must be exactly what the writer stored (the quote, book, VPIN, positioning, chain,
a published signal with its risk verdict, intent and deliveries, positions with their stops, the latched
trading state, the monitoring keys); a missing or unreadable source becomes a ``missing`` reason naming
the key, never an exception; a value older than its panel's ``stale_after_s`` is ``stale``; and no
secret of the settings reaches any document, even when one is sitting in Redis.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest

from qc.analytics.codec import (
    GEX_NUMBERS,
    STRIKE_COLUMNS,
    FlowClusters,
    GexPending,
    GexProfile,
    GexSnapshot,
    GexStrikes,
    Imbalance,
    Regime,
    ToxSample,
    Vpin,
)
from qc.analytics.cycle.loop import append_tox_samples
from qc.core import clock, keys
from qc.core.config import Settings
from qc.core.models import DepthLevel
from qc.dashboard import panels, panels_trading
from qc.distribute.codec import DeliveryRecord, with_delivery
from qc.execute.cycle.records import Records
from qc.execute.model import Fill, Intent, LegOrder, State
from qc.ingest.codec import Book, ChainRow, OptionChain, Quote, VenueShares
from qc.risk.breakers import account_readings
from qc.risk.codec import readings_to_redis
from qc.risk.cycle import latches
from qc.risk.cycle.loop import verdict_json
from qc.risk.model import ContractKey, Position, Reason, Verdict
from qc.risk.position_codec import PositionRecord
from qc.risk.settings import breakers_from
from qc.risk.snapshot import ExposureSnapshot, PositionView, snapshot_to_redis, usage
from qc.risk.state import TradingState, escalate
from qc.runtime import fence
from qc.runtime.codec import AlphaVantageMetrics, Heartbeat, StaleFeeds, WorkerEntry, WorkerRegistry
from qc.runtime.store import Store, connect
from qc.signals.codec import Evaluation, Outcome, Signal
from qc.signals.cycle.publish import Publisher
from qc.signals.model import Contract, Contribution, Decision, Gate, Score
from qc.signals.model import Quote as OptionQuote

NOW = float(int(clock.wall_epoch()))
NOW_DT = datetime.fromtimestamp(NOW, UTC)
EXPIRY = (NOW_DT + timedelta(days=7)).date()
SPY = "SPY"


def build(store: Store, settings: Settings, now: float = NOW) -> dict[str, dict[str, Any]]:
    docs = panels.build_all(store, settings, now, wall_epoch=now)
    assert set(docs) == {"symbol:SPY", "symbol:QQQ", "symbol:IWM", "signals", "trading", "risk", "health"}
    orjson.dumps(docs)  # JSON-able as the hub sends them
    return docs


# --- market data and analytics ----------------------------------------------------------------------


def put_market(store: Store, quote_as_of: float = NOW - 1) -> None:
    """The quote, book and venue shares as `qc stream` writes them (its codecs' encoders)."""
    store.hset(keys.quote(SPY), Quote(as_of=quote_as_of, bid=500.0, ask=500.1, bid_size=300, ask_size=100,
                                      last=500.05, volume=1_234_567).to_redis())
    book = Book(bids=(DepthLevel(500.0, 300, "NSDQ"), DepthLevel(499.99, 200, "ARCA")),
                asks=(DepthLevel(500.1, 100, "MEMX"), DepthLevel(500.11, 900, "NYSE"), DepthLevel(500.12, 50, "IEX")))
    store.hset(keys.book(SPY), book.to_redis())
    store.hset(keys.venue_shares(SPY), VenueShares({"NSDQ": 0.6, "ARCA": 0.4}, {"MEMX": 0.1, "NYSE": 0.85, "IEX": 0.05},
                                                   0.52, 0.735).to_redis())


def put_toxicity(store: Store, at: datetime, vpin: float = 0.42, imbalance: float = 0.25) -> None:
    """VPIN and book imbalance as `qc analytics` writes them every second."""
    store.hset(keys.vpin(SPY), Vpin(vpin, 1000.0, 50, "true_sign", "", "redis", at, 0.5, "").to_redis())
    store.hset(keys.book_imbalance(SPY), Imbalance(imbalance, 500.04, 0.1, 5, at, 0.2, "").to_redis())
    append_tox_samples(store, {SPY: ToxSample(at.timestamp(), vpin, imbalance)})


def gex_snapshot(as_of: datetime) -> GexSnapshot:
    numbers: dict[str, float | None] = dict.fromkeys(GEX_NUMBERS)
    numbers |= {"total": -1.5e9, "dex_usd": 2.5e10, "zero_gamma": 503.25, "zero_gamma_distance_pct": 0.64,
                "call_wall": 510.0, "put_wall": 490.0, "call_oi_wall": 515.0, "put_oi_wall": 485.0,
                "share_0_1dte_abs_gex": 0.4, "skew_25d": 0.031, "skew_25d_normalised": 1.2, "skew_moneyness": 0.02}
    labels = {"zero_gamma_reason": "", "skew_reason": "", "regime": "trend", "gamma_regime": "negative",
              "convention": "dealer_short_calls_long_puts", "gamma_source": "model"}
    return GexSnapshot(numbers, labels, 500.05, "quote", 0.5, "", (EXPIRY,), 120, as_of, as_of - timedelta(seconds=90),
                       90.0, "")


def put_positioning(store: Store, as_of: datetime) -> None:
    """What ``positioning_task.write`` stores: the gex hash, the strikes and profile documents, the regime."""
    store.hset(keys.gex(SPY), gex_snapshot(as_of).to_redis())
    columns: dict[str, tuple[float | None, ...]] = dict.fromkeys(STRIKE_COLUMNS, (1.0e8, -2.0e8, 3.0e8))
    columns["gex_usd_per_1pct"] = (-4.0e8, None, 6.0e8)
    store.set(keys.gex_by_strike(SPY), GexStrikes((490.0, 500.0, 510.0), columns).to_redis())
    store.set(keys.gex_profile(SPY), GexProfile((480.0, 500.0, 520.0), (-1.0e9, -2.0e8, 1.0e9), 500.05, 503.25,
                                                (503.25,)).to_redis())
    store.hset(keys.regime(SPY), Regime(0.15, 0.18, 0.2, 0.03, 1.1, 62.0, 30, 300, as_of, "negative", "normal",
                                        "trend").to_redis())
    store.set(keys.flow_clusters(SPY), FlowClusters(as_of, 40, 5000, 1.0, "momentum", None,
                                                    {"momentum": 22, "mean_reversion": 18}, None).to_redis())


def chain(as_of: datetime, rows: int = 2) -> OptionChain:
    def row(strike: float, right: Any) -> ChainRow:
        return ChainRow(EXPIRY, right, strike, 1.0, 1.1, 1.05, 100, 1000, 0.02, 0.2, "mark", False,
                        0.5, 0.01, 0.1, -0.05, 0.01, 0.001, 0.002)

    made = tuple(row(500.0 + i, "C" if i % 2 else "P") for i in range(rows))
    return OptionChain(SPY, as_of, 500.0, 0.05, 0.01, (EXPIRY,), made, source="alpha_vantage")


def put_chain(store: Store, c: OptionChain, stamp: float) -> None:
    """`qc chains`: the chain, then its stamp in the Alpha Vantage metrics."""
    store.set(keys.option_chain(SPY), c.to_redis())
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.chain_refreshed(SPY, stamp, len(c.rows), 0, {}))


def test_symbol_panel_shows_what_the_writers_stored(store: Store, settings: Settings) -> None:
    put_market(store)
    put_toxicity(store, NOW_DT)
    put_positioning(store, NOW_DT - timedelta(seconds=10))
    put_chain(store, chain(NOW_DT - timedelta(seconds=200), rows=4), NOW - 200)

    doc = build(store, settings)["symbol:SPY"]
    assert doc["stale"] is False and doc["age_s"] == 1.0 and doc["stale_after_s"] == 15.0 and "missing" not in doc
    q = doc["quote"]
    assert (q["bid"], q["ask"], q["last"], q["mid"], q["volume"]) == (500.0, 500.1, 500.05, 500.05, 1_234_567)
    book = doc["book"]
    assert book["levels"] == 5 and book["crossed"] is False
    assert book["bids"] == [{"price": 500.0, "size": 300, "venue": "NSDQ"},
                            {"price": 499.99, "size": 200, "venue": "ARCA"}]
    assert [(a["price"], a["venue"]) for a in book["asks"]] == [(500.1, "MEMX"), (500.11, "NYSE"), (500.12, "IEX")]
    assert book["venues"]["ask"]["NYSE"] == 0.85 and book["venues"]["bid_herfindahl"] == 0.52
    assert (doc["vpin"]["value"], doc["vpin"]["buckets"], doc["vpin"]["stale"]) == (0.42, 50, False)
    assert (doc["imbalance"]["value"], doc["imbalance"]["microprice"]) == (0.25, 500.04)

    gex = doc["gex"]
    assert gex["age_s"] == 10.0 and gex["stale"] is False
    assert (gex["net_gex"], gex["zero_gamma"], gex["call_wall"], gex["put_wall"]) == (-1.5e9, 503.25, 510.0, 490.0)
    assert (gex["spot"], gex["gamma_regime"], gex["regime"], gex["dex_usd"]) == (500.05, "negative", "trend", 2.5e10)
    assert gex["expiries"] == [EXPIRY.isoformat()] and gex["contracts_used"] == 120
    assert doc["skew"]["skew_25d"] == 0.031 and doc["skew"]["skew_moneyness"] == 0.02
    assert doc["by_strike"] == {"strike": [490.0, 500.0, 510.0], "net": [-4.0e8, None, 6.0e8],
                                "call": [1.0e8, -2.0e8, 3.0e8], "put": [-1.0e8, 2.0e8, -3.0e8]}
    assert doc["profile"]["levels"] == [480.0, 500.0, 520.0] and doc["profile"]["gex"] == [-1.0e9, -2.0e8, 1.0e9]
    assert doc["profile"]["zero_gamma"] == 503.25 and doc["profile"]["crossings"] == [503.25]
    regime = doc["regime"]
    assert (regime["label"], regime["vol_band"], regime["rv_percentile"]) == ("trend", "normal", 62.0)
    assert doc["flow"]["label"] == "momentum" and doc["flow"]["counts"] == {"momentum": 22, "mean_reversion": 18}
    assert (doc["chain"]["age_s"], doc["chain"]["rows"], doc["chain"]["stale"]) == (200.0, 4, False)
    assert doc["series"]["t"] == [NOW] and doc["series"]["vpin"] == [0.42] and doc["series"]["imbalance"] == [0.25]
    assert build(store, settings)["symbol:QQQ"]["missing"].startswith("no data for QQQ")


def test_the_session_series_grows_with_each_new_value(store: Store, settings: Settings) -> None:
    put_market(store)
    for i, (v, m) in enumerate(((0.3, -0.1), (0.35, 0.2), (0.5, 0.4))):
        put_toxicity(store, NOW_DT + timedelta(seconds=i), v, m)
        doc = build(store, settings, NOW + i)["symbol:SPY"]
    build(store, settings, NOW + 3)  # nothing new: no new point
    assert doc["series"]["t"] == [NOW, NOW + 1, NOW + 2]
    assert doc["series"]["vpin"] == [0.3, 0.35, 0.5] and doc["series"]["imbalance"] == [-0.1, 0.2, 0.4]


def test_a_dashboard_started_mid_session_shows_the_session_from_its_start(store: Store, settings: Settings) -> None:
    put_market(store)
    for i in range(5):
        put_toxicity(store, NOW_DT + timedelta(seconds=i), 0.1 * (i + 1), -0.1 * i)
    append_tox_samples(store, {SPY: ToxSample(NOW + 5, None, None)})  # nothing computed: no entry, a gap
    fresh = connect(settings)  # another process: no memory of this one's polls
    try:
        series = build(fresh, settings, NOW + 5)["symbol:SPY"]["series"]
    finally:
        fresh.close()
    assert series["t"] == [NOW + i for i in range(5)]
    assert series["vpin"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert series["imbalance"] == pytest.approx([0.0, -0.1, -0.2, -0.3, -0.4])


def test_the_chain_is_decoded_again_only_when_its_stamp_moves(store: Store, settings: Settings) -> None:
    put_chain(store, chain(NOW_DT - timedelta(seconds=100)), NOW - 100)
    assert build(store, settings)["symbol:SPY"]["chain"]["age_s"] == 100.0
    store.set(keys.option_chain(SPY), chain(NOW_DT - timedelta(seconds=5)).to_redis())  # no new stamp yet
    assert build(store, settings)["symbol:SPY"]["chain"]["age_s"] == 100.0
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.chain_refreshed(SPY, NOW - 5, 2, 0, {}))
    assert build(store, settings)["symbol:SPY"]["chain"]["age_s"] == 5.0


def test_old_values_are_stale_never_fresh(store: Store, settings: Settings) -> None:
    put_market(store, quote_as_of=NOW - 60)
    put_toxicity(store, NOW_DT - timedelta(seconds=45))
    put_positioning(store, NOW_DT - timedelta(seconds=500))
    put_chain(store, chain(NOW_DT - timedelta(seconds=700)), NOW - 700)
    doc = build(store, settings)["symbol:SPY"]
    assert (doc["stale"], doc["age_s"]) == (True, 60.0)
    assert (doc["book"]["stale"], doc["vpin"]["stale"], doc["imbalance"]["stale"]) == (True, True, True)
    assert doc["gex"]["stale"] is True and "500 s old" in doc["gex"]["stale_reason"]
    assert doc["gex"]["net_gex"] == -1.5e9  # the last good figures stay, marked
    assert (doc["chain"]["stale"], doc["chain"]["age_s"]) == (True, 700.0)
    assert doc["regime"]["stale"] is True and doc["flow"]["stale"] is True


def test_a_stale_flag_written_by_analytics_is_carried(store: Store, settings: Settings) -> None:
    put_market(store)
    store.hset(keys.vpin(SPY), Vpin(0.4, 1000.0, 50, "true_sign", "", "redis", NOW_DT, 130.0,
                                    "no trades for 130 s").to_redis())
    store.hset(keys.gex(SPY), GexPending(NOW_DT, "no option chain in Redis: is `qc chains` running?").to_redis())
    doc = build(store, settings)["symbol:SPY"]
    assert doc["vpin"]["stale"] is True and doc["vpin"]["stale_reason"] == "no trades for 130 s"
    assert doc["vpin"]["value"] == 0.4
    assert doc["gex"]["missing"] == "no positioning yet: no option chain in Redis: is `qc chains` running?"
    assert doc["by_strike"] is None and doc["profile"] is None


def test_missing_and_unreadable_sources_give_reasons_not_exceptions(store: Store, settings: Settings) -> None:
    docs = build(store, settings)
    for panel, doc in docs.items():
        assert set(doc) >= {"as_of", "age_s", "stale", "stale_after_s"}, panel
    spy = docs["symbol:SPY"]
    assert spy["stale"] is True and spy["as_of"] is None and spy["age_s"] is None
    assert spy["gex"]["missing"] == "analytics:SPY:gex: missing: start `qc chains` and `qc analytics` (or `qc up`)"
    assert spy["quote"]["missing"].startswith("market:SPY:quote: missing: ")
    assert docs["signals"]["missing"].startswith("no evaluation yet") and docs["signals"]["recent"] == []
    assert docs["trading"]["stale"] is True and "qc risk" in docs["trading"]["stale_reason"]
    assert docs["trading"]["unrealised_usd"] == 0.0 and docs["trading"]["positions"] == []
    assert docs["risk"]["pnl_today_usd"] is None and docs["risk"]["trading_state"] == "ACTIVE"
    assert docs["health"]["state"] == "unhealthy" and docs["health"]["alpha_vantage"]["tokens_left"] is None

    store.client.hset(keys.vpin(SPY).name, mapping={"v": "1", "value": "not a number"})
    store.client.set(keys.gex_by_strike(SPY).name, "{broken")
    store.client.set(keys.risk_exposure("default").name, "[]")
    docs = build(store, settings)
    assert docs["symbol:SPY"]["vpin"]["missing"].startswith("analytics:SPY:vpin: malformed: ")
    assert docs["risk"]["stale"] is True and "malformed" in docs["risk"]["stale_reason"]


def test_one_failing_panel_does_not_cost_the_others(store: Store, settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> dict[str, Any]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(panels_trading, "build", broken)
    put_market(store)
    docs = build(store, settings)
    assert docs["trading"]["missing"] == "panel failed: ZeroDivisionError: a bug" and docs["trading"]["stale"] is True
    assert docs["symbol:SPY"]["quote"]["bid"] == 500.0


# --- signals ------------------------------------------------------------------------------------------


def a_signal(signal_id: str, created: datetime, lineage: dict[str, Any], notes: tuple[str, ...] = ()) -> Signal:
    return Signal(
        id=signal_id, created_at=created, strategy="14dte",
        contract=Contract(SPY, "OPT", EXPIRY, 505.0, "C", 100, "SMART", "ARCA"), side="BUY", direction=1,
        order_type="LMT", limit=2.0, take_profit=3.0, stop=1.5, time_stop=created + timedelta(hours=1), score=0.61,
        threshold=0.3, mode="momentum", size_multiplier=1.0, quote=OptionQuote(1.98, 2.02, 2.0, 0.45, 900, 300, 5.0),
        contributions=(Contribution("order_flow", 0.8, 0.4, 0.32, 1.5, ""),
                       Contribution("news", None, 0.0, 0.0, None, "no article in 2 h")),
        factor_inputs={"order_flow": {"buy_share": 0.9}}, gates=(Gate("entry_window", True, ""),),
        fingerprint=f"fp-{signal_id}", notes=notes, lineage=lineage)


def signal_id(at: datetime, tail: str) -> str:
    return f"{int(at.timestamp() * 1000):013d}{tail}"


def test_signals_panel_lineage_and_explain(store: Store, settings: Settings) -> None:
    older = signal_id(NOW_DT - timedelta(minutes=5), "0000aaaa")
    newer = signal_id(NOW_DT - timedelta(minutes=1), "0000bbbb")
    delivery = DeliveryRecord(newer, "premium", "telegram", "desk", "sent", 1, NOW - 50, NOW - 50, NOW - 49)
    publisher = Publisher(store, pending_cap=100)
    assert publisher.claim(a_signal(older, NOW_DT - timedelta(minutes=5), {"source": "qc signals"}), 300, 0).result \
        == "emitted"
    assert publisher.claim(a_signal(newer, NOW_DT - timedelta(minutes=1),
                                    with_delivery({"source": "qc signals"}, delivery)), 300, 0).result == "emitted"
    # risk judged both (as its worker writes a verdict), rejected the older; the older one ended at its stop
    rejected = Verdict(False, (Reason("max_qty_per_order", {"qty": 30, "limit": 20}),))
    for sid, verdict in ((older, rejected), (newer, Verdict(True))):
        signal = Signal.from_redis(store.client.get(keys.signal_record(sid).name), key="signal")
        assert isinstance(signal, Signal)
        key = keys.risk_verdict(sid)
        store.client.set(key.name, verdict_json(signal, verdict, NOW_DT), ex=key.ttl_s)
    store.client.hset(keys.signal_outcomes().name, older, Outcome(older, SPY, "14dte", "stop", 2.0, 1.5, -0.25, 240.0,
                                                                  NOW_DT - timedelta(minutes=1)).to_redis())
    token = fence.claim(store, "default", pid=os.getpid(), host="test", client_id=7, now_epoch=NOW)
    rec = Records(store, "default", token)
    intent = Intent(newer, "default", SPY, "14dte", "14dte", ContractKey(SPY, "OPT", EXPIRY, 505.0, "C"), "BUY", 2,
                    2.0, 3.0, 1.5, 0.0, NOW_DT + timedelta(hours=1), None, NOW_DT - timedelta(minutes=1))
    rec.create(intent)
    rec.save(replace(intent, state=State.WORKING, orders=(LegOrder("entry", 0, 11, "BUY", 2, "LMT", 2.0,
                                                                   status="Submitted", perm_id=901),)))
    decision = Decision("14dte", SPY, 1, Score(0.61, "momentum", 1.0, ()), ())
    evaluation = Evaluation(decision, NOW_DT - timedelta(seconds=4), {}, f"emitted {newer}", newer)
    store.client.hset(keys.signals_last(SPY).name, "14dte", evaluation.to_redis())  # as the worker's write does

    doc = build(store, settings)["signals"]
    assert (doc["stale"], doc["age_s"]) == (False, 4.0)
    assert [(e["symbol"], e["strategy"], e["score"], e["signal_id"], e["age_s"]) for e in doc["last"]] == [
        (SPY, "14dte", 0.61, newer, 4.0)]
    rows = {r["id"]: r for r in doc["recent"]}
    assert [r["id"] for r in doc["recent"]] == [newer, older]
    new, old = rows[newer], rows[older]
    assert (new["score"], new["contract"], new["strategy"], new["limit"]) == (
        0.61, f"SPY {EXPIRY} 505C x100", "14dte", 2.0)
    assert new["status"] == "working" and new["lineage"]["risk"] == "approved"
    assert new["lineage"]["deliveries"] == {"sent": 1}
    assert old["status"] == "stop" and old["lineage"]["risk"] == "rejected"
    assert old["lineage"]["risk_reasons"] == [str(rejected.reasons[0])] and old["lineage"]["return_pct"] == -0.25
    assert [(line["strategy"], line["symbol"], line["count"], line["decided"]) for line in doc["scorecard"]["lines"]] \
        == [("14dte", SPY, 2, 1)]

    detail = panels.explain(store, newer, settings)
    assert detail["id"] == newer and detail["signal"]["score"] == 0.61 and detail["verdict"]["approved"] is True
    assert [f["name"] for f in detail["signal"]["factors"]] == ["order_flow", "news"]
    assert detail["intent"]["state"] == "working" and detail["intent"]["orders"][0]["perm_id"] == 901
    assert detail["deliveries"][0]["outcome"] == "sent" and detail["lineage"]["status"] == "working"
    assert panels.explain(store, "nonsense", settings)["missing"].startswith("'nonsense' is not a signal id")
    gone = signal_id(NOW_DT, "deadbeef")
    assert panels.explain(store, gone, settings)["missing"] == f"no signal {gone}: missing"


# --- trading and risk -----------------------------------------------------------------------------------


CALL = ContractKey(SPY, "OPT", EXPIRY, 500.0, "C")
PUT = ContractKey("QQQ", "OPT", EXPIRY, 400.0, "P")


def test_trading_panel_positions_stops_orders_fills(store: Store, settings: Settings) -> None:
    token = fence.claim(store, "default", pid=os.getpid(), host="test", client_id=7, now_epoch=NOW)
    rec = Records(store, "default", token)
    held_id = signal_id(NOW_DT - timedelta(minutes=30), "0000cafe")
    held = Intent(held_id, "default", SPY, "14dte", "14dte", CALL, "BUY", 2, 2.0, 3.0, 1.5, 0.0,
                  NOW_DT + timedelta(hours=1), None, NOW_DT - timedelta(minutes=30), con_id=1001)
    rec.create(held)
    rec.save(replace(held, state=State.PROTECTED, filled_qty=2, entry_avg=2.0, orders=(
        LegOrder("entry", 0, 11, "BUY", 2, "LMT", 2.0, status="Filled", filled=2, avg_price=2.0, perm_id=501),
        LegOrder("tp", 0, 12, "SELL", 2, "LMT", 3.0, status="Submitted", perm_id=502),
        LegOrder("stop", 0, 13, "SELL", 2, "STP", None, 1.5, status="Submitted", perm_id=503))))
    rec.save_position(PositionRecord(1001, Position(CALL, 2, 2.0, "14dte"), 12.5, NOW_DT - timedelta(minutes=29)))
    rec.save_position(PositionRecord(2002, Position(PUT, -1, 4.0, "14dte"), 0.0, NOW_DT - timedelta(hours=2)))
    rec.save_position(PositionRecord(3003, Position(PUT, 0, 0.0, "14dte"), -30.0, NOW_DT - timedelta(hours=3)))
    fill = Fill("e1", "default", SPY, 1001, "BUY", 2, 2.0, NOW_DT - timedelta(minutes=29),
                order_ref=f"qc:{held_id}:entry:0", perm_id=501, intent_id=held_id, leg="entry", commission_usd=1.3)
    assert rec.add_fill(fill)
    views = (PositionView(CALL.describe(), 1001, SPY, "14dte", 2, 2.0, 2.4, 80.0, None),
             PositionView(PUT.describe(), 2002, "QQQ", "14dte", -1, 4.0, 3.5, 50.0, None))
    snap = ExposureSnapshot(NOW_DT - timedelta(seconds=3), views, -17.5, 130.0, 200.0, {}, {}, {}, (), (), (), {})
    store.set(keys.risk_exposure("default"), snapshot_to_redis(snap))

    doc = build(store, settings)["trading"]
    assert (doc["stale"], doc["age_s"], doc["account"]) == (False, 3.0, "default")
    by_con = {p["con_id"]: p for p in doc["positions"]}
    assert set(by_con) == {1001, 2002}  # the flat one is not shown, but its realised P&L counts
    call, put = by_con[1001], by_con[2002]
    assert (call["qty"], call["avg_cost"], call["mark"], call["unrealised_usd"]) == (2, 2.0, 2.4, 80.0)
    assert call["stop"] == 1.5 and call["protected_qty"] == 2 and call["unprotected"] is False
    assert call["stops"][0]["order_ref"] == f"qc:{held_id}:stop:0"
    assert put["stop"] is None and put["unprotected"] is True and doc["unprotected"] == 1
    assert doc["unrealised_usd"] == 130.0 and doc["realised_today_usd"] == -17.5
    assert {o["order_ref"] for o in doc["orders"]} == {f"qc:{held_id}:tp:0", f"qc:{held_id}:stop:0"}
    assert [(f["exec_id"], f["price"], f["quantity"]) for f in doc["fills"]] == [("e1", 2.0, 2)]


def test_risk_panel_state_usage_breakers(store: Store, settings: Settings) -> None:
    latches.update(store, "default", "account", lambda latch: escalate(
        latch, TradingState.HALTED, "operator", "operator:alice", "fat finger", NOW_DT), NOW_DT)
    rows = (usage("daily_loss_limit_usd", "account", 1000.0, 5000.0), usage("max_position_per_underlying", SPY, 10.0,
                                                                          float("inf")),
            usage("max_qty_per_order", SPY, 3.0, 0.0))
    snap = ExposureSnapshot(NOW_DT - timedelta(seconds=2), (), -1000.0, 0.0, 0.0, {}, {}, {}, (), (), rows, {})
    store.set(keys.risk_exposure("default"), snapshot_to_redis(snap))
    readings = account_readings(-1000.0, 1000.0, 0, True, breakers_from(settings))
    store.set(keys.risk_breaker_readings("default"), readings_to_redis(readings))

    doc = build(store, settings)["risk"]
    assert doc["trading_state"] == "HALTED" and doc["stale"] is False and doc["age_s"] == 2.0
    account = next(s for s in doc["states"] if s["scope"] == "account")
    assert (account["by"], account["reason"]) == ("operator:alice", "fat finger")
    assert (doc["pnl_today_usd"], doc["drawdown_usd"], doc["pnl_high_water_usd"]) == (-1000.0, 1000.0, 0.0)
    by_name = {u["name"]: u for u in doc["usage"]}
    assert by_name["daily_loss_limit_usd"]["pct"] == 20.0 and by_name["daily_loss_limit_usd"]["limit"] == 5000.0
    off = by_name["max_position_per_underlying"]
    assert (off["limit"], off["off"], off["pct"]) == (None, True, 0.0)
    zero = by_name["max_qty_per_order"]
    assert (zero["pct"], zero["breached"]) == (None, True) and doc["usage"][0]["name"] == "max_qty_per_order"
    assert [(b["scope"], b["breaker"]) for b in doc["breakers"]][:2] == [
        ("account", "daily_loss"), ("account", "drawdown")]
    assert doc["transitions"][0]["to"] == "HALTED"
    assert {"name": "daily_loss_limit_usd", "value": 5000.0, "off": False, "source": "default"} in doc["limits"]

    old = replace(snap, as_of=NOW_DT - timedelta(seconds=90))
    store.set(keys.risk_exposure("default"), snapshot_to_redis(old))
    doc = build(store, settings)["risk"]
    assert (doc["stale"], doc["age_s"], doc["trading_state"]) == (True, 90.0, "HALTED")


# --- health ---------------------------------------------------------------------------------------------


def test_health_panel_checks_feeds_budget(store: Store, settings: Settings) -> None:
    entry = WorkerEntry(pid=os.getpid(), host="test", started=NOW - 60, cycles=3)
    store.hset(keys.worker_registry(), WorkerRegistry({"analytics": entry, "signals": entry}).to_redis())
    store.set(keys.heartbeat("analytics"), Heartbeat(NOW - 2).to_redis())
    store.set(keys.heartbeat("signals"), Heartbeat(NOW - 95).to_redis())
    store.hset(keys.data_stale(), StaleFeeds({"SPY:depth": NOW - 42}).to_redis())
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(31))
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.response("ok"))

    doc = build(store, settings)["health"]
    checks = {c["check"]: c for c in doc["checks"]}
    assert checks["heartbeat:analytics"]["ok"] is True and checks["heartbeat:analytics"]["value"] == 2.0
    assert checks["heartbeat:signals"]["ok"] is False and doc["state"] == "unhealthy"
    assert doc["stale_feeds"] == {"SPY:depth": 42.0} and checks["stale feeds"]["ok"] is False
    av = doc["alpha_vantage"]
    assert (av["tokens_left"], av["requests"], av["responses"], av["rpm"]) == (31, 1, {"ok": 1}, 75)
    assert doc["stale"] is False and doc["distribution"]["channels"] == []
    assert doc["executor"]["open_intents"] == 0


# --- secrets ---------------------------------------------------------------------------------------------


def test_no_secret_reaches_a_document(store: Store, settings: Settings) -> None:
    secret = "s3cr3t-" + "x" * 20  # test values, never real credentials
    operator = "op-" + "y" * 20
    settings = replace(settings, alpha_vantage_api_key=secret, operator_token=operator,
                       dashboard_token="d" * 24, telegram_bot_token="123:" + "z" * 30)
    put_market(store)
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.chain_kept(
        SPY, 30.0, f"HTTP 500 from https://www.alphavantage.co/query?apikey={secret}"))
    sid = signal_id(NOW_DT - timedelta(minutes=2), "00000001")
    Publisher(store, 100).claim(a_signal(sid, NOW_DT - timedelta(minutes=2), {"source": "qc signals"},
                                         notes=(f"operator typed {operator} here",)), 300, 0)

    docs = build(store, settings)
    text = orjson.dumps(docs).decode()
    for value in settings.secrets():
        assert value not in text
    assert "apikey=***" in docs["symbol:SPY"]["chain"]["last_error"]
    detail = orjson.dumps(panels.explain(store, sid, settings)).decode()
    assert operator not in detail and "operator typed *** here" in detail


def test_settings_change_the_account_and_symbols(store: Store, settings: Settings) -> None:
    settings = replace(settings, symbols=("TSLA",), ib_account="U123")
    docs = panels.build_all(store, settings, NOW, wall_epoch=NOW)
    assert set(docs) == {"symbol:TSLA", "signals", "trading", "risk", "health"}
    assert docs["trading"]["account"] == "U123" and docs["risk"]["account"] == "U123"
    assert panels.panel_ids(settings) == list(docs)
    assert date.fromisoformat(docs["signals"]["scorecard"]["since"][:10]) == clock.new_york_date(NOW_DT)
