"""``ingest_behaviour``: a window's event folders and the newest catalog snapshot → warehouse."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from relance.ingest.catalog import load_snapshot
from relance.ingest.events import load_batch, parse_events
from relance.ingest.landing import Landing
from relance.timeutil import hours_between
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)


def ingest_events(wh: Warehouse, landing: Landing, start: datetime, end: datetime) -> dict[str, int]:
    """Load every file of the hour folders in ``[start, end)``; each file in one transaction."""
    totals: Counter[str] = Counter()
    for hour in hours_between(start, end):
        for file in landing.list(landing.events_folder(hour)):
            if not (file.key.endswith(".jsonl") or file.key.endswith(".jsonl.gz")):
                continue
            batch = parse_events(landing.read_bytes(file), file.uri, now=end)
            stats = load_batch(wh, batch, file.size, now=end)
            totals.update(stats)
            totals["files"] += 1
            log.info("loaded %s: %s", file.uri, stats)
    return dict(totals)


def ingest_catalog(wh: Warehouse, landing: Landing, end: datetime) -> dict[str, int]:
    """Load the newest snapshot dated on or before the window's last day, and any older one
    never loaded (a gap), so price and stock diffs between consecutive days stay complete."""
    last_day = (end - timedelta(seconds=1)).date()
    dates = [d for d in landing.catalog_dates() if d <= last_day]
    if not dates:
        return {"snapshots": 0}
    loaded = {r["source_file"] for r in wh.query("ingest/loaded_files", {"kind": "catalog"})}
    totals: Counter[str] = Counter()
    for day in dates:
        file = landing.catalog_file(day)
        if file is None or (file.uri in loaded and day != dates[-1]):
            continue
        stats = load_snapshot(wh, landing.read_bytes(file), file.uri, day, file.size, now=end)
        totals.update(stats)
        totals["snapshots"] += 1
        log.info("catalog %s: %s", file.uri, stats)
    totals["newest_snapshot"] = int(dates[-1].strftime("%Y%m%d"))
    return dict(totals)


def ingest_window(wh: Warehouse, landing_uri: str, start: datetime, end: datetime) -> dict[str, int]:
    landing = Landing(landing_uri)
    stats = {f"events_{k}": v for k, v in ingest_events(wh, landing, start, end).items()}
    stats.update({f"catalog_{k}": v for k, v in ingest_catalog(wh, landing, end).items()})
    return stats
