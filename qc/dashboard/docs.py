"""What every panel document shares: its freshness envelope, JSON-safe numbers, and secret scrubbing.

Why one place: the page greys a panel (or a section of one) from exactly these fields — ``as_of``,
``age_s``, ``stale``, ``stale_after_s`` and, when there is nothing to show, ``missing`` with the
command to run — so every builder must spell them the same way. A figure that does not exist is
``None`` (the page shows "—"), never 0; a non-finite float becomes ``None`` too (JSON has no NaN).
Ages are rounded to whole seconds: a panel whose data stopped changes its bytes once a second,
not at every poll, so the hub does not re-push it five times a second for a tenth of a second.

Pure: numbers and mappings in, dicts out; no Redis, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from qc.core.logs import MIN_SECRET_LEN, redact

Doc = dict[str, Any]


def iso(epoch: float | None) -> str | None:
    """An epoch as ISO-8601 UTC (None stays None)."""
    if epoch is None or not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def num(value: float | int | None) -> float | int | None:
    """A number for JSON: None for None, NaN or ±inf (a figure that does not exist), ints kept ints."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


def nums(values: Iterable[float | int | None]) -> list[float | int | None]:
    return [num(v) for v in values]


def envelope(as_of: float | None, now: float, stale_after_s: float, reason: str = "") -> Doc:
    """Freshness of data stamped ``as_of`` (epoch) at ``now``: stale without a stamp, with a reason, or too old."""
    age = None if as_of is None or not math.isfinite(as_of) else float(round(now - as_of))
    stale = age is None or bool(reason) or age > stale_after_s
    out: Doc = {"as_of": iso(as_of), "age_s": age, "stale": stale, "stale_after_s": float(stale_after_s)}
    if reason:
        out["stale_reason"] = reason
    return out


def missing(why: str, stale_after_s: float) -> Doc:
    """A document (or section) with nothing to show, and why (what to start or check)."""
    return {"as_of": None, "age_s": None, "stale": True, "stale_after_s": float(stale_after_s), "missing": why}


def newest(*stamps: float | None) -> float | None:
    """The latest of the stamps that exist."""
    present = [s for s in stamps if s is not None and math.isfinite(s)]
    return max(present) if present else None


def epoch_of(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def inf_or_num(value: Any) -> float | None:
    """A snapshot number that may be the string "inf" (a disabled limit): None then, else the number."""
    if isinstance(value, bool) or value is None or value == "inf":
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def usable_secrets(secrets: Iterable[str]) -> list[str]:
    """The secrets worth scrubbing (as the log filter does: 1-2 characters protect nothing)."""
    return sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)


def scrub(doc: Any, secrets: list[str]) -> Any:
    """``doc`` with every secret masked in every string (keys included); the same object when none occurs.

    One serialisation and a substring test per secret on the fast path: the walk runs only when a secret
    is really there (an error text that quoted a URL, a lineage note someone typed a token into).
    """
    if not secrets:
        return doc
    text = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode()
    if not any(s in text for s in secrets):
        return doc
    return _walk(doc, secrets)


def _walk(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {(_walk(k, secrets) if isinstance(k, str) else k): _walk(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, secrets) for v in value]
    return value
