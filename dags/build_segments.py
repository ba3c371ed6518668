"""
### build_segments — customer segments and purchase propensity, daily

Runs every day as of the run's `data_interval_end` (midnight UTC), on the warehouse only:

1. **Features in SQL** (`include/sql/ml/customer_features.sql`): per customer, recency,
   order count, revenue, orders in the last 90 / 365 days, refunds, and the last 30 days'
   views, carts and wishlists.
2. **Segments** (scikit-learn k-means on percentile RFM scores, anchored to named profiles):
   `champions`, `loyal`, `new`, `need_attention`, `at_risk`, `hibernating`, and `prospects`
   for customers who never ordered. The names follow the profiles, not cluster numbers, so
   they do not reshuffle from one day to the next.
3. **Purchase propensity**: probability of at least one order in the next 90 days, a
   logistic regression trained on a time split (features 180 days ago → orders in the
   following 90 days), checked on the most recent 90 days (AUC, calibration), then refitted.

Writes that day's rows of `customer_segments` (a re-run replaces them, never duplicates) and
a model card `models/segments/<date>/card.json` (or under the `s3://` prefix of the Airflow
Variable `tm_model_store`) with the windows, features, held-out AUC and calibration, and
segment sizes. The XCom is a small summary (sizes, AUC, card path).

**Params**: none — a backfill (*Trigger → Backfill*) recomputes past days as of each day.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from relance.airflow_support import DEFAULT_ARGS, START_DATE, interval_timetable


@dag(
    dag_id="build_segments",
    schedule=interval_timetable("@daily"),
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["relance", "ml"],
    doc_md=__doc__,
)
def build_segments():
    @task
    def segment_customers(**context) -> dict:
        """Segments and propensity as of the run's end; model card in the model store."""
        from relance import warehouse
        from relance.ml.segments import build_segments as build
        from relance.timeutil import as_of

        return build(warehouse.connect(), as_of(context))

    segment_customers()


build_segments()
