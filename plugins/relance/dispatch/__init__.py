"""``dispatch_messages``: decide every due outbox row, then send the survivors (SPEC §6, §7).

Three steps, one Airflow task each:

* :func:`prepare` (one task, :mod:`.decide`): put interrupted rows right, re-check exit
  conditions, apply the sending policy (:mod:`.policy`: the rules top to bottom, each a status
  and a reason, run by :mod:`.rules`), then split the survivors into batches this run claims
  (``queued``) and return the batch ids;
* :func:`send_batch` (mapped over the batch ids, :mod:`.send`): take the batch (its lease),
  then per row render (:mod:`.content` builds the context), claim (``sending``), send through
  SES, record ``sent`` with the SES MessageId — or the failure;
* :func:`summary` (:mod:`.report`): counts of what the run decided.

The status column is the lock: every transition is an ``UPDATE … WHERE status = <expected>``,
so two overlapping runs, a retried task or a re-run never send a ``send_key`` twice.

This file only names things: the public names of the modules above.
"""

from relance.dispatch.decide import prepare
from relance.dispatch.policy import (
           AT_SEND_TIME,
           BEFORE_SENDING,
           MAX_BATCHES,
           MIN_BATCH_SIZE,
           STALE_CLAIM,
           Rule,
)
from relance.dispatch.report import failed_templates, summary
from relance.dispatch.rules import in_holdout, quiet_hours_end
from relance.dispatch.send import TEMPLATE_ERROR, send_batch
from relance.keys import dry_run_key

__all__ = ["AT_SEND_TIME", "BEFORE_SENDING", "MAX_BATCHES", "MIN_BATCH_SIZE", "STALE_CLAIM", "TEMPLATE_ERROR",
           "Rule", "dry_run_key", "failed_templates", "in_holdout", "prepare", "quiet_hours_end", "send_batch",
           "summary"]
