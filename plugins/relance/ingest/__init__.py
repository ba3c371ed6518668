"""``ingest_behaviour``: a window's event folders and the newest catalog snapshot → warehouse."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta

from relance import settings
from relance.ingest.catalog import load_snapshot
from relance.ingest.events import MAX_LINE_BYTES, load_events_file
from relance.ingest.landing import Landing, LandingFile, iter_lines
from relance.ingest.parallel import PARALLEL_MIN_BYTES, parallel_batches, parse_workers
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)


def _is_events_file(file: LandingFile) -> bool:
    return file.key.endswith(".jsonl") or file.key.endswith(".jsonl.gz")


def _hour_of(file: LandingFile) -> datetime | None:
    """The hour folder of ``events/dt=YYYY-MM-DD/hour=HH/…`` as a naive UTC datetime."""
    parts = file.key.split("/")
    if len(parts) < 4 or not parts[1].startswith("dt=") or not parts[2].startswith("hour="):
        return None
    try:
        return datetime.fromisoformat(f"{parts[1][3:]}T{int(parts[2][5:]):02d}:00")
    except ValueError:
        return None


def files_to_load(wh: Warehouse, landing: Landing, start: datetime, end: datetime,
                  trailing_hours: int) -> list[LandingFile]:
    """Every event file of the window's hour folders ``[start, end)`` (a re-run or a backfill
    reads them again: loading is idempotent), plus every file of the trailing
    ``trailing_hours`` before ``start`` not loaded yet (late uploads, hours missed while the
    scheduler was down): each of those exactly once. One listing per day folder."""
    own_from = start.replace(tzinfo=None)
    own_to = end.replace(tzinfo=None)
    trail_from = own_from - timedelta(hours=trailing_hours)
    day, candidates = trail_from.date(), []
    while day <= (own_to - timedelta(microseconds=1)).date():
        for file in landing.list(f"events/dt={day.isoformat()}"):
            hour = _hour_of(file)
            if hour is not None and _is_events_file(file) and trail_from <= hour < own_to:
                candidates.append((hour, file))
        day += timedelta(days=1)
    own = [f for h, f in candidates if h >= own_from]
    trailing = [f for h, f in candidates if h < own_from]
    loaded: set[str] = set()
    uris = [f.uri for f in trailing]
    for i in range(0, len(uris), 500):
        loaded.update(r["source_file"] for r in wh.query("ingest/loaded_files_among",
                                                         {"source_files": uris[i:i + 500]}))
    late = [f for f in trailing if f.uri not in loaded]
    return sorted(late + own, key=lambda f: f.key)


def ingest_events(wh: Warehouse, landing: Landing, start: datetime, end: datetime,
                  trailing_hours: int | None = None) -> dict[str, int]:
    """Load the event files of the window (and the trailing window's new ones), each file in one
    transaction. A file that cannot be read at all does not stop the others; the run then
    fails naming it, so Airflow retries it."""
    if trailing_hours is None:
        trailing_hours = settings.ingest_trailing_hours()
    totals: Counter[str] = Counter()
    failed: list[str] = []
    for file in files_to_load(wh, landing, start, end, trailing_hours):
        try:
            with landing.open(file) as stream:
                lines = iter_lines(stream, MAX_LINE_BYTES)
                workers = parse_workers() if file.size >= PARALLEL_MIN_BYTES else 0
                batches = parallel_batches(lines, file.uri, end, workers) if workers else None
                stats = load_events_file(wh, lines, file.uri, file.size, now=end, batches=batches)
        except Exception:  # noqa: BLE001 - logged, reported below, retried by the next attempt
            log.exception("could not load %s", file.uri)
            failed.append(file.uri)
            continue
        totals.update(stats)
        totals["files"] += 1
        log.info("loaded %s: %s", file.uri, stats)
    if failed:
        raise RuntimeError(f"{len(failed)} landing file(s) could not be read: {', '.join(failed[:5])}")
    return dict(totals)


def _checksum(landing: Landing, file: LandingFile) -> str:
    """SHA-256 of a landing file's content, read as a stream."""
    digest = hashlib.sha256()
    with landing.open(file) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def ingest_catalog(wh: Warehouse, landing: Landing, end: datetime) -> dict[str, int]:
    """Load the newest snapshot dated on or before the window's last day, and any older one
    never loaded (a gap), so price and stock diffs between consecutive days stay complete."""
    last_day = (end - timedelta(seconds=1)).date()
    dates = [d for d in landing.catalog_dates() if d <= last_day]
    if not dates:
        return {"snapshots": 0}
    loaded = {r["source_file"]: r["checksum"] for r in wh.query("ingest/loaded_files", {"kind": "catalog"})}
    totals: Counter[str] = Counter()
    for day in dates:
        file = landing.catalog_file(day)
        if file is None or (file.uri in loaded and day != dates[-1]):
            continue
        # the newest snapshot is looked at every hour, loaded again only when its content changed
        checksum = _checksum(landing, file)
        if loaded.get(file.uri) == checksum:
            totals["unchanged"] += 1
            continue
        with landing.open(file) as stream:
            stats = load_snapshot(wh, stream, file.uri, day, file.size, now=end, checksum=checksum)
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
