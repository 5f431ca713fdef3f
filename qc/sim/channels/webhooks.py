"""A subscriber's webhook endpoint: ``POST /hooks/<name>``, signed per Standard Webhooks.

Why: the sender signs each delivery (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)
and must keep one ``webhook-id`` across retries, because that id is the subscriber's idempotency
key; the receiver records both so duplicates show. With a secret set (`qc sim ctl channel-secret NAME
whsec_…`) the signature is checked with the ``standardwebhooks`` package's own HMAC and a bad or
missing one is answered 401, as a careful subscriber does. The ±5 min timestamp tolerance is the
library's, measured against the simulator's clock: under `qc sim` the sender stamps simulated time,
and the library's own ``verify`` would read the wall clock. Without a secret every delivery is taken.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from qc.sim.channels.ledger import DELIVERED, Ledger, Received
from qc.sim.channels.switches import Switch, Switches
from qc.sim.channels.wire import Reply, Request, json_reply, text_reply

CHANNEL = "webhook"
TOLERANCE_S = 300.0
HOOK = re.compile(r"/hooks/([^/]+)/?")
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
REASONS = {410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


def signer(secret: str) -> Webhook:
    """The package's signer for ``whsec_<base64>``; ValueError naming the argument when it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("secret: a Standard Webhooks secret starts with whsec_")
    try:
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError) as exc:
        raise ValueError(f"secret: not whsec_ followed by non-empty base64 ({type(exc).__name__})") from None


def verify(hook: Webhook, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
    """None when one ``v1`` signature matches and the timestamp is within tolerance of ``now``; else why not."""
    msg_id, stamp, signatures = (headers.get(name, "").strip() for name in HEADERS)
    if not (msg_id and stamp and signatures):
        return "missing required headers"
    try:
        ts = math.floor(float(stamp))  # the package reads a float and signs its floor
    except (ValueError, OverflowError):
        return "invalid webhook-timestamp"
    if ts < now - TOLERANCE_S:
        return "message timestamp too old"
    if ts > now + TOLERANCE_S:
        return "message timestamp too new"
    try:
        data = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    expected = base64.b64decode(hook.sign(msg_id, datetime.fromtimestamp(ts, timezone.utc), data).split(",", 1)[1])
    for part in signatures.split():
        version, _, signature = part.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(signature, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, given):
            return None
    return "no matching signature found"


class Webhooks:
    """Every ``/hooks/<name>`` is an endpoint; ``secrets`` (by name) turn on signature checks."""

    def __init__(self, ledger: Ledger, switches: Switches) -> None:
        self.ledger, self.switches = ledger, switches
        self.secrets: dict[str, Webhook] = {}

    def handle(self, req: Request) -> Reply:
        m = HOOK.fullmatch(urlsplit(req.path).path)
        name = unquote(m.group(1)) if m else ""
        webhook_id = req.headers.get("webhook-id")
        details = {"webhook_timestamp": req.headers.get("webhook-timestamp"),
                   "signature": "checked" if name in self.secrets else "unchecked"}
        failure, delay = self.switches.draw(CHANNEL, name) if name else (None, 0.0)  # a 404 meets no fault
        reply, outcome = self._decide(name, req, failure)
        body = req.body.decode("utf-8", "replace")
        self.ledger.record(CHANNEL, Received(name, reply.status, outcome, req.sim_time, req.wall_time, body=body,
                                             webhook_id=webhook_id, timed_out=delay > 0, details=details))
        return Reply(reply.status, reply.body, reply.content_type, reply.headers, delay)

    def _decide(self, name: str, req: Request, failure: Switch | None) -> tuple[Reply, str]:
        if not name:
            return text_reply(404, "Not Found"), "not_found"
        if failure is not None:
            reply = text_reply(failure.status, REASONS[failure.status])
            if failure.status == 429:
                retry = str(max(1, math.ceil(failure.retry_after_s)))  # simulated seconds, like the rest
                reply = Reply(reply.status, reply.body, reply.content_type, {"retry-after": retry})
            return reply, f"injected_{failure.status}"
        hook = self.secrets.get(name)
        if hook is not None:
            reason = verify(hook, req.body, req.headers, req.sim_time)
            if reason is not None:
                return json_reply(401, {"error": f"invalid signature: {reason}"}), "bad_signature"
        return Reply(204), DELIVERED
