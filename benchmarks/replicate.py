"""A bigger PostgreSQL warehouse from a smaller one: every customer's rows replicated N× under
suffixed ids, for timing benchmarks at a size whose full import would take hours.

    python -m benchmarks.replicate --source postgresql://postgres@127.0.0.1:5432/h2_100k \\
        --target-db relance_bench_1m --factor 10 [--replace]

What it does, in order:

1. creates the database ``--target-db`` on the source's server (refuses if it exists, unless
   ``--replace``: then it is dropped first) and brings its schema up with the project's own
   migrations (:func:`relance.warehouse.connect`);
2. copies every table of the source into it (``COPY … (FORMAT binary)`` streamed from one
   connection to the other, the columns both sides have; a source given with
   ``?options=-csearch_path%3D<schema>`` — a bench's schema — is read from that schema);
3. for the tables that hold per-customer rows — any table with a ``customer_id``,
   ``anonymous_id``, ``order_id``, ``email``, ``send_key`` or ``event_id`` column that is not
   in :data:`ONCE` (customers, identity links, traits, consents, events, orders, order lines,
   order status changes, the outbox, message events, conversions, suppressions, segments,
   recommendations, …) — inserts ``factor − 1`` copies of each row in SQL, the id columns
   (:data:`ID_COLUMNS`) suffixed with ``_r<k>`` (k = 1 … factor − 1; NULL stays NULL),
   e-mail addresses prefixed with ``r<k>.`` (so they stay addresses, and ``email_hash`` is
   recomputed from the new address as :func:`relance.keys.address_hash` does), phone numbers
   with ``k`` appended. Everything else — timestamps, amounts, products, statuses, event
   properties — is the original's, so the copies have the same shapes and the same
   distributions. The popularity fallback's ``customer_id = '*'`` rows are not copied. Catalog
   and bookkeeping tables (:data:`ONCE`: products, snapshots, campaigns, ingest files, the
   learned product tables, reports, …) are copied once;
4. drops those tables' indexes and primary keys before the copies and builds them again after
   (faster than maintaining them row by row), then ``VACUUM (ANALYZE)`` every table.

Timings only: the N copies of a customer are N identical customers, so a model fitted on the
copy learns what it learns on the source (the item-item similarities are the same up to
scale); the point is the row counts. 100k → 1M (1.0M customers, 3.3M events, 1.7M orders,
2.7M order lines, 11M traits) took 148 s on the 2-core machine, load average ~3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]

#: Columns whose values identify a customer or one of their records: suffixed in each copy.
ID_COLUMNS = ("customer_id", "anonymous_id", "order_id", "message_id", "send_key", "event_id",
              "provider_message_id", "sqs_message_id", "digest_send_key", "trigger_id")
#: A table with one of these columns holds per-customer rows (unless listed in ONCE).
KEYED = ("customer_id", "anonymous_id", "order_id", "email", "send_key", "event_id")
#: Copied once: catalog, bookkeeping, learned product tables, aggregate reports.
ONCE = frozenset({"schema_migrations", "schema_views", "products", "product_snapshots", "campaigns",
                  "message_statuses", "ingest_files", "quarantine", "dropped_fields", "erasures",
                  "relance_state", "send_rate_limits", "report_ab_results", "report_holdout_lift",
                  "product_complements", "product_similarities", "product_upsells",
                  "product_repurchase_intervals"})
#: Kept as the target's migrations wrote them.
SCHEMA_TABLES = frozenset({"schema_migrations", "schema_views"})


def _conninfo(url: str) -> tuple[str, str | None]:
    """(libpq URL without SQLAlchemy's driver suffix or query, the search_path schema if any)."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    schema = None
    for option in parse_qs(parts.query).get("options", []):
        option = unquote(option)
        if "search_path=" in option:
            schema = option.split("search_path=", 1)[1].split()[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), schema


def _with_db(conninfo: str, db: str) -> str:
    parts = urlsplit(conninfo)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def _tables(conn, schema: str) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname, a.attnum", (schema,)).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def _copy_expression(column: str, columns: list[str]) -> str:
    """The value of ``column`` in copy ``r.k`` (SQL)."""
    if column == "email":
        return "'r' || r.k || '.' || email"
    if column == "email_hash" and "email" in columns:
        return ("CASE WHEN email IS NOT NULL THEN 'sha256:' || encode(sha256(convert_to("
                "lower(trim('r' || r.k || '.' || email)), 'UTF8')), 'hex') ELSE email_hash || '_r' || r.k END")
    if column == "email_hash":
        return "email_hash || '_r' || r.k"
    if column == "phone":
        return "phone || r.k"
    if column in ID_COLUMNS:
        return f"{column} || '_r' || r.k"
    return column


def replicate(source_url: str, target_db: str, factor: int, replace: bool = False, log=print) -> dict:
    """Copy the warehouse at ``source_url`` into a new database ``target_db`` with every
    per-customer row ``factor`` times (see the module's docstring). Returns row counts."""
    import psycopg
    from psycopg import sql

    sys.path.insert(0, str(ROOT / "plugins"))
    from relance import warehouse

    source, source_schema = _conninfo(source_url)
    source_schema = source_schema or "public"
    target = _with_db(source, target_db)
    started = time.perf_counter()
    with psycopg.connect(_with_db(source, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target_db,)).fetchone()
        if exists and not replace:
            raise SystemExit(f"database {target_db} exists: pass --replace to drop it first")
        if exists:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(target_db)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target_db)))
    warehouse.connect(target).engine.dispose()  # the schema, by the project's migrations
    counts: dict[str, int] = {}
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        source_tables = _tables(src, source_schema)
        target_tables = _tables(dst, "public")
        dst.execute("SET maintenance_work_mem = '512MB'")
        copied = [t for t in target_tables if t in source_tables and t not in SCHEMA_TABLES]
        keyed = [t for t in copied if t not in ONCE and any(c in KEYED for c in target_tables[t])]
        for table in copied:
            dst.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        # indexes and primary keys of the replicated tables: dropped now, built again after the copies
        rebuild = []
        for table in keyed:
            for name, definition in dst.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", (table,)).fetchall():
                dst.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table),
                                                                                  sql.Identifier(name)))
                rebuild.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)))
            for name, definition in dst.execute(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s",
                    (table,)).fetchall():
                dst.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
                rebuild.append(sql.SQL(definition))
        for table in copied:
            columns = [c for c in target_tables[table] if c in source_tables[table]]
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            out = sql.SQL("COPY {}.{} ({}) TO STDOUT (FORMAT binary)").format(
                sql.Identifier(source_schema), sql.Identifier(table), cols)
            into = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(sql.Identifier(table), cols)
            with src.cursor().copy(out) as reader, dst.cursor().copy(into) as writer:
                for chunk in reader:
                    writer.write(chunk)
            if table in keyed and factor > 1:
                values = sql.SQL(", ").join(sql.SQL(_copy_expression(c, columns)) for c in columns)
                where = sql.SQL("WHERE customer_id IS DISTINCT FROM '*'" if "customer_id" in columns else "")
                dst.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} CROSS JOIN generate_series(1, %s) AS r(k) {}")
                            .format(sql.Identifier(table), cols, values, sql.Identifier(table), where),
                            (factor - 1,))
            counts[table] = dst.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            dst.commit()
            log(f"{table}: {counts[table]:,} rows ({time.perf_counter() - started:.0f} s)")
        for statement in rebuild:
            dst.execute(statement)
        dst.commit()
        log(f"indexes rebuilt ({time.perf_counter() - started:.0f} s)")
    with psycopg.connect(target, autocommit=True) as dst:
        dst.execute("VACUUM (ANALYZE)")
    log(f"done: {target} in {time.perf_counter() - started:.0f} s")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the source warehouse (PostgreSQL URL)")
    parser.add_argument("--target-db", required=True, help="the database to create on the same server")
    parser.add_argument("--factor", type=int, default=10, help="copies of every customer (1 = a plain copy)")
    parser.add_argument("--replace", action="store_true", help="drop the target database first if it exists")
    args = parser.parse_args()
    if args.factor < 1:
        parser.error("--factor must be at least 1")
    replicate(args.source, args.target_db, args.factor, args.replace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
