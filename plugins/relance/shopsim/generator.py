"""Write a synthetic shop's landing zone (SPEC §5): Segment events by hour and daily catalogue snapshots.

See the package docstring (``relance.shopsim``) for what is planted and why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from . import events as ev
from .customers import DAY_MS, HOUR_MS
from .simulation import Shop
from .writer import LandingWriter

P_DUPLICATE = 0.01  # share of lines delivered twice (same messageId)
P_LATE = 0.02  # share of window events delivered 2-6 h (or 1 day+) after their timestamp's hour
FORMAT_CHUNK = 200_000
MAX_LINES_PER_FILE = 200_000  # an hour folder with more lines gets events-0001, events-0002…
MALFORMED_KINDS = ("broken_json", "unknown_event", "order_without_order_id", "viewed_without_product_id",
                   "bad_timestamp", "missing_user_id")
BAD_TIMESTAMPS = ("2026-13-45T25:61:00.000Z", "yesterday", "20/11/2026 10:15", "")


def generate(out_dir: str | os.PathLike, customers: int, days: int, start: date, seed: int = 42,
             history_days: int = 400, gzip: bool = False, progress: Callable[[str], None] | None = None) -> dict:
    """Generate the landing zone under ``out_dir`` (its events/, catalog/ and _truth/ are replaced).

    Deterministic: the same arguments give byte-identical files. Returns the statistics."""
    if customers < 1 or days < 1 or history_days < 0:
        raise ValueError("customers and days must be >= 1, history_days >= 0")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    out = Path(out_dir)
    for sub in ("events", "catalog", "_truth"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    out.mkdir(parents=True, exist_ok=True)

    shop = Shop(customers, days, start, seed, history_days)
    cat = shop.cat
    writer = LandingWriter(out, start, days, gzip, max_lines=MAX_LINES_PER_FILE)
    counts = np.zeros(ev.N_KINDS, dtype=np.int64)
    defects = {"duplicates": 0, "late": 0}
    catalog_files: list[Path] = []

    def snapshot(day: int) -> None:
        path = out / "catalog" / f"dt={(start + timedelta(days=day)).isoformat()}" / "products.csv"
        cat.write_snapshot(path, day)
        catalog_files.append(path)

    snapshot(-1)
    cat.write_truth(out / "_truth" / "products.csv")
    say(f"catalogue: {cat.n_initial} products (+{cat.n - cat.n_initial} launched during the window); "
        f"{shop.cus.n_pre} customers (+{shop.cus.n - shop.cus.n_pre} sign-ups)")

    # onboarding import, written first in dt=start/hour=00
    table, baskets, carry, carry_baskets = shop.history()
    n_hist = len(table["kind"])
    counts += np.bincount(table["kind"], minlength=ev.N_KINDS)
    dup_rng = shop.rng(21)
    for chunk, lo in enumerate(range(0, n_hist, FORMAT_CHUNK)):
        sub = {k: v[lo: lo + FORMAT_CHUNK] for k, v in table.items()}
        lines = shop.fmt.lines(sub, baskets, ev.uuid_like(shop.rng(20, chunk), len(sub["kind"])))
        writer.write_now(0, lines)
        dup = np.flatnonzero(dup_rng.random(len(lines)) < P_DUPLICATE)
        arrival = shop.start_ms + dup_rng.integers(0, min(3, days * 24) * HOUR_MS, len(dup))
        writer.push(arrival, [lines[i] for i in dup.tolist()])
        defects["duplicates"] += len(dup)
    del table, baskets
    say(f"onboarding import: {n_hist} calls ({shop.orders_history} past orders) "
        f"[{time.perf_counter() - t0:.1f}s]")

    # history refunds/cancellations that fall inside the window
    counts += np.bincount(carry["kind"], minlength=ev.N_KINDS)
    _route(shop, writer, shop.fmt.lines(carry, carry_baskets, ev.uuid_like(shop.rng(22), len(carry["kind"]))),
           carry["ts"], shop.rng(23), defects)

    malformed = _plant_malformed(shop, writer, shop.rng(30), 2 + customers // 250_000)

    for d in range(days):
        t, b = shop.day(d)
        counts += np.bincount(t["kind"], minlength=ev.N_KINDS)
        lines = shop.fmt.lines(t, b, ev.uuid_like(shop.rng(300, d), len(t["kind"])))
        _route(shop, writer, lines, t["ts"], shop.rng(400, d), defects)
        del lines, t, b
        writer.flush_until((d + 1) * 24)
        shop.end_of_day(d)
        snapshot(d)
        say(f"day {d + 1}/{days} ({start + timedelta(days=d)}): {writer.lines} lines so far "
            f"[{time.perf_counter() - t0:.1f}s]")
    writer.flush_until(days * 24)

    by_name: dict[str, int] = {}
    for kind, name in enumerate(ev.EVENT_NAMES):
        by_name[name] = by_name.get(name, 0) + int(counts[kind])
    files = [*writer.files, *catalog_files, out / "_truth" / "products.csv"]
    ch = shop.changes
    stats = {
        "seed": seed,
        "start": start.isoformat(),
        "days": days,
        "history_days": history_days,
        "customers": int(shop.cus.n),
        "customers_preexisting": int(shop.cus.n_pre),
        "customers_signed_up": int(shop.cus.n - shop.cus.n_pre),
        "products": int(cat.n),
        "products_new": int(cat.n - cat.n_initial),
        "events": by_name,
        "events_total": int(counts.sum()),
        "identify_updates": int(counts[ev.IDENTIFY_UPDATE]),
        "onboarding_calls": n_hist,
        "orders": int(counts[ev.ORDER_COMPLETED]),
        "orders_history": int(shop.orders_history),
        "orders_window": int(shop.orders_window),
        "carts": int(shop.carts),
        "carts_abandoned": int(shop.carts - shop.carts_ordered),
        "cart_abandonment_rate": round(1 - shop.carts_ordered / shop.carts, 4) if shop.carts else None,
        "catalog_changes": {name: int(getattr(ch, name)) for name in ch.__dataclass_fields__},
        "lines_written": int(writer.lines),
        "event_files": len(writer.files),
        "catalog_files": len(catalog_files),
        "files_written": len(files),
        "bytes_written": int(sum(f.stat().st_size for f in files)),
        "malformed_lines": int(sum(malformed.values())),
        "malformed_by_kind": malformed,
        "duplicates_planted": int(defects["duplicates"]),
        "late_events_planted": int(defects["late"]),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return stats


def _route(shop: Shop, writer: LandingWriter, lines: list[str], ts: np.ndarray, rng: np.random.Generator,
           defects: dict[str, int]) -> None:
    """Deliver lines by arrival time, making some late and some twice."""
    n = len(lines)
    if not n:
        return
    n_hours = shop.days * 24
    arrival = ts.copy()
    hour = (ts - shop.start_ms) // HOUR_MS
    late = rng.random(n) < P_LATE
    shift = np.where(rng.random(n) < 0.75, rng.integers(2, 7, n), rng.integers(24, 31, n))
    late &= hour + shift < n_hours
    i = np.flatnonzero(late)
    arrival[i] = shop.start_ms + (hour[i] + shift[i]) * HOUR_MS + rng.integers(0, HOUR_MS, len(i))
    writer.push(arrival, lines)
    dup = np.flatnonzero(rng.random(n) < P_DUPLICATE)
    delay = np.where(rng.random(len(dup)) < 0.6, rng.integers(1_000, 600_000, len(dup)),
                     rng.integers(HOUR_MS, 3 * HOUR_MS, len(dup)))
    again = arrival[dup] + delay
    again = np.where(again < shop.end_ms, again, arrival[dup])
    writer.push(again, [lines[j] for j in dup.tolist()])
    defects["late"] += len(i)
    defects["duplicates"] += len(dup)


def _plant_malformed(shop: Shop, writer: LandingWriter, rng: np.random.Generator, per_kind: int) -> dict[str, int]:
    """A handful of lines the ingestion must quarantine, spread over the window."""
    cat, cus = shop.cat, shop.cus
    n = per_kind * len(MALFORMED_KINDS)
    mids = ev.uuid_like(rng, n)
    ts = shop.start_ms + rng.integers(0, shop.days * DAY_MS, n)
    iso = ev.iso_ms(ts)
    cust = rng.integers(0, max(1, cus.n_pre), n)
    prod = rng.integers(0, cat.n_initial, n)
    lines: list[str] = []
    for j in range(n):
        kind = MALFORMED_KINDS[j // per_kind]
        uid, pid, head = cus.uid[cust[j]], cat.id_json[prod[j]], shop.fmt.head[prod[j]]
        price = ev.money_list(cat.price[prod[j]: prod[j] + 1])[0]
        envelope = f'"messageId":"{mids[j]}","userId":"{uid}","timestamp":"{iso[j]}"'
        viewed = f'{{"type":"track","event":"Product Viewed",{envelope},"properties":{{{head},"price":{price}}}}}'
        if kind == "broken_json":
            line = viewed[: int(len(viewed) * 0.6)]
        elif kind == "unknown_event":
            line = f'{{"type":"track","event":"Product Teleported",{envelope},"properties":{{"product_id":{pid}}}}}'
        elif kind == "order_without_order_id":
            line = (f'{{"type":"track","event":"Order Completed",{envelope},"properties":{{"total":{price},'
                    f'"revenue":{price},"currency":"EUR","products":[{{"product_id":{pid},"quantity":1,'
                    f'"price":{price}}}]}}}}')
        elif kind == "viewed_without_product_id":
            name = head.split('"name":', 1)[1]
            line = f'{{"type":"track","event":"Product Viewed",{envelope},"properties":{{"name":{name},"price":{price}}}}}'
        elif kind == "bad_timestamp":
            bad = BAD_TIMESTAMPS[j % len(BAD_TIMESTAMPS)]
            line = viewed.replace(f'"timestamp":"{iso[j]}"', f'"timestamp":"{bad}"')
        else:  # missing_user_id
            line = viewed.replace(f'"userId":"{uid}",', "")
        lines.append(line)
    writer.push(ts, lines)
    return {k: per_kind for k in MALFORMED_KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relance shopsim", description="Generate a synthetic shop's landing zone "
                                     "(Segment events by hour + daily catalogue snapshots).")
    parser.add_argument("--out", required=True, help="landing zone directory (events/ and catalog/ are replaced)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7, help="simulated days")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 16),
                        help="first simulated day, YYYY-MM-DD (UTC)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--history-days", type=int, default=400, help="days of imported order history")
    parser.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    parser.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    args = parser.parse_args(argv)
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    stats = generate(args.out, args.customers, args.days, args.start, seed=args.seed,
                     history_days=args.history_days, gzip=args.gzip, progress=progress)
    print(json.dumps(stats, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
