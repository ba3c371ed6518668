"""Segment calls → warehouse rows (SPEC §5), with every rejected line quarantined and explained.

``parse_events`` is pure (bytes in, rows out) and ``load_events_file`` writes one file in one
transaction, so a file is either wholly loaded or not at all, and loading it again changes
nothing: events dedupe on ``messageId``, traits keep the value of the latest call whatever
the arrival order, orders and consent changes are insert-if-absent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from relance.warehouse import Warehouse

# Segment e-commerce v2 + the product's own events (SPEC §5) → properties they must carry.
TRACK_EVENTS: dict[str, tuple[str, ...]] = {
    "Products Searched": (),
    "Product List Viewed": (),
    "Product Viewed": ("product_id",),
    "Product Added": ("product_id",),
    "Product Removed": ("product_id",),
    "Cart Viewed": (),
    "Checkout Started": (),
    "Order Completed": ("order_id", "products"),
    "Order Refunded": ("order_id",),
    "Order Cancelled": ("order_id",),
    "Product Added to Wishlist": ("product_id",),
    "Product Removed from Wishlist": ("product_id",),
    "Signed Up": (),
    "Back In Stock Requested": ("product_id",),
    "Email Unsubscribed": (),
    "Loyalty Points Updated": ("points_balance",),
}
TRAIT_FIELDS = ("email", "first_name", "last_name", "phone", "birthday", "locale", "timezone", "created_at")
CONSENT_TRAITS = {"email_opt_in": "email", "sms_opt_in": "sms"}


class Reject(ValueError):
    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass
class ParsedBatch:
    source_file: str
    lines: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    traits: list[dict[str, Any]] = field(default_factory=list)
    consent: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_items: list[dict[str, Any]] = field(default_factory=list)
    status_orders: set[str] = field(default_factory=set)
    quarantine: list[dict[str, Any]] = field(default_factory=list)


def parse_timestamp(value: Any, field_name: str = "timestamp") -> datetime:
    if not isinstance(value, str) or not value:
        raise Reject(field_name, f"missing or non-string {field_name}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Reject(field_name, f"unparseable {field_name} {value[:40]!r} (expected ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _number(value: Any, field_name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Reject(field_name, f"{field_name} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise Reject(field_name, f"{field_name} is not finite: {value!r}")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _bool_flag(value: Any, field_name: str) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return "1" if value.lower() == "true" else "0"
    raise Reject(f"traits.{field_name}", f"traits.{field_name} must be a boolean, got {value!r}")


def parse_call(call: Any, batch: ParsedBatch, now: datetime) -> None:
    """Validate one decoded call and append its rows to ``batch`` (raises Reject)."""
    if not isinstance(call, dict):
        raise Reject(None, "line is not a JSON object")
    message_id = call.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise Reject("messageId", "missing messageId")
    kind = call.get("type")
    if kind not in ("identify", "track"):
        raise Reject("type", f"unsupported type {kind!r} (expected identify or track)")
    occurred_at = parse_timestamp(call.get("timestamp"))
    user_id = _text(call.get("userId")) or None
    anonymous_id = _text(call.get("anonymousId")) or None

    if kind == "identify":
        if not user_id:
            raise Reject("userId", "identify without userId")
        traits = call.get("traits")
        if not isinstance(traits, dict):
            raise Reject("traits", "identify without a traits object")
        trait_rows = []
        for name in TRAIT_FIELDS:
            if name in traits and traits[name] is not None:
                value = traits[name]
                if name == "birthday":
                    try:
                        datetime.strptime(str(value), "%Y-%m-%d")
                    except ValueError:
                        raise Reject("traits.birthday", f"birthday {value!r} is not YYYY-MM-DD") from None
                if name == "created_at":
                    value = parse_timestamp(value, "traits.created_at").strftime("%Y-%m-%d %H:%M:%S")
                if name == "email":
                    value = str(value).strip()
                trait_rows.append((name, str(value)))
        for name, channel in CONSENT_TRAITS.items():
            if name in traits and traits[name] is not None:
                flag = _bool_flag(traits[name], name)
                trait_rows.append((name, flag))
                batch.consent.append({"message_id": message_id, "customer_id": user_id, "channel": channel,
                                      "opt_in": flag == "1", "changed_at": occurred_at, "source": "identify"})
        for name, value in trait_rows:
            batch.traits.append({"customer_id": user_id, "trait": name, "value": value,
                                 "observed_at": occurred_at, "message_id": message_id})
        properties, event = traits, None
        product_id = order_id = None
    else:
        event = call.get("event")
        if event not in TRACK_EVENTS:
            raise Reject("event", f"unknown event name {event!r}")
        if not user_id and not anonymous_id:
            raise Reject("userId", "track call without userId or anonymousId")
        properties = call.get("properties") or {}
        if not isinstance(properties, dict):
            raise Reject("properties", "properties is not an object")
        for required in TRACK_EVENTS[event]:
            if properties.get(required) in (None, ""):
                raise Reject(f"properties.{required}", f"{event} without properties.{required}")
        product_id = _text(properties.get("product_id"))
        order_id = _text(properties.get("order_id"))
        if event == "Order Completed":
            if not user_id:
                raise Reject("userId", "Order Completed without userId")
            products = properties["products"]
            if not isinstance(products, list) or not products:
                raise Reject("properties.products", "Order Completed with no products")
            items = []
            for i, item in enumerate(products, start=1):
                if not isinstance(item, dict) or item.get("product_id") in (None, ""):
                    raise Reject(f"properties.products[{i - 1}].product_id", "order line without product_id")
                quantity = _number(item.get("quantity", 1), f"properties.products[{i - 1}].quantity")
                price = _number(item.get("price", 0), f"properties.products[{i - 1}].price")
                items.append({"order_id": order_id, "line_no": i, "product_id": str(item["product_id"]),
                              "quantity": int(quantity), "price": price})
            revenue = properties.get("revenue", properties.get("total"))
            revenue = _number(revenue, "properties.revenue") if revenue is not None else \
                sum(i["quantity"] * i["price"] for i in items)
            batch.orders.append({"order_id": order_id, "customer_id": user_id, "ordered_at": occurred_at,
                                 "revenue": revenue, "currency": _text(properties.get("currency")),
                                 "status": "completed", "status_at": occurred_at, "message_id": message_id})
            batch.order_items.extend(items)
            batch.status_orders.add(order_id)
        elif event in ("Order Refunded", "Order Cancelled"):
            batch.status_orders.add(order_id)
        elif event == "Loyalty Points Updated":
            _number(properties["points_balance"], "properties.points_balance")
        elif event == "Email Unsubscribed":
            if not user_id:
                raise Reject("userId", "Email Unsubscribed without userId")
            batch.consent.append({"message_id": message_id, "customer_id": user_id, "channel": "email",
                                  "opt_in": False, "changed_at": occurred_at, "source": "unsubscribe_event"})
            batch.traits.append({"customer_id": user_id, "trait": "email_opt_in", "value": "0",
                                 "observed_at": occurred_at, "message_id": message_id})

    batch.events.append({
        "message_id": message_id, "type": kind, "event": event, "customer_id": user_id,
        "anonymous_id": anonymous_id, "occurred_at": occurred_at, "product_id": product_id,
        "order_id": order_id, "properties": json.dumps(properties, separators=(",", ":"), ensure_ascii=False),
        "source_file": batch.source_file, "loaded_at": now,
    })


def parse_events(data: bytes, source_file: str, now: datetime) -> ParsedBatch:
    """Parse a JSONL file's bytes. Bad lines go to ``batch.quarantine`` with field and reason."""
    batch = ParsedBatch(source_file=source_file)
    seen: set[str] = set()
    for line_no, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        batch.lines += 1
        text = raw.decode("utf-8", errors="replace")
        try:
            try:
                call = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Reject(None, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
            if isinstance(call, dict) and call.get("messageId") in seen:
                continue  # duplicate delivery inside the same file
            parse_call(call, batch, now)
            seen.add(call["messageId"])
        except Reject as rej:
            batch.quarantine.append({"source_file": source_file, "line_no": line_no, "raw": text,
                                     "field": rej.field, "reason": rej.reason, "quarantined_at": now})
    return batch


def load_batch(wh: Warehouse, batch: ParsedBatch, size_bytes: int | None, now: datetime) -> dict[str, int]:
    """Write one parsed file in one transaction; idempotent."""
    # Within one file the latest call per (customer, trait) wins; across files the SQL decides.
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in batch.traits:
        key = (row["customer_id"], row["trait"])
        if key not in latest or (row["observed_at"], row["message_id"]) > (
                latest[key]["observed_at"], latest[key]["message_id"]):
            latest[key] = row
    batch_id = batch.source_file
    with wh.begin() as conn:
        new_events = wh.insert_rows("events", batch.events, conn, on_conflict_do_nothing=["message_id"])
        wh.execute("ingest/clear_stage_traits", {"batch_id": batch_id}, conn)
        wh.insert_rows("stage_customer_traits", [{**r, "batch_id": batch_id} for r in latest.values()], conn)
        wh.execute("ingest/merge_customer_traits", {"batch_id": batch_id}, conn)
        wh.execute("ingest/clear_stage_traits", {"batch_id": batch_id}, conn)
        wh.insert_rows("consent_changes", batch.consent, conn, on_conflict_do_nothing=["message_id", "channel"])
        wh.insert_rows("orders", batch.orders, conn, on_conflict_do_nothing=["order_id"])
        wh.insert_rows("order_items", batch.order_items, conn, on_conflict_do_nothing=["order_id", "line_no"])
        order_ids = sorted(batch.status_orders)
        for start in range(0, len(order_ids), 500):
            wh.execute("ingest/apply_order_status", {"order_ids": order_ids[start:start + 500]}, conn)
        refresh_customers(wh, conn, sorted({r["customer_id"] for r in latest.values()}))
        quarantined = wh.insert_rows("quarantine", batch.quarantine, conn,
                                     on_conflict_do_nothing=["source_file", "line_no"])
        wh.insert_rows("ingest_files", [{
            "source_file": batch.source_file, "kind": "events", "size_bytes": size_bytes, "lines": batch.lines,
            "loaded": new_events, "duplicates": len(batch.events) - new_events,
            "quarantined": len(batch.quarantine), "loaded_at": now}], conn, on_conflict_do_nothing=["source_file"])
    return {"lines": batch.lines, "loaded": new_events, "duplicates": len(batch.events) - new_events,
            "quarantined": len(batch.quarantine), "new_quarantine_rows": quarantined}


def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "1"


def refresh_customers(wh: Warehouse, conn, customer_ids: list[str]) -> None:
    """Fold ``customer_traits`` into ``customers`` for the customers a batch touched."""
    for start in range(0, len(customer_ids), 1000):
        ids = customer_ids[start:start + 1000]
        rows = wh.query("ingest/customer_traits_for", {"customer_ids": ids}, conn)
        folded: dict[str, dict[str, Any]] = {}
        for row in rows:
            cust = folded.setdefault(row["customer_id"], {"customer_id": row["customer_id"], "updated_at": None})
            cust[row["trait"]] = row["value"]
            observed = row["observed_at"]
            if isinstance(observed, str):
                observed = datetime.fromisoformat(observed)
            if cust["updated_at"] is None or observed > cust["updated_at"]:
                cust["updated_at"] = observed
        out = []
        for cust in folded.values():
            birthday = cust.get("birthday")
            created = cust.get("created_at")
            out.append({
                "customer_id": cust["customer_id"], "email": cust.get("email"),
                "first_name": cust.get("first_name"), "last_name": cust.get("last_name"),
                "phone": cust.get("phone"), "birthday": birthday,
                "birthday_mmdd": birthday[5:10] if birthday else None,
                "locale": cust.get("locale"), "timezone": cust.get("timezone"),
                "created_at": datetime.fromisoformat(created) if created else None,
                "email_opt_in": _flag(cust.get("email_opt_in")), "sms_opt_in": _flag(cust.get("sms_opt_in")),
                "updated_at": cust["updated_at"],
            })
        wh.execute("ingest/delete_customers", {"customer_ids": ids}, conn)
        wh.insert_rows("customers", out, conn)
