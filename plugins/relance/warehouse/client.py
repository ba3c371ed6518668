"""The warehouse client: one SQLAlchemy engine, SQL files from ``include/sql`` run with
parameters converted by the conventions below.

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

import copy
import functools
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from relance import settings
from relance.warehouse.engine import make_engine
from relance.warehouse.migrations import upgrade
from relance.warehouse.sqlfiles import load_sql

TS_FORMAT = "%Y-%m-%d %H:%M:%S"


_PLAIN = frozenset({str, int, float, type(None)})  # values to_db leaves as they are
_CONVERTED_ONCE = frozenset({datetime, date, bool})  # … and values it converts, hashable


class _Converted(dict):
    """value → ``to_db(value)``, computed once per distinct value (datetimes, dates, booleans:
    the values ``to_db`` changes; equal values convert alike)."""

    def __init__(self, to_db):
        super().__init__()
        self.to_db = to_db

    def __missing__(self, value):
        self[value] = out = self.to_db(value)
        return out


@functools.cache
def _in_list(key: str) -> re.Pattern[str]:
    return re.compile(rf"(\bNOT\s+)?\bIN\s+:{key}\b", re.IGNORECASE)


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
            if value.tzinfo is not None and value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            value = value.replace(tzinfo=None, microsecond=0)  # one call: the hot path of a bulk load
            return value.strftime(TS_FORMAT) if self.is_sqlite else value
        if isinstance(value, date):
            return value.isoformat() if self.is_sqlite else value
        if isinstance(value, bool) and self.is_sqlite:
            return int(value)
        return value

    def params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: ([self.to_db(x) for x in v] if isinstance(v, list | tuple) else self.to_db(v))
                for k, v in (params or {}).items()}

    # -- execution ------------------------------------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction (``BEGIN IMMEDIATE`` on SQLite), on the pinned connection if any."""
        pinned = getattr(self, "_pinned", None)
        if pinned is not None:
            with pinned.begin():
                yield pinned
            return
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def pinned(self, autocommit: bool = False) -> Iterator[Warehouse]:
        """This warehouse through one connection held for the block: every statement still
        commits on its own (or with the others of a ``begin()``), but no connection is opened
        and closed per statement — which SQLite (no pool: ``engine.py``) otherwise does, at
        milliseconds a time. For a loop of many small transactions (``send_batch``); one
        thread at a time. ``autocommit``: for statements that each stand alone (queries, one
        atomic update) — on PostgreSQL one round trip each instead of three (``BEGIN``, the
        statement, ``COMMIT``); SQLite keeps its ``BEGIN IMMEDIATE`` transactions."""
        with self.engine.connect() as conn:
            if autocommit and not self.is_sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            clone = copy.copy(self)
            clone._pinned = conn
            yield clone

    def statement(self, name_or_sql: str, params: Mapping[str, Any] | None = None) -> sa.TextClause:
        """The statement of a SQL file (or text). A list parameter in ``x IN :name`` becomes, on
        PostgreSQL, one array parameter (``x = ANY(:name)``, ``NOT IN`` → ``<> ALL``): the same
        statement text whatever the list's length, no thousands of placeholders to send and
        parse; elsewhere an expanding ``IN (…)``."""
        sql = load_sql(name_or_sql) if "\n" not in name_or_sql and " " not in name_or_sql else name_or_sql
        expanding = []
        for key, value in (params or {}).items():
            if isinstance(value, list | tuple):
                if not self.is_sqlite:
                    sql, found = _in_list(key).subn(
                        lambda m, key=key: f"<> ALL(:{key})" if m.group(1) else f"= ANY(:{key})", sql)
                    if found:
                        continue
                expanding.append(key)
        clause = sa.text(sql)
        for key in expanding:
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
        keys = list(result.keys())  # zip: a RowMapping per row costs more than the row
        # fetchall: one driver call for the lot (iterating fetches row by row through SQLAlchemy)
        return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]

    def scalar(self, name_or_sql: str, params: Mapping[str, Any] | None = None,
               conn: Connection | None = None) -> Any:
        rows = self.query(name_or_sql, params, conn)
        return next(iter(rows[0].values())) if rows else None

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], conn: Connection,
                    on_conflict_do_nothing: Sequence[str] | None = None) -> int:
        """Bulk insert plain rows into a staging or log table; returns the rows inserted.

        ``on_conflict_do_nothing`` names the conflict target: the insert is then idempotent.
        On PostgreSQL (psycopg 3) the rows travel by ``COPY`` — straight into the table, or,
        with a conflict target, into a session temp table then one ``INSERT … SELECT … ON
        CONFLICT DO NOTHING``; elsewhere a batched executemany.
        """
        if not rows:
            return 0
        columns = list(rows[0].keys())
        if not self.is_sqlite and conn.dialect.driver == "psycopg":
            return self._copy_rows(table, columns, rows, conn, on_conflict_do_nothing)
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

    def analyze(self, tables: Sequence[str], conn: Connection) -> None:
        """PostgreSQL: refresh the planner statistics of ``tables`` (after a bulk load, before
        autovacuum gets to it); SQLite plans without them."""
        if self.is_sqlite:
            return
        conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{t}"' for t in tables))

    def estimated_rows(self, table: str, conn: Connection) -> int | None:
        """PostgreSQL: the planner's idea of a table's size (``pg_class.reltuples``, 0 when never
        analyzed); None on SQLite."""
        if self.is_sqlite:
            return None
        value = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                             {"t": table}).scalar()
        return max(int(value or 0), 0)

    def private_stage(self, table: str, conn: Connection) -> bool:
        """PostgreSQL: give this session a private temp table of the staging table ``table``'s
        shape and name, which shadows it for the session (``pg_temp`` comes first in the search
        path) and is emptied at commit: the same SQL files then stage and merge without the dead
        rows a shared table collects in a long transaction, and may ``TRUNCATE`` it. Returns
        False (nothing done) on SQLite, whose transactions are one writer at a time anyway."""
        if self.is_sqlite:
            return False
        conn.exec_driver_sql(f'CREATE TEMP TABLE IF NOT EXISTS "{table}" ON COMMIT DELETE ROWS AS '
                             f'SELECT * FROM "{table}" WITH NO DATA')
        return True

    def _copy_rows(self, table: str, columns: list[str], rows: Sequence[Mapping[str, Any]],
                   conn: Connection, conflict: Sequence[str] | None) -> int:
        """PostgreSQL: ``COPY`` the rows (no per-row statement, no SQL text to parse). A
        database error comes as SQLAlchemy's (``IntegrityError`` …), as from any statement."""
        import psycopg

        try:
            return self._copy_rows_raw(table, columns, rows, conn, conflict)
        except psycopg.Error as exc:
            raise sa.exc.DBAPIError.instance(f"COPY {table}", None, exc, psycopg.Error,
                                             hide_parameters=True) from exc

    def _copy_rows_raw(self, table: str, columns: list[str], rows: Sequence[Mapping[str, Any]],
                       conn: Connection, conflict: Sequence[str] | None) -> int:
        from psycopg import sql

        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        target = sql.Identifier(table)
        to_db = self.to_db
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            if conflict:
                # one temp table per (table, columns) and session, emptied after each use
                stage = sql.Identifier(f"_copy_{table}_{zlib.crc32(','.join(columns).encode()):08x}")
                cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "
                                    "SELECT {} FROM {} WITH NO DATA").format(stage, cols, target))
                into = stage
            else:
                into = target
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(into, cols)) as copy:
                plain, once = _PLAIN, _CONVERTED_ONCE
                # to_db only where a value needs it, once per distinct value (the rows of a bulk
                # load share their timestamps: loaded_at, an order's time on its lines …)
                converted = _Converted(to_db)
                for row in rows:
                    copy.write_row([v if v.__class__ in plain else converted[v] if v.__class__ in once else to_db(v)
                                    for v in map(row.get, columns)])
            if not conflict:
                return len(rows)
            cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO NOTHING").format(
                target, cols, cols, stage, sql.SQL(", ").join(sql.Identifier(c) for c in conflict)))
            inserted = cur.rowcount
            cur.execute(sql.SQL("TRUNCATE {}").format(stage))
            return inserted

    # -- schema ---------------------------------------------------------------------
    def upgrade(self) -> list[str]:
        """Bring the schema up to date; returns the migrations applied (idempotent)."""
        return upgrade(self)


def connect(uri: str | None = None, upgrade_schema: bool = True) -> Warehouse:
    """The warehouse of the connection ``warehouse``, schema brought up to date."""
    wh = Warehouse(uri)
    if upgrade_schema:
        wh.upgrade()
    return wh
