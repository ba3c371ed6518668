"""
### transactional_now — receipts and order status notices within minutes

Event-driven: scheduled on the asset `relance_events_queue`, whose `AssetWatcher` (a trigger in
Airflow's triggerer, `relance.triggers.SqsMessagesWaiting`) long-polls the SQS queue named by
the Variable `tm_events_queue` — where Segment's AWS destination puts each call as it happens —
and fires as soon as calls wait there. One task then (`relance.realtime.run_fast_path`):

1. loads the waiting calls into the warehouse with the landing zone's own loader (same
   validation, quarantine and `messageId` deduplication), commits, then deletes them from the queue;
2. plans the transactional campaigns (`order_confirmation`, `order_status`) as of now;
3. applies the sending rules to their due rows and sends them through SES (shared send rate).

The hourly path (`ingest_behaviour` → planners → `dispatch_messages`) stays the fallback: it
loads the same calls from the landing zone and computes the same `send_key`s, so a message this
DAG sent is never sent again, and one it could not send (queue down, run failed) goes out
within the hour. Marketing campaigns are not touched here.

The queue must be set in the environment (`AIRFLOW_VAR_TM_EVENTS_QUEUE`, read when the DAG file
is parsed); without it the DAG has no schedule (trigger it by hand to drain the queue once).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import Asset, AssetWatcher, dag, task

from relance import settings
from relance.airflow_support import DEFAULT_ARGS, START_DATE
from relance.triggers import SqsMessagesWaiting

log = logging.getLogger(__name__)

QUEUE = settings.events_queue()
EVENTS_QUEUE = Asset("relance_events_queue",
                     watchers=[AssetWatcher(name="segment_events_queue", trigger=SqsMessagesWaiting(QUEUE))]
                     if QUEUE else [])


@dag(
    dag_id="transactional_now",
    schedule=EVENTS_QUEUE if QUEUE else None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": 0},
    dagrun_timeout=timedelta(minutes=10),
    tags=["relance", "transactional"],
    doc_md=__doc__,
)
def transactional_now():
    @task
    def send_transactional_now(**context) -> dict:
        """Load the queued calls, plan and send the receipts and status notices due now."""
        from contextlib import contextmanager

        from airflow.sdk.exceptions import AirflowSkipException

        from relance import aws, warehouse
        from relance.campaigns.config import load_campaigns
        from relance.messaging.ratelimit import shared_pacer
        from relance.messaging.ses import SesSender, ses_client
        from relance.realtime import run_fast_path

        queue = settings.events_queue()
        if not queue:
            raise AirflowSkipException("Variable tm_events_queue is not set: no events queue to read")
        wh = warehouse.connect()

        @contextmanager
        def sender():
            client = ses_client()
            with shared_pacer(wh, client) as pacer:  # the deployment's one send rate
                yield SesSender(client, pacer)

        result = run_fast_path(wh, aws.client("sqs"), queue, load_campaigns(), settings.wall_clock(),
                               context["run_id"], sender)
        log.info("transactional_now: %s", result)
        if result["problems"]:
            raise RuntimeError("; ".join(result["problems"]))
        return {"messages": result["queue"]["messages"], "planned": result["planned"], "sent": result["sent"]}

    send_transactional_now()


transactional_now()
