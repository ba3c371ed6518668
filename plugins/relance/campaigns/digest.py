"""Digests instead of silence (issue 12): when a customer's next digest goes out, and its key.

A marketing message of a campaign with ``digest: true`` that loses the daily cap is folded into
the customer's next digest — the ``digest`` campaign's one email, on the local day after the day
whose cap was full (or, with the Variable ``tm_digest_every`` set to a weekday, on the next such
local weekday). The folded row keeps the digest's ``send_key`` (``message_log.digest_send_key``),
worked out here from the customer and the digest's local day, exactly as the planner of the
``digest`` campaign writes it (:func:`relance.keys.send_key` of ``digest|YYYY-MM-DD``).

The ``digest_days`` trigger transform turns the folded rows back into the digests to plan: it
finds the local day whose key each folded row holds (a search over a few days around the fold:
the customer's time zone may have changed since, the key may not), so the planner writes the
very row the folded ones point at. A leaf of ``relance.campaigns``: keys, time, transforms.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from relance.campaigns.transforms import transform
from relance.keys import send_key
from relance.timeutil import customer_zone, utc

#: The id of the digest campaign (include/campaigns/digest.yaml): one step, no trigger of its own.
DIGEST_CAMPAIGN = "digest"
#: ``tm_digest_every``: ``day`` (default) or the local weekday of a weekly digest.
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EVERY_DAY = "day"
#: How far from the UTC date of the fold the digest's local day can be (time zones ±14 h, a
#: weekly digest up to 7 days later).
_SEARCH = range(-2, 10)


def digest_day(folded_at: datetime, timezone: str | None, every: str = EVERY_DAY) -> date:
    """The local day of the digest a message folded at ``folded_at`` goes into: the next local
    day (never the day whose cap was full), or the next ``every`` weekday after it."""
    today = utc(folded_at).astimezone(customer_zone(timezone)).date()
    if every == EVERY_DAY:
        return today + timedelta(days=1)
    ahead = (WEEKDAYS.index(every) - today.weekday() - 1) % 7 + 1
    return today + timedelta(days=ahead)


def digest_trigger_id(day: date) -> str:
    return f"digest|{day.isoformat()}"


def digest_send_key(customer_id: str, day: date) -> str:
    """The ``send_key`` of a customer's digest of a local day (the digest campaign's step 1)."""
    return send_key(DIGEST_CAMPAIGN, 1, str(customer_id), digest_trigger_id(day))


@transform("digest_days")
def digest_days(rows: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """Folded rows (``customer_id``, ``digest_send_key``, ``decided_at``, ``timezone``) → one
    trigger per digest: ``trigger_id`` ``digest|YYYY-MM-DD`` and ``trigger_local_date`` (its
    step's delay counts from that local midnight). A key no day near the fold matches (never
    written by this module) plans nothing."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row["digest_send_key"]
        if key in out:
            continue
        around = utc(row["decided_at"]).date()
        for offset in _SEARCH:
            day = around + timedelta(days=offset)
            if digest_send_key(row["customer_id"], day) == key:
                out[key] = {"customer_id": str(row["customer_id"]), "trigger_id": digest_trigger_id(day),
                            "trigger_local_date": day.isoformat(), "timezone": row.get("timezone")}
                break
    return list(out.values())
