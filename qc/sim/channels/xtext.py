"""How X measures a post: weighted length and cashtags, pure.

Why: X refuses a post over 280 *weighted* characters or with more than one cashtag (self-serve), and
the sender's teaser must fit before it is sent. The weighting follows twitter-text's v3 configuration
(fundamentals/counting-characters): text is NFC-normalised; code points in U+0000–U+10FF,
U+2000–U+200D, U+2010–U+201F and U+2032–U+2037 weigh 1, everything else (CJK, most symbols) 2; an
emoji weighs 2 however many code points it spans (ZWJ sequences, skin tones, variation selectors,
flags); every URL weighs 23 (t.co).

A faithful approximation, not twitter-text itself: URLs are ``http(s)://…``, ``www.…`` and bare
domains on common top-level domains (twitter-text knows every TLD); emoji are recognised by their
Unicode blocks, not the full emoji table (a keycap such as 1️⃣ counts 5, not 2). Cashtags are
twitter-text's pattern (``$`` then 1–6 letters, optionally ``.``/``_`` and 1–2 letters, not inside a
word); every occurrence counts, so ``$SPY … $SPY`` is two (stricter than X may be: safe for a sender).
"""

from __future__ import annotations

import re
import unicodedata

MAX_WEIGHTED = 280
URL_WEIGHT = 23
URL = re.compile(r"(?:https?://|www\.)\S+"
                 r"|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|net|org|io|co|ly|me|app|dev|ai|gg|info|biz|xyz)"
                 r"\b(?:/\S*)?", re.IGNORECASE)
CASHTAG = re.compile(r"(?<![\w$])\$[a-z]{1,6}(?:[._][a-z]{1,2})?(?!\w)", re.IGNORECASE)
LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
EMOJI = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x2300, 0x23FF))
REGIONAL = (0x1F1E6, 0x1F1FF)
ZWJ = 0x200D
EMOJI_TAIL = ((0xFE0E, 0xFE0F), (0x1F3FB, 0x1F3FF), (0xE0020, 0xE007F), (0x20E3, 0x20E3), (ZWJ, ZWJ))


def weighted_length(text: str) -> int:
    """The length X checks against 280."""
    text = unicodedata.normalize("NFC", text)
    total, pos = 0, 0
    for m in URL.finditer(text):
        total += _weigh(text[pos:m.start()]) + URL_WEIGHT
        pos = m.end()
    return total + _weigh(text[pos:])


def cashtags(text: str) -> list[str]:
    """Every cashtag in ``text``, in order, as written."""
    return CASHTAG.findall(text)


def _within(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def _weigh(segment: str) -> int:
    total = 0
    in_emoji = joined = flag_open = False
    for ch in segment:
        cp = ord(ch)
        if in_emoji and _within(cp, EMOJI_TAIL):  # part of the emoji before it
            joined = cp == ZWJ
            continue
        if REGIONAL[0] <= cp <= REGIONAL[1]:  # a flag is two regional indicators, weighing 2 together
            total += 0 if flag_open else 2
            flag_open, in_emoji, joined = not flag_open, True, False
            continue
        flag_open = False
        if _within(cp, EMOJI):
            total += 0 if joined else 2
            in_emoji, joined = True, False
            continue
        in_emoji = joined = False
        total += 1 if _within(cp, LIGHT) else 2
    return total
