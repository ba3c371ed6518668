"""One ``campaign_report`` run: attribute the interval's orders, then refresh the A/B and
holdout snapshots as of the interval's end. Re-running an interval replaces its rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from relance import settings
from relance.results.attribution import RESTATE_DAYS, attribute_days, days_of
from relance.results.experiments import compute_results
from relance.timeutil import utc
from relance.warehouse import Warehouse


def report_day(end: datetime) -> date:
    """The day a report as of ``end`` is filed under: the last UTC day of its interval."""
    return (utc(end) - timedelta(seconds=1)).date()


def run_report(wh: Warehouse, start: datetime, end: datetime, click_days: int | None = None,
               open_days: int | None = None) -> dict[str, float]:
    """Attribution for the orders of the days in [start, end) (and the day before, restated),
    then the results as of ``end`` (report day = the last of those days)."""
    start, end = utc(start), utc(end)
    default_click, default_open = settings.attribution_windows()
    click_days = default_click if click_days is None else click_days
    open_days = default_open if open_days is None else open_days
    days = days_of(start, end, RESTATE_DAYS)
    stats: dict[str, float] = dict(attribute_days(wh, days, click_days, open_days))
    stats.update(compute_results(wh, report_day(end), end, click_days, computed_at=end))
    return stats
