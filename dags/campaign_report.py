"""
### campaign_report — what each campaign earned

Daily, for the run's day (its data interval), then as of the interval's end:

1. **attribute** — last-touch attribution of the day's completed orders to messages: the
   customer's last click within `tm_attribution_click_days` (5) or open within
   `tm_attribution_open_days` (1) before the order, on a marketing message (receipts are never
   credited); an order is credited at most once. Written to `conversions`, replacing that
   day's rows — and the previous day's, restated with the orders and clicks that landed after
   the previous run.
2. **results** — A/B results per campaign, step and variant (`ab_results`: delivery, open,
   click and conversion rates with Wilson intervals, revenue per recipient with an interval,
   p-value against the first variant) and holdout lift per campaign (`holdout_lift`:
   intent-to-treat, holdout vs treatment customers, conversion and revenue per customer
   within the click window, absolute and relative lift with intervals). Snapshots in
   `report_ab_results` / `report_holdout_lift`, replacing that day's.

Re-running a day replaces its rows; a backfill (*Trigger → Backfill*) recomputes past days.
The views `campaign_daily`, `ab_results` and `holdout_lift` are what analysts read.
"""

from __future__ import annotations

import logging

from airflow.sdk import dag, task

from relance.airflow_support import DEFAULT_ARGS, START_DATE, interval_timetable

log = logging.getLogger(__name__)


@dag(
    dag_id="campaign_report",
    schedule=interval_timetable("@daily"),
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["relance", "reporting"],
    doc_md=__doc__,
)
def campaign_report():
    @task
    def attribute(**context) -> dict:
        """Credit the interval's orders to the last message touched before them."""
        from relance import settings, warehouse
        from relance.results.attribution import RESTATE_DAYS, attribute_days, days_of
        from relance.timeutil import run_window

        start, end = run_window(context)
        click_days, open_days = settings.attribution_windows()
        return attribute_days(warehouse.connect(), days_of(start, end, RESTATE_DAYS), click_days, open_days)

    @task
    def results(**context) -> dict:
        """A/B results and holdout lift as of the interval's end."""
        from relance import settings, warehouse
        from relance.results.experiments import compute_results
        from relance.results.report import report_day
        from relance.timeutil import as_of

        end = as_of(context)
        stats = compute_results(warehouse.connect(), report_day(end), end, settings.attribution_windows()[0],
                                computed_at=end)
        log.info("campaign_report as of %s: %s", end, stats)
        return stats

    attribute() >> results()


campaign_report()
