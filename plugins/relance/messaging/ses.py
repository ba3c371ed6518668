"""Sending through Amazon SES v2 (``SendEmail`` with Raw content), paced and retried.

Rate (SPEC §7.10): every send task holds one slot of the Airflow pool ``ses_send`` and
paces itself at ``max_rate / pool slots``, so however many mapped tasks of however many
dispatcher runs are running, the deployment stays under ``tm_ses_max_send_rate``.
Throttling, SES's own 5xx and connections that could not be opened are retried with
exponential backoff; a failure once the request may have been written (reset, read timeout,
unreadable answer, gateway timeout) is ambiguous — never retried (:func:`classify`); other
errors are final.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from relance.messaging.mime import RawMessage

RETRYABLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
                   "ServiceUnavailable", "InternalFailure", "InternalServerError", "RequestTimeout"}
#: HTTP statuses of a gateway between us and SES that gave up waiting for SES's answer: SES may
#: have the message (unlike SES's own 500/503, which AWS documents as safe to retry).
AMBIGUOUS_STATUSES = {502, 504}
#: Seconds to open a connection to SES / to wait for its answer. A connect timeout is safe to retry
#: (nothing was sent); a read timeout is ambiguous, so the read timeout is generous.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0

#: What a send attempt's failure means, by what botocore raised (checked against botocore 1.44,
#: ``botocore/httpsession.py``): only errors raised while *opening* the connection prove SES
#: never saw the request. urllib3 swallows a reset while writing the request and reports it
#: when reading the answer, so every reset, read timeout or unreadable answer once connected is
#: ambiguous: SES may have accepted the message.
SAFE_TO_RETRY = "retry"
AMBIGUOUS = "ambiguous"
REFUSED = "refused"


def classify(exc: BaseException) -> tuple[str, str]:
    """(:data:`SAFE_TO_RETRY` | :data:`AMBIGUOUS` | :data:`REFUSED`, a one-line reason) for an
    exception raised by ``send_email``; anything else is not an SES answer and propagates."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        detail = f"SES {code or status}: {exc.response.get('Error', {}).get('Message', exc)}"
        if status in AMBIGUOUS_STATUSES:
            return AMBIGUOUS, f"{detail} (a gateway gave up waiting for SES: the message may have been accepted)"
        if code in RETRYABLE_CODES or status == 429 or status >= 500:
            return SAFE_TO_RETRY, detail
        return REFUSED, detail
    # before the request was written: the connection could not be opened (refused, DNS, proxy,
    # connect timeout) — SES never saw it
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ProxyConnectionError):
        return SAFE_TO_RETRY, f"SES unreachable (nothing sent): {exc}"
    if isinstance(exc, ReadTimeoutError):
        return AMBIGUOUS, f"SES did not answer in time (the message may have been accepted): {exc}"
    if isinstance(exc, ConnectionClosedError | HTTPClientError):
        return AMBIGUOUS, f"connection lost before SES answered (the message may have been accepted): {exc}"
    if isinstance(exc, ResponseParserError):
        return AMBIGUOUS, f"SES's answer could not be read (the message may have been accepted): {exc}"
    if isinstance(exc, BotoCoreError):  # any other connection-level error (TLS…) once connected
        return AMBIGUOUS, f"SES call failed (the message may have been accepted): {exc}"
    raise exc


def ses_client(connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT) -> Any:
    """The SES v2 client of the send tasks: botocore's own retries off (:class:`SesSender`
    retries, and only what :func:`classify` says is safe), explicit timeouts."""
    from relance import aws

    return aws.client("sesv2", retries=0, connect_timeout=connect_timeout, read_timeout=read_timeout)


class SendError(RuntimeError):
    """``retryable``: SES refused for now (throttled, 5xx): safe to try again later.
    ``ambiguous``: SES may or may not have accepted it (read timeout): never resend blindly."""

    def __init__(self, message: str, retryable: bool, ambiguous: bool = False):
        super().__init__(message)
        self.retryable, self.ambiguous = retryable, ambiguous


class Pacer:
    """At most ``rate`` calls per second from this process (a simple interval limiter)."""

    def __init__(self, rate: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


@dataclass
class SesSender:
    client: Any
    pacer: Pacer
    max_attempts: int = 6
    base_delay: float = 0.5
    configuration_set: str | None = None
    sleep: Any = time.sleep
    #: the SMS side (:class:`relance.messaging.sms.SmsSender`, paced by the same pacer): set by
    #: :func:`relance.dispatch.send.send_batch` when not given
    sms: Any = None

    def send(self, message: RawMessage, send_key: str, campaign_id: str,
             list_management: dict[str, str] | None = None) -> str:
        """Send one message; returns the SES MessageId or raises SendError.

        ``list_management`` (``ContactListName``, ``TopicName``): SES subscription management for
        a marketing message — SES hosts the unsubscribe page, fills ``{{amazonSESUnsubscribeUrl}}``
        and publishes a ``Subscription`` event when the recipient unsubscribes."""
        request = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Raw": {"Data": message.as_bytes()}},
            "EmailTags": [{"Name": "send_key", "Value": send_key}, {"Name": "campaign_id", "Value": campaign_id}],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        if list_management:
            request["ListManagementOptions"] = dict(list_management)
        return with_retries(lambda: self.client.send_email(**request)["MessageId"], self.pacer.wait, self.sleep,
                            self.max_attempts, self.base_delay)


def with_retries(call: Callable[[], str], wait: Callable[[], None], sleep: Callable[[float], Any],
                 max_attempts: int, base_delay: float, provider: str = "SES") -> str:
    """``call()`` (one provider request: SES, SNS, End User Messaging), each attempt after
    ``wait()`` (the pacer); retried with jittered backoff only where :func:`classify` says the
    provider cannot have the message; ambiguous and refused answers raise SendError at once."""
    for attempt in range(1, max_attempts + 1):
        wait()
        try:
            return call()
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            kind, detail = classify(exc)
        if provider != "SES":
            detail = detail.replace("SES", provider)
        if kind == AMBIGUOUS:
            raise SendError(detail, retryable=False, ambiguous=True)
        if kind == REFUSED or attempt == max_attempts:
            raise SendError(detail, retryable=kind == SAFE_TO_RETRY)
        sleep(base_delay * 2 ** (attempt - 1) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def setup_subscription_management(client: Any, contact_list: str, topic: str) -> list[str]:
    """The deploy step of SES subscription management (``relance ses setup``): the contact list
    and its marketing topic (contacts opted in by default: consent is Relance's own rule; SES only
    records who unsubscribed). Idempotent; returns what it created or updated."""
    topic_def = {"TopicName": topic, "DisplayName": "Offers and reminders",
                 "Description": "Marketing email: abandoned carts, offers, recommendations",
                 "DefaultSubscriptionStatus": "OPT_IN"}
    try:
        existing = client.get_contact_list(ContactListName=contact_list)
    except client.exceptions.NotFoundException:
        client.create_contact_list(ContactListName=contact_list, Topics=[topic_def],
                                   Description="Relance: subscription management of marketing email")
        return [f"contact list {contact_list}", f"topic {topic}"]
    topics = existing.get("Topics") or []
    if any(t.get("TopicName") == topic for t in topics):
        return []
    client.update_contact_list(ContactListName=contact_list, Topics=[*topics, topic_def],
                               Description=existing.get("Description") or "")
    return [f"topic {topic}"]
