"""The SQL files of ``include/sql``: read one (without its comments), split a script."""

from __future__ import annotations

import re
from functools import cache

from relance import settings

#: A bound parameter ``:name`` of our SQL files (not a ``::type`` cast, not inside a word).
PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@cache
def load_sql(name: str) -> str:
    """Text of ``include/sql/<name>.sql`` (``name`` may contain a sub-folder), without its
    whole-line ``--`` comments (they document ``:params``, which must not be bound)."""
    path = settings.SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file {path}")
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))


def split_statements(script: str) -> list[str]:
    """Split a DDL script on ``;`` at end of line (our SQL files hold no procedural code); a
    ``-- comment`` may follow the ``;`` on its line."""
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [stmt.strip() for stmt in re.split(r";[ \t]*(?:--[^\n]*)?(?:\n|$)", body) if stmt.strip()]
