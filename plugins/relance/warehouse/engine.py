"""The SQLAlchemy engine of a warehouse URI: SQLite with WAL and ``BEGIN IMMEDIATE``
(one writer at a time, readers unblocked), PostgreSQL with a small pool.

Both hide bound parameters from error messages (``hide_parameters``): a failed statement's
exception, which Airflow writes to the task log, would otherwise quote the values it carried —
customers' addresses and names among them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def make_engine(uri: str) -> Engine:
    if uri.startswith("sqlite"):
        path = uri.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(uri, connect_args={"timeout": 120, "check_same_thread": False},
                                  poolclass=sa.pool.NullPool, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=120000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            dbapi_conn.create_function("date_part", 2, date_part, deterministic=True)

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True)


def date_part(field: str, value: str | None) -> float | None:
    """PostgreSQL's ``date_part('epoch', ts)`` for SQLite, where timestamps are ISO text (naive =
    UTC): seconds since 1970 as a float. Lets trigger SQL add a per-row number of hours to a
    timestamp and compare it with a bound (replenishment's due window), the same text on both."""
    if field != "epoch":
        raise ValueError(f"date_part: only 'epoch' is supported on SQLite, not {field!r}")
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
