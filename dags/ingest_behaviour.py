"""
### ingest_behaviour — shopper behaviour and the catalog into the warehouse

Every hour, loads the landing zone's event folder of the run's interval
(`events/dt=…/hour=…/*.jsonl[.gz]`, Segment `identify`, `track`, `page`, `screen`, `alias` and
`group` calls), every file of the trailing window (Variable `tm_ingest_trailing_hours`, 48 h)
not loaded yet, and the newest catalog snapshot (`catalog/dt=…/products.csv`, Google Merchant
columns, comma/tab/semicolon) into the warehouse, then updates the `relance_behaviour` asset so
the campaign planners run on fresh data.

* **Idempotent**: events dedupe on `messageId`; re-running an interval, a retry or a backfill
  leaves the tables identical. Late events (delivered in a later hour's folder) are loaded
  with that folder and count as of their own timestamp; a file landing late in an hour already
  ingested, or hours missed while the scheduler was down, are picked up by the next run.
* **Bad input loses nothing**: a malformed line, an unknown event or a missing field goes to
  the `quarantine` table with the file, the line, the field and the reason; the rest loads.
  A bad trait is dropped (`dropped_fields`), not the call; a catalog snapshot with no valid row
  never replaces the previous one.
* **Where from**: Airflow Variable `tm_landing` (a path or `s3://bucket/prefix`), warehouse
  connection `warehouse`, AWS connection `aws_default` for S3.

To reload a past period: *Trigger → Backfill* on this DAG (or
`airflow backfill create --dag-id ingest_behaviour --from-date … --to-date …`).

**Params**
* `forget_customer_ids` — an **erasure request** (GDPR art. 17): the customer ids (Segment
  `userId`) to forget once the interval is loaded. Each one's personal data is removed from every
  table of the warehouse (`relance.privacy`; the same as `relance forget CUSTOMER_ID`), their
  addresses stay on the suppression list only hashed, so they are never mailed again, even if an
  address comes back in a later identify. The task log and XCom hold counts, never an id or an
  address. Empty (the default, every scheduled run): the `forget_customers` task is skipped.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from relance.airflow_support import BEHAVIOUR, DEFAULT_ARGS, START_DATE, interval_timetable


@dag(
    dag_id="ingest_behaviour",
    schedule=interval_timetable("@hourly"),
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["relance", "ingest"],
    doc_md=__doc__,
    params={"forget_customer_ids": Param(
        [], type="array", title="Erasure request: customer ids to forget",
        items={"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f]+$"},
        maxItems=100, uniqueItems=True,
        description="Segment userIds (one per line) whose personal data is removed from the warehouse "
                    "after this run's load; their addresses stay suppressed, hashed. Leave empty otherwise.")},
)
def ingest_behaviour():
    @task(outlets=[BEHAVIOUR])
    def load_interval(**context) -> dict:
        """Load the interval's event files and the newest catalog snapshot."""
        from relance import settings, warehouse
        from relance.ingest import ingest_window
        from relance.timeutil import run_window

        start, end = run_window(context)
        return ingest_window(warehouse.connect(), settings.landing_uri(), start, end)

    @task
    def forget_customers(**context) -> dict:
        """Carry out the erasure request of the trigger form, if any (counts only in log and XCom)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from relance import settings, warehouse
        from relance.privacy import forget_customers as forget

        customer_ids = context["params"]["forget_customer_ids"] or []
        if not customer_ids:
            raise AirflowSkipException("no erasure request (Param forget_customer_ids is empty)")
        return forget(warehouse.connect(), customer_ids, settings.wall_clock())

    load_interval() >> forget_customers()


ingest_behaviour()
