"""``send_batch``: per claimed row, claim (``sending``), render, send through SES, record the
outcome — the send-time rules of :data:`relance.dispatch.policy.AT_SEND_TIME`."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign
from relance.dispatch.content import build_context
from relance.dispatch.policy import STALE_CLAIM
from relance.messaging.mime import HeaderError, build_message, unsubscribe_url
from relance.messaging.ses import SendError, SesSender
from relance.messaging.templates import TemplateRenderError, render
from relance.timeutil import utc
from relance.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The reason prefix of a template that does not render (the campaign then fails closed).
TEMPLATE_ERROR = "template error"
#: The reason prefix of marketing that needs a signed unsubscribe link while no secret is set.
MISSING_SECRET = "no unsubscribe secret"
#: SES subscription management replaces this placeholder with its hosted unsubscribe page.
SES_UNSUBSCRIBE_PLACEHOLDER = "{{amazonSESUnsubscribeUrl}}"


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
            status, reason, sent_at, message_id = send_one(wh, row, campaigns, sender, from_address, as_of,
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


def send_one(wh: Warehouse, row: dict[str, Any], campaigns: dict[str, Campaign], sender: SesSender,
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
    list_management, header_url = None, None
    if marketing:
        secret = settings.unsubscribe_secret()
        if settings.unsubscribe_mode() == "ses":
            # SES subscription management: SES hosts the page (the body's link is its placeholder)
            # and publishes Subscription events. Our own RFC 8058 headers go on too when a secret
            # is set: whether SES adds its headers to Raw content is not documented.
            list_management = {"ContactListName": settings.ses_contact_list(),
                               "TopicName": settings.ses_unsubscribe_topic()}
            context["unsubscribe_url"] = SES_UNSUBSCRIBE_PLACEHOLDER
            if secret:
                header_url = unsubscribe_url(settings.unsubscribe_base_url(), row["customer_id"], campaign.id, secret)
        elif not secret:
            return ("failed", f"{MISSING_SECRET}: marketing needs a signed unsubscribe link and the Variable "
                              "tm_unsubscribe_secret is not set (set it, or tm_unsubscribe_mode=ses)", None, None)
        else:
            header_url = unsubscribe_url(settings.unsubscribe_base_url(), row["customer_id"], campaign.id, secret)
            context["unsubscribe_url"] = header_url
    try:
        rendered = render(campaign.template_for(step, row["variant"]), row["locale"], context)
        message = build_message(sender=campaign.sender or from_address, to=row["email"],
                                subject=rendered.subject, text=rendered.text, html=rendered.html,
                                send_key=row["send_key"], sender_name=context["shop"]["name"],
                                unsubscribe=header_url)
    except TemplateRenderError as exc:
        return "failed", f"{TEMPLATE_ERROR}: {exc}", None, None
    except HeaderError as exc:
        return "failed", f"invalid header: {exc}", None, None
    try:
        message_id = sender.send(message, row["send_key"], campaign.id, list_management=list_management)
    except SendError as exc:
        if exc.retryable:
            return "retry", f"SES refused for now, retried next run: {exc}", None, None
        return ("unknown" if exc.ambiguous else "failed"), str(exc), None, None
    return "sent", None, clock(), message_id
