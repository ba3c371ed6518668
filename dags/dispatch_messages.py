"""
### dispatch_messages — decide and send every due message

Runs every hour and whenever a planner updates the outbox (`relance_outbox` asset), as of its
run's end (an asset-triggered run: as of the moment it was triggered).

1. **prepare** — puts right rows a dead run left behind (`queued` → back to `planned`;
   `sending` → `sent` if SES reported it, else `unknown`, never re-sent blindly), re-checks
   exit conditions (`exited`), then applies the rules of SPEC §7 to every due row, in order:
   staleness against the wall clock (`expired`), no address or suppression list
   (`suppressed`), unsubscribes (`unsubscribed`), consent (`no_consent`), the deliverability
   guard (marketing held, still due; see report), holdout group (`holdout`), quiet hours
   21:00-08:00 in the customer's time zone (`deferred_quiet_hours`, sent at 08:00 local),
   then the frequency caps (default 1 marketing email per day, 3 per 7 days; variables
   `tm_cap_per_day`, `tm_cap_per_week`; transactional mail never capped): higher priority,
   then higher expected value wins, the others are `capped` — or `digested` when they lost the
   daily cap in a campaign with `digest: true` (folded into the customer's next digest, the
   `digest` campaign, `tm_digest_every`). The survivors are claimed into batches.
2. **send_batch** — one mapped task per batch (Airflow pool `ses_send`; every task of every
   run takes its send slots from one shared timeline, so together they send at the variable
   `tm_ses_max_send_rate`, never above it nor above the SES account's own MaxSendRate):
   render the template, send through SES v2, record `sent` with the SES MessageId, or
   `no_content` / `failed` with the reason. A template
   error fails its campaign closed (nothing of it is sent) without stopping the others.
3. **report** — counts per campaign and status, in the task log and XCom; fails the run (red
   in the UI) if a campaign failed closed on a template error, if the **deliverability guard**
   holds marketing (bounce or complaint rate of the last 7 days' sends over `tm_max_bounce_rate`
   / `tm_max_complaint_rate`, once there are 200 sends to judge: marketing rows stay due with a
   `held: …` reason, transactional mail goes on, marketing resumes by itself below the
   thresholds), or if marketing failed because signed unsubscribe links need
   `tm_unsubscribe_secret` and it is not set.

**Params**
* `dry_run` — decide everything as a real run would, change nothing, send nothing, and record
  each decision as a `dry_run` row of `message_log` (reason `dry run: would be …`).

Every decision is a row of `message_log` with its status and reason.
"""

from __future__ import annotations

import logging

from airflow.sdk import AssetOrTimeSchedule, Param, TriggerRule, dag, task

from relance.airflow_support import DEFAULT_ARGS, OUTBOX, SEND_RETRY_ARGS, START_DATE, interval_timetable
from relance.settings import SES_POOL

log = logging.getLogger(__name__)


@dag(
    dag_id="dispatch_messages",
    schedule=AssetOrTimeSchedule(timetable=interval_timetable("@hourly"), assets=OUTBOX),
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["relance", "dispatch"],
    doc_md=__doc__,
    params={"dry_run": Param(False, type="boolean", title="Dry run",
                             description="Apply every rule to the due messages and record what would happen "
                                         "as 'dry_run' rows of message_log; change and send nothing.")},
)
def dispatch_messages():
    @task
    def prepare(**context) -> list[str]:
        """Apply the rules to the due rows; return the batch ids this run claimed."""
        from relance import settings, warehouse
        from relance.campaigns.config import load_campaigns
        from relance.dispatch import prepare as prepare_batches
        from relance.timeutil import as_of

        return prepare_batches(warehouse.connect(), load_campaigns(), as_of(context), settings.wall_clock(),
                               run_id=context["run_id"], dry_run=bool(context["params"]["dry_run"]))

    @task(pool=SES_POOL, max_active_tis_per_dagrun=4, **SEND_RETRY_ARGS)
    def send_batch(batch_id: str, **context) -> dict:
        """Render and send one batch through SES."""
        from relance import warehouse
        from relance.campaigns.config import load_campaigns
        from relance.dispatch import send_batch as send
        from relance.messaging.ratelimit import shared_pacer
        from relance.messaging.ses import SesSender, ses_client
        from relance.timeutil import as_of

        wh, client = warehouse.connect(), ses_client()
        with shared_pacer(wh, client) as pacer:  # one send rate for every task of every run
            return send(wh, batch_id, load_campaigns(), SesSender(client, pacer), as_of(context))

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def report(batch_ids: list[str], **context) -> list[dict]:
        """Counts per campaign and status of what this run decided (``batch_ids``: prepare's)."""
        from relance import warehouse
        from relance.dispatch import summary
        from relance.dispatch.report import run_problems
        from relance.timeutil import as_of

        wh = warehouse.connect(upgrade_schema=False)
        rows = summary(wh, as_of(context), batch_ids)
        for row in rows:
            log.info("%-28s %-22s %7d", row["campaign_id"], row["status"], row["messages"])
        # a campaign failed closed on a template error, the deliverability guard holds marketing,
        # or marketing failed for want of tm_unsubscribe_secret: make the run red for ops
        problems = run_problems(wh, as_of(context), batch_ids)
        if problems:
            raise RuntimeError("; ".join(problems))
        return rows

    batches = prepare()
    send_batch.expand(batch_id=batches) >> report(batches)


dispatch_messages()
