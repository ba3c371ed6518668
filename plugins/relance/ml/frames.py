"""DataFrames in and out of the warehouse for the models, fast on both backends.

Millions of rows (order lines, recommendations): reading goes through the driver's cursor
as plain tuples; writing to PostgreSQL is one ``COPY … (FORMAT binary)`` laid out by numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
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
    PostgreSQL one ``COPY … (FORMAT binary)`` whose rows numpy lays out column by column
    (:func:`_binary_rows`: no Python object, no text formatting per value; NaN and None are
    NULL) — or ``(FORMAT csv)`` by pandas' CSV writer for a column type it does not lay out —,
    elsewhere :meth:`Warehouse.insert_rows`."""
    return write_frames(wh, table, [frame], conn)


def write_frames(wh: Warehouse, table: str, frames: Iterable[pd.DataFrame], conn) -> int:
    """:func:`write_frame` for chunks of rows with the same columns, written as they come: given a
    generator, the next chunk is computed while a background thread sends the previous one on
    PostgreSQL (``QueuedLibpqWriter``), so the server inserts while Python computes."""
    chunks = (frame for frame in frames if not frame.empty)
    first = next(chunks, None)
    if first is None:
        return 0
    chunks = itertools.chain([first], chunks)
    if wh.is_sqlite or conn.dialect.driver != "psycopg":
        return sum(wh.insert_rows(table, _records(frame), conn) for frame in chunks)
    from psycopg import sql
    from psycopg.copy import QueuedLibpqWriter

    driver = conn.connection.driver_connection
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in first.columns)
    written = 0
    with driver.cursor() as cur:
        types = dict(cur.execute("SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
                                 "AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())
        oids = [types.get(c) for c in first.columns]
        binary = all(oid in _BINARY for oid in oids)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
            sql.Identifier(table), columns, sql.SQL("binary" if binary else "csv"))
        with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
            if binary:
                copy.write(_BINARY_HEADER)
            for frame in chunks:
                for lo in range(0, len(frame), 500_000):
                    part = frame.iloc[lo: lo + 500_000]
                    copy.write(_binary_rows(part, oids) if binary else part.to_csv(header=False, index=False))
                written += len(frame)
            if binary:
                copy.write(b"\xff\xff")  # the trailer: a tuple of -1 fields
    return written


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
_PG_EPOCH = np.datetime64("2000-01-01", "D")
#: PostgreSQL type OID → (numpy big-endian dtype of the value, or "text" / "date" / "timestamp").
_BINARY = {16: ">?", 21: ">i2", 23: ">i4", 20: ">i8", 700: ">f4", 701: ">f8", 25: "text", 1043: "text",
           1082: "date", 1114: "timestamp", 1184: "timestamp"}


def _field(values: pd.Series, oid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One column in COPY binary: (bytes per row, -1 for NULL; the values' bytes; for text, the
    row → offset into those bytes, else None: fixed width, one row after the other)."""
    kind = _BINARY[oid]
    if isinstance(values.dtype, pd.CategoricalDtype):  # each distinct value laid out once
        codes = values.cat.codes.to_numpy().astype(np.int64)
        lengths, data, offsets = _field(pd.Series(values.cat.categories), oid)
        safe = np.where(codes >= 0, codes, 0)
        rows = np.where(codes >= 0, lengths[safe] if len(lengths) else 0, -1)
        if offsets is not None:
            return rows, data, offsets[safe] if len(offsets) else np.zeros(len(codes), np.int64)
        width = len(data) // max(len(lengths), 1)
        return rows, data.reshape(-1, width)[safe].reshape(-1) if len(lengths) else np.zeros(0, np.uint8), None
    if kind == "text":
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        encoded = [str(u).encode() for u in uniques]
        sizes = np.array([len(e) for e in encoded], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        flat = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
        safe = np.where(codes >= 0, codes, 0)
        lengths = np.where(codes >= 0, sizes[safe] if len(sizes) else 0, -1)
        return lengths, flat, np.where(codes >= 0, starts[safe] if len(starts) else 0, 0)
    if kind == "date":
        stamps = pd.to_datetime(values).to_numpy().astype("datetime64[D]")
        null = np.isnat(stamps)
        data = (stamps - _PG_EPOCH).astype(np.int64).astype(">i4")
    elif kind == "timestamp":
        stamps = pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy().astype("datetime64[us]")
        null = np.isnat(stamps)
        data = (stamps - _PG_EPOCH.astype("datetime64[us]")).astype(np.int64).astype(">i8")
    else:
        raw = pd.to_numeric(values) if values.dtype == object else values
        null = raw.isna().to_numpy()
        data = raw.fillna(0).to_numpy().astype(kind)
    width = data.dtype.itemsize
    return np.where(null, -1, width), data.view(np.uint8), None


def _binary_rows(frame: pd.DataFrame, oids: list[int]) -> bytes:
    """The frame's rows in PostgreSQL's COPY binary format (no header, no trailer)."""
    n = len(frame)
    fields = [_field(frame[c], oid) for c, oid in zip(frame.columns, oids, strict=True)]
    sizes = 2 + sum(4 + np.maximum(lengths, 0) for lengths, _, _ in fields)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)

    def put(at: np.ndarray, chunk: np.ndarray) -> None:  # chunk: rows × width bytes, at: each row's start
        out[at[:, None] + np.arange(chunk.shape[1])] = chunk

    put(starts, np.full(n, len(fields), dtype=">i2").view(np.uint8).reshape(n, 2))
    at = starts + 2
    for lengths, data, offsets in fields:
        put(at, lengths.astype(">i4").view(np.uint8).reshape(n, 4))
        at = at + 4
        present = lengths > 0
        if offsets is None:  # fixed width: row i's bytes are data[i * width: (i + 1) * width]
            width = len(data) // n if n else 0
            rows = np.flatnonzero(present)
            out[at[rows][:, None] + np.arange(width)] = data.reshape(n, width)[rows]
        else:  # text: each row's bytes are a slice of the distinct values' bytes
            size = lengths[present]
            total = int(size.sum())
            before = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
            step = np.arange(total, dtype=np.int64)
            out[np.repeat(at[present] - before, size) + step] = data[np.repeat(offsets[present] - before, size) + step]
        at = at + np.maximum(lengths, 0)
    return out.tobytes()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (numpy scalars converted)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype(object).map(int)
        elif pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype(object).map(lambda v: None if v != v else float(v))  # NaN → NULL
    return out.to_dict("records")
