"""The fuzz modules' shared bookkeeping: examples per test, the hypothesis profile, and the tally report.

Why one helper: every surface counts its cases and refusals by class the same way, prints them with
``-s`` and adds them to ``QC_FUZZ_REPORT`` (JSON) when that is set. Several modules (and several
pytest-xdist workers) may write one report, so each merges its surfaces into the file under a lock
instead of overwriting it. ``QC_FUZZ_EXAMPLES`` (default 300) scales every test of every surface.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("QC_FUZZ_EXAMPLES", "300"))
REPORT = os.environ.get("QC_FUZZ_REPORT", "")  # read at import: the suite's autouse fixture strips QC_*
BASE = os.environ.get("HYPOTHESIS_PROFILE", "ci")  # "ci": derandomized, reproducible; "explore": fresh seeds
settings.register_profile("qc-fuzz-surfaces", parent=settings.get_profile(BASE), max_examples=EXAMPLES,
                          deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.filter_too_much])
FUZZ: Callable[[Any], Any] = settings.get_profile("qc-fuzz-surfaces")
TIMEOUT = pytest.mark.timeout(300 + EXAMPLES // 10)  # the suite's hang guard, stretched for the 10,000-case run


class Tally:
    """Counts per surface: ``cases`` and one counter per outcome class (``accepted``, ``refused:<why>``…)."""

    def __init__(self) -> None:
        self.surfaces: dict[str, Counter[str]] = {}

    def add(self, surface: str, *outcomes: str, **counts: int) -> None:
        """One case of ``surface``: each of ``outcomes`` once, and ``counts`` as given."""
        stats = self.surfaces.setdefault(surface, Counter())
        stats["cases"] += 1
        stats.update(outcomes)
        stats.update(counts)

    def summary(self) -> dict[str, dict[str, int]]:
        return {surface: dict(sorted(c.items())) for surface, c in sorted(self.surfaces.items())}

    def report(self) -> None:
        """Print the tallies (seen with ``-s``) and merge them into ``QC_FUZZ_REPORT`` when it is set."""
        summary = self.summary()
        print(f"\nfuzz tallies ({EXAMPLES} examples per test):")
        for surface, counts in summary.items():
            print(f"  {surface}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        if REPORT and summary:
            merge_report(Path(REPORT), summary)


def merge_report(path: Path, surfaces: Mapping[str, Mapping[str, int]]) -> None:
    """Add ``surfaces`` to the JSON report at ``path`` (other modules' surfaces kept), under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc: dict[str, Any] = {}
        if path.is_file() and path.stat().st_size:
            doc = json.loads(path.read_text())
        doc.update({"examples_per_test": EXAMPLES, "crashes": 0, **surfaces})
        path.write_text(json.dumps(doc, indent=2, sort_keys=True))


@contextmanager
def reporting(tally: Tally) -> Iterator[Tally]:
    """For a module-scoped autouse fixture: yield the tally, report it when the module's tests are done."""
    yield tally
    tally.report()
