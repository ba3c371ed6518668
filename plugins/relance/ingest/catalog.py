"""Google Merchant Center catalog snapshots → ``product_snapshots`` and ``products`` (SPEC §5).

Feeds come as shops export them: comma-, tab- or semicolon-separated, with or without a UTF-8
BOM, header names as Merchant Center shows them (``image link``, ``ID``, ``g:price``), optional
columns absent, prices like ``19.90 EUR``, ``1,299.00 USD``, ``1.299,00 EUR`` or ``EUR 5``.
A bad row is quarantined; a snapshot that fails (required columns missing, no valid row, most
rows bad) is refused whole and never replaces the day's good one. Products absent from a
loaded snapshot are delisted (out of stock, ``delisted_on``) so they stop being recommended.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

from relance.ingest.events import Reject, clean_text
from relance.warehouse import Warehouse

COLUMNS = ("id", "title", "description", "link", "image_link", "price", "sale_price",
           "availability", "brand", "product_type")
REQUIRED = ("id", "title", "link", "price", "availability")
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "backorder")
MAX_FIELD_CHARS = 1 << 20          # a longer CSV field quarantines its row
MAX_KEPT_IDS = 10_000              # more bad rows than this: no product is delisted that day
MAX_PRICE = 1e12                   # above: no price (999…9 EUR would be inf; it would print in emails)
MAX_STOCK = 2_000_000_000          # products.quantity is an INTEGER: more would fail the snapshot's load
_CURRENCY_AMOUNT = re.compile(r"^\s*(?:([A-Za-z]{3})\s*)?([0-9][0-9.,\s\u00a0\u202f']*?)\s*(?:([A-Za-z]{3}))?\s*$")
_SPACES = re.compile(r"[\s\u00a0\u202f']")

csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))


def header_name(name: str) -> str:
    """``ID`` → ``id``, ``image link`` → ``image_link``, ``g:price`` → ``price``."""
    name = clean_text(name).strip().strip('"').strip().lower()
    if name.startswith("g:"):
        name = name[2:]
    return re.sub(r"[\s\-]+", "_", name)


def parse_amount(text: str) -> float | None:
    """A Merchant price amount with either decimal convention → float; None when ambiguous
    or malformed. ``1,299.00`` and ``1.299,00`` → 1299.0; ``19,90`` → 19.9; ``1,299`` → 1299."""
    t = _SPACES.sub("", text)
    if not t or not re.fullmatch(r"[0-9.,]+", t):
        return None
    commas, dots = t.count(","), t.count(".")
    if commas and dots:
        decimal = "," if t.rfind(",") > t.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        if not re.fullmatch(rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})*{re.escape(decimal)}\d{{1,4}}", t):
            return None
        return float(t.replace(thousands, "").replace(decimal, "."))
    if commas or dots:
        sep = "," if commas else "."
        whole, _, fraction = t.partition(sep)
        if commas + dots > 1:                       # 1.299.000 / 1,299,000: thousands only
            if not re.fullmatch(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+", t):
                return None
            return float(t.replace(sep, ""))
        if len(fraction) == 3 and whole not in ("", "0"):   # 1,299 / 1.299: thousands
            return float(whole + fraction)
        if not whole or not 1 <= len(fraction) <= 4:
            return None
        return float(f"{whole}.{fraction}")
    return float(t)


def parse_price(value: str | None, field: str, required: bool) -> tuple[float | None, str | None]:
    if value is None or value.strip() == "":
        if required:
            raise Reject(field, f"missing {field}")
        return None, None
    match = _CURRENCY_AMOUNT.match(value)
    amount = parse_amount(match.group(2)) if match else None
    currency = (match.group(1) or match.group(3)) if match else None
    if match and match.group(1) and match.group(3):
        currency = None
    if amount is None or currency is None:
        raise Reject(field, f"{field} {value[:40]!r} is not like '19.90 EUR' or '1,299.00 USD'")
    if amount <= 0:
        raise Reject(field, f"{field} {value[:40]!r} is not above zero")
    if not math.isfinite(amount) or amount > MAX_PRICE:
        raise Reject(field, f"{field} {value[:40]!r} is above {MAX_PRICE:.0e}: not a price")
    return amount, currency.upper()


def sale_in_effect(value: str | None, snapshot_date: date) -> bool | None:
    """``sale_price_effective_date`` (``start/end``, ISO 8601) → whether the snapshot's day is in
    it; True when absent; None when unreadable."""
    if value is None or not value.strip():
        return True
    start_text, sep, end_text = value.strip().partition("/")
    if not sep:
        return None
    try:
        bounds = []
        for text in (start_text, end_text):
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            bounds.append(moment.date())
    except ValueError:
        return None
    return bounds[0] <= snapshot_date <= bounds[1]


def _text_lines(source: bytes | BinaryIO) -> io.TextIOBase:
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in ("\t", ";", ",")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def parse_catalog(data: bytes | BinaryIO, source_file: str, snapshot_date: date, now: datetime
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """A products feed → (snapshot rows, quarantine rows, dropped fields, why the whole
    snapshot is refused or None)."""
    text = _text_lines(data)
    header_line = text.readline()
    if not header_line.strip():
        return [], [], [], "empty feed"
    delimiter = _delimiter(header_line)
    reader = csv.reader(itertools.chain([header_line], text), delimiter=delimiter)
    header = [header_name(h) for h in next(reader)]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [{"source_file": source_file, "line_no": 1, "raw": clean_text(header_line.strip())[:10_000],
                     "field": missing[0], "reason": f"catalog header lacks column(s) {', '.join(missing)}",
                     "quarantined_at": now}], [], f"header lacks {', '.join(missing)}"
    rows, bad, dropped, seen = [], [], [], set()
    row_no = 1
    records: Iterable[list[str]] = _records(reader)
    for cells in records:
        row_no += 1
        try:
            if isinstance(cells, Exception):
                raise Reject(None, f"unreadable row ({cells})")
            if not any(c.strip() for c in cells):
                row_no -= 1
                continue
            if len(cells) > len(header):
                raise Reject(None, "row has more cells than the header")
            record = {name: clean_text(value) for name, value in zip(header, cells, strict=False)}
            product_id = (record.get("id") or "").strip()
            if not product_id:
                raise Reject("id", "missing id")
            if product_id in seen:
                raise Reject("id", f"duplicate id {product_id!r} in the same snapshot")
            if not (record.get("title") or "").strip():
                raise Reject("title", "missing title")
            price, currency = parse_price(record.get("price"), "price", required=True)
            sale_price, sale_currency = parse_price(record.get("sale_price"), "sale_price", required=False)
            if sale_currency and sale_currency != currency:
                raise Reject("sale_price", f"sale_price currency {sale_currency} differs from price currency {currency}")
            if sale_price is not None:
                effective = sale_in_effect(record.get("sale_price_effective_date"), snapshot_date)
                why = None
                if effective is None:
                    why = "sale_price_effective_date is not 'start/end' in ISO 8601: sale price ignored"
                elif not effective:
                    why = "snapshot date outside sale_price_effective_date: sale price ignored"
                elif sale_price >= price:
                    why = "sale_price not below price: ignored"
                if why:
                    dropped.append({"source_file": source_file, "line_no": row_no, "message_id": product_id,
                                    "field": "sale_price", "value": record.get("sale_price"), "reason": why,
                                    "dropped_at": now})
                    sale_price = None
            availability = (record.get("availability") or "").strip().lower().replace(" ", "_")
            if availability not in AVAILABILITY:
                raise Reject("availability",
                             f"availability {record.get('availability')!r} not in {'|'.join(AVAILABILITY)}")
            quantity_text = (record.get("quantity") or "").strip()
            quantity = None
            if quantity_text:
                if not re.fullmatch(r"\d{1,10}", quantity_text) or int(quantity_text) > MAX_STOCK:
                    raise Reject("quantity", f"quantity {quantity_text[:40]!r} is not an integer from 0 to {MAX_STOCK}")
                quantity = int(quantity_text)
            product_type = (record.get("product_type") or "").strip()
            seen.add(product_id)
            rows.append({
                "snapshot_date": snapshot_date, "product_id": product_id,
                "title": record.get("title"), "description": record.get("description"),
                "link": record.get("link"), "image_link": record.get("image_link"),
                "price": price, "sale_price": sale_price, "currency": currency, "availability": availability,
                "brand": record.get("brand"), "product_type": product_type or None,
                "category": product_type.split(">")[0].strip() or None if product_type else None,
                "quantity": quantity,
            })
        except Reject as rej:
            raw = "" if isinstance(cells, Exception) else delimiter.join(cells)
            bad_id = "" if isinstance(cells, Exception) or "id" not in header or header.index("id") >= len(cells) \
                else clean_text(cells[header.index("id")]).strip()
            bad.append({"source_file": source_file, "line_no": row_no, "raw": clean_text(raw)[:10_000],
                        "field": rej.field, "reason": rej.reason, "quarantined_at": now, "product_id": bad_id})
    return rows, bad, dropped, None if rows else "no valid product row"


def _records(reader) -> Iterable[list[str] | Exception]:
    """The reader's rows; a row it cannot read (a field over the size limit …) comes as the
    error, and reading goes on with the next line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


def load_snapshot(wh: Warehouse, data: bytes | BinaryIO, source_file: str, snapshot_date: date,
                  size: int | None, now: datetime, checksum: str | None = None) -> dict[str, int]:
    """Replace one day's snapshot and roll ``products`` forward to it (never backward), unless the
    snapshot is refused: then the day keeps what it had, and the refusal is quarantined.
    ``checksum`` (of the file's content) is recorded with the file: the same content is not
    loaded again (:func:`relance.ingest.ingest_catalog`)."""
    rows, bad, dropped, refused = parse_catalog(data, source_file, snapshot_date, now)
    with wh.begin() as conn:
        if refused:
            bad = [{k: v for k, v in b.items() if k != "product_id"} for b in bad] + [{"source_file": source_file, "line_no": 0, "raw": "",
                          "field": None, "reason": f"snapshot refused ({refused}): the previous one stays",
                          "quarantined_at": now}]
            wh.insert_rows("quarantine", bad, conn, on_conflict_do_nothing=["source_file", "line_no"])
            return {"products": 0, "quarantined": len(bad) - 1, "refused": 1}
        wh.execute("ingest/delete_snapshot", {"snapshot_date": snapshot_date}, conn)
        wh.insert_rows("product_snapshots", rows, conn)
        wh.execute("ingest/snapshot_previous", {"snapshot_date": snapshot_date}, conn)
        wh.execute("ingest/roll_products_forward", {"snapshot_date": snapshot_date}, conn)
        # a product whose row is bad today is still in the feed: it keeps its last good state
        kept = sorted({""} | {b["product_id"] for b in bad if b["product_id"]})
        delisted = 0
        if len(kept) <= MAX_KEPT_IDS:
            delisted = wh.execute("ingest/delist_missing_products",
                                  {"snapshot_date": snapshot_date, "kept_ids": kept}, conn)
        bad = [{k: v for k, v in b.items() if k != "product_id"} for b in bad]
        wh.insert_rows("quarantine", bad, conn, on_conflict_do_nothing=["source_file", "line_no"])
        wh.insert_rows("dropped_fields", dropped, conn, on_conflict_do_nothing=["source_file", "line_no", "field"])
        wh.insert_rows("ingest_files", [{
            "source_file": source_file, "kind": "catalog", "size_bytes": size, "lines": len(rows) + len(bad),
            "loaded": len(rows), "duplicates": 0, "quarantined": len(bad), "loaded_at": now}], conn,
            on_conflict_do_nothing=["source_file"])
        wh.execute("ingest/record_checksum", {"source_file": source_file, "checksum": checksum}, conn)
    return {"products": len(rows), "quarantined": len(bad), "delisted": max(delisted, 0)}
