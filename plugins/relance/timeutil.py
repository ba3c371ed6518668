"""Time semantics (SPEC §4, §6): a run decides as of its ``data_interval_end``, never the wall clock.

All datetimes inside the package are timezone-aware UTC; the warehouse stores naive UTC
(see :mod:`relance.warehouse`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utc(value: Any) -> datetime:
    """Coerce a datetime (aware, naive = UTC, pendulum) or an ISO string to aware UTC."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        value = datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)


def customer_zone(timezone: str | None) -> ZoneInfo:
    """The customer's time zone; the shop's default (:func:`relance.settings.default_timezone`)
    when it is unknown or not a valid IANA name. The one fallback every local-time rule uses."""
    from relance import settings

    for name in (timezone, settings.default_timezone(), settings.DEFAULT_TIMEZONE):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def run_window(context: dict[str, Any]) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a run works on; ``end`` is the run's "now".

    Scheduled, manual and ``dag.test`` runs carry a data interval. An asset-triggered run
    without one decides as of its ``run_after`` and has an empty window at that instant.
    """
    end = context.get("data_interval_end")
    start = context.get("data_interval_start")
    if end is None:
        dag_run = context.get("dag_run")
        end = getattr(dag_run, "run_after", None) or context.get("logical_date")
        if end is None:
            raise ValueError("run has neither a data interval nor a run_after")
        start = end
    return utc(start if start is not None else end), utc(end)


def as_of(context: dict[str, Any]) -> datetime:
    """The instant a run decides as of: its ``data_interval_end`` (else its ``run_after``)."""
    return run_window(context)[1]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``"2h"``, ``"24h"``, ``"3d"``, ``"90m"``, ``"0"`` → timedelta (numbers are seconds)."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    if text.strip() in ("0", "now", "immediately"):
        return timedelta(0)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: expected a number and a unit among s, m, h, d, w (e.g. '2h')")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Each whole UTC hour ``h`` with ``start <= h < end`` (the hour folders of a window)."""
    out, cursor = [], floor_hour(start)
    if cursor < start:
        cursor += timedelta(hours=1)
    while cursor < end:
        out.append(cursor)
        cursor += timedelta(hours=1)
    return out
