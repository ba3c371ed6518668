"""One-click unsubscribe with signed links (``tm_unsubscribe_mode = signed_link``), RFC 8058.

The default needs none of this: SES subscription management hosts the unsubscribe page and
publishes ``Subscription`` events that ``ingest_ses_events`` turns into consent changes. With
signed links, each marketing message carries ``List-Unsubscribe: <URL>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, the URL pointing at the shop's own
endpoint (``tm_unsubscribe_url``) with the customer, the campaign and an HMAC-SHA256 token keyed
by ``tm_unsubscribe_secret`` (:func:`relance.messaging.mime.unsubscribe_url`).

This module ships what that endpoint needs, and never runs inside Airflow (Airflow is not
exposed to the internet):

* :func:`verify` — the token check, in constant time (``hmac.compare_digest``);
* :func:`unsubscribe_event` / :func:`write_event` — an ``Email Unsubscribed`` Segment call
  written to the landing zone (a local folder or ``s3://``), which ``ingest_behaviour`` loads
  like any other event: consent is withdrawn and marketing stops from the next dispatcher run;
* :func:`make_app` — a small WSGI application doing both (``GET`` shows a confirmation form,
  ``POST`` — what a mailbox's one-click button sends — unsubscribes). Serve it with any WSGI
  server, e.g. ``gunicorn 'relance.messaging.unsubscribe:make_app()'``, behind the shop's HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from relance.messaging.mime import unsubscribe_token

EVENT = "Email Unsubscribed"


def verify(customer_id: str, campaign_id: str, token: str, secret: str) -> bool:
    """True if ``token`` is the one :func:`relance.messaging.mime.unsubscribe_url` signed for
    this customer and campaign; compared in constant time. An empty secret verifies nothing."""
    if not secret or not customer_id or not token:
        return False
    expected = unsubscribe_token(customer_id, campaign_id or "", secret)
    return hmac.compare_digest(expected.encode(), token.encode())


def unsubscribe_event(customer_id: str, campaign_id: str, when: datetime) -> dict[str, Any]:
    """The Segment ``track`` call of SPEC §5 that withdraws email consent. Its ``messageId`` is
    stable per customer, campaign and second: a mailbox that POSTs twice lands one event."""
    when = when.astimezone(UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    digest = hashlib.sha256(f"{customer_id}\x1f{campaign_id}\x1f{stamp}".encode()).hexdigest()[:24]
    return {"type": "track", "event": EVENT, "userId": customer_id, "timestamp": stamp,
            "messageId": f"unsub-{digest}",
            "properties": {"campaign_id": campaign_id, "channel": "email", "method": "one_click_link"}}


def write_event(landing_uri: str, event: dict[str, Any], when: datetime) -> str:
    """Write one event as its own JSONL file in the landing zone's hour folder of ``when``
    (``events/dt=YYYY-MM-DD/hour=HH/unsubscribe-<id>.jsonl``); returns its address. A local file
    appears whole (written aside, then renamed), an S3 object is put in one request."""
    when = when.astimezone(UTC)
    name = f"events/dt={when:%Y-%m-%d}/hour={when:%H}/unsubscribe-{uuid.uuid4().hex}.jsonl"
    body = (json.dumps(event, ensure_ascii=False) + "\n").encode()
    if landing_uri.startswith("s3://"):
        from relance import aws

        bucket, _, prefix = landing_uri[len("s3://"):].rstrip("/").partition("/")
        key = f"{prefix}/{name}" if prefix else name
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        return f"s3://{bucket}/{key}"
    path = Path(landing_uri) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(body)
    os.replace(partial, path)
    return str(path)


_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head><body>
<p>Stop receiving our offers by email?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form></body></html>"""
_DONE = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>"
         "<body><p>You will not receive our offers by email any more.</p></body></html>")


def make_app(secret: str | None = None, landing_uri: str | None = None,
             clock: Callable[[], datetime] | None = None) -> Callable:
    """The WSGI application of the signed-link endpoint. ``secret`` and ``landing_uri`` default
    to the Variables ``tm_unsubscribe_secret`` and ``tm_landing``; without a secret it refuses to
    start (a public default would let anyone unsubscribe anyone)."""
    from relance import settings

    secret = secret or settings.unsubscribe_secret()
    if not secret:
        raise RuntimeError("the Variable tm_unsubscribe_secret is not set: signed unsubscribe links cannot be verified")
    landing = landing_uri or settings.landing_uri()
    now = clock or (lambda: datetime.now(UTC))

    def app(environ: dict[str, Any], start_response) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        customer_id, campaign_id, token = query.get("c", ""), query.get("k", ""), query.get("t", "")

        def answer(status: str, body: str, content_type: str = "text/html; charset=utf-8") -> list[bytes]:
            data = body.encode()
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))),
                                    ("Cache-Control", "no-store")])
            return [data]

        if method not in ("GET", "POST"):
            return answer("405 Method Not Allowed", "method not allowed", "text/plain; charset=utf-8")
        if not verify(customer_id, campaign_id, token, secret):
            return answer("403 Forbidden", "invalid or expired unsubscribe link", "text/plain; charset=utf-8")
        if method == "GET":  # link scanners follow GETs: only a POST unsubscribes (RFC 8058)
            return answer("200 OK", _FORM)
        write_event(landing, unsubscribe_event(customer_id, campaign_id, now()), now())
        return answer("200 OK", _DONE)

    return app


__all__ = ["EVENT", "make_app", "unsubscribe_event", "verify", "write_event"]
