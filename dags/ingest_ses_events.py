"""
### ingest_ses_events — what SES says happened to each email

Every 15 minutes, drains the SQS queue named by the Variable `tm_ses_events_queue` (a queue URL
or name) where SES publishes its events (SNS envelopes or raw delivery; configuration-set event
publishing `eventType` and identity feedback notifications `notificationType`, SPEC §5b):

* every event is stored once in `message_events` (a redelivered notification changes nothing),
  linked to its outbox row by the `send_key` message tag or the SES MessageId;
* **permanent bounces and complaints** put the address on `suppressions`: nothing, not even a
  receipt, is mailed to it from the next dispatcher run; an address whose **transient bounces**
  span 3 messages over 7+ days with no delivery in between is suppressed too
  (Variables `tm_soft_bounce_limit`, `tm_soft_bounce_days`);
* **complaints and SES `Subscription` opt-outs** stop marketing: a `consent_changes` row
  (source `ses_complaint` / `ses_subscription`) and the customer's `email_opt_in` set to false;
* **Send events** put right outbox rows a crashed send task left `sending` or `unknown`;
* an SNS `SubscriptionConfirmation`, an unknown type or a malformed body goes to `quarantine`
  (`source_file` = `sqs://<queue>/<message id>`) and leaves the queue: it never blocks it.

A message is deleted from the queue only after its effects are committed; a failed run leaves
its messages on the queue for the retry. Without `tm_ses_events_queue` the task is skipped.
"""

from __future__ import annotations

import logging

from airflow.sdk import dag, task

from relance.airflow_support import DEFAULT_ARGS, START_DATE, interval_timetable

log = logging.getLogger(__name__)


@dag(
    dag_id="ingest_ses_events",
    schedule=interval_timetable("*/15 * * * *"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["relance", "feedback"],
    doc_md=__doc__,
)
def ingest_ses_events():
    @task
    def drain_queue(**context) -> dict:
        """Receive, store and apply, commit, then delete, until the queue is empty."""
        from airflow.sdk.exceptions import AirflowSkipException

        from relance import aws, settings, warehouse
        from relance.feedback import drain
        from relance.timeutil import as_of

        queue = settings.ses_events_queue()
        if not queue:
            raise AirflowSkipException("Variable tm_ses_events_queue is not set: no SES event queue to read")
        stats = drain(warehouse.connect(), aws.client("sqs"), queue, as_of(context))
        log.info("SES events from %s: %s", queue, stats)
        return stats

    drain_queue()


ingest_ses_events()
