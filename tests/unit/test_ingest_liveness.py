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


def test_a_reconnect_does_not_reset_the_staleness_of_a_feed_that_delivered_before() -> None:
    f = Freshness()
    f.saw("SPY", "depth", mono=0.0, market=0.0)
    f.reset_baseline(mono=50.0, market=500.0)
    stale = f.stale(SYMS, mono=51.0, market=502.0, feeds_up=True, in_session=True)
    assert stale[("SPY", "depth")] == 0.0  # still red, aged from its last data
    assert f.settling("depth", mono=51.0, market=502.0)  # but too early to resubscribe
    assert not f.settling("depth", mono=57.0, market=507.0)


def test_the_snapshot_answering_a_resubscription_is_not_proof_of_life() -> None:
    f = Freshness()
    f.saw("SPY", "depth", mono=0.0, market=0.0)
    for n in range(1, 12):  # a dead feed: every resubscription answered by its snapshot, then nothing
        at = 10.0 * n
        f.subscribed("SPY", "depth", mono=at, market=at)
        f.saw("SPY", "depth", mono=at + 0.2, market=at + 0.2)
        assert f.stale(SYMS, mono=at + 1.5, market=at + 1.5, feeds_up=True, in_session=True)[("SPY", "depth")] == 0.0
    f.saw("SPY", "depth", mono=112.0, market=112.0)  # live updates after the snapshot: alive again
    assert ("SPY", "depth") not in f.stale(SYMS, mono=113.5, market=113.5, feeds_up=True, in_session=True)


def test_late_first_data_after_a_subscription_counts_and_a_silent_new_feed_ages_from_its_request() -> None:
    f = Freshness()
    f.subscribed("SPY", "bars", mono=0.0, market=0.0)
    assert ("SPY", "bars") in f.stale(SYMS, mono=20.0, market=20.0, feeds_up=True, in_session=True)
    f.saw("SPY", "bars", mono=5.0, market=5.0)  # a bar 5 s after the request is live data, not a snapshot
    assert f.last[("SPY", "bars")].mono == 5.0


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


def test_resubscribing_a_feed_that_never_spoke_does_not_make_it_younger() -> None:
    f = Freshness()
    f.subscribed("SPY", "depth", mono=0.0, market=0.0)
    f.saw("SPY", "depth", mono=0.1, market=0.1, replay=True)  # the snapshot
    for at in (6.0, 12.0, 18.0):
        f.subscribed("SPY", "depth", mono=at, market=at)
        f.saw("SPY", "depth", mono=at + 3.0, market=at + 3.0, replay=True)  # a late snapshot: still no proof
    assert f.stale(SYMS, mono=22.0, market=22.0, feeds_up=True, in_session=True)[("SPY", "depth")] == 0.0
