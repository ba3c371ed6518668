"""SMS text without I/O: phone numbers in E.164, segment counting, STOP replies.

Segments: an SMS carries 160 GSM-7 characters (the GSM 03.38 default alphabet; ``€ [ ] { } \\
^ ~ |`` take two) or 70 UCS-2 characters once any other character appears (an emoji, ``œ``,
``Ç``…); a longer message is split into parts of 153 / 67 (the rest is the concatenation
header), and the operator bills every part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_SEPARATORS = re.compile(r"[\s.\-()/\u00a0]")

#: GSM 03.38 default alphabet (one septet each) and its extension table (two septets each).
GSM7_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = set("^{}\\[~]|€\f")
#: characters per message: (single, per part once split)
GSM7_LIMITS = (160, 153)
UCS2_LIMITS = (70, 67)
#: a longer SMS is refused by SNS (1,600 bytes) — and nobody reads ten parts
MAX_SEGMENTS = 10


def normalise_phone(value: Any, default_calling_code: str | None = None) -> str | None:
    """A phone number in E.164 (``+33612345678``), or None if it is not one.

    Spaces, dots, dashes, slashes and brackets are ignored; ``00`` is the international prefix.
    A national number (leading ``0``, e.g. ``06 12 34 56 78``) takes ``default_calling_code``
    (``33``) in place of its trunk ``0`` when one is given; without one it is not E.164."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = _SEPARATORS.sub("", str(value))
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("0") and default_calling_code and text[1:2] != "0":
        text = f"+{default_calling_code}{text[1:]}"
    return text if E164.match(text) else None


@dataclass(frozen=True)
class Segments:
    encoding: str  # GSM-7 | UCS-2
    characters: int  # in the encoding's units (a GSM-7 extension character counts two)
    count: int


def count_segments(text: str) -> Segments:
    """How many SMS parts ``text`` takes, in which encoding."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, part, encoding = *GSM7_LIMITS, "GSM-7"
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)  # UTF-16 code units
        single, part, encoding = *UCS2_LIMITS, "UCS-2"
    count = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, count)


#: Keywords of an inbound reply that opt the number out (AWS's own list, plus French).
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT",
                           "ARRET", "ARRÊT", "STOP SMS", "DESABONNER", "DÉSABONNER"})


def is_stop_reply(body: str | None) -> bool:
    """Whether an inbound SMS (its keyword or its text) asks to stop."""
    words = " ".join((body or "").strip().upper().split())
    return words in STOP_KEYWORDS or words.split(" ")[0] in STOP_KEYWORDS if words else False
