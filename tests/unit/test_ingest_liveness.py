"""Staleness in market time during the session; IB error codes sorted into actions."""

from __future__ import annotations

from qc.ib.errors import Action, FarmState, classify
from qc.ingest.staleness import Freshness

SYMS = ("SPY",)


def test_feeds_go_stale_past_their_market_time_threshold_and_the_real_floor() -> None:
    f = Freshness()
    f.reset_baseline(mono=0.0, market=1000.0)
    for feed in ("depth", "quotes", "trades", "bars"):
        f.saw("SPY", feed, mono=0.0, market=1000.0)
    # 10x simulation: 0.6 real s = 6 market s: depth and quotes (5 s) are past, trades (30 s) not, floor not
    assert f.stale(SYMS, mono=0.6, market=1006.0, feeds_up=True, in_session=True) == {}
    stale = f.stale(SYMS, mono=1.6, market=1016.0, feeds_up=True, in_session=True)
    assert set(stale) == {("SPY", "depth"), ("SPY", "quotes"), ("SPY", "bars")}
    assert stale[("SPY", "depth")] == 0.0


def test_no_age_staleness_outside_the_session_but_a_lost_socket_is_always_stale() -> None:
    f = Freshness()
    f.reset_baseline(mono=0.0, market=0.0)
    assert f.stale(SYMS, mono=100.0, market=1000.0, feeds_up=True, in_session=False) == {}
    assert len(f.stale(SYMS, mono=100.0, market=1000.0, feeds_up=False, in_session=False)) == 4


def test_silence_is_judged_from_a_reconnect_not_from_before_it() -> None:
    f = Freshness()
    f.saw("SPY", "depth", mono=0.0, market=0.0)
    f.reset_baseline(mono=50.0, market=500.0)
    assert ("SPY", "depth") not in f.stale(SYMS, mono=51.0, market=502.0, feeds_up=True, in_session=True)


def test_error_codes_follow_the_reconnect_pattern() -> None:
    assert classify(1100) is Action.RECONNECT
    assert classify(1101) is Action.RESUBSCRIBE
    assert classify(1102) is Action.KEEP
    assert classify(2103) is Action.FARM_DOWN
    assert classify(2104) is Action.FARM_UP
    assert classify(317) is Action.DEPTH_RESET
    assert classify(200) is Action.NO_SECURITY
    assert classify(2152) is Action.LOG


def test_a_farm_is_down_until_its_own_ok_notice() -> None:
    farms = FarmState()
    assert farms.note(2103) is False
    assert farms.note(2105) is False
    assert farms.note(2104) is False  # HMDS still broken
    assert farms.note(2106) is True
