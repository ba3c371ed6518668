"""Trigger transforms of the behaviour and catalog campaigns (see :mod:`.transforms`).

* ``browse_local_days`` (browse_abandonment): browsing events → one trigger per customer and
  browsing day *in the customer's time zone*;
* ``price_seen_drops`` (price_drop): interest events × later price cuts → one trigger per
  drop of at least 10 % below the price the shopper saw.

Both need what trigger SQL cannot do portably: a day boundary per customer time zone, and the
``price`` a Segment event carries in its JSON ``properties``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from relance.campaigns.transforms import transform
from relance.timeutil import customer_zone, utc

Rows = list[dict[str, Any]]

#: browsing events a customer needs on one local day to be a browse abandoner (SPEC §8: twice+)
BROWSE_MIN_EVENTS = 2
#: a price drop is news at this fraction of the price the shopper saw, or below (SPEC §8: ≥ 10 %)
PRICE_DROP_RATIO = 0.9
#: float tolerance on prices read from CSV and JSON
PRICE_TOLERANCE = 0.001


def _properties(row: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(row.get("properties") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _search_text(value: Any) -> str:
    """A search term made safe for ``LIKE '%' || term || '%'``: lower-case, no wildcards."""
    if not isinstance(value, str):
        return ""
    return re.sub(r"\s+", " ", re.sub(r"[%_\\]", " ", value)).strip().lower()[:100]


def local_day_start(day: date, timezone: str | None) -> datetime:
    """Midnight of ``day`` in the customer's zone (the shop's default if unknown), in UTC."""
    zone = customer_zone(timezone)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


@transform("browse_local_days")
def browse_local_days(rows: Rows, as_of: datetime) -> Rows:
    """Browsing events (``Product Viewed`` / ``Products Searched``: customer_id, occurred_at,
    event, properties, timezone, last_cart_at, last_ordered_at) → one trigger per customer and
    local calendar day with at least :data:`BROWSE_MIN_EVENTS` of them, and no cart activity
    nor order from that local midnight up to ``as_of``.

    ``trigger_at`` is the local midnight: the step delay (34 h) then means 10:00 local the next
    day, and the exit ``order_placed`` (an order after ``trigger_at``) watches the very window
    the trigger checked — an order earlier that day means no trigger, never a planned row that
    exits at once. Context: ``browse_started_at`` (first event), ``browse_events``,
    ``search_query`` / ``search_category`` (the day's latest, '' if none: the content query
    ``browsed_products`` offers matching products to a search-only session).
    """
    days: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        moment = utc(row["occurred_at"])
        local_day = moment.astimezone(customer_zone(row.get("timezone"))).date()
        days[(str(row["customer_id"]), local_day)].append({**row, "occurred_at": moment})
    out = []
    for (customer_id, day), events in sorted(days.items()):
        if len(events) < BROWSE_MIN_EVENTS:
            continue
        timezone = events[0].get("timezone")
        start = local_day_start(day, timezone)
        if any(row.get(col) is not None and utc(row[col]) > start
               for row in events[:1] for col in ("last_cart_at", "last_ordered_at")):
            continue
        events.sort(key=lambda r: r["occurred_at"])
        query = category = ""
        for event in events:
            if event.get("event") == "Products Searched":
                props = _properties(event)
                query = _search_text(props.get("query")) or query
                category = _search_text(props.get("category")) or category
        out.append({"customer_id": customer_id, "trigger_id": f"browse|{day.isoformat()}", "trigger_at": start,
                    "timezone": timezone, "browse_started_at": events[0]["occurred_at"],
                    "browse_events": len(events), "search_query": query, "search_category": category})
    return out


def seen_price(row: dict[str, Any]) -> float | None:
    """The price the shopper saw at an interest event: the ``price`` its properties carry
    (Segment's Product Viewed / Added do; ignored if their ``currency`` is not the cut's),
    else the catalog price in effect then
    (``snapshot_price``), else the lowest price of the lookback (``lowest_price``)."""
    properties = _properties(row)
    price = properties.get("price")
    event_currency = properties.get("currency")
    if isinstance(event_currency, str) and row.get("currency") and event_currency.strip().upper() != \
            str(row["currency"]).upper():
        price = None  # seen in another currency than the cut's: not comparable
    if isinstance(price, str):
        try:
            price = float(price.replace(",", "."))
        except ValueError:
            price = None
    if isinstance(price, int | float) and not isinstance(price, bool) and price > 0:
        return float(price)
    for column in ("snapshot_price", "lowest_price"):
        if row.get(column) is not None and float(row[column]) > 0:
            return float(row[column])
    return None


@transform("price_seen_drops")
def price_seen_drops(rows: Rows, as_of: datetime) -> Rows:
    """Interest events × the later price cuts of the product (one row each: customer_id,
    product_id, interest_at, properties, snapshot_price, lowest_price, snapshot_date, new_price,
    currency, timezone) → one trigger per (customer, product, drop).

    Walking the product's cuts in date order, the reference is the lowest price the shopper
    saw (:func:`seen_price`) at their interest events before the cut — and, after an alert,
    the price we told them about. A cut to :data:`PRICE_DROP_RATIO` × reference or below is a
    drop: 100 → 130 → 110 is none for who saw 100, while 100 → 95 → 89 is one (on the day of 89).
    """
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        pairs[(str(row["customer_id"]), str(row["product_id"]))].append(row)
    out = []
    for (customer_id, product_id), candidates in sorted(pairs.items()):
        interests = {}
        cuts = {}
        for row in candidates:
            interests[(utc(row["interest_at"]), row.get("properties") or "")] = seen_price(row)
            cuts[str(row["snapshot_date"])[:10]] = row
        told: float | None = None
        for day in sorted(cuts):
            cut = cuts[day]
            cut_start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            seen = [price for (at, _), price in interests.items() if at < cut_start and price is not None]
            if told is not None:
                seen.append(told)
            if not seen:
                continue
            reference, new_price = min(seen), float(cut["new_price"])
            if new_price <= reference * PRICE_DROP_RATIO + PRICE_TOLERANCE:
                out.append({"customer_id": customer_id, "trigger_id": f"{product_id}|{day}",
                            "timezone": cut.get("timezone"),
                            "trigger_at": local_day_start(date.fromisoformat(day), cut.get("timezone")),
                            "product_id": product_id, "old_price": reference, "new_price": new_price,
                            "currency": cut.get("currency")})
                told = new_price
    return out
