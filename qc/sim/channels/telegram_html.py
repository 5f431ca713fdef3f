"""Telegram's HTML parse mode, as far as a sender can get it wrong: the text a message shows, or the
``can't parse entities`` reason Telegram gives for it.

Why: a price such as "<5%" or an unclosed ``<b>`` makes the real Bot API refuse the whole message; the
simulator must refuse it the same way so the sender's escaping is tested before production. Follows
tdlib's ``parse_html`` (td/telegram/MessageEntity.cpp): supported tags only, properly nested, every
tag closed; ``&lt; &gt; &amp; &quot;`` and numeric references decode, any other ``&`` stays as it
is; offsets in the reasons are UTF-8 byte offsets. Attributes are skipped, not validated. Pure.
"""

from __future__ import annotations

import re

TAGS = frozenset({"a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
                  "tg-emoji", "code", "pre", "blockquote"})
NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
REFERENCE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,4}));")


class EntityError(ValueError):
    """The text after Telegram's ``Bad Request: can't parse entities: ``."""


def visible_text(html: str) -> str:
    """What the message shows once the markup is parsed; EntityError as Telegram would refuse it."""
    out: list[str] = []
    open_tags: list[str] = []
    i, n = 0, len(html)
    while i < n:
        ch = html[i]
        if ch == "&":
            decoded, used = _reference(html, i)
            out.append(decoded)
            i += used
        elif ch != "<":
            out.append(ch)
            i += 1
        elif html.startswith("</", i):
            i = _end_tag(html, i, open_tags)
        else:
            i = _start_tag(html, i, open_tags)
    if open_tags:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)


def _offset(html: str, i: int) -> int:
    return len(html[:i].encode("utf-8", "surrogatepass"))


def _reference(html: str, i: int) -> tuple[str, int]:
    m = REFERENCE.match(html, i)
    if m is None:
        return "&", 1
    decimal, hexadecimal, name = m.groups()
    if name is not None:
        return (NAMED[name.lower()], m.end() - i) if name.lower() in NAMED else ("&", 1)
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    return (chr(code), m.end() - i) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ("&", 1)


def _start_tag(html: str, begin: int, open_tags: list[str]) -> int:
    j = begin + 1
    while j < len(html) and not html[j].isspace() and html[j] not in ">/":
        j += 1
    name = html[begin + 1:j].lower()
    if name not in TAGS:
        raise EntityError(f'Unsupported start tag "{name}" at byte offset {_offset(html, begin)}')
    quote = ""
    while j < len(html):  # skip the attributes, honouring quoted values that may hold '>'
        ch = html[j]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ">":
            open_tags.append(name)
            return j + 1
        j += 1
    raise EntityError(f"Unclosed start tag at byte offset {_offset(html, begin)}")


def _end_tag(html: str, begin: int, open_tags: list[str]) -> int:
    close = html.find(">", begin)
    if close < 0:
        raise EntityError(f"Unclosed end tag at byte offset {_offset(html, begin)}")
    name = html[begin + 2:close].strip().lower()
    if not open_tags:
        raise EntityError(f"Unexpected end tag at byte offset {_offset(html, begin)}")
    expected = open_tags.pop()
    if name != expected:
        raise EntityError(f'Unmatched end tag at byte offset {_offset(html, begin)}, expected "</{expected}>", '
                          f'found "</{name}>"')
    return close + 1
