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

import hashlib
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relance import settings
from relance.campaigns.config import Campaign
from relance.campaigns.planner import apply_exits, bucket
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
TEMPLATE_ERROR = "template error"
MIN_BATCH_SIZE = 50


class _DryRunRollback(Exception):
    """Raised inside a dry run's transaction to roll every decision back."""


def prepare(wh: Warehouse, campaigns: dict[str, Campaign], as_of: datetime, now: datetime, run_id: str,
            dry_run: bool = False, caps: tuple[int, int] | None = None) -> list[str]:
    """Decide the due rows and claim the sendable ones into batches; returns batch ids.

    One transaction (``BEGIN IMMEDIATE`` on SQLite; row locks on the customers whose caps are
    reserved on PostgreSQL), so two overlapping runs never both take a row nor both spend a
    customer's last cap slot. A dry run makes the same decisions in the same transaction,
    reads them, rolls everything back, and records them as separate ``dry_run`` rows.
    """
    as_of, now = utc(as_of), utc(now)
    caps = caps or settings.frequency_caps()
    decisions: list[dict[str, Any]] = []
    batch_ids: list[str] = []
    try:
        with wh.begin() as conn:
            candidates_before = _due(wh, conn, campaigns, as_of) if dry_run else []
            _put_right_interrupted(wh, conn, as_of, now)
            for campaign in campaigns.values():
                apply_exits(wh, campaign, as_of, conn)
                wh.execute("outbox/expire_stale", {"campaign_id": campaign.id, "as_of": as_of,
                                                   "stale_before": now - campaign.max_lateness_td}, conn)
            scope = {"as_of": as_of, "campaign_ids": sorted(campaigns) or [""]}
            wh.execute("outbox/refresh_recipients", scope, conn)
            for rule in RULES:
                wh.execute(f"outbox/{rule}", scope, conn)
            candidates = _due(wh, conn, campaigns, as_of)
            candidates = _apply_holdouts(wh, conn, campaigns, candidates, as_of)
            candidates = _defer_quiet_hours(wh, conn, campaigns, candidates, as_of)
            batch_ids = _claim_with_caps(wh, conn, campaigns, candidates, as_of, now, run_id, caps)
            if dry_run:
                keys = [c["send_key"] for c in candidates_before]
                for start in range(0, len(keys), 500):
                    decisions += wh.query("outbox/decisions_of", {"send_keys": keys[start:start + 500]}, conn)
                raise _DryRunRollback
    except _DryRunRollback:
        _record_dry_run(wh, decisions, as_of, run_id)
        return []
    return batch_ids


def _due(wh: Warehouse, conn, campaigns: dict[str, Campaign], as_of: datetime) -> list[dict[str, Any]]:
    if not campaigns:
        return []
    return wh.query("outbox/due_candidates", {"as_of": as_of, "as_of_date": as_of.date(),
                                              "campaign_ids": sorted(campaigns)}, conn)


def _put_right_interrupted(wh: Warehouse, conn, as_of: datetime, now: datetime) -> None:
    """Rows a dead run left behind: ``queued`` back to ``planned``; ``sending`` reconciled."""
    wh.execute("outbox/requeue_stale_queued", {"stale_before": now - STALE_CLAIM}, conn)
    params = {"stale_before": now - STALE_CLAIM, "batch_id": None, "as_of": as_of}
    wh.execute("outbox/reconcile_sending", params, conn)
    wh.execute("outbox/mark_sending_unknown", params, conn)


def _apply_holdouts(wh: Warehouse, conn, campaigns: dict[str, Campaign], candidates: list[dict[str, Any]],
                    as_of: datetime) -> list[dict[str, Any]]:
    keep, held = [], {}
    for row in candidates:
        campaign = campaigns[row["campaign_id"]]
        if in_holdout(campaign, row["customer_id"]):
            held.setdefault(campaign.id, []).append(row["send_key"])
        else:
            keep.append(row)
    for campaign_id, keys in held.items():
        reason = f"holdout group ({campaigns[campaign_id].holdout_pct:g} % of customers, stable per campaign)"
        for start in range(0, len(keys), 500):
            wh.execute("outbox/mark_holdout", {"send_keys": keys[start:start + 500], "reason": reason,
                                               "as_of": as_of}, conn)
    return keep


def quiet_hours_end(as_of: datetime, timezone: str | None) -> datetime | None:
    """If ``as_of`` falls in the customer's quiet hours, the next 08:00 local (UTC); else None."""
    try:
        zone = ZoneInfo(timezone or settings.DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.DEFAULT_TIMEZONE)
    local = as_of.astimezone(zone)
    if settings.QUIET_HOURS_END <= local.hour < settings.QUIET_HOURS_START:
        return None
    day = local.date() if local.hour < settings.QUIET_HOURS_END else local.date() + timedelta(days=1)
    wake = datetime(day.year, day.month, day.day, settings.QUIET_HOURS_END, tzinfo=zone)
    return wake.astimezone(UTC)


def _defer_quiet_hours(wh: Warehouse, conn, campaigns: dict[str, Campaign], candidates: list[dict[str, Any]],
                       as_of: datetime) -> list[dict[str, Any]]:
    keep = []
    for row in candidates:
        campaign = campaigns[row["campaign_id"]]
        wake = quiet_hours_end(as_of, row["timezone"]) if campaign.observes_quiet_hours else None
        if wake is None:
            keep.append(row)
            continue
        zone = row["timezone"] or settings.DEFAULT_TIMEZONE
        wh.execute("outbox/defer_quiet_hours", {
            "send_key": row["send_key"], "send_after": wake, "as_of": as_of,
            "reason": f"quiet hours {settings.QUIET_HOURS_START}:00-{settings.QUIET_HOURS_END:02d}:00 in {zone}: "
                      f"deferred to 08:00 local"}, conn)
    return keep


def _claim_with_caps(wh: Warehouse, conn, campaigns: dict[str, Campaign], candidates: list[dict[str, Any]],
                     as_of: datetime, now: datetime, run_id: str, caps: tuple[int, int]) -> list[str]:
    """Claim the candidates into batches, in arbitration order; the frequency caps are counted
    and reserved inside this transaction, customers locked first on PostgreSQL."""
    if not candidates:
        return []
    per_day, per_week = caps
    capped_ids = sorted({r["customer_id"] for r in candidates if not campaigns[r["campaign_id"]].is_cap_exempt})
    usage: dict[str, list[int]] = {}
    for start in range(0, len(capped_ids), 500):
        ids = capped_ids[start:start + 500]
        if not wh.is_sqlite:
            wh.query("outbox/lock_customers", {"customer_ids": ids}, conn)
        for row in wh.query("outbox/cap_usage", {"customer_ids": ids, "day_start": as_of - timedelta(days=1),
                                                 "week_start": as_of - timedelta(days=7)}, conn):
            usage[row["customer_id"]] = [int(row["last_day"] or 0), int(row["last_week"] or 0)]
    size = max(MIN_BATCH_SIZE, math.ceil(len(candidates) / MAX_BATCHES))
    batch_ids: list[str] = []
    in_batch = size
    for row in candidates:
        campaign = campaigns[row["campaign_id"]]
        reserve = not campaign.is_cap_exempt
        if reserve:
            used = usage.setdefault(row["customer_id"], [0, 0])
            if used[0] >= per_day or used[1] >= per_week:
                window = f"{per_day} per day" if used[0] >= per_day else f"{per_week} per 7 days"
                wh.execute("outbox/mark_capped", {"send_key": row["send_key"], "as_of": as_of,
                                                  "reason": f"frequency cap reached ({window}); higher-priority "
                                                            f"or earlier marketing email won"}, conn)
                continue
        if in_batch >= size:
            batch_ids.append(f"{run_id}#{len(batch_ids):04d}")
            in_batch = 0
        claimed = wh.execute("outbox/claim_into_batch", {
            "send_key": row["send_key"], "batch_id": batch_ids[-1], "queued_at": now, "as_of": as_of,
            "cap_reserved_at": as_of if reserve else None}, conn)
        if claimed:
            in_batch += 1
            if reserve:
                usage[row["customer_id"]][0] += 1
                usage[row["customer_id"]][1] += 1
    if batch_ids and in_batch == 0:
        batch_ids.pop()  # the last batch got nothing (its rows were taken by another run)
    return batch_ids


def in_holdout(campaign: Campaign, customer_id: str) -> bool:
    return campaign.holdout_pct > 0 and bucket(campaign.id, customer_id, "holdout") < campaign.holdout_pct


def dry_run_key(run_id: str, send_key: str) -> str:
    return f"dry-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}-{send_key}"


def _record_dry_run(wh: Warehouse, decisions: list[dict[str, Any]], as_of: datetime, run_id: str) -> None:
    with wh.begin() as conn:
        for row in decisions:
            status = "sent" if row["status"] == "queued" else row["status"]
            outcome = "would be sent" if status == "sent" else f"would be {status}: {row['reason']}"
            wh.execute("outbox/copy_as_dry_run", {"dry_key": dry_run_key(run_id, row["send_key"]),
                                                  "send_key": row["send_key"], "reason": f"dry run: {outcome}",
                                                  "as_of": as_of}, conn)


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
    broken: dict[str, str] = {}  # campaign → template error: that campaign fails closed
    for row in wh.query("outbox/batch_rows", {"batch_id": batch_id}):
        key = row["send_key"]
        if not wh.execute("outbox/claim_for_sending", {"send_key": key, "batch_id": batch_id,
                                                       "claimed_at": clock()}):
            continue  # another run or attempt has it
        if row["campaign_id"] in broken:
            status, reason, sent_at, message_id = "failed", broken[row["campaign_id"]], None, None
        else:
            status, reason, sent_at, message_id = _send_one(wh, row, campaigns, sender, from_address, as_of,
                                                            clock)
            if status == "failed" and reason.startswith(TEMPLATE_ERROR):
                broken[row["campaign_id"]] = reason
                log.error("campaign %s fails closed: %s", row["campaign_id"], reason)
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
        return "failed", f"{TEMPLATE_ERROR}: {exc}", None, None
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


def failed_templates(wh: Warehouse, run_id: str) -> list[str]:
    """Campaigns whose messages failed on a template error in this run."""
    rows = wh.query("outbox/template_failures", {"run_prefix": f"{run_id}#%", "prefix": f"{TEMPLATE_ERROR}%"})
    return sorted(r["campaign_id"] for r in rows)

