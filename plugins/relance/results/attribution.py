"""Last-touch attribution of orders to messages (SPEC §9 ``conversions``).

An order is credited to the message of the customer's **last touch** before it: a click within
``click_days`` before the order, or an open within ``open_days`` (Variables
``tm_attribution_click_days`` = 5, ``tm_attribution_open_days`` = 1). The most recent eligible
touch wins (a click over an open at the same second). Only marketing messages that were sent
count — receipts and other transactional mail are never credited — and only orders still
``completed``. An order is credited at most once (a unique index on ``conversions.order_id``).

Attribution is by order day: the run for day D replaces the conversions of the orders placed
on D (``report_date`` = D), so a re-run or a backfill replaces, never duplicates. It also
restates the :data:`RESTATE_DAYS` days before D: orders and SES events that landed after the
previous run (the last hour's orders, the last 15 minutes' clicks) are credited the next day.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from relance.timeutil import utc
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)
_TOUCH_RANK = {"Click": 1, "Open": 0}
#: Days before the run's own that each run attributes again (late orders and events).
RESTATE_DAYS = 1


def choose_touch(ordered_at: datetime, touches: list[dict[str, Any]], click_days: int,
                 open_days: int) -> dict[str, Any] | None:
    """The touch an order is credited to, or None (pure: the rule in one place)."""
    best, best_key = None, None
    for touch in touches:
        at = utc(touch["occurred_at"])
        window = timedelta(days=click_days if touch["event_type"] == "Click" else open_days)
        if not ordered_at - window <= at <= ordered_at:
            continue
        key = (at, _TOUCH_RANK[touch["event_type"]], touch["send_key"])
        if best_key is None or key > best_key:
            best, best_key = touch, key
    return best


def days_of(start: datetime, end: datetime, restate_days: int = 0) -> list[date]:
    """The UTC days an interval [start, end) touches (at least the day before ``end``), and the
    ``restate_days`` days before them."""
    first = utc(start).date() - timedelta(days=restate_days)
    last = (utc(end) - timedelta(seconds=1)).date()
    out = [first]
    while out[-1] < last:
        out.append(out[-1] + timedelta(days=1))
    return out


def attribute_days(wh: Warehouse, days: list[date], click_days: int, open_days: int) -> dict[str, int]:
    """(Re)compute the conversions of the orders placed on ``days``, in one transaction."""
    counts = {"orders": 0, "attributed": 0, "revenue": 0.0}
    longest = timedelta(days=max(click_days, open_days))
    with wh.begin() as conn:
        wh.execute("report/delete_conversions", {"report_dates": days}, conn)
        for day in days:
            start = utc(datetime(day.year, day.month, day.day))
            end = start + timedelta(days=1)
            orders = wh.query("report/orders_between", {"start": start, "end": end}, conn)
            counts["orders"] += len(orders)
            customers = sorted({o["customer_id"] for o in orders})
            touches: dict[str, list[dict[str, Any]]] = {}
            for chunk_start in range(0, len(customers), 500):
                chunk = customers[chunk_start:chunk_start + 500]
                for touch in wh.query("report/touches_of_customers", {
                        "customer_ids": chunk, "since": start - longest, "until": end}, conn):
                    touches.setdefault(touch["customer_id"], []).append(touch)
            rows = []
            for order in orders:
                ordered_at = utc(order["ordered_at"])
                touch = choose_touch(ordered_at, touches.get(order["customer_id"], []), click_days, open_days)
                if touch is None:
                    continue
                rows.append({"order_id": order["order_id"], "send_key": touch["send_key"],
                             "campaign_id": touch["campaign_id"], "customer_id": order["customer_id"],
                             "converted_at": ordered_at, "revenue": order["revenue"], "step": touch["step"],
                             "variant": touch["variant"], "touch": touch["event_type"].lower(),
                             "touched_at": utc(touch["occurred_at"]), "report_date": day})
            wh.insert_rows("conversions", rows, conn)
            counts["attributed"] += len(rows)
            counts["revenue"] += sum(r["revenue"] or 0 for r in rows)
    log.info("attribution of %s: %s", [d.isoformat() for d in days], counts)
    return counts
