"""SQS message bodies → SES event rows (SPEC §5b). Pure: no I/O, no clock.

A body is an SNS envelope (``"Type": "Notification"``, the event as a JSON string in
``Message``), an EventBridge event (``"source": "aws.ses"``, the event in ``detail``) or the
SES event itself (SNS raw message delivery). Both SES formats are read:

* configuration-set **event publishing**: ``eventType`` Send, Reject, Bounce, Complaint,
  Delivery, Open, Click, Rendering Failure, DeliveryDelay, Subscription;
* identity **feedback notifications**: ``notificationType`` Bounce, Complaint, Delivery.

Anything else — an SNS ``SubscriptionConfirmation``, an unknown type, a malformed body — is a
:class:`Rejected` with the reason, for the quarantine table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: SES event type → the key of its type-specific object in the event.
EVENT_OBJECTS = {
    "Send": "send", "Reject": "reject", "Bounce": "bounce", "Complaint": "complaint", "Delivery": "delivery",
    "Open": "open", "Click": "click", "Rendering Failure": "failure", "DeliveryDelay": "deliveryDelay",
    "Subscription": "subscription",
}
#: Types feedback notifications carry (``notificationType``).
NOTIFICATION_TYPES = ("Bounce", "Complaint", "Delivery")
#: Where the recipients an event is about are listed (else ``mail.destination``).
RECIPIENT_LISTS = {"Bounce": "bouncedRecipients", "Complaint": "complainedRecipients",
                   "Delivery": "recipients", "DeliveryDelay": "delayedRecipients"}


class Rejected(ValueError):
    """A body that is not an SES event we can store: quarantined with ``reason``."""

    def __init__(self, reason: str, field_name: str | None = None):
        super().__init__(reason)
        self.reason, self.field = reason, field_name


@dataclass
class SesEvent:
    """One row of ``message_events`` (one per recipient the event is about)."""

    event_id: str
    event_type: str
    provider_message_id: str
    email: str | None
    occurred_at: datetime
    send_key: str | None
    campaign_id: str | None
    bounce_type: str | None
    bounce_subtype: str | None
    feedback_format: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def is_hard_bounce(self) -> bool:
        return self.event_type == "Bounce" and self.bounce_type == "Permanent"

    @property
    def is_soft_bounce(self) -> bool:
        return self.event_type == "Bounce" and self.bounce_type in ("Transient", "Undetermined")

    @property
    def is_complaint(self) -> bool:
        # "not-spam" is a mailbox provider saying the recipient *un*-marked the mail as spam.
        return self.event_type == "Complaint" and self.detail.get("complaintFeedbackType") != "not-spam"

    @property
    def unsubscribes(self) -> bool | None:
        """Subscription events: True = opted out (all, or any topic), False = opted back in."""
        if self.event_type != "Subscription":
            return None
        prefs = self.detail.get("newTopicPreferences") or {}
        statuses = [t.get("subscriptionStatus") for t in prefs.get("topicSubscriptionStatus") or []
                    if isinstance(t, dict)]
        if prefs.get("unsubscribeAll") or "OptOut" in statuses:
            return True
        return False if statuses else None

    def row(self, received_at: datetime, sqs_message_id: str | None) -> dict[str, Any]:
        return {"event_id": self.event_id, "provider_message_id": self.provider_message_id,
                "send_key": self.send_key, "event_type": self.event_type, "occurred_at": self.occurred_at,
                "email": self.email, "detail": json.dumps(self.detail, separators=(",", ":"), sort_keys=True,
                                                          ensure_ascii=False),
                "received_at": received_at, "campaign_id": self.campaign_id, "bounce_type": self.bounce_type,
                "bounce_subtype": self.bounce_subtype, "feedback_format": self.feedback_format,
                "sqs_message_id": sqs_message_id}


def _timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise Rejected(f"missing {name}", name)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"unparseable {name} {value[:40]!r}", name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _json_object(text: Any, what: str) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str | bytes):
        raise Rejected(f"{what} is not a JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected(f"malformed JSON in {what}: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise Rejected(f"{what} is not a JSON object")
    return value


def unwrap(body: str | bytes) -> dict[str, Any]:
    """The SES event inside a message body (SNS envelope, EventBridge event or raw)."""
    doc = _json_object(body, "message body")
    sns_type = doc.get("Type")
    if sns_type is not None and "TopicArn" in doc or sns_type in ("Notification", "SubscriptionConfirmation",
                                                                   "UnsubscribeConfirmation"):
        if sns_type != "Notification":
            raise Rejected(f"SNS {sns_type} (not an SES event): confirm or manage the subscription in SNS, "
                           f"it is not done automatically", "Type")
        return _json_object(doc.get("Message"), "SNS Message")
    if doc.get("source") == "aws.ses" and isinstance(doc.get("detail"), dict):
        return doc["detail"]
    return doc


def _tag(mail: dict[str, Any], name: str) -> str | None:
    value = (mail.get("tags") or {}).get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _recipients(event_type: str, body: dict[str, Any], mail: dict[str, Any]) -> list[str | None]:
    listed = body.get(RECIPIENT_LISTS.get(event_type, ""), None)
    if isinstance(listed, list) and listed:
        out = [r.get("emailAddress") if isinstance(r, dict) else r for r in listed]
    else:
        out = mail.get("destination") or [None]
    return [str(a).strip().lower() if a else None for a in out]


def _event_id(event_type: str, message_id: str, body: dict[str, Any], recipient: str | None) -> str:
    """Stable across redeliveries and across the two SES formats of the same bounce/complaint."""
    if event_type in ("Bounce", "Complaint") and body.get("feedbackId"):
        moment = str(body["feedbackId"])
    elif event_type in ("Send", "Reject", "Rendering Failure"):
        moment = ""  # once per message
    else:
        moment = str(body.get("timestamp") or json.dumps(body, sort_keys=True))
    link = str(body.get("link") or "") if event_type == "Click" else ""
    key = "\x1f".join((event_type, message_id, moment, link, recipient or ""))
    return "ses-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def parse_event(event: dict[str, Any]) -> list[SesEvent]:
    """One SES event (either format) → one :class:`SesEvent` per recipient it concerns."""
    if "eventType" in event:
        event_type, fmt = event["eventType"], "event_publishing"
        if event_type not in EVENT_OBJECTS:
            raise Rejected(f"unknown SES eventType {event_type!r}", "eventType")
    elif "notificationType" in event:
        event_type, fmt = event["notificationType"], "feedback_notification"
        if event_type not in NOTIFICATION_TYPES:
            raise Rejected(f"unknown SES notificationType {event_type!r}", "notificationType")
    else:
        raise Rejected("not an SES event: no eventType nor notificationType", "eventType")
    mail = event.get("mail")
    if not isinstance(mail, dict):
        raise Rejected(f"{event_type} event without a mail object", "mail")
    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise Rejected(f"{event_type} event without mail.messageId", "mail.messageId")
    body = event.get(EVENT_OBJECTS[event_type])
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Rejected(f"{EVENT_OBJECTS[event_type]} is not an object", EVENT_OBJECTS[event_type])
    if body.get("timestamp"):
        occurred_at = _timestamp(body["timestamp"], f"{EVENT_OBJECTS[event_type]}.timestamp")
    else:
        occurred_at = _timestamp(mail.get("timestamp"), "mail.timestamp")
    bounce_type = body.get("bounceType") if event_type == "Bounce" else None
    if event_type == "Bounce" and bounce_type not in ("Permanent", "Transient", "Undetermined"):
        raise Rejected(f"Bounce with unknown bounceType {bounce_type!r}", "bounce.bounceType")
    return [SesEvent(
        event_id=_event_id(event_type, message_id, body, recipient), event_type=event_type,
        provider_message_id=message_id, email=recipient, occurred_at=occurred_at,
        send_key=_tag(mail, "send_key"), campaign_id=_tag(mail, "campaign_id"), bounce_type=bounce_type,
        bounce_subtype=body.get("bounceSubType") if event_type == "Bounce" else None, feedback_format=fmt,
        detail=body) for recipient in _recipients(event_type, body, mail)]


def parse_body(body: str | bytes) -> list[SesEvent]:
    """A whole SQS message body → its events (raises :class:`Rejected`)."""
    return parse_event(unwrap(body))
