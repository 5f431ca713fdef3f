"""What the dashboard remembers between two polls of one Redis: session series, the chain's stamp, slow figures.

Why: the hub rebuilds every panel five times a second. Most reads are a few small hashes, but three
are not worth repeating that often: an option chain (about 1 MB, and it changes every 5 minutes: it is
decoded again only when `qc chains`' stamp moves), the scorecard and the health checks (dozens of
keys, changing over seconds). Redis keeps no VPIN or imbalance history either: the series live here.

State hangs off the :class:`~qc.runtime.store.Store` it was read from (weakly), so a process that
polls one Redis keeps one memory, and a store that is closed and dropped takes its memory with it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from qc.core import clock
from qc.runtime.store import Store

T = TypeVar("T")
_lock = threading.Lock()
_by_store: weakref.WeakKeyDictionary[Store, dict[Any, Any]] = weakref.WeakKeyDictionary()


def state(store: Store) -> dict[Any, Any]:
    """The mutable memory of ``store`` (created empty on first use)."""
    with _lock:
        found = _by_store.get(store)
        if found is None:
            found = _by_store[store] = {}
        return found


def every(store: Store, name: str, period_s: float, compute: Callable[[], T]) -> T:
    """``compute()``, reused for ``period_s`` real seconds (0: always computed afresh)."""
    memory = state(store)
    now = clock.monotonic()
    held = memory.get(("every", name))
    if period_s > 0 and held is not None and now - held[0] < period_s:
        value: T = held[1]
        return value
    value = compute()
    memory[("every", name)] = (now, value)
    return value
