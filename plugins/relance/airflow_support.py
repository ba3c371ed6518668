"""What the DAG files share: assets, timetables, default args. Cheap to import at parse time."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable

#: Updated by ingest_behaviour after each load: planners run after it.
BEHAVIOUR = Asset("relance_behaviour")
#: Updated by every planner that wrote rows: the dispatcher runs after it.
OUTBOX = Asset("relance_outbox")

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

DEFAULT_ARGS = {
    "owner": "relance",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}

#: The send tasks retry sooner, more often and without backoff: a send task killed mid-batch
#: (worker lost, SIGKILL) leaves its batch's rows queued until its retry takes the batch back,
#: so each retry comes 30 s after the failure — stranded messages go out within a minute even
#: after two failures (the default args' exponential backoff, ×2 once the scheduler reads
#: ``True``, would put a third try 2 to 4 minutes out).
SEND_RETRY_ARGS = {"retries": 3, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": 0}

_PRESETS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 1",
            "@monthly": "0 0 1 * *", "@quarterly": "0 0 1 */3 *"}


def interval_timetable(schedule: str) -> CronDataIntervalTimetable:
    """A cron schedule *with* data intervals (Airflow 3's plain cron has none): a run covers
    [previous tick, tick) and decides as of the tick."""
    return CronDataIntervalTimetable(_PRESETS.get(schedule, schedule), timezone="UTC")
