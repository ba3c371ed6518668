"""One-click unsubscribe end to end (issue 8 item 3, issue 10 item 7), against the emulator, on
SQLite and PostgreSQL — without Airflow ever being exposed:

* default, SES subscription management: ``relance ses setup`` creates the contact list and
  topic; every marketing SendEmail names them (ListManagementOptions) and the body links to
  SES's hosted page; the Subscription event SES publishes → SQS → ingest_ses_events →
  consent_changes → the next dispatch marks the customer's marketing ``unsubscribed``;
* signed links: the message's RFC 8058 header points at the shop's endpoint, whose WSGI app
  (relance.messaging.unsubscribe) verifies the HMAC and writes ``Email Unsubscribed`` to the
  landing zone (a folder or S3) → ingest → ``unsubscribed``; no secret, no signed mail.
"""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from email import message_from_string
from email.policy import default as default_policy
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import pytest

from helpers import at, customer, order, product, track, write_catalog, write_events
from relance import aws
from relance.campaigns.planner import plan_campaign
from relance.cli import main as cli
from relance.dispatch import prepare, send_batch
from relance.dispatch.report import run_problems
from relance.feedback import drain
from relance.ingest import ingest_window
from relance.messaging.mime import unsubscribe_url
from relance.messaging.ses import Pacer, SesSender
from relance.messaging.unsubscribe import make_app, verify
from test_feedback import fixture_body

SECRET = "s3cr3t-for-tests"


@pytest.fixture
def campaigns(campaigns):
    """Every customer treated (no holdout): the tests follow named customers."""
    return {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in campaigns.items()}


@pytest.fixture
def ses_requests(monkeypatch):
    """Every SendEmail request made through relance.aws's SES v2 clients (params as sent)."""
    seen: list[dict] = []
    real_client = aws.client

    def client(service, *args, **kwargs):
        made = real_client(service, *args, **kwargs)
        if service == "sesv2":
            made.meta.events.register("provide-client-params.sesv2.SendEmail",
                                      lambda params, **_: seen.append(dict(params)))
        return made

    monkeypatch.setattr(aws, "client", client)
    return seen


def dispatch(wh, campaigns, moment, run_id) -> list[str]:
    """One dispatcher run: its batch ids."""
    batches = prepare(wh, campaigns, moment, moment, run_id)
    for batch in batches:
        send_batch(wh, batch, campaigns, SesSender(aws.client("sesv2", retries=0), Pacer(1000)), moment,
                   clock=lambda: moment)
    return batches


def hour(wh, landing, campaigns, text: str, run_id: str | None = None) -> list[str]:
    moment = at(text)
    ingest_window(wh, str(landing), moment - timedelta(hours=1), moment)
    for campaign in campaigns.values():
        plan_campaign(wh, campaign, moment)
    return dispatch(wh, campaigns, moment, run_id or f"run-{text}")


def shop(landing):
    """ann leaves a cart at 10:05 (reminders due 12:05, then the next day 10:05); at 12:10 oli orders."""
    write_catalog(landing, "2026-11-20", [product("p1"), product("p2")])
    write_events(landing, "2026-11-20 10", [customer("ann"), customer("oli"),
                                             track("ann", "Product Added", "2026-11-20 10:05", product_id="p1")])
    write_events(landing, "2026-11-20 12", [order("oli", "o-oli", "2026-11-20 12:10", ("p2", 1, 19.9))])


def first_day(wh, landing, campaigns):
    for text in ("2026-11-20 11:00", "2026-11-20 12:00", "2026-11-20 13:00"):
        hour(wh, landing, campaigns, text)


def row(wh, customer_id: str, campaign_id: str, step: int) -> dict:
    (got,) = wh.query("SELECT send_key, status, reason, provider_message_id FROM message_log "
                      "WHERE customer_id = :c AND campaign_id = :k AND step = :s",
                      {"c": customer_id, "k": campaign_id, "s": step})
    return got


def sent_to(ses, address: str):
    (raw,) = [m for m in ses.sent_messages() if address in m["destinations"]]
    return message_from_string(raw["raw_data"], policy=default_policy)


# -- SES subscription management (the default) ---------------------------------------------

def test_ses_setup_creates_the_contact_list_and_topic_once(ses, capsys):
    assert cli(["ses", "setup"]) == 0
    assert "created contact list relance, topic marketing" in capsys.readouterr().out
    assert cli(["ses", "setup"]) == 0
    assert "already set up" in capsys.readouterr().out
    (topic,) = aws.client("sesv2").get_contact_list(ContactListName="relance")["Topics"]
    assert (topic["TopicName"], topic["DefaultSubscriptionStatus"]) == ("marketing", "OPT_IN")


def test_an_ses_unsubscribe_reaches_the_next_dispatch(wh, tmp_path, ses, campaigns, ses_requests, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_SECRET", raising=False)   # SES needs no secret
    monkeypatch.delenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_MODE", raising=False)     # the default: ses
    cli(["ses", "setup"])
    shop(tmp_path)
    first_day(wh, tmp_path, campaigns)
    reminder = row(wh, "ann", "cart_abandonment", 1)
    assert reminder["status"] == "sent" and row(wh, "oli", "order_confirmation", 1)["status"] == "sent"
    # each marketing SendEmail names the list and topic; a receipt does not
    options = {r["Destination"]["ToAddresses"][0]: r.get("ListManagementOptions") for r in ses_requests}
    assert options == {"ann@example.com": {"ContactListName": "relance", "TopicName": "marketing"},
                       "oli@example.com": None}
    message = sent_to(ses, "ann@example.com")
    assert "{{amazonSESUnsubscribeUrl}}" in message.get_body(("plain",)).get_content()
    assert message["List-Unsubscribe"] is None            # no secret: SES's own unsubscribe only
    # the recipient unsubscribes on SES's page: SES publishes a Subscription event to the queue
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"ses-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=fixture_body(
        "event_subscription.json", reminder["provider_message_id"], reminder["send_key"], "ann@example.com",
        at("2026-11-20 18:00")))
    assert drain(wh, sqs, url, at("2026-11-20 18:15"))["opted_out"] == 1
    assert [(r["opt_in"] in (False, 0), r["source"]) for r in wh.query(
        "SELECT opt_in, source FROM consent_changes WHERE customer_id = 'ann' AND source <> 'identify'")] == [
        (True, "ses_subscription")]
    # the next reminder (24 h) is not sent: unsubscribed
    write_events(tmp_path, "2026-11-21 10", [order("oli", "o-oli-2", "2026-11-21 10:10", ("p1", 1, 9.9))])
    for text in ("2026-11-21 10:00", "2026-11-21 11:00"):
        hour(wh, tmp_path, campaigns, text)
    assert row(wh, "ann", "cart_abandonment", 2)["status"] == "unsubscribed"
    assert [r["status"] for r in wh.query(
        "SELECT status FROM message_log WHERE customer_id = 'oli' ORDER BY due_at")] == ["sent", "sent"]


# -- signed links -----------------------------------------------------------------------------

def wsgi(app, method: str, url: str, body: bytes = b""):
    parts = urlsplit(url)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    answer["body"] = b"".join(app(environ, start_response)).decode()
    return answer


@pytest.fixture
def signed_links(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_MODE", "signed_link")
    monkeypatch.setenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_URL", "https://shop.example/unsubscribe")


@pytest.fixture(params=["folder", "s3"])
def unsubscribe_landing(request, tmp_path):
    """Where the endpoint writes its events: a local landing folder, or an S3 landing zone on the emulator."""
    if request.param == "folder":
        return str(tmp_path / "endpoint-landing")
    request.getfixturevalue("ses")
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return f"s3://{bucket}/zone"


def test_a_signed_one_click_unsubscribe_reaches_the_next_dispatch(wh, tmp_path, ses, campaigns, signed_links,
                                                                  unsubscribe_landing, ses_requests):
    shop(tmp_path)
    first_day(wh, tmp_path, campaigns)
    assert row(wh, "ann", "cart_abandonment", 1)["status"] == "sent"
    assert all("ListManagementOptions" not in r for r in ses_requests)
    message = sent_to(ses, "ann@example.com")
    link = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.startswith("https://shop.example/unsubscribe?") and link in message.get_body(("plain",)).get_content()
    assert sent_to(ses, "oli@example.com")["List-Unsubscribe"] is None          # receipts carry none
    app = make_app(landing_uri=unsubscribe_landing, clock=lambda: at("2026-11-20 18:42"))
    # a forged token and a link scanner's GET unsubscribe nobody
    forged = link.replace("c=ann", "c=oli")
    assert wsgi(app, "POST", forged, b"List-Unsubscribe=One-Click")["status"].startswith("403")
    assert wsgi(app, "GET", link)["status"].startswith("200")
    # the mailbox's one-click POST (RFC 8058)
    done = wsgi(app, "POST", link, b"List-Unsubscribe=One-Click")
    assert done["status"] == "200 OK" and "not receive" in done["body"]
    loaded = ingest_window(wh, unsubscribe_landing, at("2026-11-20 18:00"), at("2026-11-20 19:00"))
    assert loaded is not None
    assert [(r["customer_id"], r["opt_in"] in (False, 0), r["source"]) for r in wh.query(
        "SELECT customer_id, opt_in, source FROM consent_changes WHERE source <> 'identify'")] == [
        ("ann", True, "unsubscribe_event")]
    for text in ("2026-11-21 10:00", "2026-11-21 11:00"):
        hour(wh, tmp_path, campaigns, text)
    assert row(wh, "ann", "cart_abandonment", 2)["status"] == "unsubscribed"


def test_without_a_secret_signed_marketing_fails_naming_the_variable_and_receipts_go_on(
        wh, tmp_path, ses, campaigns, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_MODE", "signed_link")
    monkeypatch.delenv("AIRFLOW_VAR_TM_UNSUBSCRIBE_SECRET", raising=False)
    shop(tmp_path)
    hour(wh, tmp_path, campaigns, "2026-11-20 11:00")
    hour(wh, tmp_path, campaigns, "2026-11-20 12:00")
    batches = hour(wh, tmp_path, campaigns, "2026-11-20 13:00", run_id="run-13")
    reminder = row(wh, "ann", "cart_abandonment", 1)
    assert reminder["status"] == "failed" and "tm_unsubscribe_secret" in reminder["reason"]
    assert row(wh, "oli", "order_confirmation", 1)["status"] == "sent"
    assert [set(m["destinations"]) for m in ses.sent_messages()] == [{"oli@example.com"}]
    (problem,) = run_problems(wh, at("2026-11-20 13:00"), batches)      # the run's report turns red
    assert "tm_unsubscribe_secret is not set" in problem and "cart_abandonment: 1" in problem
    with pytest.raises(RuntimeError, match="tm_unsubscribe_secret"):
        make_app(landing_uri=str(tmp_path))


def test_the_endpoint_verifies_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    url = unsubscribe_url("https://shop.example/u", "ann", "winback", SECRET)
    token = url.rsplit("t=", 1)[1]
    assert verify("ann", "winback", token, SECRET)
    assert not verify("ann", "winback", token, "another-secret")
    assert not verify("bob", "winback", token, SECRET)
    assert not verify("ann", "winback", token, "")
    assert len(calls) == 3
