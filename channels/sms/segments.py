"""SMS segments: which alphabet a text needs, how many segments it takes, and shortening.

GSM-7 carries 160 septets in one segment, 153 per segment once concatenated (the rest is the
UDH); characters of its extension table take two septets. Anything outside GSM-7 sends the
whole text as UCS-2: 70 UTF-16 units alone, 67 per segment concatenated.
"""

from __future__ import annotations

from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

_SINGLE = {"gsm7": 160, "ucs2": 70}
_MULTI = {"gsm7": 153, "ucs2": 67}
MIN_BODY = 30
"""Units of the body a shortened text keeps at least beside its link: the link carries the
rest (a thread page link is ~95 characters, and a UCS-2 segment holds 67)."""
ELLIPSIS = "..."
"""Three dots, not '…': that one is not GSM-7 and would halve the room."""


def encoding(text: str) -> Encoding:
    ok = _GSM_BASIC | _GSM_EXTENDED
    return "gsm7" if all(c in ok for c in text) else "ucs2"


def _units(c: str, enc: Encoding) -> int:
    if enc == "gsm7":
        return 2 if c in _GSM_EXTENDED else 1
    return 2 if ord(c) > 0xFFFF else 1


def length(text: str, enc: Encoding | None = None) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    enc = enc or encoding(text)
    return sum(_units(c, enc) for c in text)


def segments(text: str) -> int:
    enc = encoding(text)
    n = length(text, enc)
    if n <= _SINGLE[enc]:
        return 1
    return -(-n // _MULTI[enc])


def capacity(budget: int, enc: Encoding) -> int:
    """Units that surely fit in ``budget`` segments. One unit per boundary is held back:
    an escape pair or a surrogate pair is never split across two segments."""
    if budget <= 1:
        return _SINGLE[enc]
    return _MULTI[enc] * budget - (budget - 1)


def fit(body: str, tail: str = "", budget: int = 2, link: str | None = None) -> str:
    """``body`` + ``tail`` in at most ``budget`` segments; a shortened body ends in '...' and
    the link (to the whole text) goes before the tail, which is always kept. When the link
    would leave less than MIN_BODY units of the body, it is left out."""
    whole = body + tail
    if segments(whole) <= budget:
        return whole
    for more in ([f"{ELLIPSIS} {link}"] if link else []) + [ELLIPSIS]:
        enc = encoding(whole + more)
        room = capacity(budget, enc) - length(more + tail, enc)
        if room >= MIN_BODY or more == ELLIPSIS:
            break
    kept: list[str] = []
    used = 0
    for c in body:
        used += _units(c, enc)
        if used > room:
            break
        kept.append(c)
    cut = "".join(kept)
    space = cut.rfind(" ")
    if space > 0 and space > len(cut) - 20:  # end on a word when one ends near the cut
        cut = cut[:space]
    return cut.rstrip() + more + tail
