"""VPIN and book imbalance over the session, thinned to a size a page can take five times a second.

`qc analytics` appends both figures every second to ``analytics:{sym}:tox:series`` (a session is ~23,400
entries); the dashboard reads the new entries each poll into a bounded series per symbol: dense for the
recent past, thinned for the older part (when full, every other point of the whole series is dropped and
the spacing doubles), so a whole session stays under :data:`MAX_POINTS` and the document the page
receives stays small. A new New York session date starts a new series.

Pure: time and values passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_POINTS = 720  # with values rounded for charting, about 20 kB of the symbol document
BASE_STEP_S = 1.0  # `qc analytics` writes both values every second


@dataclass
class SessionSeries:
    """Aligned columns ``t`` (epoch s, ascending), ``vpin`` and ``imbalance`` (None: no value then)."""

    day: str = ""
    step_s: float = BASE_STEP_S
    t: list[float] = field(default_factory=list)
    vpin: list[float | None] = field(default_factory=list)
    imbalance: list[float | None] = field(default_factory=list)

    def add(self, t: float, day: str, vpin: float | None, imbalance: float | None) -> bool:
        """Record a sample at ``t`` of session ``day``; False when it is not newer than the last one.

        The newest point is provisional until it lies ``step_s`` after the one before it: until then the next
        sample replaces it, so the latest value is always shown and the spacing holds.
        """
        if day != self.day:
            self.day, self.step_s = day, BASE_STEP_S
            self.t, self.vpin, self.imbalance = [], [], []
        if self.t and t <= self.t[-1]:
            return False
        if len(self.t) >= 2 and self.t[-1] - self.t[-2] < self.step_s:
            self.t[-1], self.vpin[-1], self.imbalance[-1] = t, vpin, imbalance
            return True
        self.t.append(t)
        self.vpin.append(vpin)
        self.imbalance.append(imbalance)
        if len(self.t) > MAX_POINTS:
            self._thin()
        return True

    def _thin(self) -> None:
        """Keep every other point (always the newest) and double the spacing of what comes next."""
        start = (len(self.t) - 1) % 2
        self.t, self.vpin, self.imbalance = self.t[start::2], self.vpin[start::2], self.imbalance[start::2]
        self.step_s *= 2

    def to_doc(self) -> dict[str, object]:
        return {"t": list(self.t), "vpin": list(self.vpin), "imbalance": list(self.imbalance), "step_s": self.step_s,
                "day": self.day or None}
