"""Trigger transforms: a small, named Python step between a trigger query and the planner.

Trigger SQL does no date arithmetic (it must run unchanged on SQLite and PostgreSQL), so the
few triggers that need time-zone or gap logic per row — "the same *local* day", "a cart
left for days is a new cart" — return candidate rows and name a transform in their YAML
(``trigger_transform: <name>``). A transform is a plain function
``(rows, as_of) -> rows`` registered here with :func:`transform`; the planner applies it,
then plans the returned rows as usual. Tested like any function.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

Rows = list[dict[str, Any]]
Transform = Callable[[Rows, datetime], Rows]

#: name → function; the campaign config refuses an unknown name at load time.
TRANSFORMS: dict[str, Transform] = {}


def transform(name: str) -> Callable[[Transform], Transform]:
    """Register a trigger transform under ``name`` (used as ``trigger_transform: name``)."""

    def register(func: Transform) -> Transform:
        TRANSFORMS[name] = func
        return func

    return register


def apply(name: str | None, rows: Rows, as_of: datetime) -> Rows:
    return TRANSFORMS[name](rows, as_of) if name else rows
