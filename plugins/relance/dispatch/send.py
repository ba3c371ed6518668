"""``send_batch``: per row of the batch, render, claim (``sending``) right before calling SES,
send, record the outcome — the send-time rules of :data:`relance.dispatch.policy.AT_SEND_TIME`."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relance import settings
from relance.campaigns.config import Campaign
from relance.dispatch.content import CONTENT_CHUNK, CONTENT_MAX_AGE, build_context, fetch_content
from relance.dispatch.policy import AMBIGUOUS_STREAK, STALE_CLAIM, batch_lease
from relance.messaging.mime import HeaderError, RawMessage, build_message, unsubscribe_url
from relance.messaging.ses import SendError, SesSender
from relance.messaging.sms import SmsMessage, SmsSender
from relance.messaging.sms_text import E164, MAX_SEGMENTS, count_segments
from relance.messaging.templates import TemplateRenderError, render, render_sms
from relance.timeutil import utc
from relance.warehouse import Warehouse
from relance.warehouse.cursor import CursorStatements, cursor_statements

log = logging.getLogger(__name__)

#: The reason prefix of a template that does not render (the campaign then fails closed).
TEMPLATE_ERROR = "template error"
#: The reason prefix of marketing that needs a signed unsubscribe link while no secret is set.
MISSING_SECRET = "no unsubscribe secret"
#: SES subscription management replaces this placeholder with its hosted unsubscribe page.
SES_UNSUBSCRIBE_PLACEHOLDER = "{{amazonSESUnsubscribeUrl}}"


class SesUnreliable(RuntimeError):
    """SES answered ambiguously AMBIGUOUS_STREAK times in a row: the task stops (Airflow retries
    it) and the rest of the batch stays queued, rather than every row of it become ``unknown``."""


@dataclass
class Outcome:
    status: str
    reason: str | None = None
    sent_at: datetime | None = None
    message_id: str | None = None
    #: SES was called for it (the row was claimed ``sending`` first)
    called_ses: bool = False


@dataclass
class _Lease:
    """The send task's hold on its batch (``message_log.lease_until``): taken when the task
    starts — Airflow's retry of the same map index takes its own batch back —, renewed once
    half of it has gone by, sized to the rows still to send at the deployment's rate."""

    wh: Warehouse
    batch_id: str
    clock: Any
    rate: float = field(default_factory=settings.max_send_rate)
    slots: int = settings.SES_POOL_SLOTS
    renew_at: datetime | None = None

    def keep(self, rows_left: int) -> None:
        now = self.clock()
        if self.renew_at is not None and now < self.renew_at:
            return
        length = batch_lease(0, rows_left, self.rate, self.slots)
        self.wh.execute("outbox/renew_lease", {"batch_id": self.batch_id, "lease_until": now + length})
        self.renew_at = now + length / 2


def _stale(campaign: Campaign | None, row: dict[str, Any], now: datetime) -> bool:
    """Due (or deferred to) more than the campaign's max_lateness before the wall clock — the
    staleness guard of ``prepare`` again, for a batch that ran late."""
    if campaign is None:
        return False
    due = utc(row["send_after"] or row["due_at"])
    return due < utc(now) - campaign.max_lateness_td


def send_batch(wh: Warehouse, batch_id: str, campaigns: dict[str, Campaign], sender: SesSender,
               as_of: datetime, clock=None) -> dict[str, int]:
    """Send one batch (:func:`_send_rows`) through warehouse connections held for the batch:
    a few small transactions per message, none opening a connection of its own."""
    if getattr(sender, "sms", None) is None:
        sender.sms = SmsSender()
    with contextlib.ExitStack() as held:
        pinned, reader, recorder = (held.enter_context(wh.pinned(autocommit=autocommit))
                                    for autocommit in (False, True, True))
        claimer = None
        if not wh.is_sqlite:
            recorder.execute("outbox/outcome_async_commit")
            claimer = held.enter_context(wh.pinned(autocommit=True))
        return _send_rows(pinned, batch_id, campaigns, sender, as_of, clock, reader, recorder, claimer)


def _send_rows(wh: Warehouse, batch_id: str, campaigns: dict[str, Campaign], sender: SesSender,
               as_of: datetime, clock=None, reader: Warehouse | None = None,
               recorder: Warehouse | None = None, claimer: Warehouse | None = None) -> dict[str, int]:
    """Send one batch. Safe to retry: rows another attempt left ``sending`` are reconciled or
    marked ``unknown``, never sent again; the rows still ``queued`` in the batch are taken back
    (a new lease) and sent. ``reader``: content queries, and the claims unless ``claimer``;
    ``claimer`` (PostgreSQL, where a claim waits for the WAL flush): the claims, made by the
    courier that then calls SES — one at a time, each committed before its call — so that
    the wait overlaps the next rows' rendering instead of holding up this thread;
    ``recorder``: the outcomes (on PostgreSQL without waiting for the WAL flush)."""
    as_of = utc(as_of)
    clock = clock or settings.wall_clock
    counts: dict[str, int] = {}
    params = {"stale_before": clock() - STALE_CLAIM, "batch_id": batch_id, "unknown_too": 0, "as_of": as_of}
    wh.execute("outbox/reconcile_sending", params)
    counts["unknown"] = wh.execute("outbox/mark_sending_unknown", params) or 0
    from_address = settings.sender()
    broken: dict[str, str] = {}  # campaign → template error: that campaign fails closed
    rows = wh.query("outbox/batch_rows", {"batch_id": batch_id})
    lease = _Lease(wh, batch_id, clock)
    ambiguous_in_a_row, last_reason = 0, None
    reader, out = reader or wh, recorder or wh
    # the claim and the outcome, once per message: straight through the DB-API cursor
    claims, outcomes = _cursor(claimer or reader), _cursor(out)
    claiming = threading.Lock()  # the claimer's connection: one courier at a time
    content: dict[str, dict[str, list[dict[str, Any]]]] = {}
    content_until, content_at = 0, 0.0  # rows[:content_until] have their content fetched, at content_at

    def prepare(index: int) -> Outcome | Ready:
        """What to do with ``rows[index]``, from reads and rendering only (no write). Its content
        comes with that of the next CONTENT_CHUNK rows (each content query run for all of them
        at once), fetched when the row is prepared — again if that fetch is CONTENT_MAX_AGE old."""
        nonlocal content, content_until, content_at
        row = rows[index]
        campaign = campaigns.get(row["campaign_id"])
        if _stale(campaign, row, clock()):
            return Outcome("expired", "due more than the campaign max_lateness ago (its batch ran late)")
        if row["campaign_id"] in broken:
            return Outcome("failed", broken[row["campaign_id"]])
        if index >= content_until or time.monotonic() - content_at > CONTENT_MAX_AGE:
            chunk = rows[index:index + CONTENT_CHUNK]
            content = fetch_content(reader, campaigns, chunk, as_of)
            content_until, content_at = index + len(chunk), time.monotonic()
        prepared = render_one(reader, row, campaigns, from_address, as_of, content.get(row["send_key"]))
        if isinstance(prepared, Outcome) and prepared.status == "failed" and prepared.reason.startswith(
                TEMPLATE_ERROR):
            broken[row["campaign_id"]] = prepared.reason
            log.error("campaign %s fails closed: %s", row["campaign_id"], prepared.reason)
        return prepared

    def settle(row: dict[str, Any], prepared: Outcome | Ready, call: Future | None) -> None:
        """Record a row's outcome (its SES call waited for first)."""
        nonlocal ambiguous_in_a_row, last_reason
        key = row["send_key"]
        if isinstance(prepared, Ready):
            outcome = call.result() if call is not None else None
            if outcome is None:
                return  # another run or attempt has it
        else:
            outcome = prepared
        if outcome.status == "retry":
            outcomes.execute("outbox/release_for_retry", {"send_key": key, "reason": outcome.reason})
        elif outcome.called_ses:
            outcomes.execute("outbox/record_outcome", {
                "send_key": key, "batch_id": batch_id, "status": outcome.status, "reason": outcome.reason,
                "decided_at": as_of, "sent_at": outcome.sent_at, "provider_message_id": outcome.message_id})
            if outcome.status == "sent" and prepared.sms is not None:  # what the SMS took, with its outcome
                outcomes.execute("outbox/record_sms_cost", {
                    "send_key": key, "segments": prepared.sms.segments.count,
                    "encoding": prepared.sms.segments.encoding, "cost": sender.sms.cost(prepared.sms)})
        elif not outcomes.execute("outbox/record_in_batch", {"send_key": key, "batch_id": batch_id,
                                                             "status": outcome.status, "reason": outcome.reason,
                                                             "decided_at": as_of}):
            return  # another run took it back meanwhile
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        ambiguous_in_a_row = ambiguous_in_a_row + 1 if outcome.status == "unknown" and outcome.called_ses else 0
        last_reason = outcome.reason

    def claim(row: dict[str, Any]) -> int:
        """Claim the row ``sending`` (committed): 0 when another run or attempt has it."""
        return claims.execute("outbox/claim_for_sending", {"send_key": row["send_key"], "batch_id": batch_id,
                                                           "claimed_at": clock()})

    def claim_and_deliver(prepared: Ready, row: dict[str, Any]) -> Outcome | None:
        """In a courier: the claim (committed), then the SES call; None when not claimed."""
        with claiming:
            claimed = claim(row)
        return deliver(prepared, row, sender, clock) if claimed else None

    # Up to ``window`` SES calls are in flight, each in a courier thread, while this thread
    # prepares the next rows (content queries, render, MIME) and writes: a row is claimed
    # (``sending``, committed) before its call — by this thread before handing the call over, or
    # on PostgreSQL by the courier right before it calls —, and its outcome recorded after the
    # call returns, oldest first — the same writes, in the same order per row, as one row at a
    # time would make. The pacer spaces the departures whatever the number of couriers.
    window = max(1, settings.send_concurrency())
    in_flight: deque[tuple[dict[str, Any], Outcome | Ready, Future | None]] = deque()
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="ses-send") as couriers:
        try:
            upcoming = _attempt(prepare, 0) if rows else None
            for done, row in enumerate(rows):
                lease.keep(len(rows) - done)
                getattr(sender.pacer, "expect", lambda _: None)(len(rows) - done)  # slots: no more than rows left
                prepared = upcoming.result()
                call = None
                if isinstance(prepared, Ready) and claimer is not None:
                    call = couriers.submit(claim_and_deliver, prepared, row)
                elif isinstance(prepared, Ready) and claim(row):
                    call = couriers.submit(deliver, prepared, row, sender, clock)
                in_flight.append((row, prepared, call))
                upcoming = _attempt(prepare, done + 1) if done + 1 < len(rows) else None
                # record what has come back; wait for the oldest call only when the window is full
                while in_flight and (len(in_flight) > window - 1 or in_flight[0][2] is None
                                     or in_flight[0][2].done()):
                    settle(*in_flight.popleft())
                    if ambiguous_in_a_row >= AMBIGUOUS_STREAK:
                        raise SesUnreliable(
                            f"batch {batch_id}: {ambiguous_in_a_row} SES calls in a row may or may not have gone "
                            f"through ({last_reason}); the rest of the batch stays queued for the retry")
        finally:
            # calls already made are recorded even when the task stops on an error (a killed
            # process records nothing: its rows left ``sending`` are reconciled from SES's Send
            # events, or marked unknown, by the next attempt — never sent again)
            while in_flight:
                try:
                    settle(*in_flight.popleft())
                except Exception:  # noqa: BLE001 - the first error is the one raised
                    log.exception("batch %s: could not record the outcome of a call in flight", batch_id)
    return counts


def _cursor(wh: Warehouse) -> CursorStatements | Warehouse:
    """A pinned warehouse's statements through its DB-API cursor; any other as they are."""
    return cursor_statements(wh) or wh


@dataclass
class Ready:
    """A row's message, rendered and built: what is left is to claim the row and call SES —
    or, for an SMS (``sms``; ``message`` None), the SMS provider."""
    message: RawMessage | None
    campaign_id: str
    list_management: dict[str, str] | None
    sms: SmsMessage | None = None


def render_one(wh: Warehouse, row: dict[str, Any], campaigns: dict[str, Campaign], from_address: str,
               as_of: datetime, fetched: dict[str, list[dict[str, Any]]] | None = None) -> Outcome | Ready:
    """The row's message (reads and rendering only), or why there is none. ``fetched``: its
    content query results already fetched (:func:`relance.dispatch.content.fetch_content`)."""
    campaign = campaigns.get(row["campaign_id"])
    if campaign is None:
        return Outcome("failed", f"campaign {row['campaign_id']} is no longer defined")
    if not 1 <= row["step"] <= len(campaign.steps):
        return Outcome("failed", f"campaign {campaign.id} has no step {row['step']}")
    step = campaign.steps[row["step"] - 1]
    context, missing = build_context(wh, campaign, step, row, as_of, campaigns, fetched)
    if missing:
        return Outcome("no_content", f"nothing to show in {', '.join(missing)}")
    marketing = campaign.category == "marketing"
    if row.get("channel") == "sms":
        return render_sms_one(row, campaign, campaign.template_for(step, row["variant"]), context, marketing)
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
            return Outcome("failed", f"{MISSING_SECRET}: marketing needs a signed unsubscribe link and the Variable "
                                     "tm_unsubscribe_secret is not set (set it, or tm_unsubscribe_mode=ses)")
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
        return Outcome("failed", f"{TEMPLATE_ERROR}: {exc}")
    except HeaderError as exc:
        return Outcome("failed", f"invalid header: {exc}")
    return Ready(message, campaign.id, list_management)


def render_sms_one(row: dict[str, Any], campaign: Campaign, template: str, context: dict[str, Any],
                   marketing: bool) -> Outcome | Ready:
    """An SMS row's text (``<template>/<locale>/sms.txt``), checked: a valid number, a marketing
    SMS that says how to stop (STOP; else the campaign fails closed like any template error),
    at most MAX_SEGMENTS segments."""
    phone = row.get("phone") or ""
    if not E164.match(phone):
        return Outcome("failed", f"invalid phone number {phone[:4]}… (not E.164)")
    try:
        text, _ = render_sms(template, row["locale"], context)
    except TemplateRenderError as exc:
        return Outcome("failed", f"{TEMPLATE_ERROR}: {exc}")
    if marketing and "STOP" not in text.upper():
        return Outcome("failed", f"{TEMPLATE_ERROR}: template {template} sms.txt: a marketing SMS must say how to "
                                 "opt out (reply STOP)")
    segments = count_segments(text)
    if segments.count > MAX_SEGMENTS:
        return Outcome("failed", f"SMS too long: {segments.count} segments ({segments.characters} {segments.encoding} "
                                 f"characters), at most {MAX_SEGMENTS}")
    return Ready(None, campaign.id, None, SmsMessage(phone, text, marketing, segments))


def deliver(ready: Ready, row: dict[str, Any], sender: SesSender, clock) -> Outcome:
    """The SES call of a claimed row (the SMS provider's for an SMS), and what it answered."""
    provider = "SES"
    try:
        if ready.sms is not None:
            provider = "the SMS provider"
            message_id = sender.sms.send(ready.sms, row["send_key"], ready.campaign_id, pacer=sender.pacer)
        else:
            message_id = sender.send(ready.message, row["send_key"], ready.campaign_id,
                                     list_management=ready.list_management)
    except SendError as exc:
        if exc.retryable:
            return Outcome("retry", f"{provider} refused for now, retried next run: {exc}", called_ses=True)
        return Outcome("unknown" if exc.ambiguous else "failed", str(exc), called_ses=True)
    return Outcome("sent", None, clock(), message_id, called_ses=True)


def _attempt(function, *args) -> Future:
    """``function(*args)`` now, its result or exception held until asked for (``.result()``)."""
    done: Future = Future()
    try:
        done.set_result(function(*args))
    except Exception as exc:  # noqa: BLE001 - raised again by .result(), in its turn
        done.set_exception(exc)
    return done
