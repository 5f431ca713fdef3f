"""What every Redis value codec shares: typed absence, field parsing with validation, formatting.

A codec is a frozen dataclass per Redis value with ``to_redis()`` (what the writer stores: a
``dict[str, str]`` for a hash, a ``str`` for a string or list item) and a classmethod
``from_redis(raw, key=...)`` returning the value or an :class:`Absent` saying why not. Readers never
see a KeyError, a ValueError or a half-parsed value: a missing key, a hash missing a field, a value
written by an older schema and a malformed or out-of-range number all come back as ``Absent`` with
a one-line reason naming the key and the field (what `qc gex`, `qc status` and the logs print).

Validation lives here, at the boundary: a number that is not finite or out of its range is
malformed, never stored or read as good data. Hash values carry ``v`` (the schema version); a
reader refuses another version rather than guessing at renamed fields.

Pure: no Redis, no I/O. The glue (``cycle``/``report`` modules) does the ``GET``/``HGETALL``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
R = TypeVar("R")
VERSION_FIELD = "v"
MISSING = "missing"  # the reason of an Absent whose key (or field) is simply not there
EPOCH_MAX = 4_102_444_800.0  # 2100-01-01: a Unix time past it is a unit or parsing error, not a date


@dataclass(frozen=True, slots=True)
class Absent:
    """No usable value at ``key``, and why (``missing``, ``partial: …``, ``old version …``, ``malformed: …``)."""

    key: str
    reason: str

    def __bool__(self) -> bool:  # `if value:` reads as "is there a value"
        return False

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class Malformed(ValueError):
    """A field that cannot be decoded into good data; ``from_redis`` turns it into :class:`Absent`."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field} {why}")
        self.field, self.why = field, why


def decode(key: str, raw: R | None, parse: Callable[[R], T]) -> T | Absent:
    """``parse(raw)``, or Absent: ``missing`` for None/empty, ``malformed: …`` for bad content."""
    if raw is None or (isinstance(raw, (dict, str, list)) and len(raw) == 0):
        return Absent(key, MISSING)
    try:
        return parse(raw)
    except Malformed as exc:
        return Absent(key, f"malformed: {exc}")
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:  # json, int(), shape; a 400-digit integer; JSON nested past the stack
        return Absent(key, f"malformed: {type(exc).__name__}: {exc}")


def check_version(fields: Mapping[str, Any], version: int) -> None:
    """Refuse a hash (or a JSON object, ``"v": 1``) written by another schema version (fields may differ)."""
    got = fields.get(VERSION_FIELD)
    if got is None:
        raise Malformed(VERSION_FIELD, f"absent: written before schema v{version} (old version)")
    if str(got) != str(version) or isinstance(got, bool):
        raise Malformed(VERSION_FIELD, f"is {got!r}, this reader wants {version} (old version)")


def need(fields: Mapping[str, Any], name: str) -> Any:
    """A field that must be present (a partial hash is malformed, never defaulted to zero)."""
    if name not in fields:
        raise Malformed(name, "missing (partial value)")
    return fields[name]


def to_float(raw: Any, name: str, *, lo: float = -math.inf, hi: float = math.inf,
             optional: bool = False) -> float | None:
    """A finite number in [lo, hi]; "" or None is None when ``optional``, malformed otherwise."""
    if raw is None or raw == "":
        if optional:
            return None
        raise Malformed(name, "is empty")
    if isinstance(raw, bool):
        raise Malformed(name, f"is a boolean ({raw!r})")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise Malformed(name, f"is not a number ({str(raw)[:40]!r})") from None
    except OverflowError:
        raise Malformed(name, "is a number too large for a float") from None
    if not math.isfinite(value):
        raise Malformed(name, f"is not finite ({value!r})")
    if not lo <= value <= hi:
        raise Malformed(name, f"is {value!r}, outside [{lo:g}, {hi:g}]")
    return value


def req_float(raw: Any, name: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    """:func:`to_float` for a field that must hold a number."""
    value = to_float(raw, name, lo=lo, hi=hi)
    assert value is not None
    return value


def opt_float(raw: Any, name: str, *, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    return to_float(raw, name, lo=lo, hi=hi, optional=True)


def req_epoch(raw: Any, name: str) -> float:
    """A Unix time in seconds in [0, 2100-01-01] (milliseconds or a negative time are malformed)."""
    return req_float(raw, name, lo=0.0, hi=EPOCH_MAX)


def req_int(raw: Any, name: str, *, lo: int = -(2**53), hi: int = 2**53) -> int:
    """An integer in [lo, hi] (beyond 2**53 a float cannot carry it exactly: malformed)."""
    if isinstance(raw, bool):
        raise Malformed(name, f"is a boolean ({raw!r})")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise Malformed(name, f"is not an integer ({raw!r})")
        raw = int(raw)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise Malformed(name, f"is not an integer ({str(raw)[:40]!r})") from None
    if not lo <= value <= hi:
        raise Malformed(name, f"is {value}, outside [{lo}, {hi}]")
    return value


def opt_int(raw: Any, name: str, *, lo: int = -(2**53), hi: int = 2**53) -> int | None:
    """:func:`req_int`, with "" or None read as None."""
    return None if raw is None or raw == "" else req_int(raw, name, lo=lo, hi=hi)


def req_str(raw: Any, name: str, *, choices: Collection[str] | None = None, empty: bool = True) -> str:
    """A string field; with ``choices`` one of them, with ``empty=False`` a non-empty one."""
    if not isinstance(raw, str):
        raise Malformed(name, f"is a {type(raw).__name__}, not a string")
    if choices is not None and raw not in choices:
        raise Malformed(name, f"is {raw[:40]!r}, not one of {', '.join(sorted(choices))}")
    if not empty and not raw:
        raise Malformed(name, "is empty")
    return raw


def req_flag(raw: Any, name: str) -> bool:
    """A hash flag: "1" or "0" (anything else is malformed, never read as false)."""
    return req_str(raw, name, choices=("0", "1")) == "1"


def req_instant(raw: Any, name: str) -> datetime:
    """A timezone-aware ISO-8601 instant (a naive one is malformed: its zone would be a guess)."""
    try:
        at = datetime.fromisoformat(req_str(raw, name, empty=False))
    except ValueError:
        raise Malformed(name, f"is not an ISO-8601 instant ({str(raw)[:40]!r})") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise Malformed(name, f"has no time zone ({raw!r})")
    return at


def opt_instant(raw: Any, name: str) -> datetime | None:
    """:func:`req_instant`, with "" or None read as None."""
    return None if raw is None or raw == "" else req_instant(raw, name)


def fmt(value: float | int | str | None) -> str:
    """A hash field: "" for None/NaN/inf (a null the reader can see, never a silent 0)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):  # counts stay integers: "632", not "632.0"
        return str(value)
    number = float(value)
    return repr(number) if math.isfinite(number) else ""


def fmt_fields(fields: Mapping[str, float | int | str | None]) -> dict[str, str]:
    return {name: fmt(v) for name, v in fields.items()}


def dumps(doc: Any) -> str:
    """Compact JSON that refuses NaN/inf (``allow_nan=False``): a reader in any language can parse it."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def loads_json(raw: str | bytes) -> Any:
    """JSON text → Python, with orjson (5x the standard library on a 0.5–1 MB chain document,
    measured) and the standard library where orjson refuses what ``json`` reads (integers past
    64 bits, NaN literals), so a reader's validation, not the parser, decides what such a value is.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def loads_object(raw: str | bytes, name: str = "document") -> dict[str, Any]:
    """A JSON object, or malformed (a list, a number or broken JSON is not a value of ours)."""
    doc = loads_json(raw)
    if not isinstance(doc, dict):
        raise Malformed(name, f"is a JSON {type(doc).__name__}, not an object")
    return doc


def finite_or_none(value: float | None) -> float | None:
    """None for None/NaN/inf: what JSON documents carry for a figure that does not exist."""
    return None if value is None or not math.isfinite(value) else float(value)
