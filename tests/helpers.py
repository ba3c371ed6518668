"""Small hand-made shops for tests: Segment calls and catalog rows, written as a landing zone."""

from __future__ import annotations

import csv
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

_ids = itertools.count(1)

CATALOG_HEADER = ["id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
                  "brand", "product_type", "quantity"]


def at(text: str) -> datetime:
    """'2026-11-20 10:05' → aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def identify(user: str, when: str, message_id: str | None = None, **traits) -> dict:
    return {"type": "identify", "userId": user, "timestamp": iso(at(when)),
            "messageId": message_id or f"id-{next(_ids)}", "traits": traits}


def track(user: str, event: str, when: str, message_id: str | None = None, **properties) -> dict:
    return {"type": "track", "userId": user, "event": event, "timestamp": iso(at(when)),
            "messageId": message_id or f"tr-{next(_ids)}", "properties": properties}


def order(user: str, order_id: str, when: str, *items: tuple[str, int, float], **extra) -> dict:
    products = [{"product_id": p, "quantity": q, "price": price} for p, q, price in items]
    revenue = sum(q * price for _, q, price in items)
    return track(user, "Order Completed", when, order_id=order_id, revenue=revenue, currency="EUR",
                 products=products, **extra)


def customer(user: str, when: str = "2026-11-01 09:00", opt_in: bool | None = True, **traits) -> dict:
    base = {"email": f"{user}@example.com", "first_name": user.capitalize(), "locale": "fr",
            "timezone": "Europe/Paris"}
    if opt_in is not None:
        base["email_opt_in"] = opt_in
    base.update(traits)
    return identify(user, when, **base)


def write_events(landing: Path, hour: str, calls: list, name: str = "events-0000.jsonl",
                 raw_lines: list[str] = ()) -> Path:
    """Write calls into the folder of ``hour`` ('2026-11-20 10')."""
    moment = datetime.strptime(hour, "%Y-%m-%d %H")
    folder = landing / f"events/dt={moment:%Y-%m-%d}/hour={moment:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w") as out:
        for call in calls:
            out.write(json.dumps(call) + "\n")
        for line in raw_lines:
            out.write(line + "\n")
    return path


def product(pid: str, title: str | None = None, price: str = "19.90 EUR", availability: str = "in_stock",
            quantity: int | str = 20, product_type: str = "Animalerie > Chien", sale_price: str = "") -> dict:
    return {"id": pid, "title": title or f"Produit {pid}", "description": "", "link": f"https://shop.example/p/{pid}",
            "image_link": f"https://shop.example/img/{pid}.jpg", "price": price, "sale_price": sale_price,
            "availability": availability, "brand": "Marque", "product_type": product_type, "quantity": quantity}


def write_catalog(landing: Path, day: str, products: list[dict]) -> Path:
    folder = landing / f"catalog/dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "products.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=CATALOG_HEADER)
        writer.writeheader()
        writer.writerows(products)
    return path


def dump_tables(wh, tables) -> dict:
    """Every row of some tables, sorted: to compare a warehouse before and after a re-run."""
    out = {}
    for table in tables:
        rows = wh.query(f"SELECT * FROM {table}")
        out[table] = sorted(tuple(sorted((k, str(v)) for k, v in r.items())) for r in rows)
    return out


def outbox(wh, campaign_id: str | None = None) -> list[dict]:
    """message_log rows (customer, step, status, reason, due_at as 'YYYY-MM-DD HH:MM'), sorted."""
    sql = "SELECT customer_id, campaign_id, step, status, reason, due_at, trigger_id FROM message_log"
    rows = wh.query(sql + (" WHERE campaign_id = :c" if campaign_id else ""), {"c": campaign_id})
    for row in rows:
        row["due_at"] = str(row["due_at"])[:16]
    return sorted(rows, key=lambda r: (r["customer_id"], r["campaign_id"], r["step"], r["due_at"]))


def recipients(ses) -> list[str]:
    """Sorted recipient (first destination) of every message the SES emulator accepted."""
    return sorted(m["destinations"][0] for m in ses.sent_messages())


def only(campaigns: dict, *ids: str) -> dict:
    """The campaigns of some ids (a dispatcher run that knows only those)."""
    return {cid: campaigns[cid] for cid in ids}
