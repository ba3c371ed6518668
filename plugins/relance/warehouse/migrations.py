"""Migrations: the ``include/sql/schema/NNNN_*.sql`` files, applied once each, in order, then
the analyst views (:mod:`relance.warehouse.views`), dropped before any migration runs (so a
migration may rebuild a table they read) and recreated after.

``schema_migrations`` records each applied file with the checksum of its text. A file is never
edited once applied anywhere: every upgrade compares the stored checksums with the files and
refuses to run (:class:`MigrationChanged`, naming the file and how to recover) when one
differs, rather than silently leaving that warehouse on the old schema. A change to the schema
is a new file.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from relance import settings
from relance.warehouse.sqlfiles import split_statements
from relance.warehouse.views import create_views, drop_views, views_changed

if TYPE_CHECKING:
    from relance.warehouse.client import Warehouse

MIGRATIONS_DIR = settings.SQL_DIR / "schema"
_MIGRATION_LOCK_KEY = 720_431_119  # arbitrary, constant: pg advisory lock for migrations


class MigrationChanged(RuntimeError):
    """An already-applied migration file was edited."""


def checksum(script: str) -> str:
    return hashlib.sha256(script.encode()).hexdigest()[:16]


def migrations() -> list[tuple[str, Path]]:
    files = sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [(p.stem, p) for p in files]


def upgrade(wh: Warehouse) -> list[str]:
    """Apply the pending ``include/sql/schema/NNNN_*.sql`` files, each in one transaction.

    Safe when several tasks start at once on an empty warehouse: PostgreSQL serialises on an
    advisory lock, SQLite on ``BEGIN IMMEDIATE``; each waits, then sees the work done.
    """
    wanted = migrations()
    create_log = ("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, "
                  "checksum TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)")
    applied_now: list[str] = []
    try:
        with wh.begin() as conn:
            done = _applied(conn)
    except sa.exc.DBAPIError:
        done = None
    if done is not None:
        verify(wanted, done)
        if all(version in done for version, _ in wanted) and not views_changed(wh):
            return []
    with wh.begin() as conn:
        if not wh.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        conn.execute(sa.text(create_log))
        done = _applied(conn)
        verify(wanted, done)
        if any(version not in done for version, _ in wanted):
            drop_views(wh, conn)
        for version, path in wanted:
            if version in done:
                continue
            script = path.read_text()
            for stmt in split_statements(script):
                conn.exec_driver_sql(stmt)
            conn.execute(
                sa.text("INSERT INTO schema_migrations (version, checksum, applied_at) VALUES (:v, :c, :t)"),
                wh.params({"v": version, "c": checksum(script),
                           "t": datetime.now(UTC)}),
            )
            applied_now.append(version)
        create_views(wh, conn)
    return applied_now


def _applied(conn) -> dict[str, str]:
    """version → stored checksum of every applied migration."""
    return {r[0]: r[1] for r in conn.execute(sa.text("SELECT version, checksum FROM schema_migrations"))}


def verify(wanted: list[tuple[str, Path]], applied: dict[str, str]) -> None:
    """Raise :class:`MigrationChanged` if a migration file differs from the text that was applied."""
    for version, path in wanted:
        stored = applied.get(version)
        if stored is None:
            continue
        current = checksum(path.read_text())
        if current != stored:
            rel = path.relative_to(settings.REPO_ROOT) if path.is_relative_to(settings.REPO_ROOT) else path
            raise MigrationChanged(
                f"migration {rel} was edited after it was applied to this warehouse (stored checksum "
                f"{stored}, file now {current}); this warehouse still has the old schema. Never edit an "
                f"applied migration: restore the file (git log -p -- {rel}) and put the change in a new "
                f"migration NNNN_<name>.sql. If the edit changes no schema (a comment) and you are sure, "
                f"record the new checksum: UPDATE schema_migrations SET checksum = '{current}' "
                f"WHERE version = '{version}'")
