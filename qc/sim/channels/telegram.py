"""The Telegram Bot API's ``sendMessage`` as a sender meets it: validation, flood limits, error bodies.

Why: Telegram refuses a message over 4096 characters or with broken HTML, and answers 429 with
``retry_after`` past about 1 message/s per private chat, 20/min per group or channel and 30/s per
bot overall (reference distribution-channels.md §1); the sender must be proved against exactly
those answers. The limits run in simulated seconds, like every cadence under `qc sim`. Any
non-empty token is a bot (told apart by a hash, never recorded); any chat exists unless `qc sim ctl
chat-not-found` says otherwise. ``parse_mode`` HTML is parsed (telegram_html.py); MarkdownV2 and
Markdown are accepted unparsed, their length counted on the raw text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from qc.sim.channels.ledger import DELIVERED, Ledger, Received
from qc.sim.channels.limits import Limit, Windows
from qc.sim.channels.switches import Switch, Switches
from qc.sim.channels.telegram_html import EntityError, visible_text
from qc.sim.channels.wire import HTML, Reply, Request, json_object, json_reply, masked, text_reply

CHANNEL = "telegram"
MAX_TEXT = 4096
GROUP_CHAT = Limit("group_chat", 20, 60.0)  # a chat id that is negative or an @username: group or channel
PRIVATE_CHAT = Limit("private_chat", 1, 1.0)
OVERALL = Limit("overall", 30, 1.0)  # per bot, all chats
LIMITS = (GROUP_CHAT, PRIVATE_CHAT, OVERALL)
SEND = re.compile(r"/bot([^/]*)/sendMessage/?", re.IGNORECASE)
PARSE_MODES = {"": None, "html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}
OPTIONS = ("parse_mode", "protect_content", "disable_notification", "message_thread_id")
BAD = {
    "not_found": (404, "Not Found"),
    "bad_json": (400, "Bad Request: can't parse JSON object"),
    "chat_id_empty": (400, "Bad Request: chat_id is empty"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "unsupported_parse_mode": (400, "Bad Request: unsupported parse_mode"),
    "text_empty": (400, "Bad Request: message text is empty"),
    "too_long": (400, "Bad Request: message is too long"),
}
INJECTED = {403: "Forbidden: bot was blocked by the user", 500: "Internal Server Error"}
NGINX = ("<html>\r\n<head><title>{s}</title></head>\r\n<body>\r\n<center><h1>{s}</h1></center>\r\n"
         "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
GATEWAY_TITLES = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable"}


def error(status: int, description: str, retry_after: int | None = None) -> Reply:
    """Telegram's failure body: ``{"ok":false,"error_code":…,"description":…}`` (+ ``parameters``)."""
    doc: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        doc["parameters"] = {"retry_after": retry_after}
    return json_reply(status, doc)


def too_many_requests(retry_after: int) -> Reply:
    return error(429, f"Too Many Requests: retry after {retry_after}", retry_after)


def chat_limit(chat: str) -> Limit:
    """Groups, supergroups and channels (negative ids, @usernames) share 20/min; a private chat 1/s."""
    return GROUP_CHAT if chat.startswith(("-", "@")) else PRIVATE_CHAT


def chat_type(chat: str) -> str:
    if chat.startswith("@") or chat.startswith("-100"):
        return "channel"
    return "group" if chat.startswith("-") else "private"


class Telegram:
    """``POST /bot<token>/sendMessage`` (JSON or form body, or query parameters)."""

    def __init__(self, ledger: Ledger, switches: Switches, windows: Windows) -> None:
        self.ledger, self.switches, self.windows = ledger, switches, windows
        self._message_ids: Counter[str] = Counter()

    def handle(self, req: Request) -> Reply:
        url = urlsplit(req.path)
        m = SEND.fullmatch(url.path)
        token = unquote(m.group(1)) if m else ""
        params = _params(url.query, req)
        chat = _chat(params)
        details: dict[str, Any] = {"bot": masked(token) if token else "", "chat_type": chat_type(chat)}
        if params is not None:
            details.update({k: params[k] for k in OPTIONS if k in params})
        text = _text(params)
        failure, delay = self.switches.draw(CHANNEL, chat) if token else (None, 0.0)  # a 404 meets no fault
        reply, outcome, violated = self._decide(token, params, chat, text, failure, req.sim_time)
        self.ledger.record(CHANNEL, Received(chat, reply.status, outcome, req.sim_time, req.wall_time, text=text,
                                             timed_out=delay > 0, details=details), violated)
        return Reply(reply.status, reply.body, reply.content_type, reply.headers, delay)

    def _decide(self, token: str, params: Mapping[str, Any] | None, chat: str, text: str | None,
                failure: Switch | None, now: float) -> tuple[Reply, str, tuple[str, ...]]:
        """(reply, outcome, limits violated) for one request, checks in the order Telegram makes them."""
        if not token:
            return _bad("not_found"), "not_found", ()
        if failure is not None:
            return _injected(failure), f"injected_{failure.status}", ()
        if params is None:
            return _bad("bad_json"), "bad_json", ()
        if not chat:
            return _bad("chat_id_empty"), "chat_id_empty", ()
        if chat in self.switches.missing_chats:
            return _bad("chat_not_found"), "chat_not_found", ()
        shown = _message(params, text)
        if isinstance(shown, tuple):
            return (*shown, ())
        bot = masked(token)
        verdict = self.windows.admit(now, [(chat_limit(chat), f"{bot}/{chat}"), (OVERALL, bot)])
        if not verdict.admitted:
            return too_many_requests(verdict.retry_after), "rate_limited", verdict.violated
        self._message_ids[chat] += 1
        chat_doc: dict[str, Any] = {"id": _chat_id(params["chat_id"]), "type": chat_type(chat)}
        if chat.startswith("@"):
            chat_doc["username"] = chat[1:]
        result = {"message_id": self._message_ids[chat], "chat": chat_doc, "date": int(now), "text": shown}
        return json_reply(200, {"ok": True, "result": result}), DELIVERED, ()


def _message(params: Mapping[str, Any], text: str | None) -> str | tuple[Reply, str]:
    """The text the message shows once its markup is parsed, or (reply, outcome) refusing it."""
    mode = PARSE_MODES.get(str(params.get("parse_mode") or "").lower(), "?")
    if mode == "?":
        return _bad("unsupported_parse_mode"), "unsupported_parse_mode"
    shown = text or ""
    if mode == "HTML":
        try:
            shown = visible_text(shown)
        except EntityError as exc:
            return error(400, f"Bad Request: can't parse entities: {exc}"), "cant_parse_entities"
    if not shown.strip():
        return _bad("text_empty"), "text_empty"
    if len(shown) > MAX_TEXT:
        return _bad("too_long"), "too_long"
    return shown


def _bad(reason: str) -> Reply:
    status, description = BAD[reason]
    return error(status, description)


def _injected(failure: Switch) -> Reply:
    if failure.status == 429:
        return too_many_requests(max(1, math.ceil(failure.retry_after_s)))
    if failure.status in GATEWAY_TITLES:
        return text_reply(failure.status, NGINX.format(s=GATEWAY_TITLES[failure.status]), HTML)
    return error(failure.status, INJECTED[failure.status])


def _params(query: str, req: Request) -> dict[str, Any] | None:
    """The call's parameters: the query string, then a JSON or form body over it; None if unreadable."""
    params: dict[str, Any] = dict(parse_qsl(query))
    if not req.body.strip():
        return params
    if "json" in req.headers.get("content-type", "") or req.body.lstrip().startswith(b"{"):
        doc = json_object(req.body)
        return None if doc is None else {**params, **doc}
    try:
        return {**params, **dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))}
    except UnicodeDecodeError:
        return None


def _chat(params: Mapping[str, Any] | None) -> str:
    raw = None if params is None else params.get("chat_id")
    return "" if raw is None or isinstance(raw, bool) else str(raw).strip()


def _chat_id(raw: Any) -> Any:
    """The id as Telegram echoes it: a number for numeric ids (sent as text or not), else the text."""
    text = str(raw).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _text(params: Mapping[str, Any] | None) -> str | None:
    raw = None if params is None else params.get("text")
    if raw is None or isinstance(raw, (dict, list, bool)):
        return None
    return str(raw)
