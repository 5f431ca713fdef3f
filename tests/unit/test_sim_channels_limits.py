"""The simulated channels' sliding windows: whatever the send times, what is let through never exceeds
a limit, nothing is refused while there is room, and a refusal's wait is exactly when a slot frees."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.sim.channels.limits import Limit, Windows, max_in_window
from qc.sim.channels.telegram import OVERALL, chat_limit
from qc.sim.channels.xapi import USER

CHATS = ("-1001", "-1002", "@tier_free", "42", "43")
BOTS = ("bot-a", "bot-b")
# dyadic times (multiples of 1/16 s): sums and differences stay exact, so "frees at t + window" is testable
ticks = st.integers(0, 4_000).map(lambda k: k / 16)
sends = st.lists(st.tuples(ticks, st.sampled_from(BOTS), st.sampled_from(CHATS)), max_size=300)


def telegram_scopes(bot: str, chat: str) -> list[tuple[Limit, str]]:
    return [(chat_limit(chat), f"{bot}/{chat}"), (OVERALL, bot)]


def in_window(times: list[float], now: float, window_s: float) -> int:
    """The definition, by brute force: admitted times t with now - window_s < t <= now."""
    return sum(1 for t in times if now - window_s < t <= now)


@settings(max_examples=300, deadline=None)
@given(sends, st.booleans())
def test_admitted_sends_never_exceed_any_window_and_nothing_is_refused_with_room(
        raw: list[tuple[float, str, str]], in_order: bool) -> None:
    if in_order:
        raw = sorted(raw)
    windows = Windows()
    effective = list(accumulate((t for t, _, _ in raw), max))  # a time that runs back counts as the latest
    admitted: dict[tuple[Limit, str], list[float]] = defaultdict(list)
    for now, (_, bot, chat) in zip(effective, raw, strict=True):
        scopes = telegram_scopes(bot, chat)
        full = [lim.name for lim, scope in scopes if in_window(admitted[lim, scope], now, lim.window_s) >= lim.count]
        verdict = windows.admit(now, scopes)
        assert verdict.admitted == (not full)
        assert sorted(verdict.violated) == sorted(full)
        if verdict.admitted:
            for key in scopes:
                admitted[key].append(now)
    for (lim, _), times in admitted.items():
        assert all(in_window(times, t, lim.window_s) <= lim.count for t in times)
        assert max_in_window(times, lim.window_s) <= lim.count
    counts = {lim.name: lim.count for lim in (chat_limit("-1"), chat_limit("1"), OVERALL)}
    for name, per_scope in windows.max_admitted().items():
        assert all(n <= counts[name] for n in per_scope.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=200).map(sorted), st.sampled_from(CHATS))
def test_a_refusal_waits_exactly_until_a_slot_frees(times: list[float], chat: str) -> None:
    windows = Windows()
    for i, now in enumerate(times):
        verdict = windows.admit(now, telegram_scopes("bot", chat))
        if verdict.admitted:
            assert verdict.wait_s == 0.0
            continue
        assert verdict.wait_s > 0
        assert verdict.retry_after == max(1, math.ceil(verdict.wait_s))
        probe_early, probe = Windows(), Windows()  # replay what was admitted, then probe just before and at the wait
        for t in times[:i]:
            probe_early.admit(t, telegram_scopes("bot", chat))
            probe.admit(t, telegram_scopes("bot", chat))
        assert not probe_early.admit(now + verdict.wait_s - 1 / 16, telegram_scopes("bot", chat)).admitted
        assert probe.admit(now + verdict.wait_s, telegram_scopes("bot", chat)).admitted
        break


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3_600 * 4), max_size=400).map(sorted))
def test_x_headers_count_down_and_reset_when_the_oldest_frees(seconds: list[int]) -> None:
    windows = Windows()
    admitted: list[float] = []
    for s in seconds:
        now = float(s)
        verdict = windows.admit(now, [(USER, "user")])
        live = [t for t in admitted if now - USER.window_s < t <= now]
        if verdict.admitted:
            admitted.append(now)
            live.append(now)
            assert verdict.remaining == USER.count - len(live)
        else:
            assert len(live) == USER.count and verdict.remaining == 0
        assert verdict.reset_at == min(live) + USER.window_s


def test_a_burst_to_one_channel_gets_twenty_then_a_retry_after_to_the_minute() -> None:
    windows = Windows()
    verdicts = [windows.admit(1000.0 + i * 0.5, telegram_scopes("bot", "-100123")) for i in range(21)]
    assert all(v.admitted for v in verdicts[:20])
    assert not verdicts[20].admitted and verdicts[20].violated == ("group_chat",)
    assert verdicts[20].retry_after == 50  # the first frees at 1060; the 21st came at 1010
    assert windows.admit(1060.0, telegram_scopes("bot", "-100123")).admitted


def test_private_chat_one_per_second_and_thirty_per_second_per_bot() -> None:
    windows = Windows()
    assert windows.admit(0.0, telegram_scopes("bot", "42")).admitted
    second = windows.admit(0.5, telegram_scopes("bot", "42"))
    assert not second.admitted and second.violated == ("private_chat",) and second.retry_after == 1
    assert windows.admit(1.0, telegram_scopes("bot", "42")).admitted
    many = [windows.admit(2.0, telegram_scopes("bot", str(1000 + i))) for i in range(31)]
    assert sum(v.admitted for v in many) == 30 and many[30].violated == ("overall",)
    assert windows.admit(2.0, telegram_scopes("other-bot", "1000")).admitted  # limits are per bot


def test_time_running_back_cannot_dodge_a_limit() -> None:
    windows = Windows()
    assert windows.admit(100.0, telegram_scopes("bot", "42")).admitted
    assert not windows.admit(50.0, telegram_scopes("bot", "42")).admitted


@pytest.mark.parametrize(("count", "window_s"), [(0, 1.0), (1, 0.0), (1, math.inf), (1, math.nan)])
def test_a_limit_must_be_a_limit(count: int, window_s: float) -> None:
    with pytest.raises(ValueError, match="limit"):
        Limit("bad", count, window_s)
