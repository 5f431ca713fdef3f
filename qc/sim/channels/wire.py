"""What the three stand-ins share at the HTTP level: a request as received, a reply to send, JSON
bodies, and naming a credential without showing it.

Kept out of the server so each channel's rules (telegram.py, xapi.py, webhooks.py) are plain
functions of a request, testable without a socket.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html"


@dataclass(frozen=True)
class Request:
    """One POST: its path (with any query), headers with lower-case names, raw body, receive times."""

    path: str
    headers: Mapping[str, str]
    body: bytes
    sim_time: float
    wall_time: float


@dataclass(frozen=True)
class Reply:
    """What to answer; ``delay_s`` real seconds to hold it first (an injected timeout)."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def json_reply(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(doc, ensure_ascii=False).encode(), JSON, dict(headers or {}))


def text_reply(status: int, text: str, content_type: str = TEXT) -> Reply:
    return Reply(status, text.encode(), content_type)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (bad UTF-8, bad JSON, another type)."""
    try:
        doc = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None
    return doc if isinstance(doc, dict) else None


def masked(secret: str) -> str:
    """A bot token or an Authorization value as the simulator records it: a short hash, enough to
    tell senders apart, never the credential (the records land in `qc sim ctl` output and logs)."""
    return "***" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:8]
