"""The SMS channel (issue 12, item 3): E.164 numbers, segments, consent and STOP, SMS caps and
quiet hours, sends through SNS against the emulator, segments and cost in the decision log."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from helpers import at, customer, product, track, write_catalog, write_events
from relance import aws
from relance.campaigns.config import load_campaigns
from relance.campaigns.planner import plan_campaign
from relance.dispatch import prepare, send_batch
from relance.ingest import ingest_window
from relance.messaging.ses import Pacer, SesSender
from relance.messaging.sms_text import count_segments, is_stop_reply, normalise_phone

CART_AT = "2026-11-20 10:00"


# -- numbers, segments, replies (pure) --------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    ("+33 6 12 34 56 78", "+33612345678"), ("0033612345678", "+33612345678"), ("06.12.34.56.78", "+33612345678"),
    ("+1 (212) 555-0100", "+12125550100"), ("12345", None), ("+0612345678", None), ("phone", None), (True, None),
])
def test_phone_numbers_are_normalised_to_e164_or_refused(raw, expected):
    assert normalise_phone(raw, "33") == expected


def test_a_national_number_without_a_default_calling_code_is_not_e164():
    assert normalise_phone("06 12 34 56 78", "") is None


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),          # an extension character takes two septets
    ("Livraison offerte à Noël : é è ù", "UCS-2", 1),           # ë is not GSM-7
    ("œ" * 70, "UCS-2", 1), ("œ" * 71, "UCS-2", 2), ("œ" * 134, "UCS-2", 2), ("œ" * 135, "UCS-2", 3),
    ("🙂" * 35, "UCS-2", 1), ("🙂" * 36, "UCS-2", 2),           # an emoji is two UTF-16 units
])
def test_segments_are_counted_in_gsm7_or_ucs2(text, encoding, segments):
    counted = count_segments(text)
    assert (counted.encoding, counted.count) == (encoding, segments)


def test_stop_replies_are_recognised_in_english_and_french():
    assert all(is_stop_reply(t) for t in ("STOP", " stop ", "Arrêt", "STOP SMS", "unsubscribe please"))
    assert not any(is_stop_reply(t) for t in ("", "Stopover in Lyon?", "merci"))


def test_the_cart_series_last_reminder_goes_by_email_else_by_sms():
    cart = load_campaigns()["cart_abandonment"]
    assert [cart.channels_for(s) for s in cart.steps] == [("email",), ("email",), ("email", "sms")]


# -- the channel end to end, on both backends, against the emulator ---------------------------
@pytest.fixture
def campaigns():
    """The cart series with every customer treated (no holdout takes a named customer out)."""
    return {"cart_abandonment": load_campaigns()["cart_abandonment"].model_copy(update={"holdout_pct": 0})}


def sms_sent(ses) -> dict[str, tuple[str, str]]:
    """message id → (number, text) of every SMS the emulator accepted."""
    data = requests.get(f"{ses.endpoint}/moto-api/data.json", timeout=10).json()
    return {m["message_id"]: (m["phone_number"], m["message"]) for m in data.get("sns", {}).get("SMS", [])}


def dispatch(wh, campaigns, as_of):
    for batch in prepare(wh, campaigns, as_of, as_of, f"run-{as_of:%d%H%M}"):
        send_batch(wh, batch, campaigns, SesSender(aws.client("sesv2", retries=0), Pacer(1000), base_delay=0.01),
                   as_of, clock=lambda: as_of)


def cart_shop(landing, cart_at=CART_AT, **extra_calls):
    write_catalog(landing, cart_at[:10], [product("p1", title="Croquettes Premium 4 kg")])
    people = {
        "sam": customer("sam", opt_in=None, sms_opt_in=True, phone="06 12 34 56 78"),   # SMS only
        "eve": customer("eve", sms_opt_in=True, phone="+33 6 11 11 11 11"),            # email wins
        "stu": customer("stu", opt_in=False, sms_opt_in=True, phone="+33611223344"),   # then STOP
        "nop": customer("nop", opt_in=None, sms_opt_in=True, phone="not a phone"),     # no number
    }
    calls = [*people.values()]
    calls += [track(p, "Product Added", cart_at, product_id="p1") for p in people]
    calls.append(track("stu", "SMS Unsubscribed", cart_at[:14] + "45"))
    write_events(landing, cart_at[:13], calls)


def run_cart(wh, landing, campaigns, due: str, cart_at: str = CART_AT):
    start = at(cart_at[:13] + ":00")
    ingest_window(wh, str(landing), start, start + timedelta(hours=1))
    moment = at(due)
    plan_campaign(wh, campaigns["cart_abandonment"], moment)
    dispatch(wh, campaigns, moment)
    return {r["customer_id"]: r for r in wh.query(
        "SELECT customer_id, channel, phone, status, reason, sms_segments, sms_encoding, sms_cost, "
        "provider_message_id FROM message_log WHERE step = 3")}


def test_sms_goes_to_customers_with_sms_consent_only_and_records_segments_and_cost(wh, tmp_path, ses, campaigns,
                                                                                    monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TM_SMS_COST_PER_SEGMENT", "0.0645")
    cart_shop(tmp_path)
    rows = run_cart(wh, tmp_path, campaigns, "2026-11-22 10:30")   # 11:30 in Paris
    sent = sms_sent(ses)
    assert rows["sam"]["channel"] == "sms" and rows["sam"]["status"] == "sent", rows["sam"]
    number, text = sent[rows["sam"]["provider_message_id"]]
    assert number == "+33612345678" and "Croquettes Premium 4 kg" in text and "STOP" in text
    assert (rows["sam"]["sms_segments"], rows["sam"]["sms_encoding"]) == (count_segments(text).count, "GSM-7")
    assert rows["sam"]["sms_cost"] == pytest.approx(0.0645 * rows["sam"]["sms_segments"])
    assert (rows["eve"]["channel"], rows["eve"]["status"], rows["eve"]["sms_cost"]) == ("email", "sent", None)
    # reachable on neither channel (STOP; no number): the first channel's rule says why
    assert (rows["stu"]["channel"], rows["stu"]["status"]) == ("email", "no_consent")
    # the invalid number was dropped at ingest, with its reason
    assert (rows["nop"]["channel"], rows["nop"]["status"]) == ("email", "no_consent")
    dropped = wh.query("SELECT reason FROM dropped_fields WHERE field = 'traits.phone'")
    assert [d["reason"] for d in dropped] == ["phone 'not a phone' is not a phone number in E.164 (+33612345678) "
                                              "or national form"]
    assert len(sent) == 1


def earlier_message(wh, send_key: str, channel: str, sent: str) -> None:
    """A marketing message sam got at ``sent`` (another cart): it holds a slot of its channel's caps."""
    with wh.begin() as conn:
        wh.insert_rows("message_log", [{
            "send_key": send_key, "campaign_id": "cart_abandonment", "campaign_version": "x", "step": 1,
            "step_name": "reminder_2h", "variant": "A", "customer_id": "sam", "category": "marketing",
            "priority": 60, "trigger_id": "another-cart", "trigger_at": at(sent), "due_at": at(sent),
            "status": "sent", "planned_at": at(sent), "cap_reserved_at": at(sent), "channel": channel}], conn)


def test_sms_keeps_its_own_quiet_hours_and_its_own_caps(wh, tmp_path, ses, campaigns):
    cart_shop(tmp_path, cart_at="2026-11-20 19:30")
    # sam already got an email today (does not count against SMS), sia an SMS (does)
    rows = run_cart(wh, tmp_path, campaigns, "2026-11-22 19:45", "2026-11-20 19:30")   # 20:45 in Paris: quiet for SMS, not email
    assert rows["sam"]["status"] == "deferred_quiet_hours"
    assert rows["sam"]["reason"] == "SMS quiet hours 20:00-08:00 in Europe/Paris: deferred to 08:00 local"
    assert rows["eve"]["status"] == "sent"
    earlier_message(wh, "earlier-email", "email", "2026-11-23 07:00")
    dispatch(wh, campaigns, at("2026-11-23 07:15"))                  # 08:15 in Paris
    (sam,) = wh.query("SELECT status, channel, provider_message_id FROM message_log "
                      "WHERE customer_id = 'sam' AND step = 3")
    assert (sam["status"], sam["channel"]) == ("sent", "sms")
    assert list(sms_sent(ses)) == [sam["provider_message_id"]]


def test_a_second_marketing_sms_the_same_local_day_is_capped(wh, tmp_path, ses, campaigns):
    cart_shop(tmp_path)
    earlier_message(wh, "earlier-sms", "sms", "2026-11-22 08:00")
    rows = run_cart(wh, tmp_path, campaigns, "2026-11-22 10:30")
    assert rows["sam"]["status"] == "capped" and "earlier-sms" in rows["sam"]["reason"]
    assert rows["eve"]["status"] == "sent"                           # her email has its own cap
    assert sms_sent(ses) == {}


def test_a_stop_reply_stops_every_sms_and_no_number_means_no_sms(wh, tmp_path, ses, campaigns):
    cart = campaigns["cart_abandonment"]
    last = cart.steps[2].model_copy(update={"channel": "sms"})
    sms_only = {cart.id: cart.model_copy(update={"steps": [*cart.steps[:2], last]})}
    cart_shop(tmp_path)
    rows = run_cart(wh, tmp_path, sms_only, "2026-11-22 10:30")
    assert (rows["stu"]["channel"], rows["stu"]["status"], rows["stu"]["reason"]) == (
        "sms", "unsubscribed", "customer opted out of SMS (STOP)")
    assert (rows["nop"]["channel"], rows["nop"]["status"], rows["nop"]["reason"]) == (
        "sms", "suppressed", "customer has no valid phone number")
    assert (rows["sam"]["channel"], rows["sam"]["status"]) == ("sms", "sent")
    assert (rows["eve"]["channel"], rows["eve"]["status"]) == ("sms", "sent")
    assert sorted(number for number, _ in sms_sent(ses).values()) == ["+33611111111", "+33612345678"]


def test_the_summary_and_the_campaigns_page_show_sends_and_cost_by_channel(wh, tmp_path, ses, campaigns):
    from relance import reporting
    from relance.webui import page

    cart_shop(tmp_path)
    run_cart(wh, tmp_path, campaigns, "2026-11-22 10:30")
    figures = {r["channel"]: r for r in reporting.channel_figures(wh)}
    assert figures["email"]["sent"] == 1 and figures["sms"]["sent"] == 1
    assert figures["sms"]["cost"] == pytest.approx(0.07 * figures["sms"]["segments"])
    assert reporting.format_channels(list(figures.values())) == \
        f"by channel: email 1 sent; sms 1 sent ({figures['sms']['segments']} segments, cost 0.07)"
    html = page.render(page.page_data(wh))
    assert 'data-key="channels:sms:sent">1<' in html and 'data-key="channels:sms:cost">0.07<' in html
