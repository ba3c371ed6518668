"""The warehouse: one SQLAlchemy engine, SQL files from ``include/sql``, idempotent migrations.

The same SQL runs on SQLite (embedded default) and PostgreSQL (production). The conventions
that make that possible are in :mod:`.client`; the pieces:

* :mod:`.client` — :class:`Warehouse` (run a named SQL file with parameters, bulk insert,
  transactions) and :func:`connect`;
* :mod:`.engine` — the engine of a URI (SQLite: WAL, ``BEGIN IMMEDIATE``);
* :mod:`.sqlfiles` — read ``include/sql/<name>.sql``, split a script;
* :mod:`.migrations` — apply ``include/sql/schema/NNNN_*.sql`` once each, checksums verified;
* :mod:`.views` — (re)create the analyst views of ``include/sql/views``.

This file only names things.
"""

from relance.warehouse.client import TS_FORMAT, Warehouse, connect
from relance.warehouse.engine import make_engine
from relance.warehouse.migrations import MIGRATIONS_DIR, upgrade
from relance.warehouse.sqlfiles import load_sql, split_statements
from relance.warehouse.views import VIEWS_DIR, create_views

__all__ = ["MIGRATIONS_DIR", "TS_FORMAT", "VIEWS_DIR", "Warehouse", "connect", "create_views", "load_sql",
           "make_engine", "split_statements", "upgrade"]
