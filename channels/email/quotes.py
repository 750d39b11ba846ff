"""Where the quoted history of a reply begins, as the mail clients write it, in many languages.

mail-parser-reply (used in parse.py for signatures and for what this table does not name)
anchors its attribution patterns to one line and one word order per language, so it misses
Gmail's wrapped lines, Spanish with the address in parentheses, Chinese Gmail's name-first
form, Thunderbird's and Apple Mail's localized forms, and has no Portuguese at all; nor does
it know Outlook's header labels in Japanese, or a reply written below the quote. This module
is a table of those forms (tests/email_replies.py holds a fixture for each) and the cut.

Two kinds of marks begin the history:

- an attribution line ("On <date>, <who> wrote:"), possibly wrapped over three lines and
  possibly itself quoted with ``>``. Every form carries a date and a time, and the line must
  end with the verb: a sentence of the reply mentioning a date does not end like that;
- a header block (Outlook): a From line followed by at least two of Sent / To / Subject,
  in the same language, within the next lines.

When nothing was written above the mark (Thunderbird's default is to answer below the quote),
the reply is what follows it, less the quoted lines.
"""

from __future__ import annotations

import re

# An attribution names when: a year or a numeric date, and a time of day.
_DATE = re.compile(r"\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_TIME = re.compile(r"\d{1,2}[:.h]\d{2}")
_ADDRESS = r"<\s*[^<>\s]+@[^<>\s]+\s*>"
_COLON = r"\s?[:\uff1a]"  # Chinese and Japanese clients may write a full-width colon

ATTRIBUTIONS: dict[str, tuple[str, ...]] = {
    # Gmail "On Tue, Nov 24, 2026 at 9:14 AM X <x@y> wrote:", Apple "On Nov 24, 2026, at
    # 09:14, X wrote:", Thunderbird "On 11/24/26 9:14 AM, X wrote:".
    "en": (rf"On\b.+\bwrote{_COLON}",),
    # "Am Di., 24. Nov. 2026 um 09:14 Uhr schrieb X <x@y>:", "Am 24.11.26 um 09:14 schrieb X:"
    "de": (rf"Am\b.+\bschrieb\b.*{_COLON}",),
    # "Le mar. 24 nov. 2026 à 09:14, X <x@y> a écrit :"
    "fr": (rf"Le\b.+\ba\s+écrit{_COLON}",),
    # "El mar, 24 nov 2026 a las 9:14, X (<x@y>) escribió:"
    "es": (rf"El\b.+\bescribió{_COLON}",),
    # "Em ter., 24 de nov. de 2026 às 09:14, X <x@y> escreveu:", "Em 24/11/2026 09:14, X
    # escreveu:", and Outlook for Mac's "Às 09:14 de 24/11/2026, X escreveu:"
    "pt": (rf"(?:Em|Às|No dia)\b.+\bescreveu{_COLON}",),
    # "Il giorno mar 24 nov 2026 alle ore 09:14 X <x@y> ha scritto:", "Il 24/11/26 09:14, X
    # ha scritto:"
    "it": (rf"Il\b.+\bha\s+scritto{_COLON}",),
    # "Op di 24 nov 2026 om 09:14 schreef X <x@y>:", Apple "Op 24 nov. 2026 om 09:14 heeft X
    # het volgende geschreven:"
    "nl": (rf"Op\b.+\b(?:schreef\b.*|het volgende geschreven){_COLON}",),
    # "Den tis 24 nov. 2026 kl 09:14 skrev X <x@y>:", Apple "24 nov. 2026 kl. 09:14 skrev X:"
    "sv": (rf".+\bskrev\b.*{_COLON}",),
    # Gmail "wt., 24 lis 2026 o 09:14 X <x@y> napisał(a):", Thunderbird "W dniu 24.11.2026 o
    # 09:14, X pisze:", Apple "Wiadomość napisana przez X w dniu 24.11.2026, o godz. 09:14:"
    "pl": (
        rf".+\b(?:napisał\(a\)|napisała?|pisze){_COLON}",
        rf"Wiadomość napisana przez\b.+{_COLON}",
    ),
    # Gmail "2026年11月24日(火) 9:14 X <x@y>:", Apple "2026/11/24 9:14、X <x@y>のメール:",
    # Thunderbird "2026/11/24 9:14 に X さんは書きました:"
    "ja": (
        rf"\d{{4}}年\d{{1,2}}月\d{{1,2}}日.*{_ADDRESS}{_COLON}",
        rf".+のメール{_COLON}",
        rf".+さんは書きました{_COLON}",
    ),
    # Gmail "X <x@y> 于2026年11月24日周二 09:14写道:", Apple "2026年11月24日 09:14, X 写道:"
    # (both with full-width punctuation), Thunderbird "在 2026/11/24 09:14, X 写道:"; 寫道 in
    # traditional script.
    "zh": (rf".+[写寫]道{_COLON}",),
}

HEADER_LABELS: dict[str, tuple[str, str, str, str]] = {
    # From, Sent (or Date), To, Subject: Outlook's labels, each a regex alternation.
    "en": ("From", "Sent|Date", "To", "Subject"),
    "de": ("Von", "Gesendet|Datum", "An", "Betreff"),
    "fr": ("De", "Envoyé|Date", "À|A", "Objet"),
    "es": ("De", "Enviado(?: el)?|Fecha", "Para", "Asunto"),
    "pt": ("De", "Enviado|Data", "Para", "Assunto"),
    "it": ("Da", "Inviato|Data", "A", "Oggetto"),
    "nl": ("Van", "Verzonden|Datum", "Aan", "Onderwerp"),
    "sv": ("Från", "Skickat|Datum", "Till", "Ämne"),
    "pl": ("Od", "Wysłano|Wysłane|Data", "Do", "Temat"),
    "ja": ("差出人|送信者", "送信日時|日付", "宛先", "件名"),
    "zh": ("发件人|寄件者", "发送时间|日期|寄件日期", "收件人", "主题|主旨"),
}

DEVICE_LINES: tuple[str, ...] = (
    # What phones add under the reply; dropped only as the reply's last line.
    r"Sent from my \S+.*",
    r"Get Outlook for \S+.*",
    r"Von meinem \S+ gesendet",
    r"Envoyé de mon \S+.*",
    r"Enviado desde mi \S+.*",
    r"Enviado do meu \S+.*",
    r"Inviato da \S+.*",
    r"Verstuurd vanaf mijn \S+.*",
    r"Skickat från min \S+.*",
    r"Wysłane z \S+.*",
    r"\S+から送信",
    r"发自我的\S+",
)

_MAX_LINE = 200
"""Longer lines are never part of a mark; skipping them keeps the scan linear in the mail."""
_WRAP = 3
"""An attribution may be wrapped over this many lines (Gmail wraps at 78 characters)."""
_BLOCK = 5
"""A header block's other labels follow its From line within this many lines."""

_ATTRIBUTION = re.compile(
    "|".join(f"(?:{p})" for forms in ATTRIBUTIONS.values() for p in forms), re.IGNORECASE
)
_FROM = {
    lang: re.compile(rf"[*\s]*(?:{labels[0]})\*?{_COLON}\s*\S", re.IGNORECASE)
    for lang, labels in HEADER_LABELS.items()
}
_ANY_FROM = re.compile(
    rf"[*\s]*(?:{'|'.join(labels[0] for labels in HEADER_LABELS.values())})\*?{_COLON}",
    re.IGNORECASE,
)
_OTHERS = {
    lang: re.compile(rf"[*\s]*(?:{'|'.join(labels[1:])})\*?{_COLON}\s*\S", re.IGNORECASE)
    for lang, labels in HEADER_LABELS.items()
}
_DEVICE = re.compile("|".join(f"(?:{p})" for p in DEVICE_LINES), re.IGNORECASE)
_QUOTE_MARK = re.compile(r"^(?:\s*>)+ ?")
_SEPARATOR = re.compile(r"\s*(?:[-_=]{5,}.*|\*{3,})")


def fresh(text: str) -> str:
    """What the human wrote in this reply: above the first mark of quoted history, or (with
    nothing above it) below it, without the quoted lines; a trailing device line dropped."""
    lines = text.split("\n")
    # Each line once without its quote marks; a line too long to be part of a mark is blank.
    plain = [_unquote(line).strip() if len(line) <= _MAX_LINE else "" for line in lines]
    start = 0
    while (mark := _first_mark(plain, start)) is not None:
        at, length, header = mark
        above = lines[start:at]
        if header or any(line.strip() and not _quoted(line) for line in above):
            break
        start = at + length  # nothing written above it: the answer is below (bottom-posting)
    else:
        at = len(lines)
    kept = lines[start:at]
    if start > 0:  # below a quote, answers sit between the quoted lines
        kept = [line for line in kept if not _quoted(line)]
    return _trim(kept)


def _first_mark(plain: list[str], start: int) -> tuple[int, int, bool] | None:
    """(first line, number of lines, is a header block) of the first mark from ``start``."""
    for i in range(start, len(plain)):
        if not plain[i]:
            continue
        length = _attribution(plain, i)
        if length:
            return i, length, False
        if _header_block(plain, i):
            return i, 1, True
    return None


def _attribution(plain: list[str], i: int) -> int:
    """How many lines from ``i`` form an attribution (0: none starts there)."""
    for length in range(1, _WRAP + 1):
        last = plain[i + length - 1] if i + length <= len(plain) else ""
        if not last:
            return 0
        if not last.endswith((":", "\uff1a")):
            continue  # every form ends with a colon: most lines stop here, cheaply
        candidate = " ".join(plain[i : i + length])
        if (
            _TIME.search(candidate)
            and _DATE.search(candidate)
            and _ATTRIBUTION.fullmatch(candidate)
        ):
            return length
    return 0


def _header_block(plain: list[str], i: int) -> bool:
    """An Outlook From / Sent / To / Subject block starting at line ``i``."""
    if not _ANY_FROM.match(plain[i]):
        return False
    following = plain[i + 1 : i + 1 + _BLOCK]
    for lang, from_label in _FROM.items():
        if from_label.match(plain[i]):
            others = sum(1 for line in following if _OTHERS[lang].match(line))
            if others >= 2:
                return True
    return False


def _trim(lines: list[str]) -> str:
    """Without the blank, quoted, separator and device lines the cut left at the end."""
    lines = list(lines)
    while lines and (
        not lines[-1].strip()
        or _quoted(lines[-1])
        or _SEPARATOR.fullmatch(lines[-1])
        or _DEVICE.fullmatch(lines[-1].strip())
    ):
        lines.pop()
    return "\n".join(lines).strip()


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _unquote(line: str) -> str:
    return _QUOTE_MARK.sub("", line)
