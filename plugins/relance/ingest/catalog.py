"""Google Merchant Center catalog snapshots → ``product_snapshots`` and ``products`` (SPEC §5)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from typing import Any

from relance.ingest.events import Reject
from relance.warehouse import Warehouse

COLUMNS = ("id", "title", "description", "link", "image_link", "price", "sale_price",
           "availability", "brand", "product_type")
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "backorder")
_PRICE = re.compile(r"^\s*(\d+(?:[.,]\d{1,4})?)\s*([A-Z]{3})\s*$")


def parse_price(value: str | None, field: str, required: bool) -> tuple[float | None, str | None]:
    if value is None or value.strip() == "":
        if required:
            raise Reject(field, f"missing {field}")
        return None, None
    match = _PRICE.match(value)
    if not match:
        raise Reject(field, f"{field} {value!r} is not like '19.90 EUR'")
    return float(match.group(1).replace(",", ".")), match.group(2)


def parse_catalog(data: bytes, source_file: str, snapshot_date: date, now: datetime
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of a products.csv → (snapshot rows, quarantine rows)."""
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [{"source_file": source_file, "line_no": 1, "raw": text.splitlines()[0] if text else "",
                     "field": missing[0], "reason": f"catalog header lacks column(s) {', '.join(missing)}",
                     "quarantined_at": now}]
    rows, bad, seen = [], [], set()
    for row_no, record in enumerate(reader, start=2):
        try:
            if None in record:  # more cells than columns
                raise Reject(None, "row has more cells than the header")
            product_id = (record.get("id") or "").strip()
            if not product_id:
                raise Reject("id", "missing id")
            if product_id in seen:
                raise Reject("id", f"duplicate id {product_id!r} in the same snapshot")
            price, currency = parse_price(record.get("price"), "price", required=True)
            sale_price, sale_currency = parse_price(record.get("sale_price"), "sale_price", required=False)
            if sale_currency and sale_currency != currency:
                raise Reject("sale_price", f"sale_price currency {sale_currency} differs from price currency {currency}")
            availability = (record.get("availability") or "").strip().lower().replace(" ", "_")
            if availability not in AVAILABILITY:
                raise Reject("availability", f"availability {record.get('availability')!r} not in {'|'.join(AVAILABILITY)}")
            quantity_text = (record.get("quantity") or "").strip()
            quantity = None
            if quantity_text:
                if not re.fullmatch(r"\d+", quantity_text):
                    raise Reject("quantity", f"quantity {quantity_text!r} is not a non-negative integer")
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
            raw = ",".join("" if v is None else (v if isinstance(v, str) else "|".join(v)) for v in record.values())
            bad.append({"source_file": source_file, "line_no": row_no, "raw": raw, "field": rej.field,
                        "reason": rej.reason, "quarantined_at": now})
    return rows, bad


def load_snapshot(wh: Warehouse, data: bytes, source_file: str, snapshot_date: date, size: int | None,
                  now: datetime) -> dict[str, int]:
    """Replace one day's snapshot and roll ``products`` forward to it (never backward)."""
    rows, bad = parse_catalog(data, source_file, snapshot_date, now)
    with wh.begin() as conn:
        wh.execute("ingest/delete_snapshot", {"snapshot_date": snapshot_date}, conn)
        wh.insert_rows("product_snapshots", rows, conn)
        wh.execute("ingest/roll_products_forward", {"snapshot_date": snapshot_date}, conn)
        wh.insert_rows("quarantine", bad, conn, on_conflict_do_nothing=["source_file", "line_no"])
        wh.insert_rows("ingest_files", [{
            "source_file": source_file, "kind": "catalog", "size_bytes": size, "lines": len(rows) + len(bad),
            "loaded": len(rows), "duplicates": 0, "quarantined": len(bad), "loaded_at": now}], conn,
            on_conflict_do_nothing=["source_file"])
    return {"products": len(rows), "quarantined": len(bad)}
