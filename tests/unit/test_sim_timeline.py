"""Simulated time starts where a demo needs it and refuses times the market is shut."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from qc.core.clock import NEW_YORK
from qc.core.errors import ConfigError
from qc.sim.market.timeline import anchor, choose_start, parse_start


def ny(text: str) -> datetime:
    return parse_start(text)


def test_parse_start_is_new_york_time() -> None:
    assert ny("2026-11-24 15:40") == datetime(2026, 11, 24, 20, 40, tzinfo=timezone.utc)
    assert ny("2026-07-24 15:40") == datetime(2026, 7, 24, 19, 40, tzinfo=timezone.utc)
    with pytest.raises(ConfigError, match="--start"):
        parse_start("tomorrow")


def test_explicit_start_must_be_inside_a_session() -> None:
    assert choose_start(ny("2026-11-25 03:00"), ny("2026-11-24 15:40")) == ny("2026-11-24 15:40")
    with pytest.raises(ConfigError, match="outside a session"):
        choose_start(ny("2026-11-25 03:00"), ny("2026-11-26 10:00"))  # Thanksgiving
    with pytest.raises(ConfigError, match="09:30–13:00"):
        choose_start(ny("2026-11-25 03:00"), ny("2026-11-27 13:30"))  # early close


def test_default_start_is_now_when_open_else_0945_of_last_session() -> None:
    assert choose_start(ny("2026-11-24 11:00"), None) == ny("2026-11-24 11:00")
    assert choose_start(ny("2026-11-24 18:00"), None) == ny("2026-11-24 09:45")
    assert choose_start(ny("2026-11-26 12:00"), None) == ny("2026-11-25 09:45")
    assert choose_start(ny("2026-11-24 08:00"), None).astimezone(NEW_YORK).date().isoformat() == "2026-11-23"


def test_anchor_needs_positive_speed() -> None:
    a = anchor(1000.0, ny("2026-11-24 15:40"), 10.0)
    assert a.sim_at(1006.0) == ny("2026-11-24 15:41").timestamp()
    with pytest.raises(ConfigError, match="--speed"):
        anchor(1000.0, ny("2026-11-24 15:40"), 0)
