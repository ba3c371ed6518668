"""ingest_ses_events (SPEC §5b): SES notifications from the emulator's SQS into the warehouse,
on SQLite and PostgreSQL — stored once, suppressions, consent, reconciliation, quarantine."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relance.feedback import drain
from relance.feedback.parse import Rejected, parse_body

FIXTURES = Path(__file__).parent / "fixtures" / "ses"
AS_OF = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
RECEIPT_OF_ORDER = "order_confirmation"


def fixture_body(name: str, message_id: str | None = None, send_key: str | None = None, email: str | None = None,
                 when: datetime | None = None) -> str:
    """A fixture's body with its message, tag, recipient and time replaced (None = keep)."""
    text = (FIXTURES / name).read_text()
    doc = json.loads(text)
    envelope = None
    if doc.get("Type") == "Notification":
        envelope, doc = doc, json.loads(doc["Message"])
    event = doc.get("detail", doc) if doc.get("source") == "aws.ses" else doc
    mail = event["mail"]
    kind = event.get("eventType") or event.get("notificationType")
    body_key = {"Bounce": "bounce", "Complaint": "complaint", "Delivery": "delivery", "Open": "open",
                "Click": "click", "Subscription": "subscription", "DeliveryDelay": "deliveryDelay"}.get(kind)
    body = event.get(body_key, {}) if body_key else {}
    if message_id:
        mail["messageId"] = message_id
        if "feedbackId" in body:
            body["feedbackId"] = f"fb-{message_id}"
    if send_key and "tags" in mail:
        mail["tags"]["send_key"] = [send_key]
    if email:
        mail["destination"] = [email]
        for key in ("bouncedRecipients", "complainedRecipients", "delayedRecipients"):
            if key in body:
                body[key] = [{**r, "emailAddress": email} for r in body[key]]
        if "recipients" in body:
            body["recipients"] = [email]
    if when:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        mail["timestamp"] = stamp
        if "timestamp" in body:
            body["timestamp"] = stamp
    if envelope is not None:
        envelope["Message"] = json.dumps(doc)
        doc = envelope
    return json.dumps(doc)


@pytest.fixture
def queue(emulator):
    """A fresh SQS queue on the emulator: (client, url, name)."""
    from relance import aws

    sqs = aws.client("sqs")
    name = f"ses-events-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    yield sqs, url, name
    sqs.delete_queue(QueueUrl=url)


def put(queue, *bodies: str) -> None:
    sqs, url, _ = queue
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def queue_depth(queue) -> int:
    sqs, url, _ = queue
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def outbox_row(wh, send_key: str, customer_id: str, email: str, status: str = "sent", category: str = "marketing",
               campaign_id: str = "cart_abandonment", provider_message_id: str | None = None,
               claimed_at: datetime | None = None, due_at: datetime | None = None) -> None:
    due = due_at or AS_OF - timedelta(hours=6)
    with wh.begin() as conn:
        wh.insert_rows("message_log", [{
            "send_key": send_key, "campaign_id": campaign_id, "campaign_version": "v1", "step": 1,
            "step_name": "first", "variant": "A", "customer_id": customer_id, "email": email, "locale": "fr",
            "category": category, "priority": 50, "trigger_id": f"t-{send_key}", "trigger_at": due, "due_at": due,
            "status": status, "planned_at": due, "claimed_at": claimed_at, "batch_id": "run#0000",
            "attempts": 1, "provider_message_id": provider_message_id,
            "sent_at": due if status == "sent" else None}], conn)


def customer_row(wh, customer_id: str, email: str, opt_in: bool = True) -> None:
    with wh.begin() as conn:
        wh.insert_rows("customer_traits", [
            {"customer_id": customer_id, "trait": "email", "value": email, "observed_at": AS_OF - timedelta(days=30),
             "message_id": f"id-{customer_id}"},
            {"customer_id": customer_id, "trait": "email_opt_in", "value": "1" if opt_in else "0",
             "observed_at": AS_OF - timedelta(days=30), "message_id": f"id-{customer_id}"}], conn)
        wh.insert_rows("consent_changes", [{"message_id": f"id-{customer_id}", "customer_id": customer_id,
                                            "channel": "email", "opt_in": opt_in, "source": "identify",
                                            "changed_at": AS_OF - timedelta(days=30)}], conn)
        wh.insert_rows("customers", [{"customer_id": customer_id, "email": email, "email_opt_in": opt_in,
                                      "updated_at": AS_OF - timedelta(days=30)}], conn)


# -- parsing (pure) -------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "event_type", "fmt"), [
    ("event_send.json", "Send", "event_publishing"),
    ("event_delivery_sns.json", "Delivery", "event_publishing"),
    ("event_open.json", "Open", "event_publishing"),
    ("event_click_sns.json", "Click", "event_publishing"),
    ("event_bounce_permanent_sns.json", "Bounce", "event_publishing"),
    ("event_bounce_transient.json", "Bounce", "event_publishing"),
    ("event_complaint_sns.json", "Complaint", "event_publishing"),
    ("event_subscription.json", "Subscription", "event_publishing"),
    ("event_reject.json", "Reject", "event_publishing"),
    ("event_rendering_failure.json", "Rendering Failure", "event_publishing"),
    ("event_delivery_delay.json", "DeliveryDelay", "event_publishing"),
    ("eventbridge_bounce.json", "Bounce", "event_publishing"),
    ("notification_bounce_sns.json", "Bounce", "feedback_notification"),
    ("notification_complaint.json", "Complaint", "feedback_notification"),
    ("notification_delivery.json", "Delivery", "feedback_notification"),
])
def test_every_ses_payload_kind_parses_to_one_event_per_recipient(name, event_type, fmt):
    (event,) = parse_body((FIXTURES / name).read_text())
    assert (event.event_type, event.feedback_format) == (event_type, fmt)
    assert event.provider_message_id.startswith("0102019a5c8f3e21")
    assert event.email == "jane.doe@example.com"  # lower-cased, even from Jane.Doe@Example.com
    assert event.occurred_at.tzinfo is not None
    assert event.send_key == (None if fmt == "feedback_notification" else "cart_abandonment:1:c000042:cart-7f3a")


def test_the_same_event_has_one_id_whatever_the_wrapper_or_format():
    raw_bounce = json.loads((FIXTURES / "event_bounce_permanent_sns.json").read_text())["Message"]
    (wrapped,) = parse_body((FIXTURES / "event_bounce_permanent_sns.json").read_text())
    (raw,) = parse_body(raw_bounce)
    (notification,) = parse_body((FIXTURES / "notification_bounce_sns.json").read_text())
    assert wrapped.event_id == raw.event_id == notification.event_id  # same feedbackId
    (open_event,) = parse_body((FIXTURES / "event_open.json").read_text())
    later_open = parse_body(fixture_body("event_open.json", when=datetime(2026, 11, 21, tzinfo=UTC)))[0]
    assert open_event.event_id != later_open.event_id  # a second open is a second event


@pytest.mark.parametrize(("name", "reason"), [
    ("sns_subscription_confirmation.json", "SNS SubscriptionConfirmation"),
    ("notification_subscription_succeeded.json", "unknown SES notificationType"),
    ("unknown_event_type.json", "unknown SES eventType"),
    ("malformed_body.txt", "malformed JSON"),
])
def test_what_is_not_an_ses_event_is_rejected_with_the_reason(name, reason):
    with pytest.raises(Rejected, match=reason):
        parse_body((FIXTURES / name).read_text())


# -- against the emulator's SQS, on both backends ---------------------------------------------

def test_events_are_stored_once_linked_to_their_message_and_the_queue_is_emptied(wh, queue):
    outbox_row(wh, "k1", "c1", "ann@example.com", provider_message_id="m-1")
    bodies = [fixture_body("event_send.json", "m-1", "k1", "ann@example.com"),
              fixture_body("event_delivery_sns.json", "m-1", "k1", "ann@example.com"),
              fixture_body("event_open.json", "m-1", "k1", "ann@example.com"),
              fixture_body("event_click_sns.json", "m-1", "k1", "ann@example.com"),
              fixture_body("notification_delivery.json", "m-1", None, "ann@example.com",
                           when=AS_OF - timedelta(hours=1))]  # no tag: linked by SES MessageId
    put(queue, *bodies, *bodies)  # at-least-once: everything delivered twice
    stats = drain(wh, queue[0], queue[2], AS_OF)
    assert stats["messages"] == 10 and stats["deleted"] == 10 and stats["new_events"] == 5
    assert queue_depth(queue) == 0
    rows = wh.query("SELECT event_type, send_key, email, campaign_id FROM message_events ORDER BY event_type")
    assert [r["event_type"] for r in rows] == ["Click", "Delivery", "Delivery", "Open", "Send"]
    assert {r["send_key"] for r in rows} == {"k1"} and {r["email"] for r in rows} == {"ann@example.com"}
    assert {r["campaign_id"] for r in rows} == {"cart_abandonment"}

    put(queue, *bodies)  # a third delivery, in a later run
    assert drain(wh, queue[0], queue[1], AS_OF)["new_events"] == 0  # the queue URL works as well
    assert wh.scalar("SELECT COUNT(*) FROM message_events") == 5


def test_hard_bounce_and_complaint_suppress_the_address_even_for_receipts(wh, queue):
    customer_row(wh, "c1", "Bob@Example.com")
    customer_row(wh, "c2", "cleo@example.com")
    outbox_row(wh, "k1", "c1", "Bob@Example.com", provider_message_id="m-1")
    outbox_row(wh, "k2", "c2", "cleo@example.com", provider_message_id="m-2")
    put(queue, fixture_body("event_bounce_permanent_sns.json", "m-1", "k1", "Bob@Example.com"),
        fixture_body("event_complaint_sns.json", "m-2", "k2", "cleo@example.com"),
        fixture_body("event_bounce_transient.json", "m-3", None, "dan@example.com"))
    drain(wh, queue[0], queue[2], AS_OF)
    assert {(r["email"], r["reason"]) for r in wh.query("SELECT email, reason FROM suppressions")} == {
        ("bob@example.com", "hard_bounce"), ("cleo@example.com", "complaint")}
    # the complaint also stops marketing: consent history and the customer's opt-in
    assert [(r["customer_id"], r["source"]) for r in wh.query(
        "SELECT customer_id, source FROM consent_changes WHERE opt_in = FALSE")] == [("c2", "ses_complaint")]
    assert {r["customer_id"]: bool(r["email_opt_in"]) for r in wh.query(
        "SELECT customer_id, email_opt_in FROM customers")} == {"c1": True, "c2": False}

    # the dispatcher's suppression rule blocks even a receipt to both addresses
    outbox_row(wh, "r1", "c1", "BOB@example.com", status="planned", category="transactional",
               campaign_id=RECEIPT_OF_ORDER, due_at=AS_OF)
    outbox_row(wh, "r2", "c2", "cleo@example.com", status="planned", category="transactional",
               campaign_id=RECEIPT_OF_ORDER, due_at=AS_OF)
    wh.execute("outbox/rule_suppressed", {"as_of": AS_OF, "campaign_ids": [RECEIPT_OF_ORDER]})
    assert {r["send_key"]: r["status"] for r in wh.query(
        "SELECT send_key, status FROM message_log WHERE send_key IN ('r1', 'r2')")} == {
        "r1": "suppressed", "r2": "suppressed"}


def test_an_ses_unsubscribe_is_a_consent_change_and_stops_marketing(wh, queue):
    customer_row(wh, "c1", "eve@example.com")
    outbox_row(wh, "k1", "c1", "eve@example.com", provider_message_id="m-1")
    put(queue, fixture_body("event_subscription.json", "m-1", "k1", "eve@example.com"))
    drain(wh, queue[0], queue[2], AS_OF)
    (change,) = wh.query("SELECT customer_id, channel, opt_in, source FROM consent_changes WHERE source <> 'identify'")
    assert (change["customer_id"], change["channel"], bool(change["opt_in"]), change["source"]) == (
        "c1", "email", False, "ses_subscription")
    assert not wh.query("SELECT email FROM suppressions")  # an unsubscribe is not a suppression
    outbox_row(wh, "next", "c1", "eve@example.com", status="planned", due_at=AS_OF)
    wh.execute("outbox/rule_unsubscribed", {"as_of": AS_OF, "campaign_ids": ["cart_abandonment"]})
    assert wh.scalar("SELECT status FROM message_log WHERE send_key = 'next'") == "unsubscribed"


@pytest.mark.parametrize(("bounce_days", "delivered_on_day", "suppressed"), [
    ((0, 3, 8), None, True),      # 3 messages over 8 days, nothing delivered: suppressed
    ((0, 3, 8), 5, False),        # a delivery in between: the streak starts again
    ((0, 1, 2), None, False),     # 3 messages within 2 days: a full mailbox, not a dead one
    ((0, 8), None, False),        # only 2 messages
])
def test_repeated_soft_bounces_suppress_the_address(wh, queue, bounce_days, delivered_on_day, suppressed):
    start = AS_OF - timedelta(days=10)
    bodies = [fixture_body("event_bounce_transient.json", f"m-{d}", None, "fay@example.com",
                           when=start + timedelta(days=d)) for d in bounce_days]
    if delivered_on_day is not None:
        bodies.append(fixture_body("event_delivery_sns.json", "m-ok", None, "fay@example.com",
                                   when=start + timedelta(days=delivered_on_day)))
    put(queue, *bodies)
    drain(wh, queue[0], queue[2], AS_OF)
    rows = wh.query("SELECT email, reason FROM suppressions")
    assert rows == ([{"email": "fay@example.com", "reason": "soft_bounce"}] if suppressed else [])


def test_send_events_reconcile_rows_a_crash_left_sending_or_unknown(wh, queue, monkeypatch):
    monkeypatch.setenv("RELANCE_SIMULATED_NOW", AS_OF.isoformat())
    outbox_row(wh, "stuck", "c1", "gus@example.com", status="sending", claimed_at=AS_OF - timedelta(hours=2))
    outbox_row(wh, "lost", "c2", "hal@example.com", status="unknown", claimed_at=AS_OF - timedelta(hours=2))
    outbox_row(wh, "never", "c3", "ivy@example.com", status="unknown", claimed_at=AS_OF - timedelta(hours=2))
    sent_at = AS_OF - timedelta(hours=2) + timedelta(seconds=1)
    put(queue, fixture_body("event_send.json", "m-stuck", "stuck", "gus@example.com", when=sent_at),
        fixture_body("event_send.json", "m-lost", "lost", "hal@example.com", when=sent_at),
        fixture_body("notification_delivery.json", "m-lost", None, "hal@example.com", when=sent_at))
    stats = drain(wh, queue[0], queue[2], AS_OF)
    assert stats["reconciled"] == 2
    rows = {r["send_key"]: r for r in wh.query("SELECT send_key, status, provider_message_id FROM message_log")}
    assert (rows["stuck"]["status"], rows["stuck"]["provider_message_id"]) == ("sent", "m-stuck")
    assert (rows["lost"]["status"], rows["lost"]["provider_message_id"]) == ("sent", "m-lost")
    assert rows["never"]["status"] == "unknown"
    # the tag-less Delivery of the reconciled message is linked to it
    assert wh.scalar("SELECT send_key FROM message_events WHERE event_type = 'Delivery'") == "lost"


def test_what_is_not_an_ses_event_is_quarantined_and_leaves_the_queue(wh, queue):
    names = ["sns_subscription_confirmation.json", "notification_subscription_succeeded.json",
             "unknown_event_type.json", "malformed_body.txt"]
    put(queue, *[(FIXTURES / n).read_text() for n in names], fixture_body("event_open.json", "m-1", "k1"))
    stats = drain(wh, queue[0], queue[2], AS_OF)
    assert (stats["quarantined"], stats["new_events"], stats["deleted"]) == (4, 1, 5)
    assert queue_depth(queue) == 0
    rows = wh.query("SELECT source_file, line_no, raw, reason FROM quarantine ORDER BY reason")
    assert len(rows) == 4
    assert all(r["source_file"].startswith(f"sqs://{queue[2]}/") and r["line_no"] == 1 for r in rows)
    assert any("SubscriptionConfirmation" in r["reason"] for r in rows)
    assert {r["raw"] for r in rows} == {(FIXTURES / n).read_text() for n in names}


def test_a_message_leaves_the_queue_only_after_its_effects_are_committed(wh, queue, monkeypatch):
    from relance.feedback import queue as feedback_queue

    put(queue, fixture_body("event_bounce_permanent_sns.json", "m-1", None, "jo@example.com"))

    def broken(*args, **kwargs):
        raise RuntimeError("warehouse went away")

    monkeypatch.setattr(feedback_queue, "VISIBILITY_TIMEOUT", 0)  # back on the queue at once
    monkeypatch.setattr(feedback_queue, "apply_events", broken)
    with pytest.raises(RuntimeError, match="went away"):
        drain(wh, queue[0], queue[2], AS_OF)
    assert queue_depth(queue) == 1 and not wh.query("SELECT email FROM suppressions")
    monkeypatch.undo()
    drain(wh, queue[0], queue[2], AS_OF)
    assert queue_depth(queue) == 0
    assert wh.scalar("SELECT reason FROM suppressions WHERE email = 'jo@example.com'") == "hard_bounce"


def test_ingest_ses_events_dag_drains_the_queue_of_the_variable(dagbag, wh, queue, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
    monkeypatch.setenv("AIRFLOW_VAR_TM_SES_EVENTS_QUEUE", queue[2])
    outbox_row(wh, "k1", "c1", "kim@example.com", provider_message_id="m-1")
    put(queue, fixture_body("event_delivery_sns.json", "m-1", "k1", "kim@example.com"),
        fixture_body("notification_bounce_sns.json", "m-1", None, "kim@example.com"))
    run = dagbag.get_dag("ingest_ses_events").test(logical_date=AS_OF)
    assert run.state == "success"
    assert wh.scalar("SELECT COUNT(*) FROM message_events WHERE send_key = 'k1'") == 2
    assert wh.scalar("SELECT reason FROM suppressions") == "hard_bounce"
    assert queue_depth(queue) == 0


def test_opting_back_in_through_ses_subscription_management_restores_marketing(wh, queue):
    customer_row(wh, "c1", "lea@example.com")
    outbox_row(wh, "k1", "c1", "lea@example.com", provider_message_id="m-1")
    opt_out = fixture_body("event_subscription.json", "m-1", "k1", "lea@example.com")
    event = json.loads(opt_out)
    event["subscription"]["timestamp"] = "2026-11-20T15:30:00.000Z"
    event["subscription"]["newTopicPreferences"] = {"unsubscribeAll": False, "topicSubscriptionStatus": [
        {"topicName": "marketing", "subscriptionStatus": "OptIn"}]}
    put(queue, opt_out)
    drain(wh, queue[0], queue[2], AS_OF)
    assert wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'c1'") in (False, 0)
    put(queue, json.dumps(event))
    drain(wh, queue[0], queue[2], AS_OF)
    assert wh.scalar("SELECT email_opt_in FROM customers WHERE customer_id = 'c1'") in (True, 1)
    assert [bool(r["opt_in"]) for r in wh.query(
        "SELECT opt_in FROM consent_changes WHERE source = 'ses_subscription' ORDER BY changed_at")] == [False, True]


def test_without_a_queue_configured_the_dag_run_skips_its_task(dagbag, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_TM_SES_EVENTS_QUEUE", raising=False)
    run = dagbag.get_dag("ingest_ses_events").test(logical_date=AS_OF + timedelta(minutes=15))
    assert run.state == "success"
    assert [ti.state for ti in run.get_task_instances()] == ["skipped"]
