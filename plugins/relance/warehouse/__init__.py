"""The warehouse: one SQLAlchemy engine, SQL files from ``include/sql``, idempotent migrations.

The same SQL runs on SQLite (embedded default) and PostgreSQL (production). Conventions
that make that possible, and that analysts can rely on:

* timestamps are UTC, stored as ``TIMESTAMP`` on PostgreSQL and as ``'YYYY-MM-DD HH:MM:SS'``
  text on SQLite (whole seconds on both, so both compare and sort the same way);
  dates are ``DATE`` / ``'YYYY-MM-DD'``;
* no date arithmetic in SQL: Python computes window bounds and passes them as parameters;
* upserts use ``INSERT … ON CONFLICT`` (both engines);
* every statement is parameterised (``:name``), never string-built.

On SQLite every transaction is ``BEGIN IMMEDIATE`` (one writer at a time, readers unblocked
thanks to WAL), which is what makes reservations such as frequency caps atomic there; on
PostgreSQL the SQL files take row locks where they need them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from relance import settings

TS_FORMAT = "%Y-%m-%d %H:%M:%S"


@cache
def load_sql(name: str) -> str:
    """Text of ``include/sql/<name>.sql`` (``name`` may contain a sub-folder), without its
    whole-line ``--`` comments (they document ``:params``, which must not be bound)."""
    path = settings.SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file {path}")
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))


def split_statements(script: str) -> list[str]:
    """Split a DDL script on ``;`` at end of line (our SQL files hold no procedural code)."""
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [stmt.strip() for stmt in re.split(r";\s*(?:\n|$)", body) if stmt.strip()]


class Warehouse:
    """Thin client over the warehouse engine; the business logic receives one of these."""

    def __init__(self, uri: str | None = None, engine: Engine | None = None):
        self.uri = uri or settings.warehouse_uri()
        self.engine = engine or make_engine(self.uri)
        self.dialect = self.engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"

    # -- parameters -----------------------------------------------------------------
    def to_db(self, value: Any) -> Any:
        """Python value → driver value following the conventions of this module."""
        if value is None or type(value) in (str, int, float):
            return value
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            value = value.replace(microsecond=0)
            return value.strftime(TS_FORMAT) if self.is_sqlite else value
        if isinstance(value, date):
            return value.isoformat() if self.is_sqlite else value
        if isinstance(value, bool) and self.is_sqlite:
            return int(value)
        return value

    def params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: (tuple(self.to_db(x) for x in v) if isinstance(v, list | tuple) else self.to_db(v))
                for k, v in (params or {}).items()}

    # -- execution ------------------------------------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self.engine.begin() as conn:
            yield conn

    def statement(self, name_or_sql: str, params: Mapping[str, Any] | None = None) -> sa.TextClause:
        sql = load_sql(name_or_sql) if "\n" not in name_or_sql and " " not in name_or_sql else name_or_sql
        clause = sa.text(sql)
        for key, value in (params or {}).items():
            if isinstance(value, list | tuple):
                clause = clause.bindparams(sa.bindparam(key, expanding=True))
        return clause

    def execute(self, name_or_sql: str, params: Mapping[str, Any] | None = None,
                conn: Connection | None = None) -> int:
        """Run one statement; returns the row count."""
        if conn is None:
            with self.begin() as own:
                return self.execute(name_or_sql, params, own)
        result = conn.execute(self.statement(name_or_sql, params), self.params(params))
        return result.rowcount

    def query(self, name_or_sql: str, params: Mapping[str, Any] | None = None,
              conn: Connection | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts (timestamps stay as the driver returns them)."""
        if conn is None:
            with self.begin() as own:
                return self.query(name_or_sql, params, own)
        result = conn.execute(self.statement(name_or_sql, params), self.params(params))
        return [dict(row) for row in result.mappings()]

    def scalar(self, name_or_sql: str, params: Mapping[str, Any] | None = None,
               conn: Connection | None = None) -> Any:
        rows = self.query(name_or_sql, params, conn)
        return next(iter(rows[0].values())) if rows else None

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], conn: Connection,
                    on_conflict_do_nothing: Sequence[str] | None = None) -> int:
        """Bulk insert plain rows into a staging or log table (fast executemany path).

        ``on_conflict_do_nothing`` names the conflict target: the insert is then idempotent.
        """
        if not rows:
            return 0
        columns = list(rows[0].keys())
        table_clause = sa.table(table, *[sa.column(c) for c in columns])
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(table_clause)
        if on_conflict_do_nothing:
            # RETURNING yields only the rows actually inserted: an exact count on both engines
            # (the driver's rowcount is -1 for batched inserts on PostgreSQL).
            stmt = stmt.on_conflict_do_nothing(index_elements=list(on_conflict_do_nothing))
            stmt = stmt.returning(table_clause.c[on_conflict_do_nothing[0]])
        total = 0
        for chunk_start in range(0, len(rows), 5000):
            chunk = [{c: self.to_db(r.get(c)) for c in columns} for r in rows[chunk_start:chunk_start + 5000]]
            result = conn.execute(stmt, chunk)
            total += len(result.fetchall()) if on_conflict_do_nothing else len(chunk)
        return total

    # -- schema ---------------------------------------------------------------------
    def upgrade(self) -> list[str]:
        """Bring the schema up to date; returns the migrations applied (idempotent)."""
        return upgrade(self)



def make_engine(uri: str) -> Engine:
    if uri.startswith("sqlite"):
        path = uri.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(uri, connect_args={"timeout": 120, "check_same_thread": False},
                                  poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=120000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10)


# -- migrations ----------------------------------------------------------------------
MIGRATIONS_DIR = settings.SQL_DIR / "schema"
_MIGRATION_LOCK_KEY = 720_431_119  # arbitrary, constant: pg advisory lock for migrations


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
            done = {r[0] for r in conn.execute(sa.text("SELECT version FROM schema_migrations"))}
        if all(version in done for version, _ in wanted) and not _views_changed(wh):
            return []
    except sa.exc.DBAPIError:
        pass
    with wh.begin() as conn:
        if not wh.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        conn.execute(sa.text(create_log))
        done = {r[0] for r in conn.execute(sa.text("SELECT version FROM schema_migrations"))}
        for version, path in wanted:
            if version in done:
                continue
            script = path.read_text()
            for stmt in split_statements(script):
                conn.exec_driver_sql(stmt)
            conn.execute(
                sa.text("INSERT INTO schema_migrations (version, checksum, applied_at) VALUES (:v, :c, :t)"),
                wh.params({"v": version, "c": hashlib.sha256(script.encode()).hexdigest()[:16],
                           "t": datetime.now(UTC)}),
            )
            applied_now.append(version)
        create_views(wh, conn)
    return applied_now


VIEWS_DIR = settings.SQL_DIR / "views"


def create_views(wh: Warehouse, conn: Connection) -> None:
    """(Re)create the analyst views of ``include/sql/views/<name>.sql`` (each a SELECT) whose
    text changed since they were last created."""
    conn.execute(sa.text("CREATE TABLE IF NOT EXISTS schema_views (name TEXT PRIMARY KEY, checksum TEXT NOT NULL)"))
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


def _views_changed(wh: Warehouse) -> bool:
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


def connect(uri: str | None = None, upgrade_schema: bool = True) -> Warehouse:
    """The warehouse of the connection ``warehouse``, schema brought up to date."""
    wh = Warehouse(uri)
    if upgrade_schema:
        wh.upgrade()
    return wh
