"""Building the raw MIME message: validated headers, text + HTML parts, RFC 8058 unsubscribe.

Raw content (rather than SES "Simple") so the message SES sends is exactly the one built and
tested here, unsubscribe headers included.
"""

from __future__ import annotations

import email.policy
import functools
import hashlib
import hmac
import random
from dataclasses import dataclass, field
from email import quoprimime
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from urllib.parse import urlencode

from email_validator import EmailNotValidError, validate_email


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, but each header's class made once: the stock registry
    builds a new class for every header of every message (a third of the time to build one)."""

    def __init__(self):
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        made = self._made.get(name.lower())
        if made is None:
            made = self._made[name.lower()] = super().__getitem__(name)
        return made


#: CRLF line ends, and no folding of long header values: a folded (or RFC 2047-encoded)
#: List-Unsubscribe URL is not a URL any more.
POLICY = email.policy.SMTP.clone(max_line_length=998, header_factory=_HeaderClasses())


class HeaderError(ValueError):
    pass


def check_header_value(name: str, value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise HeaderError(f"header {name} contains a line break or NUL: {value[:60]!r}")
    return value


def check_address(value: str | None, name: str = "address") -> str:
    """A deliverable-looking address (syntax only, no DNS); raises HeaderError."""
    if not value:
        raise HeaderError(f"missing {name}")
    check_header_value(name, value)
    return _validated(value, name)


@functools.lru_cache(maxsize=64)
def _validated(value: str, name: str) -> str:
    """(The sender is the same for every message of a batch: validated once.)"""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise HeaderError(f"invalid {name} {value[:60]!r}: {exc}") from None


def unsubscribe_token(customer_id: str, campaign_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"{customer_id}\x1f{campaign_id}".encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_url(base_url: str, customer_id: str, campaign_id: str, secret: str) -> str:
    query = urlencode({"c": customer_id, "k": campaign_id,
                       "t": unsubscribe_token(customer_id, campaign_id, secret)})
    return f"{base_url}?{query}"


@dataclass
class RawMessage:
    """A message ready for SES's Raw content: its envelope addresses, its headers (to read
    them: ``message["List-Unsubscribe"]``, None when absent) and its bytes (CRLF line ends)."""

    sender: str
    to: str
    headers: dict[str, str]
    raw: bytes = field(repr=False)

    def __getitem__(self, name: str) -> str | None:
        return self.headers.get(name)

    def as_bytes(self) -> bytes:
        return self.raw


def build_message(*, sender: str, to: str, subject: str, text: str, html: str, send_key: str,
                  unsubscribe: str | None = None, sender_name: str | None = None) -> RawMessage:
    """The message to hand to SES as Raw content (multipart/alternative: text, then HTML);
    every header validated first.

    Serialised here rather than by ``email.message.EmailMessage``, whose header parsing and
    generator (a regular expression compiled per message for its boundary) cost more than the
    rest of preparing a send. The stdlib still encodes what needs encoding (RFC 2047 words for
    non-ASCII headers, quoted-printable bodies); :func:`build_email_message` builds the same
    message with ``EmailMessage``, the reference the tests compare this with, and the path for
    an address that is not ASCII (SMTPUTF8)."""
    from_addr = check_address(sender, "From")
    to_addr = check_address(to, "To")
    subject = check_header_value("Subject", subject)
    check_header_value("X-Relance-Send-Key", send_key)
    if unsubscribe:
        check_header_value("List-Unsubscribe", unsubscribe)
    if not (from_addr.isascii() and to_addr.isascii() and send_key.isascii()
            and (unsubscribe is None or unsubscribe.isascii())):
        message = build_email_message(sender=sender, to=to, subject=subject, text=text, html=html,
                                      send_key=send_key, unsubscribe=unsubscribe, sender_name=sender_name)
        return RawMessage(from_addr, str(message["To"]), {k: str(v) for k, v in message.items()},
                          message.as_bytes())
    domain = from_addr.partition("@")[2]
    parts = [_part("plain", text), _part("html", html)]
    boundary = _boundary(text, html)
    headers = {
        "From": formataddr((sender_name or "", from_addr), charset="utf-8"),
        "To": to_addr,
        "Subject": _unstructured(subject),
        "Date": formatdate(usegmt=True),
        "Message-ID": make_msgid(idstring=send_key, domain=domain),
        "X-Relance-Send-Key": send_key,
    }
    if unsubscribe:
        # RFC 8058: an HTTPS URI plus the one-click POST marker (never folded: a folded URL is no URL).
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["MIME-Version"] = "1.0"
    headers["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    lines = [f"{k}: {v}" for k, v in headers.items()]
    lines.append("")
    for part in parts:
        lines += ["--" + boundary, part]
    lines += ["--" + boundary + "--", ""]
    return RawMessage(from_addr, to_addr, headers, "\r\n".join(lines).encode("ascii"))


def _unstructured(value: str) -> str:
    """An unstructured header's value: as it is when ASCII, else RFC 2047 encoded words."""
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n")


def _part(subtype: str, body: str) -> str:
    """One text part, headers and body, CRLF line ends: 7bit when ASCII with lines of at most
    998 characters, else quoted-printable of the UTF-8 bytes."""
    lines = body.splitlines() or [""]
    if body.isascii() and all(len(line) <= 998 for line in lines):
        encoding, payload = "7bit", "\r\n".join(lines)
    else:
        raw = "\n".join(lines).encode("utf-8").decode("latin-1")
        encoding, payload = "quoted-printable", quoprimime.body_encode(raw, 76, eol="\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n{payload}\r\n")  # its last line ends too


_BOUNDARIES = random.Random()  # seeded once from the OS; a boundary must be absent from its bodies, not secret


def _boundary(*bodies: str) -> str:
    """A boundary none of the parts contains (``=_`` never occurs in quoted-printable). Drawn
    from a PRNG seeded once, not ``os.urandom`` per message (a system call, where the send loop
    hands the GIL to a courier thread): the loop below makes it absent from the bodies."""
    while True:
        boundary = f"=_relance_{_BOUNDARIES.getrandbits(96):024x}"
        if not any(boundary in body for body in bodies):
            return boundary


def build_email_message(*, sender: str, to: str, subject: str, text: str, html: str, send_key: str,
                        unsubscribe: str | None = None, sender_name: str | None = None) -> EmailMessage:
    """The same message built by the stdlib's ``EmailMessage`` (see :func:`build_message`)."""
    from_addr = check_address(sender, "From")
    to_addr = check_address(to, "To")
    subject = check_header_value("Subject", subject)
    msg = EmailMessage(policy=POLICY)
    local, _, domain = from_addr.partition("@")
    msg["From"] = Address(display_name=sender_name or "", username=local, domain=domain)
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(idstring=send_key, domain=domain)
    msg["X-Relance-Send-Key"] = check_header_value("X-Relance-Send-Key", send_key)
    if unsubscribe:
        check_header_value("List-Unsubscribe", unsubscribe)
        # RFC 8058: an HTTPS URI plus the one-click POST marker.
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
