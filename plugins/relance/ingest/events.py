"""Segment calls → warehouse rows (SPEC §5), with every rejected line quarantined and explained.

A file is read as a stream of lines, parsed in chunks (:func:`iter_batches`, pure: lines in,
rows out) and written by :func:`load_events_file` in one transaction, so a file is either wholly
loaded or not at all, its memory stays bounded whatever its size, and loading it again changes
nothing: events dedupe on ``messageId``, traits keep the value of the latest call (to the
microsecond) whatever the arrival order, orders, links and consent changes are insert-if-absent.

Whatever a line holds, it never fails the file: any per-line failure is quarantined with the
reason; a bad trait is dropped (``dropped_fields``) and the rest of the call loads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from relance import settings
from relance.ingest.identity import guest_customer_id
from relance.ingest.order_status import order_status_change
from relance.keys import address_hash
from relance.messaging.sms_text import normalise_phone
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
    "Order Updated": ("order_id",),  # status shipped/delivered → a status notice (ingest/order_status.py)
    "Product Added to Wishlist": ("product_id",),
    "Product Removed from Wishlist": ("product_id",),
    "Signed Up": (),
    "Back In Stock Requested": ("product_id",),
    "Email Unsubscribed": (),
    "Email Subscribed": (),          # an opt-in from a consent source (README "consent")
    "SMS Unsubscribed": (),          # a STOP reply forwarded by the SMS provider (README "SMS")
    "SMS Subscribed": (),
    "Loyalty Points Updated": ("points_balance",),
}
CALL_TYPES = ("identify", "track", "page", "screen", "alias", "group")
TRAIT_FIELDS = ("email", "first_name", "last_name", "phone", "birthday", "locale", "timezone", "created_at")
CONSENT_TRAITS = {"email_opt_in": "email", "sms_opt_in": "sms"}
# A consent decision's own time: with it, an identify's opt-in/out is a *consent update*.
CONSENT_TIME_TRAITS = {"email": ("email_opt_in_at", "consent_updated_at"),
                       "sms": ("sms_opt_in_at", "consent_updated_at")}
MAX_LINE_BYTES = 1 << 20          # a longer line is quarantined (truncated) without being parsed
MAX_RAW_CHARS = 10_000            # quarantine keeps at most this much of a raw line
CHUNK_LINES = 5_000               # lines parsed and written at a time (bounded memory)
ANALYZE_AFTER_LINES = 20_000      # a file this long refreshes the planner statistics (PostgreSQL)
ANALYZE_MIN_BYTES = 8 << 20       # … and a file this large, whenever the tables doubled while it loads
ANALYZE_MIN_ROWS = 20_000
INGEST_TABLES = ("events", "orders", "order_items", "customers", "customer_traits", "consent_changes",
                 "identity_links")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_DATE_PREFIX = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T ])")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
#: json.dumps(…, separators=(",", ":"), ensure_ascii=False, default=str), its encoder made once
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


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
    links: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    status_orders: set[str] = field(default_factory=set)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    anonymous_ids: set[str] = field(default_factory=set)
    quarantine: list[dict[str, Any]] = field(default_factory=list)

    _LISTS = ("events", "traits", "consent", "orders", "order_items", "links", "dropped", "status_changes")

    def mark(self) -> tuple[int, ...]:
        return (len(self.events), len(self.traits), len(self.consent), len(self.orders), len(self.order_items),
                len(self.links), len(self.dropped), len(self.status_changes))  # the order of _LISTS

    def rollback(self, mark: tuple[int, ...]) -> None:
        """Forget the rows of a call that failed half-way (its line is quarantined instead)."""
        for name, size in zip(self._LISTS, mark, strict=True):
            del getattr(self, name)[size:]


# -- value helpers ---------------------------------------------------------------------
def clean_text(value: str) -> str:
    """Text both engines store alike: NUL removed (PostgreSQL refuses it), unpaired surrogates
    replaced (not UTF-8)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():  # O(1) in CPython: no surrogate to replace (most values)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def parse_moment(value: Any, field_name: str = "timestamp") -> datetime:
    """ISO 8601 → aware UTC datetime, microseconds kept."""
    if not isinstance(value, str) or not value:
        raise Reject(field_name, f"missing or non-string {field_name}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Reject(field_name, f"unparseable {field_name} {value[:40]!r} (expected ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timestamp(value: Any, field_name: str = "timestamp") -> datetime:
    """ISO 8601 → aware UTC datetime in whole seconds (the warehouse's grain)."""
    return parse_moment(value, field_name).replace(microsecond=0)


def _number(value: Any, field_name: str) -> float:
    if isinstance(value, bool):
        raise Reject(field_name, f"{field_name} is not a number: {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise Reject(field_name, f"{field_name} is not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise Reject(field_name, f"{field_name} is not finite: {value!r}")
    return number


#: an order line's quantity: a whole number of units, at most this many (order_items.quantity is
#: an INTEGER: a bigger number would fail the whole file's transaction on PostgreSQL)
MAX_QUANTITY = 1_000_000
#: a price or revenue above this is no price (it would print as a 13-digit amount in an email)
MAX_AMOUNT = 1e12


def _quantity(value: Any, field_name: str) -> int:
    number = _number(value, field_name)
    if number != int(number) or not 1 <= number <= MAX_QUANTITY:
        raise Reject(field_name, f"{field_name} is not a whole number of units from 1 to {MAX_QUANTITY}: {value!r}")
    return int(number)


def _amount(value: Any, field_name: str) -> float:
    number = _number(value, field_name)
    if not 0 <= number <= MAX_AMOUNT:
        raise Reject(field_name, f"{field_name} is not an amount from 0 to {MAX_AMOUNT:.0e}: {value!r}")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return clean_text(str(value))


def _identifier(value: Any, field_name: str) -> str | None:
    """userId / anonymousId / messageId: a string (or an integer), else the line is rejected."""
    if value.__class__ is not str:  # a string is the usual case: one test and it goes on
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise Reject(field_name, f"{field_name} must be a string, got {type(value).__name__}")
        value = str(value)
    text = clean_text(value).strip()
    if len(text) > 512:
        raise Reject(field_name, f"{field_name} longer than 512 characters")
    return text or None


def _bool_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


@lru_cache(maxsize=1024)  # the same few trait names, line after line
def snake_case(name: str) -> str:
    """Segment's camelCase trait names (``firstName``, ``createdAt``) → the contract's names."""
    return _CAMEL.sub("_", name).lower()


def normalise_birthday(value: Any) -> str | None:
    """``1990-05-07``, ``1990-5-7`` or an ISO date-time → ``1990-05-07``; None when not a date."""
    if not isinstance(value, str):
        return None
    match = _DATE_PREFIX.match(value)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3))).isoformat()
    except ValueError:
        return None


def valid_timezone(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        ZoneInfo(value.strip())
    except (ValueError, KeyError, OSError):
        return None
    return value.strip()


def valid_locale(value: Any) -> str | None:
    if isinstance(value, str) and _LOCALE.match(value.strip()):
        return value.strip()
    return None


@cache
def _calling_code() -> str:
    return settings.sms_default_calling_code()


def valid_phone(value: Any) -> str | None:
    """E.164 (``+33612345678``); a national number takes the shop's calling code
    (:func:`relance.settings.sms_default_calling_code`)."""
    return normalise_phone(value, _calling_code())


#: The consent events (SPEC §5): event → (channel, opted in, consent_history source); the
#: channel's ``<channel>_opt_in`` trait follows. An SMS STOP reply arrives as ``SMS Unsubscribed``.
CONSENT_EVENTS = {
    "Email Unsubscribed": ("email", False, "unsubscribe_event"),
    "Email Subscribed": ("email", True, "subscribe_event"),
    "SMS Unsubscribed": ("sms", False, "sms_stop"),
    "SMS Subscribed": ("sms", True, "subscribe_event"),
}

#: traits read through a normaliser (None = not valid: the trait is dropped, saying what it is not)
_NORMALISED_TRAITS = {
    "phone": (valid_phone, "a phone number in E.164 (+33612345678) or national form"),
    "birthday": (normalise_birthday, "a date (YYYY-MM-DD)"),
    "timezone": (valid_timezone, "an IANA time zone"),
    "locale": (valid_locale, "a language tag (fr, en-GB …)"),
}


# -- one call --------------------------------------------------------------------------
class _Call:
    """What parse_call needs to record rows and dropped fields for one line."""

    def __init__(self, batch: ParsedBatch, line_no: int, message_id: str, moment: datetime, now: datetime):
        self.batch, self.line_no, self.message_id, self.now = batch, line_no, message_id, now
        self.at, self.us = moment.replace(microsecond=0), moment.microsecond

    def drop(self, field_name: str, value: Any, reason: str) -> None:
        self.batch.dropped.append({
            "source_file": self.batch.source_file, "line_no": self.line_no, "message_id": self.message_id,
            "field": field_name, "value": clean_text(str(value))[:1000], "reason": reason, "dropped_at": self.now})

    def trait(self, customer_id: str, name: str, value: str, at: datetime | None = None, us: int | None = None):
        self.batch.traits.append({"customer_id": customer_id, "trait": name, "value": value,
                                  "observed_at": at or self.at, "observed_us": self.us if us is None else us,
                                  "message_id": self.message_id})

    def consent(self, customer_id: str, channel: str, opt_in: bool, source: str,
                at: datetime | None = None, us: int | None = None):
        self.batch.consent.append({"message_id": self.message_id, "customer_id": customer_id, "channel": channel,
                                   "opt_in": opt_in, "changed_at": at or self.at,
                                   "changed_us": self.us if us is None else us, "source": source})


def _identify_traits(call: _Call, user_id: str, traits: dict[str, Any]) -> None:
    """Validate and record an identify's traits; a bad one is dropped with its reason."""
    flat: dict[str, tuple[str, Any]] = {}
    for key, value in traits.items():
        name = snake_case(str(key))
        if name not in flat or key == name:       # the contract's own spelling wins
            flat[name] = (str(key), value)
    if "name" in flat and "first_name" not in flat and isinstance(flat["name"][1], str):
        first, _, last = flat["name"][1].strip().partition(" ")
        if first:
            flat["first_name"] = ("name", first)
        if last.strip() and "last_name" not in flat:
            flat["last_name"] = ("name", last.strip())
    for name in TRAIT_FIELDS:
        if name not in flat or flat[name][1] is None:
            continue
        key, value = flat[name]
        where = f"traits.{key}"
        if isinstance(value, dict | list | bool):
            call.drop(where, value, f"{where} must be a string, got {type(value).__name__}")
            continue
        if name in _NORMALISED_TRAITS:
            normalise, expected = _NORMALISED_TRAITS[name]
            text = normalise(value)
            if text is None:
                call.drop(where, value, f"{name} {str(value)[:40]!r} is not {expected}")
                continue
        elif name == "created_at":
            try:
                text = parse_timestamp(value, where).strftime("%Y-%m-%d %H:%M:%S")
            except Reject as rej:
                call.drop(where, value, rej.reason)
                continue
        elif name == "email":
            text = clean_text(str(value)).strip()
            if "@" not in text or len(text) > 320 or any(c in text for c in "\r\n"):
                call.drop(where, value, f"email {text[:40]!r} is not an address")
                continue
        else:
            text = clean_text(str(value)).strip()
        call.trait(user_id, name, text)
    for name, channel in CONSENT_TRAITS.items():
        if name not in flat or flat[name][1] is None:
            continue
        key, value = flat[name]
        flag = _bool_flag(value)
        if flag is None:
            call.drop(f"traits.{key}", value, f"traits.{key} must be a boolean, got {str(value)[:40]!r}")
            continue
        call.trait(user_id, name, "1" if flag else "0")
        decided = None
        for time_name in CONSENT_TIME_TRAITS[channel]:
            if time_name in flat and flat[time_name][1] not in (None, ""):
                try:
                    decided = parse_moment(flat[time_name][1], f"traits.{flat[time_name][0]}")
                    break
                except Reject as rej:
                    call.drop(rej.field or time_name, flat[time_name][1], rej.reason)
        if decided is None:
            call.consent(user_id, channel, flag, "identify")
        else:
            call.consent(user_id, channel, flag, "consent_update",
                         decided.replace(microsecond=0), decided.microsecond)


def _context_traits(call: _Call, customer_id: str, context: dict[str, Any]) -> None:
    """``context.timezone`` / ``context.locale``: kept apart, they fill a missing trait only."""
    for name, check in (("timezone", valid_timezone), ("locale", valid_locale)):
        value = context.get(name)
        if value in (None, ""):
            continue
        text = check(value)
        if text is None:
            call.drop(f"context.{name}", value, f"context.{name} {str(value)[:40]!r} is not valid")
        else:
            call.trait(customer_id, f"context_{name}", text)


#: events a guest may send with an email and no userId: they get a guest customer id
GUEST_EVENTS = ("Order Completed", "Back In Stock Requested")


def _guest_email(properties: dict[str, Any], context: dict[str, Any]) -> str | None:
    context_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
    for value in (properties.get("email"), context_traits.get("email")):
        if isinstance(value, str) and "@" in value and len(value) <= 320:
            return clean_text(value).strip()
    return None


def parse_call(call: Any, batch: ParsedBatch, now: datetime, line_no: int = 0) -> None:
    """Validate one decoded call and append its rows to ``batch`` (raises Reject)."""
    if not isinstance(call, dict):
        raise Reject(None, "line is not a JSON object")
    message_id = _identifier(call.get("messageId"), "messageId")
    if not message_id:
        raise Reject("messageId", "missing messageId")
    kind = call.get("type")
    if kind not in CALL_TYPES:
        raise Reject("type", f"unsupported type {str(kind)[:40]!r} (expected {', '.join(CALL_TYPES)})")
    moment = parse_moment(call.get("timestamp"))
    user_id = _identifier(call.get("userId"), "userId")
    anonymous_id = _identifier(call.get("anonymousId"), "anonymousId")
    context = call.get("context") if isinstance(call.get("context"), dict) else {}
    one = _Call(batch, line_no, message_id, moment, now)
    customer_id = user_id
    event = product_id = order_id = None
    points_balance = None

    if kind == "identify":
        traits = call.get("traits")
        if traits is None:
            traits = {}
        if not isinstance(traits, dict):
            raise Reject("traits", "identify with a traits value that is not an object")
        if not user_id and not anonymous_id:
            raise Reject("userId", "identify without userId or anonymousId")
        if user_id:
            _identify_traits(one, user_id, traits)
            if anonymous_id:
                batch.links.append({"anonymous_id": anonymous_id, "customer_id": user_id, "linked_at": one.at,
                                    "message_id": message_id, "source": "identify"})
        properties = traits
    elif kind == "alias":
        previous_id = _identifier(call.get("previousId"), "previousId")
        if not previous_id or not user_id:
            raise Reject("previousId" if not previous_id else "userId", "alias without previousId and userId")
        if previous_id != user_id:
            batch.links.append({"anonymous_id": previous_id, "customer_id": user_id, "linked_at": one.at,
                                "message_id": message_id, "source": "alias"})
        anonymous_id = previous_id
        properties = {"previousId": previous_id}
    elif kind in ("page", "screen", "group"):
        if not user_id and not anonymous_id:
            raise Reject("userId", f"{kind} call without userId or anonymousId")
        source = call.get("traits") if kind == "group" else call.get("properties")
        properties = dict(source) if isinstance(source, dict) else {}
        for key in ("name", "category", "groupId"):
            if call.get(key) is not None and key not in properties:
                properties[key] = call[key]
    else:
        event = call.get("event")
        if not isinstance(event, str) or event not in TRACK_EVENTS:
            raise Reject("event", f"unknown event name {str(event)[:80]!r}")
        if not user_id and not anonymous_id:
            raise Reject("userId", "track call without userId or anonymousId")
        properties = call.get("properties") or {}
        if not isinstance(properties, dict):
            raise Reject("properties", "properties is not an object")
        for required in TRACK_EVENTS[event]:
            if properties.get(required) in (None, ""):
                raise Reject(f"properties.{required}", f"{event} without properties.{required}")
        for name in ("product_id", "order_id"):
            if isinstance(properties.get(name), dict | list):
                raise Reject(f"properties.{name}", f"properties.{name} must be a string")
        product_id = _text(properties.get("product_id"))
        order_id = _text(properties.get("order_id"))
        if not user_id and event in GUEST_EVENTS:
            # a guest who left an email (a guest checkout, a "notify me" form) is a customer
            # of their own: guest-<hash of the email>, with that address and unknown consent
            email = _guest_email(properties, context)
            if email is not None:
                customer_id = guest_customer_id(email)
                one.trait(customer_id, "email", email)
            elif event == "Order Completed":
                raise Reject("userId", "Order Completed without userId or an email (guest checkout)")
        if event == "Order Completed":
            products = properties["products"]
            if not isinstance(products, list) or not products:
                raise Reject("properties.products", "Order Completed with no products")
            items = []
            for i, item in enumerate(products, start=1):
                if not isinstance(item, dict) or item.get("product_id") in (None, "") \
                        or isinstance(item.get("product_id"), dict | list):
                    raise Reject(f"properties.products[{i - 1}].product_id", "order line without product_id")
                quantity = _quantity(item.get("quantity", 1), f"properties.products[{i - 1}].quantity")
                price = _amount(item.get("price", 0), f"properties.products[{i - 1}].price")
                items.append({"order_id": order_id, "line_no": i, "product_id": _text(item["product_id"]),
                              "quantity": quantity, "price": price})
            revenue = properties.get("revenue", properties.get("total"))
            revenue = _amount(revenue, "properties.revenue") if revenue is not None else \
                sum(i["quantity"] * i["price"] for i in items)
            batch.orders.append({"order_id": order_id, "customer_id": customer_id, "ordered_at": one.at,
                                 "revenue": revenue, "currency": _text(properties.get("currency")),
                                 "status": "completed", "status_at": one.at, "message_id": message_id})
            batch.order_items.extend(items)
            batch.status_orders.add(order_id)
        elif event in ("Order Refunded", "Order Cancelled", "Order Updated"):
            if event != "Order Updated":
                batch.status_orders.add(order_id)
            change, drops = order_status_change(event, properties)
            for name, value, reason in drops:
                one.drop(name, value, reason)
            if change is not None:
                batch.status_changes.append({
                    **{k: _text(v) for k, v in change.items()}, "message_id": message_id, "order_id": order_id,
                    "changed_at": one.at, "changed_us": one.us})
        elif event == "Loyalty Points Updated":
            points_balance = _number(properties["points_balance"], "properties.points_balance")
        elif event in CONSENT_EVENTS:
            if not user_id:
                raise Reject("userId", f"{event} without userId")
            channel, opt_in, source = CONSENT_EVENTS[event]
            one.consent(user_id, channel, opt_in, source)
            one.trait(user_id, f"{channel}_opt_in", "1" if opt_in else "0")

    if user_id:
        _context_traits(one, user_id, context)
    if customer_id is None and anonymous_id:
        batch.anonymous_ids.add(anonymous_id)
    if batch.links and batch.links[-1]["message_id"] == message_id:
        batch.anonymous_ids.add(batch.links[-1]["anonymous_id"])
    batch.events.append({
        "message_id": message_id, "type": kind, "event": event, "customer_id": customer_id,
        "anonymous_id": anonymous_id, "occurred_at": one.at, "occurred_us": one.us, "product_id": product_id,
        "order_id": order_id, "points_balance": points_balance,
        "properties": clean_text(_encode_json(properties)),
        "source_file": batch.source_file, "loaded_at": now,
    })


# -- a file ------------------------------------------------------------------------------
def _quarantine_row(source_file: str, line_no: int, raw: str, field_name: str | None, reason: str,
                    now: datetime) -> dict[str, Any]:
    raw = clean_text(raw)
    if len(raw) > MAX_RAW_CHARS:
        raw = raw[:MAX_RAW_CHARS] + f"… ({len(raw)} characters)"
    return {"source_file": source_file, "line_no": line_no, "raw": raw, "field": field_name,
            "reason": clean_text(reason)[:1000], "quarantined_at": now}


def iter_batches(lines: Iterable[bytes], source_file: str, now: datetime,
                 chunk_lines: int = CHUNK_LINES, first_line_no: int = 1) -> Iterator[ParsedBatch]:
    """Parse a stream of JSONL lines into batches of at most ``chunk_lines`` lines.

    Bad lines go to ``batch.quarantine`` with field and reason: whatever a line holds (a list as
    messageId, JSON nested too deep, a megabyte of text), it never raises. ``first_line_no``:
    the file's line number of the first line (a chunk parsed apart, :mod:`relance.ingest.parallel`).
    """
    batch = ParsedBatch(source_file=source_file)
    seen: set[str] = set()
    for line_no, raw in enumerate(lines, start=first_line_no):
        if batch.lines >= chunk_lines:
            yield batch
            batch, seen = ParsedBatch(source_file=source_file), set()
        if len(raw) > MAX_LINE_BYTES:
            batch.lines += 1
            batch.quarantine.append(_quarantine_row(
                source_file, line_no, raw[:MAX_RAW_CHARS].decode("utf-8", errors="replace"), None,
                f"line longer than {MAX_LINE_BYTES} bytes ({len(raw)})", now))
            continue
        if not raw.strip():
            continue
        batch.lines += 1
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        mark = batch.mark()
        try:
            try:
                call = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Reject(None, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
            message_id = call.get("messageId") if isinstance(call, dict) else None
            if isinstance(message_id, str) and message_id in seen:
                continue  # duplicate delivery inside the same chunk
            parse_call(call, batch, now, line_no)
            seen.add(batch.events[-1]["message_id"])
        except Reject as rej:
            batch.rollback(mark)
            batch.quarantine.append(_quarantine_row(source_file, line_no, text, rej.field, rej.reason, now))
        except Exception as exc:  # noqa: BLE001 - deep nesting, odd types…: a line never fails the file
            batch.rollback(mark)
            batch.quarantine.append(_quarantine_row(
                source_file, line_no, text, None, f"unreadable call ({type(exc).__name__}: {exc})", now))
    yield batch


def parse_events(data: bytes, source_file: str, now: datetime) -> ParsedBatch:
    """Parse a whole JSONL file's bytes into one batch (tests and small files)."""
    batches = list(iter_batches(data.splitlines(), source_file, now, chunk_lines=1 << 62))
    return batches[0]


def _latest_traits(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within one batch the latest call per (customer, trait) wins; across batches the SQL decides."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["customer_id"], row["trait"])
        old = latest.get(key)
        if old is None or (row["observed_at"], row["observed_us"], row["message_id"]) > (
                old["observed_at"], old["observed_us"], old["message_id"]):
            latest[key] = row
    return list(latest.values())


def write_batch(wh: Warehouse, batch: ParsedBatch, conn) -> dict[str, int]:
    """Write one parsed chunk inside the file's transaction; idempotent."""
    batch_id = batch.source_file
    new_events = wh.insert_rows("events", batch.events, conn, on_conflict_do_nothing=["message_id"])
    wh.insert_rows("identity_links", batch.links, conn, on_conflict_do_nothing=["anonymous_id"])
    traits = _latest_traits(batch.traits)
    if traits:
        private = wh.private_stage("stage_customer_traits", conn)
        if not private:
            wh.execute("ingest/clear_stage_traits", {"batch_id": batch_id}, conn)
        for row in traits:  # the batch's own rows (no copy of a million dicts)
            row["batch_id"] = batch_id
        wh.insert_rows("stage_customer_traits", traits, conn)
        # every event of the chunk new (the usual case): none of its calls was loaded from another
        # file, the duplicate-delivery probe of the merge would keep every row — skip it
        merge = "ingest/merge_customer_traits_new" if new_events == len(batch.events) else \
            "ingest/merge_customer_traits"
        wh.execute(merge, {"batch_id": batch_id}, conn)
        if private:
            wh.execute("TRUNCATE stage_customer_traits", conn=conn)
        else:
            wh.execute("ingest/clear_stage_traits", {"batch_id": batch_id}, conn)
    wh.insert_rows("consent_changes", batch.consent, conn, on_conflict_do_nothing=["message_id", "channel"])
    wh.insert_rows("orders", batch.orders, conn, on_conflict_do_nothing=["order_id"])
    wh.insert_rows("order_items", batch.order_items, conn, on_conflict_do_nothing=["order_id", "line_no"])
    wh.insert_rows("order_status_changes", batch.status_changes, conn, on_conflict_do_nothing=["message_id"])
    wh.insert_rows("dropped_fields", batch.dropped, conn, on_conflict_do_nothing=["source_file", "line_no", "field"])
    quarantined = wh.insert_rows("quarantine", batch.quarantine, conn,
                                 on_conflict_do_nothing=["source_file", "line_no"])
    return {"lines": batch.lines, "loaded": new_events, "duplicates": len(batch.events) - new_events,
            "quarantined": len(batch.quarantine), "new_quarantine_rows": quarantined,
            "dropped_fields": len(batch.dropped)}


def load_events_file(wh: Warehouse, lines: Iterable[bytes], source_file: str, size_bytes: int | None,
                     now: datetime, chunk_lines: int = CHUNK_LINES,
                     batches: Iterable[ParsedBatch] | None = None) -> dict[str, int]:
    """Stream one landing file into the warehouse in one transaction (chunk by chunk).
    ``batches``: the file already being parsed elsewhere (:mod:`relance.ingest.parallel`)."""
    totals = {"lines": 0, "loaded": 0, "duplicates": 0, "quarantined": 0, "new_quarantine_rows": 0,
              "dropped_fields": 0}
    customers: set[str] = set()
    anonymous_ids: set[str] = set()
    status_orders: set[str] = set()
    with wh.begin() as conn:
        # a bulk load keeps the planner statistics in step while the tables grow (else a merge
        # planned for the empty tables of an onboarding import's first chunk turns quadratic)
        known = wh.estimated_rows("events", conn) if (size_bytes or 0) >= ANALYZE_MIN_BYTES else None
        since_analyze = 0
        for batch in batches if batches is not None else iter_batches(lines, source_file, now, chunk_lines):
            for key, value in write_batch(wh, batch, conn).items():
                totals[key] += value
            if known is not None:
                since_analyze += len(batch.events)
                if since_analyze > max(known, ANALYZE_MIN_ROWS):  # the tables doubled
                    wh.analyze(INGEST_TABLES, conn)
                    known, since_analyze = known + since_analyze, 0
            customers.update(r["customer_id"] for r in batch.traits)
            customers.update(r["customer_id"] for r in batch.consent)
            anonymous_ids.update(batch.anonymous_ids)
            status_orders.update(batch.status_orders)
        ids = sorted(anonymous_ids)
        for start in range(0, len(ids), 5000):
            wh.execute("ingest/link_anonymous_events", {"anonymous_ids": ids[start:start + 5000]}, conn)
        order_ids = sorted(status_orders)
        for start in range(0, len(order_ids), 5000):
            wh.execute("ingest/apply_order_status", {"order_ids": order_ids[start:start + 5000]}, conn)
        refresh_customers(wh, conn, sorted(customers))
        if totals["lines"] >= ANALYZE_AFTER_LINES:
            # a bulk load (an onboarding import) changes the tables' shape: without fresh
            # statistics the next trigger queries plan for the empty tables they knew
            wh.analyze(INGEST_TABLES, conn)
        wh.insert_rows("ingest_files", [{
            "source_file": source_file, "kind": "events", "size_bytes": size_bytes, "lines": totals["lines"],
            "loaded": totals["loaded"], "duplicates": totals["duplicates"],
            "quarantined": totals["quarantined"], "loaded_at": now}], conn, on_conflict_do_nothing=["source_file"])
    return totals


# -- customers ---------------------------------------------------------------------------
#: Where an opt-in may undo an explicit opt-out from (README "What the input side accepts").
CONSENT_SOURCES = ("consent_update", "subscribe_event", "ses_subscription")
#: The one source whose opt-out is not explicit: an ordinary identify's ``email_opt_in: false``.
ORDINARY_SOURCE = "identify"


def fold_consent(changes: list[dict[str, Any]]) -> bool | None:
    """Consent now, from one channel's history (oldest first).

    Latest change wins, except that an explicit opt-out (any source but an ordinary identify:
    ``Email Unsubscribed``, an SES complaint or unsubscribe, a consent update) holds until an
    opt-in *from a consent source*
    (a consent update, ``Email Subscribed``): an ordinary identify repeating a stale
    ``email_opt_in: true`` does not undo it. None = never stated = no marketing.
    """
    state: bool | None = None
    locked = False
    for change in changes:
        opt_in, source = bool(change["opt_in"]), change["source"]
        if not opt_in:
            state = False
            locked = locked or source != ORDINARY_SOURCE
        elif source in CONSENT_SOURCES:
            state, locked = True, False
        elif not locked:
            state = True
    return state


def _tuples(wh: Warehouse, name: str, params: dict[str, Any], conn) -> list:
    """The rows of a query as the driver's tuples (no dict per row: refresh_customers reads every
    trait of every customer an onboarding file touches)."""
    return conn.execute(wh.statement(name, params), wh.params(params)).fetchall()


#: the columns of ingest/customer_fields_for.sql
_CUSTOMER_FIELDS = ("customer_id", "email", "first_name", "last_name", "phone", "birthday", "locale",
                    "context_locale", "timezone", "context_timezone", "created_at", "updated_at")


def refresh_customers(wh: Warehouse, conn, customer_ids: list[str]) -> None:
    """Fold ``customer_traits`` and ``consent_changes`` into ``customers`` for some customers."""
    for start in range(0, len(customer_ids), 5000):
        ids = customer_ids[start:start + 5000]
        folded: dict[str, dict[str, Any]] = {}
        for row in _tuples(wh, "ingest/customer_fields_for", {"customer_ids": ids}, conn):
            cust = folded[row[0]] = dict(zip(_CUSTOMER_FIELDS, row, strict=True))
            if cust["updated_at"].__class__ is str:
                cust["updated_at"] = datetime.fromisoformat(cust["updated_at"])
        history: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for customer_id, channel, opt_in, source, changed, _us, _mid in _tuples(
                wh, "ingest/consent_history_for", {"customer_ids": ids}, conn):
            history.setdefault((customer_id, channel), []).append({"opt_in": opt_in, "source": source})
            cust = folded.get(customer_id)
            if cust is None:
                cust = folded[customer_id] = {"customer_id": customer_id, "updated_at": None}
            if changed.__class__ is str:
                changed = datetime.fromisoformat(changed)
            if cust["updated_at"] is None or changed > cust["updated_at"]:
                cust["updated_at"] = changed
        out = []
        for cust in folded.values():
            birthday = cust.get("birthday")
            created = cust.get("created_at")
            out.append({
                "customer_id": cust["customer_id"], "email": cust.get("email"),
                "email_hash": address_hash(cust["email"]) if cust.get("email") else None,
                "first_name": cust.get("first_name"), "last_name": cust.get("last_name"),
                "phone": cust.get("phone"), "birthday": birthday,
                "birthday_mmdd": birthday[5:10] if birthday else None,
                "locale": cust.get("locale") or cust.get("context_locale"),
                "timezone": cust.get("timezone") or cust.get("context_timezone"),
                "created_at": datetime.fromisoformat(created) if created else None,
                "email_opt_in": fold_consent(history.get((cust["customer_id"], "email"), [])),
                "sms_opt_in": fold_consent(history.get((cust["customer_id"], "sms"), [])),
                "updated_at": cust["updated_at"],
            })
        wh.execute("ingest/delete_customers", {"customer_ids": ids}, conn)
        wh.insert_rows("customers", out, conn)
