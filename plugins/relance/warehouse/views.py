"""The analyst views of ``include/sql/views/<name>.sql`` (each a SELECT), recreated when their
text changes."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relance import settings
from relance.warehouse.sqlfiles import load_sql

if TYPE_CHECKING:
    from relance.warehouse.client import Warehouse

VIEWS_DIR = settings.SQL_DIR / "views"


_SCHEMA_VIEWS = "CREATE TABLE IF NOT EXISTS schema_views (name TEXT PRIMARY KEY, checksum TEXT NOT NULL)"


def drop_views(wh: Warehouse, conn: Connection) -> None:
    """Drop every view created so far (and forget it): a migration may then rebuild a table a
    view reads (``DROP TABLE`` fails on PostgreSQL under a view); :func:`create_views`
    recreates them all afterwards."""
    conn.execute(sa.text(_SCHEMA_VIEWS))
    for (name,) in conn.execute(sa.text("SELECT name FROM schema_views")).fetchall():
        conn.exec_driver_sql(f'DROP VIEW IF EXISTS "{name}"' + ("" if wh.is_sqlite else " CASCADE"))
    conn.execute(sa.text("DELETE FROM schema_views"))


def create_views(wh: Warehouse, conn: Connection) -> None:
    """(Re)create the analyst views of ``include/sql/views/<name>.sql`` (each a SELECT) whose
    text changed since they were last created."""
    conn.execute(sa.text(_SCHEMA_VIEWS))
    current = {r[0]: r[1] for r in conn.execute(sa.text("SELECT name, checksum FROM schema_views"))}
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        body = load_sql(f"views/{path.stem}").strip().rstrip(";")
        checksum = hashlib.sha256(body.encode()).hexdigest()[:16]
        if current.get(path.stem) == checksum:
            continue
        conn.exec_driver_sql(f'DROP VIEW IF EXISTS "{path.stem}"')
        conn.exec_driver_sql(f'CREATE VIEW "{path.stem}" AS {body}')
        conn.execute(sa.text("DELETE FROM schema_views WHERE name = :n"), {"n": path.stem})
        conn.execute(sa.text("INSERT INTO schema_views (name, checksum) VALUES (:n, :c)"),
                     {"n": path.stem, "c": checksum})


def views_changed(wh: Warehouse) -> bool:
    try:
        with wh.begin() as conn:
            current = {r[0]: r[1] for r in conn.execute(sa.text("SELECT name, checksum FROM schema_views"))}
    except sa.exc.DBAPIError:
        return True
    for path in VIEWS_DIR.glob("*.sql"):
        body = load_sql(f"views/{path.stem}").strip().rstrip(";")
        if current.get(path.stem) != hashlib.sha256(body.encode()).hexdigest()[:16]:
            return True
    return False
