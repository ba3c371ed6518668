"""SQL files run straight through the DB-API cursor of a pinned connection, for the few
statements a loop runs once per message (the send loop's claim, outcome and content queries,
the rate limiter's reservations): the file read and converted to the driver's parameter style
once, the parameters converted as :meth:`Warehouse.to_db` does, no SQLAlchemy statement,
compilation or result object per run.

Each write still commits on its own, as through :meth:`Warehouse.execute`: on SQLite in a
``BEGIN IMMEDIATE`` transaction (one writer at a time, the busy timeout honoured), on
PostgreSQL as one autocommit round trip on a connection pinned with ``autocommit=True``,
server-side prepared (psycopg ``prepare=True``) — committed by itself on a connection pinned
without. A driver error comes as SQLAlchemy's (``OperationalError`` …, parameters hidden), as
from any statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from relance.warehouse.sqlfiles import PARAM, load_sql


class CursorStatements:
    """The SQL files of ``include/sql`` on the pinned connection of ``wh`` (``Warehouse.pinned``);
    one thread at a time, like the connection."""

    def __init__(self, wh: Any):
        conn = wh._pinned  # a pinned warehouse only: a connection held for the loop
        self.to_db, self.is_sqlite = wh.to_db, wh.is_sqlite
        self.raw = conn.connection.driver_connection
        self.cursor = self.raw.cursor()
        self.driver_error = _driver_error(self.raw)
        self._sql: dict[str, str] = {}

    def _text(self, name: str) -> str:
        sql = self._sql.get(name)
        if sql is None:
            sql = load_sql(name)
            if not self.is_sqlite:  # psycopg: %(name)s, a literal % doubled; sqlite3 takes :name as it is
                sql = PARAM.sub(lambda m: f"%({m.group(1)})s", sql.replace("%", "%%"))
            self._sql[name] = sql
        return sql

    def execute(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the statement of ``include/sql/<name>.sql`` and commit; returns the row count."""
        return self._write(name, params, False)[0]

    def returning(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run the statement (``UPDATE … RETURNING``) and commit; returns the rows it returned."""
        return self._write(name, params, True)[1]

    def _write(self, name: str, params: Mapping[str, Any], fetch: bool) -> tuple[int, list[dict[str, Any]]]:
        sql, to_db, cursor, raw = self._text(name), self.to_db, self.cursor, self.raw
        values = {key: to_db(value) for key, value in params.items()}
        rows: list[dict[str, Any]] = []
        try:
            try:
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.execute(sql, values)
                else:
                    cursor.execute(sql, values, prepare=True)
                if fetch:
                    keys = [column[0] for column in cursor.description]
                    rows = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
                count = cursor.rowcount
                if self.is_sqlite:
                    cursor.execute("COMMIT")
                elif not raw.autocommit:  # a connection pinned without autocommit: its own commit
                    raw.commit()
            except BaseException:
                if raw.in_transaction if self.is_sqlite else not raw.autocommit:
                    raw.rollback()
                raise
        except self.driver_error as exc:
            raise sa.exc.DBAPIError.instance(name, None, exc, self.driver_error, hide_parameters=True) from exc
        return count, rows

    def query_each(self, name: str, param_sets: list[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
        """The rows (dicts) of the query of ``include/sql/<name>.sql`` for each parameter set:
        on SQLite one execution each of the statement compiled once, in one read transaction
        (one snapshot, no write lock); on PostgreSQL all of them in one round trip (psycopg's
        ``executemany`` in pipeline mode, the statement prepared once)."""
        if not param_sets:
            return []
        sql, to_db, cursor = self._text(name), self.to_db, self.cursor
        values = [{key: to_db(value) for key, value in params.items()} for params in param_sets]
        results = []
        try:
            if self.is_sqlite:
                cursor.execute("BEGIN")
                try:
                    for one in values:
                        cursor.execute(sql, one)
                        keys = [column[0] for column in cursor.description]
                        results.append([dict(zip(keys, row, strict=True)) for row in cursor.fetchall()])
                finally:
                    cursor.execute("COMMIT")
                return results
            try:
                cursor.executemany(sql, values, returning=True)
                while True:
                    keys = [column[0] for column in cursor.description]
                    results.append([dict(zip(keys, row, strict=True)) for row in cursor.fetchall()])
                    if not cursor.nextset():
                        break
            finally:
                if not self.raw.autocommit:
                    self.raw.commit()
        except self.driver_error as exc:
            raise sa.exc.DBAPIError.instance(name, None, exc, self.driver_error, hide_parameters=True) from exc
        return results


def cursor_statements(wh: Any) -> CursorStatements | None:
    """``wh``'s statements through the DB-API cursor of its pinned connection; None for a
    warehouse that holds no connection (each of its statements opens its own: run them on it)."""
    return CursorStatements(wh) if getattr(wh, "_pinned", None) is not None else None


def _driver_error(raw: Any) -> type[Exception]:
    if type(raw).__module__.startswith("sqlite3"):
        import sqlite3

        return sqlite3.Error
    import psycopg

    return psycopg.Error
