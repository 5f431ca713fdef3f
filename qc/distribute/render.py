"""One template per channel, from the signal codec: the same facts everywhere, within each channel's limits.

Every channel carries the same content: symbol, contract (expiry, strike, right), side, order type and
limit, take profit, stop, trailing % when set, time stop, score against threshold, strategy, emission
time and the signal id "for support". Units are stated where a number is: prices are the option's
premium in **$ per share** (one contract = ``multiplier`` shares, 100 for listed equity options, so
$2.03/share is $203 per contract); a share signal's prices are $ per share too. Times are New York time
with the zone (EST/EDT) in text, ISO-8601 UTC in the webhook body.

- Telegram: ``parse_mode=HTML``; data is escaped (only ``& < >``, plus ``"`` inside attributes), the
  visible length (what Telegram counts, after entity parsing, in UTF-16 units) is checked against 4096
  and the raw markup kept under ~9000 characters (the undocumented ~9500 cap on markup,
  tdlib/telegram-bot-api#165); only the free-text notes are ever truncated, with a visible marker.
- X: a teaser of at most 280 *weighted* characters (X's twitter-text v3 weights, after NFC), no URL
  (a post with one costs $0.20 instead of $0.015), at most one cashtag, and the full signal id so two
  signals never give the same text (X rejects duplicates with a 403).
- Webhook: canonical JSON bytes (sorted keys, compact, UTF-8), Standard Webhooks' envelope
  (``type``, ``timestamp``, ``data``); ``webhook-id = {signal_id}:{tier}``, the same on every retry.

Pure: a :class:`~qc.signals.codec.Signal` and a :class:`~qc.distribute.model.Tier` in, a message out.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from qc.core.clock import NEW_YORK
from qc.distribute.model import Tier
from qc.signals.codec import Signal

TELEGRAM_LIMIT = 4096          # sendMessage text: 1-4096 characters after entity parsing
TELEGRAM_RAW_LIMIT = 9000      # the markup itself, under the ~9500 Telegram enforces on entities
X_LIMIT = 280                  # weighted characters
EVENT_TYPE = "signal.published"
SYMBOL_SHOWN = 12              # a symbol longer than any ticker is clipped, never allowed to crowd the message
ID_SHOWN = 64
NOTE_SHOWN = 500               # one note in a webhook body
NOTES_SHOWN = 20
TRUNCATED = "… (notes truncated; the signal id has them all)"

_RANGES_WEIGHT_1 = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
"""twitter-text ``config/v3.json``: code points in these ranges weigh 1 (100 at scale 100), all others 2."""
_EMOJI_IN_RANGE = frozenset({0x00A9, 0x00AE})  # ©, ®: in a weight-1 range but X parses them as emoji (2)
_TAG = re.compile(r"<[^>]*>")
_CASHTAG = re.compile(r"[A-Z]{1,6}(?:[._][A-Z]{1,2})?")  # what X turns into a cashtag after "$"
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&amp;", "&"))  # &amp; last: "&amp;lt;" stays "&lt;"


# --- shared pieces --------------------------------------------------------------------------------------

def clean(text: str) -> str:
    """Text safe to encode: lone surrogates (never valid UTF-8) become U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def clip(text: str, n: int) -> str:
    """At most ``n`` characters, an ellipsis marking a cut."""
    text = clean(text)
    return text if len(text) <= n else text[: max(n - 1, 0)] + "…"


def price(x: float) -> str:
    """A price as a trader reads it: 2 decimals, up to 4 when the tick needs them (never rounds 2.035 away)."""
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e7:  # no option or share trades there: a short form keeps a broken value from crowding out the rest
        return f"{x:.6g}"
    if abs(x * 100 - round(x * 100)) < 1e-6:
        return f"{x:,.2f}"
    return f"{x:,.4f}".rstrip("0")


def number(x: float) -> str:
    """A strike or a percentage: no trailing zeros (600, 602.5, 7.25)."""
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e7:
        return f"{x:.6g}"
    return f"{x:,.4f}".rstrip("0").rstrip(".")


def ny_time(t: datetime, *, seconds: bool = True) -> str:
    """New York wall time with its zone: ``2026-12-03 10:30:00 EST``."""
    return t.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def _delay(seconds: float) -> str:
    if seconds < 120 or seconds % 60:
        return f"{number(seconds)} s"
    return f"{number(seconds / 60)} min"


def _right(right: str | None) -> str:
    return {"C": "call", "P": "put"}.get(right or "", "")


def contract_text(s: Signal, *, with_symbol: bool = True) -> str:
    """``SPY 2026-12-03 600 call`` (or ``SPY shares``)."""
    c = s.contract
    symbol = clip(c.symbol, SYMBOL_SHOWN)
    if c.sec_type != "OPT" or c.expiry is None or c.strike is None:
        return f"{symbol} shares"
    text = f"{c.expiry.isoformat()} {number(c.strike)} {_right(c.right)}"
    return f"{symbol} {text}" if with_symbol else text


def _is_option(s: Signal) -> bool:
    return s.contract.sec_type == "OPT"


def _order(s: Signal) -> str:
    return "limit-on-close" if s.order_type == "LOC" else "limit"


def _view(s: Signal) -> str:
    return "bullish" if s.direction > 0 else "bearish"


def _strategy(s: Signal) -> str:
    return clip(str(s.strategy), 8).upper()


# --- Telegram ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """What sendMessage gets besides ``chat_id``."""

    text: str
    parse_mode: str = "HTML"
    protect_content: bool = False
    disable_notification: bool = False

    def payload(self, chat_id: str) -> dict[str, Any]:
        """The sendMessage JSON body (``chat_id`` an int when numeric, as the Bot API documents it)."""
        chat: int | str = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
        return {"chat_id": chat, "text": self.text, "parse_mode": self.parse_mode,
                "protect_content": self.protect_content, "disable_notification": self.disable_notification,
                "link_preview_options": {"is_disabled": True}}


def escape_html(text: str, *, quote: bool = False) -> str:
    """Telegram HTML escaping: ``& < >`` (and ``"`` for an attribute value); nothing else is special."""
    out = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace('"', "&quot;") if quote else out


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: what Telegram counts (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def telegram_visible(html: str) -> str:
    """The text a reader sees: tags removed, the four entities decoded."""
    out = _TAG.sub("", html)
    for entity, char in _ENTITIES:
        out = out.replace(entity, char)
    return out


def telegram_length(html: str) -> int:
    """Telegram's length of ``html`` after entity parsing (the 4096 limit applies to this)."""
    return utf16_length(telegram_visible(html))


def _telegram_lines(s: Signal, tier: Tier) -> list[str]:
    """Every line but the notes and the id, as HTML (data escaped here)."""
    e = escape_html
    c = s.contract
    per = "share"
    lines = [f"<b>{e(s.side)} {e(contract_text(s))}</b> ({_view(s)}, {e(_strategy(s))})"]
    order = f"Order: {_order(s)} order at <b>${price(s.limit)}</b> per {per}"
    if _is_option(s):
        order += f" (${price(s.limit * c.multiplier)} per contract of {c.multiplier} shares)"
    lines.append(order)
    lines.append(f"Take profit: ${price(s.take_profit)} per {per}")
    lines.append(f"Stop: ${price(s.stop)} per {per}")
    if s.trail_pct > 0:
        best = "premium" if _is_option(s) else "price"
        lines.append(f"Trailing stop: {number(s.trail_pct)}% below the best {best}")
    lines.append(f"Time stop: {ny_time(s.time_stop, seconds=False)}")
    lines.append(f"Score: {s.score:+.2f} (threshold ±{s.threshold:.2f})")
    lines.append(f"Strategy: {e(_strategy(s))}")
    lines.append(f"Emitted: {ny_time(s.created_at)}")
    when = "at release" if tier.delay_s == 0 else f"{_delay(tier.delay_s)} after release"
    lines.append(f"Tier: {e(tier.name)}, {when}")
    if _is_option(s):
        lines.append("<i>Prices are option premium in $ per share; 1 contract = "
                     f"{c.multiplier} shares.</i>")
    return lines


def _fit(plain: str, visible_budget: int, raw_budget: int) -> str:
    """The longest prefix of ``plain`` that, marked as cut, fits both budgets once escaped (HTML)."""
    def fits(text: str) -> bool:
        return utf16_length(text) <= visible_budget and len(escape_html(text)) <= raw_budget

    if fits(plain):
        return escape_html(plain)
    lo, hi = 0, len(plain)  # fits(plain[:lo] + TRUNCATED) holds for lo = 0 whenever any notes fit at all
    if not fits(TRUNCATED):
        return ""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(plain[:mid] + TRUNCATED):
            lo = mid
        else:
            hi = mid - 1
    return escape_html(plain[:lo] + TRUNCATED)


def telegram_message(s: Signal, tier: Tier, *, protect: bool, silent: bool = False) -> TelegramMessage:
    """The post for ``tier``'s channel. ``protect``: ``Routing.protects(tier)`` (no forwarding, no saving)."""
    head = "\n".join(_telegram_lines(s, tier))
    foot = f"Signal id (for support): <code>{escape_html(clip(s.id, ID_SHOWN))}</code>"
    notes_plain = "\n".join(f"Note: {clean(n)}" for n in s.notes)
    text = f"{head}\n{foot}"
    if notes_plain:
        sep = 1  # the notes block adds itself and one newline
        notes = _fit(notes_plain, TELEGRAM_LIMIT - telegram_length(text) - sep,
                     TELEGRAM_RAW_LIMIT - len(text) - sep)
        if notes:
            text = f"{head}\n{notes}\n{foot}"
    if telegram_length(text) > TELEGRAM_LIMIT or len(text) > TELEGRAM_RAW_LIMIT:  # bounded fields: unreachable
        raise ValueError(f"signal {s.id[:40]}: the Telegram message is {telegram_length(text)} characters")
    return TelegramMessage(text, "HTML", protect, silent)


# --- X ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class XPost:
    """What POST /2/tweets gets: the text (NFC), already within 280 weighted characters."""

    text: str

    def payload(self) -> dict[str, Any]:
        return {"text": self.text}


def x_weight(char: str) -> int:
    """One code point's weight on X: 1 in the v3 ranges, 2 elsewhere (©/® 2: X counts them as emoji)."""
    cp = ord(char)
    if cp in _EMOJI_IN_RANGE:
        return 2
    return 1 if any(lo <= cp <= hi for lo, hi in _RANGES_WEIGHT_1) else 2


def x_length(text: str) -> int:
    """X's weighted length of ``text`` after NFC. Counted per code point, so a multi-code-point emoji
    (X: 2 in all) counts more here, never less: a conservative check. URLs (23 each) are not counted:
    qc's teaser has none (``x_post`` guarantees it)."""
    return sum(x_weight(c) for c in unicodedata.normalize("NFC", text))


def _plain(text: str, allowed: str, n: int) -> str:
    """Only ``allowed`` characters (a regex class body), at most ``n``: no URL, mention or $ can ride along."""
    return re.sub(f"[^{allowed}]", "", text)[:n]


def _cashtag(symbol: str) -> str:
    """``$SPY`` when X would make the symbol a cashtag, the bare symbol otherwise (at most one per post)."""
    return f"${symbol}" if _CASHTAG.fullmatch(symbol) else symbol


def _x_cut(text: str, budget: int) -> str:
    """``text`` within ``budget`` weighted characters, cut with an ellipsis (itself weight 2) if needed."""
    if x_length(text) <= budget:
        return text
    out: list[str] = []
    used = x_weight("…")
    for char in text:
        if used + x_weight(char) > budget:
            break
        out.append(char)
        used += x_weight(char)
    return "".join(out) + "…"


def x_post(s: Signal, tier: Tier, *, first_delay_s: float = 0.0) -> XPost:
    """The teaser: what, at what limit, exits, when, the id. ``first_delay_s``: the first tier's delay
    (a teaser posted later than that says how much earlier subscribers had it)."""
    symbol = _plain(s.contract.symbol, "A-Z0-9.", SYMBOL_SHOWN) or "?"
    what = contract_text(s, with_symbol=False) if _is_option(s) else "shares"
    head = (f"{_cashtag(symbol)} {_strategy(s)} signal ({_view(s)}): {s.side} {what}, "
            f"{_order(s)} ${price(s.limit)}/share")
    exits = f"Take profit ${price(s.take_profit)}, stop ${price(s.stop)}"
    if s.trail_pct > 0:
        exits += f" (trailing {number(s.trail_pct)}%)"
    exits += f", time stop {ny_time(s.time_stop, seconds=False)}."
    when = f"Emitted {ny_time(s.created_at)}."
    earlier = tier.delay_s - first_delay_s
    optional = [f"Subscribers had it {_delay(earlier)} earlier."] if earlier > 0 else []
    ref = f"Ref {_plain(s.id, '0-9A-Za-z_-', ID_SHOWN)}"
    parts = [head, exits, when, *optional]
    text = unicodedata.normalize("NFC", "\n".join([*parts, ref]))
    while x_length(text) > X_LIMIT and len(parts) > 1:
        parts.pop()  # drop the least important line first; the head and the ref always stay
        text = unicodedata.normalize("NFC", "\n".join([*parts, ref]))
    if x_length(text) > X_LIMIT:
        ref_part = unicodedata.normalize("NFC", ref)
        text = _x_cut(unicodedata.normalize("NFC", head), X_LIMIT - x_length(ref_part) - 1) + "\n" + ref_part
    return XPost(text)


# --- webhook ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One Standard Webhooks delivery: its id (the receiver's idempotency key) and the exact body to sign."""

    webhook_id: str
    body: bytes
    event_type: str = EVENT_TYPE


def webhook_id(signal_id: str, tier: str) -> str:
    """The same on every retry of one signal to one tier: ``{signal_id}:{tier}``."""
    return f"{signal_id}:{tier}"


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat()


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def canonical_json(doc: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN: byte-identical for equal documents (what is signed)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def webhook_data(s: Signal, tier: Tier) -> dict[str, Any]:
    """The signal's fields in machine form (numbers as numbers, times ISO-8601 UTC, units named)."""
    c = s.contract
    notes: Sequence[str] = s.notes[:NOTES_SHOWN]
    return {
        "signal_id": clean(s.id), "tier": tier.name, "tier_delay_s": float(tier.delay_s), "symbol": clean(c.symbol),
        "contract": {"sec_type": c.sec_type, "symbol": clean(c.symbol),
                     "expiry": c.expiry.isoformat() if c.expiry else None,
                     "strike": _finite(c.strike) if c.strike is not None else None,
                     "right": c.right, "multiplier": c.multiplier},
        "side": s.side, "direction": "bullish" if s.direction > 0 else "bearish",
        "order_type": s.order_type, "limit": _finite(s.limit), "take_profit": _finite(s.take_profit),
        "stop": _finite(s.stop), "trail_pct": _finite(s.trail_pct) if s.trail_pct > 0 else None,
        "price_unit": "usd_per_share", "time_stop": _utc(s.time_stop), "score": _finite(s.score),
        "threshold": _finite(s.threshold), "strategy": clean(str(s.strategy)), "emitted_at": _utc(s.created_at),
        "notes": [clip(n, NOTE_SHOWN) for n in notes],
    }


def webhook_message(s: Signal, tier: Tier) -> WebhookMessage:
    """The body (``type``, ``timestamp`` = emission, ``data``) and its ``webhook-id``: retry-stable bytes."""
    doc = {"type": EVENT_TYPE, "timestamp": _utc(s.created_at), "data": webhook_data(s, tier)}
    return WebhookMessage(webhook_id(clean(s.id), tier.name), canonical_json(doc))
