"""Suite-wide settings: a steady hypothesis profile and no QC_* leaking in from the shell."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)
# "explore": random seeds, for hunting new counterexamples locally (HYPOTHESIS_PROFILE=explore).
settings.register_profile("explore", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip QC_* and NOTIFY_SOCKET so a developer's shell never changes a test's outcome."""
    for name in list(os.environ):
        if name.startswith("QC_") or name == "NOTIFY_SOCKET":
            monkeypatch.delenv(name, raising=False)
