"""Backoff is capped and jittered; signal handlers only set a flag, then exit on the second."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.backoff import backoff_s
from qc.runtime.worker import install_signal_handlers


@given(st.integers(1, 60), st.floats(0.01, 5), st.floats(0.1, 120), st.floats(0, 1), st.floats(0, 1))
def test_backoff_is_capped_and_jittered(attempt: int, base: float, cap: float, jitter: float, rand: float) -> None:
    delay = backoff_s(attempt, base_s=base, cap_s=cap, jitter=jitter, rand=rand)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


def test_backoff_grows_then_caps() -> None:
    delays = [backoff_s(a, base_s=0.5, cap_s=30, jitter=0, rand=0) for a in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == 30


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.mark.usefixtures("restore_handlers")
def test_first_signal_sets_stop_second_exits() -> None:
    stop = threading.Event()
    install_signal_handlers(stop)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.wait(2)
    with pytest.raises(SystemExit) as exited:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs, and raises, before kill() returns
    assert exited.value.code == 128 + signal.SIGTERM
