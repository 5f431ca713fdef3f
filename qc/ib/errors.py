"""IB error and notice codes sorted into what `qc stream` does about them (ref ib-api-protocol.md §10).

Pure. A data-farm flap is not a lost socket: feeds are stale until the farm is back. 1101 means
the gateway reconnected to IB but dropped every subscription (resubscribe, keep the socket); 1102
means they survived (nothing to do). 1100, 100 (pacing violation, IB disconnects next) and 1300
(socket port reset) call for a reconnect.
"""

from __future__ import annotations

from enum import Enum


class Action(Enum):
    RECONNECT = "reconnect"
    RESUBSCRIBE = "resubscribe"
    FARM_DOWN = "farm_down"
    FARM_UP = "farm_up"
    DEPTH_RESET = "depth_reset"
    KEEP = "keep"
    NO_SECURITY = "no_security"
    LOG = "log"


FARM_BROKEN = frozenset({2103, 2105, 2157})  # market data, HMDS, sec-def farm broken
FARM_OK_FOR = {2104: 2103, 2106: 2105, 2158: 2157}  # an OK notice clears its own farm's broken notice
_ACTIONS: dict[int, Action] = {
    100: Action.RECONNECT, 1100: Action.RECONNECT, 1300: Action.RECONNECT,
    1101: Action.RESUBSCRIBE, 1102: Action.KEEP,
    317: Action.DEPTH_RESET, 200: Action.NO_SECURITY,
}


def classify(code: int) -> Action:
    """What to do about one errorEvent code."""
    if code in FARM_BROKEN:
        return Action.FARM_DOWN
    if code in FARM_OK_FOR:
        return Action.FARM_UP
    return _ACTIONS.get(code, Action.LOG)


class FarmState:
    """Which data farms said "broken" and have not said "OK" since."""

    def __init__(self) -> None:
        self.broken: set[int] = set()

    def note(self, code: int) -> bool:
        """Record a farm notice; True while every farm is fine."""
        if code in FARM_BROKEN:
            self.broken.add(code)
        elif code in FARM_OK_FOR:
            self.broken.discard(FARM_OK_FOR[code])
        return not self.broken
