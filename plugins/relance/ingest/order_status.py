"""Order status changes reported by Segment calls (the input of the ``order_status`` notices).

* ``Order Updated`` with ``properties.status`` ``shipped`` (with ``carrier``, ``tracking_url``,
  ``tracking_number``; camelCase ``trackingUrl``/``trackingNumber`` accepted) or ``delivered``;
  any other status (``processing``, ``on_hold``…) or none: the call loads as an event, no change;
* ``Order Cancelled`` → ``cancelled``, ``Order Refunded`` → ``refunded``.

Hostile input: a tracking URL that is not a plain ``http(s)://host/…`` URL (``javascript:``,
``data:``, credentials before the host, spaces or control characters, over 2,048 characters) is
dropped with its reason and the change loads without it; carrier and tracking number are text
cut to 100 characters with line breaks and control characters turned into spaces (the templates
escape them again). A leaf: imports nothing from ``relance``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

#: Order Updated statuses that become a status change (and a notice)
UPDATED_STATUSES = ("shipped", "delivered")
#: the status change each dedicated event reports
EVENT_STATUSES = {"Order Cancelled": "cancelled", "Order Refunded": "refunded"}
MAX_URL_CHARS = 2048
MAX_TEXT_CHARS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def _first(properties: dict[str, Any], *names: str) -> tuple[str, Any]:
    for name in names:
        if properties.get(name) not in (None, ""):
            return name, properties[name]
    return names[0], None


def tracking_url_problem(value: Any) -> str | None:
    """Why ``value`` is not a tracking URL a message may link to (None: it is one)."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if len(value) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS} characters"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme[:20]!r} is not http or https" if parts.scheme else "not an absolute http(s) URL"
    if not host:
        return "no host"
    if "@" in parts.netloc:
        return "credentials before the host"
    return None


def _plain_text(value: Any) -> str | None:
    text = _CONTROL.sub(" ", str(value)).strip()
    return text[:MAX_TEXT_CHARS] or None


def order_status_change(event: str, properties: dict[str, Any]) -> tuple[dict[str, Any] | None, list[tuple[str, Any, str]]]:
    """The status change a call reports: ``({status, carrier, tracking_url, tracking_number}
    or None, [(field, value, reason) of each field dropped]``."""
    drops: list[tuple[str, Any, str]] = []
    change: dict[str, Any] = {"status": None, "carrier": None, "tracking_url": None, "tracking_number": None}
    if event in EVENT_STATUSES:
        return {**change, "status": EVENT_STATUSES[event]}, drops
    status = properties.get("status")
    if status is None:
        return None, drops
    if not isinstance(status, str):
        drops.append(("properties.status", status, f"properties.status must be a string, got {type(status).__name__}"))
        return None, drops
    status = status.strip().lower()
    if status not in UPDATED_STATUSES:
        return None, drops
    change["status"] = status
    if status != "shipped":
        return change, drops
    for column, names in (("carrier", ("carrier", "shipping_carrier")),
                          ("tracking_number", ("tracking_number", "trackingNumber"))):
        name, value = _first(properties, *names)
        if value is None:
            continue
        if isinstance(value, dict | list | bool):
            drops.append((f"properties.{name}", value, f"properties.{name} must be text, got {type(value).__name__}"))
        else:
            change[column] = _plain_text(value)
    name, value = _first(properties, "tracking_url", "trackingUrl")
    if value is not None:
        problem = tracking_url_problem(value)
        if problem:
            drops.append((f"properties.{name}", value, f"properties.{name} dropped: {problem}"))
        else:
            change["tracking_url"] = value
    return change, drops
