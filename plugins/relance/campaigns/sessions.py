"""Trigger transforms that cut shopper activity into sessions (see :mod:`.transforms`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from relance.campaigns.transforms import transform
from relance.timeutil import utc

#: A cart left alone longer than this (the whole reminder series: 48 h) is over; activity
#: after such a pause is a new cart with a series of its own.
CART_PAUSE = timedelta(hours=48)


@transform("cart_sessions")
def cart_sessions(rows: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """Cart events (one row each: customer_id, message_id, occurred_at, planned) → one trigger
    per cart: ``trigger_id`` (stable identity), ``trigger_at`` (latest activity: reminders
    count from it) and ``cart_started_at`` (context: what the cart holds is what was added
    since).

    A cart is a run of events with no pause longer than :data:`CART_PAUSE`. Its identity is
    the event an earlier run already planned reminders for, if any (so an earlier event that
    arrives late joins the cart instead of starting a second series — adding events can merge
    carts, never split them), else its first event.
    """
    out = []
    for customer_id, events in groupby(rows, key=lambda r: r["customer_id"]):
        ordered = sorted(events, key=lambda r: (utc(r["occurred_at"]), r["message_id"]))
        carts: list[list[dict[str, Any]]] = []
        for event in ordered:
            if carts and utc(event["occurred_at"]) - utc(carts[-1][-1]["occurred_at"]) <= CART_PAUSE:
                carts[-1].append(event)
            else:
                carts.append([event])
        for cart in carts:
            planned = [e["message_id"] for e in cart if int(e["planned"] or 0)]
            out.append({"customer_id": customer_id,
                        "trigger_id": planned[-1] if planned else cart[0]["message_id"],
                        "trigger_at": utc(cart[-1]["occurred_at"]),
                        "cart_started_at": utc(cart[0]["occurred_at"])})
    return out
