"""Time gates: every cutoff from the XNYS calendar (regular days, the 13:00 early close, days off) and the
closing-auction deadlines of Arca and Nasdaq."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.core.clock import NEW_YORK
from qc.signals.gates import (
    AUCTION_CUTOFFS,
    PRIMARY_EXCHANGE,
    GateParams,
    entry_gate,
    gates_for,
    moc_deadline,
    primary_exchange,
    session_gate,
)
from qc.signals.model import Gate, StrategyName

REGULAR = (2026, 12, 3)   # a Thursday, 09:30-16:00
EARLY = (2026, 11, 27)    # the day after Thanksgiving, 09:30-13:00
P = GateParams()


def ny(day: tuple[int, int, int], hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(*day, hour, minute, second, tzinfo=NEW_YORK)


def session_of(day: tuple[int, int, int]) -> clock.Session:
    found = clock.session(date(*day))
    assert found is not None
    return found


# --- primary exchanges and auction cutoffs --------------------------------------------------------

def test_primary_exchanges() -> None:
    assert PRIMARY_EXCHANGE == {"SPY": "ARCA", "IWM": "ARCA", "QQQ": "NASDAQ"}
    assert primary_exchange("SPY") == "ARCA" and primary_exchange("iwm") == "ARCA"
    assert primary_exchange("QQQ") == "NASDAQ"
    assert primary_exchange("XYZ") == "NYSE"  # the documented default


def test_auction_cutoffs_are_ibs() -> None:
    ten = timedelta(minutes=10)
    for exchange in ("ARCA", "NYSE"):
        cut = AUCTION_CUTOFFS[exchange]
        assert (cut.moc_entry_before_close, cut.cancel_before_close, cut.loc_entry_before_close) == (ten, ten, ten)
    nasdaq = AUCTION_CUTOFFS["NASDAQ"]
    assert nasdaq.moc_entry_before_close == timedelta(minutes=5)
    assert nasdaq.cancel_before_close == ten
    assert nasdaq.loc_entry_before_close == timedelta(minutes=2)


@pytest.mark.parametrize("symbol", ["SPY", "QQQ", "IWM", "DIA"])
def test_moc_deadline_is_close_minus_12_on_every_exchange(symbol: str) -> None:
    assert moc_deadline(symbol, session_of(REGULAR), P).astimezone(NEW_YORK) == ny(REGULAR, 15, 48)
    assert moc_deadline(symbol, session_of(EARLY), P).astimezone(NEW_YORK) == ny(EARLY, 12, 48)


def test_moc_deadline_follows_the_buffer() -> None:
    assert moc_deadline("QQQ", session_of(REGULAR), GateParams(moc_buffer_min=0.0)) == ny(REGULAR, 15, 50)


@pytest.mark.parametrize("field", ["zero_dte_cutoff_min", "late_entry_cutoff_min", "open_delay_min",
                                   "moc_window_min", "moc_buffer_min"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_gate_params_refuse_nonsense(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        GateParams(**{field: value})


# --- the session gate -----------------------------------------------------------------------------

def test_session_gate_open_inside_the_session() -> None:
    gate = session_gate(ny(REGULAR, 10, 0))
    assert gate == Gate("session", True, "", ny(REGULAR, 16, 0))


@pytest.mark.parametrize(("now", "words"), [
    (datetime(2026, 12, 5, 12, 0, tzinfo=NEW_YORK), "Sat 2026-12-05 is not a trading day; next open 2026-12-07 09:30"),
    (datetime(2026, 12, 25, 11, 0, tzinfo=NEW_YORK), "Fri 2026-12-25 is not a trading day; next open 2026-12-28 09:30"),
    (ny(REGULAR, 9, 29, 59), "before the 09:30 open; next open 2026-12-03 09:30"),
    (ny(REGULAR, 16, 0), "after the 16:00 close; next open 2026-12-04 09:30"),
    (ny(EARLY, 13, 0), "after the 13:00 close; next open 2026-11-30 09:30"),
    (datetime(2026, 11, 26, 10, 0, tzinfo=NEW_YORK), "Thu 2026-11-26 is not a trading day"),  # Thanksgiving
])
def test_session_gate_closed_outside_the_session(now: datetime, words: str) -> None:
    gate = session_gate(now)
    assert not gate.open and gate.name == "session" and gate.closes_at is None
    assert gate.reason.startswith("outside the regular session (")
    assert words in gate.reason and gate.reason.endswith(" New York)")


def test_session_gate_reads_any_timezone() -> None:
    assert session_gate(ny(REGULAR, 15, 59, 59).astimezone(timezone.utc)).open
    assert not session_gate(ny(REGULAR, 16, 0).astimezone(timezone.utc)).open


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        session_gate(datetime(2026, 12, 3, 10, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="tz-aware"):
        entry_gate("0dte", "SPY", datetime(2026, 12, 3, 10, 0), P)  # noqa: DTZ001


# --- option entry gates ---------------------------------------------------------------------------

def test_0dte_cutoff_on_a_regular_day() -> None:
    before = entry_gate("0dte", "SPY", ny(REGULAR, 15, 29, 59), P)
    assert before == Gate("0dte_cutoff", True, "", ny(REGULAR, 15, 30))
    after = entry_gate("0dte", "SPY", ny(REGULAR, 15, 30, 0), P)
    assert not after.open and after.name == "0dte_cutoff" and after.closes_at == ny(REGULAR, 15, 30)
    assert after.reason == "no new 0DTE after 15:30 New York (close 16:00 − 30 min)"


def test_0dte_cutoff_on_the_early_close() -> None:
    assert entry_gate("0dte", "SPY", ny(EARLY, 12, 29, 59), P).open
    gate = entry_gate("0dte", "SPY", ny(EARLY, 12, 30), P)
    assert not gate.open and gate.reason == "no new 0DTE after 12:30 New York (close 13:00 − 30 min)"


@pytest.mark.parametrize("strategy", ["1dte", "14dte"])
@pytest.mark.parametrize("day", [REGULAR, EARLY])
def test_late_entry_cutoff(strategy: StrategyName, day: tuple[int, int, int]) -> None:
    close = session_of(day).close.astimezone(NEW_YORK)
    last = close - timedelta(minutes=5)
    assert entry_gate(strategy, "QQQ", last - timedelta(seconds=1), P) == Gate(f"{strategy}_cutoff", True, "", last)
    gate = entry_gate(strategy, "QQQ", last, P)
    assert not gate.open and gate.name == f"{strategy}_cutoff"
    assert gate.reason == (f"no new {strategy.upper()} after {last:%H:%M} New York "
                           f"(close {close:%H:%M} − 5 min)")


@pytest.mark.parametrize("strategy", ["0dte", "1dte", "14dte"])
def test_open_delay(strategy: StrategyName) -> None:
    gate = entry_gate(strategy, "SPY", ny(REGULAR, 9, 34, 59), P)
    assert not gate.open and gate.name == "open_delay"
    assert gate.reason == "no entries in the first 5 min after the 09:30 open (from 09:35 New York)"
    assert gate.closes_at is not None and gate.closes_at > ny(REGULAR, 15, 0)
    assert entry_gate(strategy, "SPY", ny(REGULAR, 9, 35), P).open


def test_params_move_the_cutoffs() -> None:
    params = GateParams(zero_dte_cutoff_min=60.0, open_delay_min=0.0)
    assert entry_gate("0dte", "SPY", ny(REGULAR, 9, 30), params).open
    assert not entry_gate("0dte", "SPY", ny(REGULAR, 15, 0), params).open
    odd = entry_gate("0dte", "SPY", ny(REGULAR, 15, 46), GateParams(zero_dte_cutoff_min=14.5))
    assert odd.reason == "no new 0DTE after 15:45:30 New York (close 16:00 − 14.5 min)"


# --- the MOC window -------------------------------------------------------------------------------

@pytest.mark.parametrize(("symbol", "exchange"), [("SPY", "ARCA"), ("QQQ", "NASDAQ"), ("IWM", "ARCA")])
def test_moc_window_on_a_regular_day(symbol: str, exchange: str) -> None:
    deadline = ny(REGULAR, 15, 48)
    assert entry_gate("moc", symbol, ny(REGULAR, 15, 47, 59), P) == Gate("moc_window", True, "", deadline)
    late = entry_gate("moc", symbol, ny(REGULAR, 15, 48, 0), P)
    assert not late.open and late.name == "moc_window" and late.closes_at == deadline
    assert late.reason == (f"MOC submit deadline 15:48 New York has passed (close 16:00 − 12 min: "
                           f"{exchange}'s earliest MOC cutoff less a 2 min buffer)")
    assert entry_gate("moc", symbol, ny(REGULAR, 15, 30), P).open
    early = entry_gate("moc", symbol, ny(REGULAR, 15, 29, 59), P)
    assert not early.open and early.reason == "MOC evaluates from 15:30 New York (close 16:00 − 30 min)"


@pytest.mark.parametrize("symbol", ["SPY", "QQQ"])
def test_moc_window_on_the_early_close(symbol: str) -> None:
    assert not entry_gate("moc", symbol, ny(EARLY, 12, 29, 59), P).open
    assert entry_gate("moc", symbol, ny(EARLY, 12, 30), P).open
    assert entry_gate("moc", symbol, ny(EARLY, 12, 47, 59), P).open
    gate = entry_gate("moc", symbol, ny(EARLY, 12, 48), P)
    assert not gate.open and gate.closes_at == ny(EARLY, 12, 48) and "12:48 New York" in gate.reason


def test_moc_ignores_the_open_delay() -> None:
    """The MOC window is at the close, far from the opening delay; a wide window still starts at its edge."""
    assert entry_gate("moc", "SPY", ny(REGULAR, 9, 31), GateParams(moc_window_min=400.0)).open


# --- days off and the gate tuple ------------------------------------------------------------------

OFF = [datetime(2026, 12, 5, 12, 0, tzinfo=NEW_YORK),   # Saturday
       datetime(2026, 12, 25, 12, 0, tzinfo=NEW_YORK),  # Christmas
       ny(REGULAR, 9, 0),                               # before the open
       ny(REGULAR, 16, 30)]                             # after the close


@pytest.mark.parametrize("now", OFF)
@pytest.mark.parametrize("strategy", ["0dte", "1dte", "14dte", "moc"])
def test_nothing_outside_a_session(now: datetime, strategy: StrategyName) -> None:
    gates = gates_for(strategy, "SPY", now, P)
    assert len(gates) == 1 and gates[0].name == "session" and not gates[0].open
    alone = entry_gate(strategy, "SPY", now, P)
    assert not alone.open and alone.reason.startswith("outside the regular session")


def test_gates_for_inside_a_session() -> None:
    gates = gates_for("0dte", "SPY", ny(REGULAR, 11, 0), P)
    assert [g.name for g in gates] == ["session", "0dte_cutoff"] and all(g.open for g in gates)
    moc = gates_for("moc", "QQQ", ny(REGULAR, 11, 0))
    assert [(g.name, g.open) for g in moc] == [("session", True), ("moc_window", False)]


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        entry_gate("7dte", "SPY", ny(REGULAR, 11, 0), P)  # type: ignore[arg-type]


# --- properties -----------------------------------------------------------------------------------

instants = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(timezone.utc))  # noqa: DTZ001


@given(now=instants, strategy=st.sampled_from(("0dte", "1dte", "14dte", "moc")),
       symbol=st.sampled_from(("SPY", "QQQ", "IWM")))
def test_an_open_entry_gate_lies_inside_the_session_and_before_its_closes_at(
        now: datetime, strategy: StrategyName, symbol: str) -> None:
    gate = entry_gate(strategy, symbol, now, P)
    today = clock.session(clock.new_york_date(now))
    if gate.open:
        assert today is not None and today.open <= now < today.close
        assert gate.closes_at is not None and now < gate.closes_at <= today.close - timedelta(minutes=5)
    else:
        assert gate.reason
    assert gates_for(strategy, symbol, now, P)[-1].open == gate.open
