"""DataFrames in and out of the warehouse for the models, fast on both backends.

Millions of rows (interactions, recommendations): reading goes through the driver's cursor
as plain tuples; writing to PostgreSQL is one ``COPY … (FORMAT csv)``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from relance.warehouse import Warehouse

#: PostgreSQL ``work_mem`` for the models' reads (transaction-local): at 1M customers their
#: sorts and hash aggregates spill to disk with the default 4 MB.
WORK_MEM = "256MB"


def read_frame(wh: Warehouse, name: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Result of an ``include/sql`` query as a DataFrame, fetched in chunks of plain tuples from
    the driver's cursor (SQLAlchemy rows cost pandas an attribute probe per row)."""
    with wh.begin() as conn:
        if not wh.is_sqlite:  # one big analytical query: sort and hash in memory, not in temp files
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
        result = conn.execute(wh.statement(name, params), wh.params(params))
        columns = list(result.keys())
        cursor = result.cursor
        chunks = []
        while rows := cursor.fetchmany(200_000):
            chunks.append(pd.DataFrame(rows, columns=columns))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)


def write_frame(wh: Warehouse, table: str, frame: pd.DataFrame, conn) -> int:
    """Append a DataFrame's rows to ``table`` (columns by name) in the caller's transaction: on
    PostgreSQL one ``COPY … (FORMAT csv)`` fed by pandas' CSV writer (millions of rows without
    a Python object per value), elsewhere :meth:`Warehouse.insert_rows`."""
    if frame.empty:
        return 0
    if wh.is_sqlite or conn.dialect.driver != "psycopg":
        return wh.insert_rows(table, _records(frame), conn)
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns))
    with conn.connection.driver_connection.cursor() as cur, cur.copy(statement) as copy:
        for lo in range(0, len(frame), 500_000):
            copy.write(frame.iloc[lo: lo + 500_000].to_csv(header=False, index=False))
    return len(frame)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (numpy scalars converted)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype(object).map(int)
        elif pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype(object).map(lambda v: None if v != v else float(v))  # NaN → NULL
    return out.to_dict("records")
