"""SMS: phone numbers (E.164), segment counting, and sending through Amazon SNS ``Publish`` or
AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``), paced and retried
like SES (:func:`relance.messaging.ses.classify` judges what a failure means). Numbers, segments
and STOP replies: :mod:`relance.messaging.sms_text`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from relance.messaging.ses import with_retries
from relance.messaging.sms_text import Segments, count_segments, is_stop_reply, normalise_phone

__all__ = ["Segments", "SmsMessage", "SmsSender", "count_segments", "is_stop_reply", "normalise_phone"]


@dataclass(frozen=True)
class SmsMessage:
    """One rendered SMS: where it goes, what it says, how many segments it takes."""

    phone: str
    text: str
    marketing: bool
    segments: Segments

    @property
    def sms_type(self) -> str:
        return "Promotional" if self.marketing else "Transactional"


@dataclass
class SmsSender:
    """Sends SMS through ``provider`` (``sns``: ``Publish`` to a phone number; ``end_user_messaging``:
    ``SendTextMessage``). What is not given is read from the settings, and the client made, on
    first use (a batch without SMS reads nothing)."""

    provider: str | None = None
    client: Any = None
    sender_id: str | None = None
    origination_identity: str | None = None
    configuration_set: str | None = None
    cost_per_segment: float | None = None
    max_attempts: int = 6
    base_delay: float = 0.5
    sleep: Any = time.sleep
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _configured: bool = False

    def _configure(self) -> None:
        with self._lock:  # the send tasks' couriers share one sender
            if self._configured:
                return
            from relance import settings

            self.provider = self.provider or settings.sms_provider()
            self.sender_id = self.sender_id or settings.sms_sender_id()
            self.origination_identity = self.origination_identity or settings.sms_origination_identity()
            self.configuration_set = self.configuration_set or settings.sms_configuration_set()
            if self.cost_per_segment is None:
                self.cost_per_segment = settings.sms_cost_per_segment()
            if self.client is None:
                from relance import aws
                from relance.messaging.ses import CONNECT_TIMEOUT, READ_TIMEOUT

                service = "sns" if self.provider == "sns" else "pinpoint-sms-voice-v2"
                self.client = aws.client(service, retries=0, connect_timeout=CONNECT_TIMEOUT,
                                         read_timeout=READ_TIMEOUT)
            self._configured = True

    def _call(self, sms: SmsMessage, send_key: str, campaign_id: str) -> str:
        if self.provider == "sns":
            attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms.sms_type}}
            if self.sender_id:
                attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self.sender_id}
            return self.client.publish(PhoneNumber=sms.phone, Message=sms.text,
                                       MessageAttributes=attributes)["MessageId"]
        request: dict[str, Any] = {"DestinationPhoneNumber": sms.phone, "MessageBody": sms.text,
                                   "MessageType": sms.sms_type.upper(),
                                   "Context": {"send_key": send_key, "campaign_id": campaign_id}}
        if self.origination_identity:
            request["OriginationIdentity"] = self.origination_identity
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return self.client.send_text_message(**request)["MessageId"]

    def send(self, sms: SmsMessage, send_key: str, campaign_id: str, pacer: Any = None) -> str:
        """Send one SMS; returns the provider's MessageId or raises SendError, retried as
        :class:`relance.messaging.ses.SesSender` retries (only what ``classify`` says is safe)."""
        self._configure()
        return with_retries(lambda: self._call(sms, send_key, campaign_id),
                            pacer.wait if pacer is not None else lambda: None, self.sleep,
                            self.max_attempts, self.base_delay, provider="SMS provider")

    def cost(self, sms: SmsMessage) -> float:
        """What ``sms`` costs: its segments × ``tm_sms_cost_per_segment`` (read at first send)."""
        self._configure()
        return sms.segments.count * float(self.cost_per_segment or 0)
