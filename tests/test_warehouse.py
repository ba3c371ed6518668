"""Warehouse plumbing: migrations and the time helpers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from relance import settings, warehouse
from relance.timeutil import as_of, hours_between, parse_duration, run_window


def migration_files() -> list[str]:
    return sorted(p.stem for p in (settings.SQL_DIR / "schema").glob("[0-9][0-9][0-9][0-9]_*.sql"))


def applied(wh) -> list[str]:
    return [r["version"] for r in wh.query("SELECT version FROM schema_migrations ORDER BY version")]


def test_migrations_are_idempotent(warehouse_url):
    wh = warehouse.Warehouse(warehouse_url)
    first = wh.upgrade()
    assert first == migration_files() and first[0] == "0001_core"  # every file, in order
    assert wh.upgrade() == []
    assert applied(wh) == first


def test_concurrent_upgrades_of_an_empty_warehouse_all_succeed(warehouse_url):
    barrier, errors = threading.Barrier(4), []

    def upgrade():
        try:
            wh = warehouse.Warehouse(warehouse_url)
            barrier.wait()
            wh.upgrade()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert applied(warehouse.Warehouse(warehouse_url)) == migration_files()  # each applied exactly once


def test_timestamps_round_trip_in_utc(wh):
    paris = datetime(2026, 11, 20, 11, 30, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    wh.execute("INSERT INTO suppressions (email, reason, created_at) VALUES ('a@b.c', 'manual', :t)", {"t": paris})
    assert str(wh.scalar("SELECT created_at FROM suppressions")) == "2026-11-20 11:30:00"


def test_a_scheduled_or_tested_run_decides_as_of_its_interval_end():
    start, end = datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 20, 10, tzinfo=UTC)
    context = {"data_interval_start": start, "data_interval_end": end, "logical_date": end}
    assert run_window(context) == (start, end) and as_of(context) == end


def test_an_asset_triggered_run_without_interval_decides_as_of_run_after():
    class Run:
        run_after = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)

    context = {"data_interval_start": None, "data_interval_end": None, "logical_date": None, "dag_run": Run()}
    assert as_of(context) == Run.run_after
    assert run_window(context) == (Run.run_after, Run.run_after)


def test_window_hours_and_durations():
    start = datetime(2026, 11, 20, 0, tzinfo=UTC)
    assert len(hours_between(start, start + timedelta(days=1))) == 24
    assert hours_between(start, start + timedelta(hours=1)) == [start]
    assert parse_duration("2h") == timedelta(hours=2) and parse_duration("0") == timedelta(0)
    with pytest.raises(ValueError, match="expected a number and a unit"):
        parse_duration("two hours")
