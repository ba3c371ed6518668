"""``dispatch_messages``: decide every due outbox row, then send the survivors (SPEC §6, §7).

Three steps, one Airflow task each:

* :func:`prepare` (one task): put interrupted rows right, re-check exit conditions, apply the
  rules set-based in SQL (each skip a status and a reason), then split the survivors into
  batches this run claims (``queued``) and return the batch ids;
* :func:`send_batch` (mapped over the batch ids): per row, claim (``sending``), render, send
  through SES, record ``sent`` with the SES MessageId — or the failure;
* :func:`summary`: counts of what the run decided.

The status column is the lock: every transition is an ``UPDATE … WHERE status = <expected>``,
so two overlapping runs, a retried task or a re-run never send a ``send_key`` twice.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign
from relance.campaigns.planner import apply_exits
from relance.dispatch.content import build_context
from relance.messaging.mime import HeaderError, build_message, unsubscribe_url
from relance.messaging.ses import SendError, SesSender
from relance.messaging.templates import TemplateRenderError, render
from relance.timeutil import utc
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

#: Rules applied in this order to the due ``planned`` rows (include/sql/outbox/rule_*.sql).
RULES = ("rule_no_address", "rule_suppressed", "rule_unsubscribed", "rule_no_consent")
#: A row left ``queued`` or ``sending`` longer than this by a dead run is put right.
STALE_CLAIM = timedelta(minutes=30)
MAX_BATCHES = 256
MIN_BATCH_SIZE = 50


def prepare(wh: Warehouse, campaigns: dict[str, Campaign], as_of: datetime, now: datetime, run_id: str
            ) -> list[str]:
    """Decide the due rows and claim the sendable ones into batches; returns batch ids."""
    as_of, now = utc(as_of), utc(now)
    with wh.begin() as conn:
        wh.execute("outbox/requeue_stale_queued", {"stale_before": now - STALE_CLAIM}, conn)
        params = {"stale_before": now - STALE_CLAIM, "batch_id": None, "as_of": as_of}
        wh.execute("outbox/reconcile_sending", params, conn)
        wh.execute("outbox/mark_sending_unknown", params, conn)
        for campaign in campaigns.values():
            apply_exits(wh, campaign, as_of, conn)
            wh.execute("outbox/expire_stale", {"campaign_id": campaign.id, "as_of": as_of,
                                               "stale_before": now - campaign.max_lateness_td}, conn)
        wh.execute("outbox/refresh_recipients", {"as_of": as_of}, conn)
        for rule in RULES:
            wh.execute(f"outbox/{rule}", {"as_of": as_of}, conn)
    keys = [r["send_key"] for r in wh.query("outbox/due_planned", {"as_of": as_of})]
    if not keys:
        return []
    size = max(MIN_BATCH_SIZE, math.ceil(len(keys) / MAX_BATCHES))
    batch_ids = []
    for number, start in enumerate(range(0, len(keys), size)):
        batch_id = f"{run_id}#{number:04d}"
        claimed = wh.execute("outbox/queue_batch", {"batch_id": batch_id, "send_keys": keys[start:start + size],
                                                    "queued_at": now})
        if claimed:
            batch_ids.append(batch_id)
    return batch_ids


def _record(wh: Warehouse, send_key: str, status: str, reason: str | None, as_of: datetime,
            sent_at: datetime | None = None, provider_message_id: str | None = None) -> None:
    wh.execute("outbox/record_outcome", {
        "send_key": send_key, "status": status, "reason": reason, "decided_at": as_of,
        "sent_at": sent_at, "provider_message_id": provider_message_id})


def send_batch(wh: Warehouse, batch_id: str, campaigns: dict[str, Campaign], sender: SesSender,
               as_of: datetime, clock=None) -> dict[str, int]:
    """Send one batch. Safe to retry: rows another attempt left ``sending`` are reconciled or
    marked ``unknown``, never sent again."""
    as_of = utc(as_of)
    clock = clock or settings.wall_clock
    counts: dict[str, int] = {}
    params = {"stale_before": clock() - STALE_CLAIM, "batch_id": batch_id, "as_of": as_of}
    wh.execute("outbox/reconcile_sending", params)
    counts["unknown"] = wh.execute("outbox/mark_sending_unknown", params) or 0
    from_address = settings.sender()
    for row in wh.query("outbox/batch_rows", {"batch_id": batch_id}):
        key = row["send_key"]
        if not wh.execute("outbox/claim_for_sending", {"send_key": key, "batch_id": batch_id,
                                                       "claimed_at": clock()}):
            continue  # another run or attempt has it
        status, reason, sent_at, message_id = _send_one(wh, row, campaigns, sender, from_address, as_of, clock)
        if status == "retry":
            wh.execute("outbox/release_for_retry", {"send_key": key, "reason": reason})
        else:
            _record(wh, key, status, reason, as_of, sent_at, message_id)
        counts[status] = counts.get(status, 0) + 1
    return counts


def _send_one(wh: Warehouse, row: dict[str, Any], campaigns: dict[str, Campaign], sender: SesSender,
              from_address: str, as_of: datetime, clock) -> tuple[str, str | None, datetime | None, str | None]:
    campaign = campaigns.get(row["campaign_id"])
    if campaign is None:
        return "failed", f"campaign {row['campaign_id']} is no longer defined", None, None
    if not 1 <= row["step"] <= len(campaign.steps):
        return "failed", f"campaign {campaign.id} has no step {row['step']}", None, None
    step = campaign.steps[row["step"] - 1]
    context, missing = build_context(wh, campaign, step, row, as_of)
    if missing:
        return "no_content", f"nothing to show in {', '.join(missing)}", None, None
    marketing = campaign.category == "marketing"
    if marketing:
        context["unsubscribe_url"] = unsubscribe_url(settings.unsubscribe_base_url(), row["customer_id"],
                                                     campaign.id, settings.unsubscribe_secret())
    try:
        rendered = render(campaign.template_for(step, row["variant"]), row["locale"], context)
        message = build_message(sender=campaign.sender or from_address, to=row["email"],
                                subject=rendered.subject, text=rendered.text, html=rendered.html,
                                send_key=row["send_key"], sender_name=context["shop"]["name"],
                                unsubscribe=context.get("unsubscribe_url"))
    except TemplateRenderError as exc:
        return "failed", f"template error: {exc}", None, None
    except HeaderError as exc:
        return "failed", f"invalid header: {exc}", None, None
    try:
        message_id = sender.send(message, row["send_key"], campaign.id)
    except SendError as exc:
        if exc.retryable:
            return "retry", f"SES refused for now, retried next run: {exc}", None, None
        return ("unknown" if exc.ambiguous else "failed"), str(exc), None, None
    return "sent", None, clock(), message_id


def summary(wh: Warehouse, as_of: datetime, run_id: str) -> list[dict[str, Any]]:
    return wh.query("outbox/run_summary", {"as_of": utc(as_of), "run_prefix": f"{run_id}#%"})


def context_json(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row.get("context") or "{}")
