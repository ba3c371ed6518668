"""Order status notices (issue 12 item 1): ``Order Updated`` shipped/delivered, ``Order
Cancelled``, ``Order Refunded`` → one transactional notice per status change of an order, in
the customer's language, with the order's items; never twice, nothing for the history."""

from __future__ import annotations

from email import message_from_string
from email.policy import default as default_policy

import pytest

from helpers import customer, only, order, outbox, product, track, write_catalog, write_events
from relance.ingest.order_status import order_status_change, tracking_url_problem

TRACKING = "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901"


def shipped(user, order_id, when, message_id=None, **extra):
    props = {"order_id": order_id, "status": "shipped", "carrier": "Colissimo", "tracking_number": "6A12345678901",
             "tracking_url": TRACKING, **extra}
    return track(user, "Order Updated", when, message_id=message_id, **props)


def mails(ses) -> dict[str, list[dict]]:
    """Recipient → [{subject, text, html}] in the order the emulator accepted them."""
    out: dict[str, list[dict]] = {}
    for message in ses.sent_messages():
        mail = message_from_string(message["raw_data"], policy=default_policy)
        out.setdefault(message["destinations"][0], []).append({
            "subject": str(mail["Subject"]), "headers": dict(mail.items()),
            "text": mail.get_body(("plain",)).get_content(), "html": mail.get_body(("html",)).get_content()})
    return out


def notices(wh) -> list[tuple]:
    return [(r["customer_id"], r["trigger_id"], r["status"]) for r in outbox(wh, "order_status")]


@pytest.fixture
def shop(tmp_path):
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Croquettes 4 kg"), product("p2", title="Gamelle")])
    return tmp_path


def test_an_order_shipped_then_delivered_gets_two_notices_and_a_resent_update_nothing_more(wh, shop, ses, campaigns,
                                                                                            run_at):
    write_events(shop, "2026-11-20 09", [
        customer("sam"), customer("ann", locale="en", opt_in=False),   # opted out: transactional still goes
        customer("joe"),
        order("sam", "o-sam", "2026-11-20 09:10", ("p1", 1, 39.9), ("p2", 2, 7.5)),
        order("ann", "o-ann", "2026-11-20 09:20", ("p1", 1, 39.9)),
        order("joe", "o-joe", "2026-11-20 09:30", ("p2", 1, 7.5)),
    ])
    write_events(shop, "2026-11-21 10", [
        shipped("sam", "o-sam", "2026-11-21 10:05", message_id="ship-sam"),
        shipped("sam", "o-sam", "2026-11-21 10:05", message_id="ship-sam"),   # delivered twice: one row
        shipped("ann", "o-ann", "2026-11-21 10:15", carrier="DHL", tracking_url="https://www.dhl.com/t?id=1"),
        # joe's parcel: shipped and delivered within the hour — the delivery says it all
        shipped("joe", "o-joe", "2026-11-21 10:20"),
        track("joe", "Order Updated", "2026-11-21 10:50", order_id="o-joe", status="Delivered"),
        track("sam", "Order Updated", "2026-11-21 10:30", order_id="o-sam", status="processing"),  # no notice
    ])
    # the shop re-sends sam's shipment (another messageId) an hour later, then the delivery
    write_events(shop, "2026-11-21 11", [shipped("sam", "o-sam", "2026-11-21 11:40")])
    write_events(shop, "2026-11-22 14", [
        track("sam", "Order Updated", "2026-11-22 14:00", order_id="o-sam", status="delivered"),
        track("sam", "Order Updated", "2026-11-22 14:30", order_id="o-sam", status="delivered"),
    ])
    chosen = only(campaigns, "order_confirmation", "order_status")
    run_at(wh, shop, chosen, ["2026-11-20 10:00", "2026-11-21 11:00", "2026-11-21 12:00", "2026-11-22 15:00",
                              "2026-11-22 16:00"], ingest_from="2026-11-20 09:00")
    assert notices(wh) == [("ann", "o-ann|shipped", "sent"), ("joe", "o-joe|delivered", "sent"),
                           ("sam", "o-sam|shipped", "sent"), ("sam", "o-sam|delivered", "sent")]
    assert wh.scalar("SELECT COUNT(*) FROM order_status_changes WHERE order_id = 'o-sam'") == 4
    got = mails(ses)
    assert [m["subject"] for m in got["sam@example.com"]] == [
        "Sam, merci pour votre commande o-sam", "Sam, votre commande o-sam est en route",
        "Sam, votre commande o-sam est livrée"]
    ship = got["sam@example.com"][1]
    assert f'href="{TRACKING}"' in ship["html"] and "avec Colissimo" in ship["html"]
    assert "6A12345678901" in ship["text"] and TRACKING in ship["text"]
    assert "- Croquettes 4 kg" in ship["text"] and "- Gamelle" in ship["text"]   # the order's items
    assert "List-Unsubscribe" not in ship["headers"]                             # transactional
    assert [m["subject"] for m in got["ann@example.com"]] == ["Ann, thank you for your order o-ann",
                                                             "Ann, your order o-ann is on its way"]
    assert "with DHL" in got["ann@example.com"][1]["text"]
    # re-running the last instants changes nothing
    run_at(wh, shop, chosen, ["2026-11-22 16:00"], ingest_from="2026-11-22 15:00")
    assert len(ses.sent_messages()) == 7


def test_cancelled_and_refunded_orders_get_their_notice(wh, shop, ses, campaigns, run_at):
    write_events(shop, "2026-11-20 09", [
        customer("kim", opt_in=False), customer("lou", locale="en"),
        order("kim", "o-kim", "2026-11-20 09:10", ("p1", 1, 39.9)),
        order("lou", "o-lou", "2026-11-20 09:15", ("p2", 2, 7.5)),
        track("kim", "Order Cancelled", "2026-11-20 09:40", order_id="o-kim"),
    ])
    write_events(shop, "2026-11-23 10", [track("lou", "Order Refunded", "2026-11-23 10:10", order_id="o-lou")])
    run_at(wh, shop, only(campaigns, "order_status"), ["2026-11-20 10:00", "2026-11-23 11:00"],
           ingest_from="2026-11-20 09:00")
    assert notices(wh) == [("kim", "o-kim|cancelled", "sent"), ("lou", "o-lou|refunded", "sent")]
    got = mails(ses)
    assert got["kim@example.com"][0]["subject"] == "Kim, votre commande o-kim est annulée"
    lou = got["lou@example.com"][0]
    assert lou["subject"] == "Lou, your order o-lou has been refunded"
    assert "refunded (" in lou["text"] and "15.00)" in lou["text"] and "- Gamelle x 2" in lou["text"]
    assert {r["order_id"]: r["status"] for r in wh.query("SELECT order_id, status FROM orders")} == {
        "o-kim": "cancelled", "o-lou": "refunded"}


def test_an_order_from_before_go_live_gets_no_status_notice(wh, shop, ses, campaigns, run_at):
    # the onboarding import (in the go-live hour's folder): an old order shipped and delivered
    # before go-live, and one placed the day before go-live, shipped after it
    write_events(shop, "2026-11-20 09", [
        customer("old"), customer("eve"),
        order("old", "o-old", "2026-10-01 10:00", ("p1", 1, 39.9)),
        shipped("old", "o-old", "2026-10-02 10:00"),
        track("old", "Order Updated", "2026-10-03 10:00", order_id="o-old", status="delivered"),
        order("eve", "o-eve", "2026-11-19 18:00", ("p1", 1, 39.9)),
    ])
    write_events(shop, "2026-11-20 10", [
        shipped("eve", "o-eve", "2026-11-20 10:00"),
        track("old", "Order Updated", "2026-11-20 10:30", order_id="o-old", status="delivered"),  # re-sent
    ])
    run_at(wh, shop, only(campaigns, "order_status"), ["2026-11-20 10:00", "2026-11-20 11:00"],
           ingest_from="2026-11-20 09:00")
    assert notices(wh) == []
    assert ses.sent_messages() == []
    assert wh.scalar("SELECT COUNT(*) FROM order_status_changes") == 4


def test_a_hostile_tracking_url_is_dropped_and_the_carrier_escaped(wh, shop, ses, campaigns, run_at):
    carrier = '<b onmouseover="x()">Relais & Co</b>\r\nBcc: victim@evil.example'
    write_events(shop, "2026-11-20 09", [
        customer("max"), order("max", "o-max", "2026-11-20 09:10", ("p1", 1, 39.9)),
        track("max", "Order Updated", "2026-11-20 09:40", message_id="upd-max", order_id="o-max", status="shipped",
              carrier=carrier, tracking_url="javascript:alert(document.cookie)", tracking_number={"no": 1}),
    ])
    run_at(wh, shop, only(campaigns, "order_status"), ["2026-11-20 10:00"], ingest_from="2026-11-20 09:00")
    dropped = {r["field"]: r["reason"] for r in wh.query(
        "SELECT field, reason FROM dropped_fields WHERE message_id = 'upd-max'")}
    assert dropped.keys() == {"properties.tracking_url", "properties.tracking_number"}
    assert "is not http or https" in dropped["properties.tracking_url"]
    change = wh.query("SELECT carrier, tracking_url, tracking_number FROM order_status_changes")[0]
    assert change == {"carrier": '<b onmouseover="x()">Relais & Co</b> Bcc: victim@evil.example'[:100],
                      "tracking_url": None, "tracking_number": None}
    [mail] = mails(ses)["max@example.com"]
    assert "javascript:" not in mail["html"] and "<b onmouseover" not in mail["html"]
    assert "&lt;b onmouseover=&#34;x()&#34;&gt;Relais &amp; Co&lt;/b&gt;" in mail["html"]
    assert "Bcc" not in mail["headers"] and mail["headers"]["To"] == "max@example.com"


@pytest.mark.parametrize(("url", "problem"), [
    ("https://track.example/p?id=1&x=2", None),
    ("http://track.example", None),
    ("HTTPS://Track.Example/a", None),
    ("javascript:alert(1)", "scheme 'javascript' is not http or https"),
    ("data:text/html;base64,PHNjcmlwdD4=", "scheme 'data' is not http or https"),
    ("//track.example/p", "not an absolute http(s) URL"),
    ("track.example/p", "not an absolute http(s) URL"),
    ("https://user:pw@evil.example/", "credentials before the host"),
    ("https://track.example/a b", "contains spaces or control characters"),
    ("https://track.example/\r\nBcc: x", "contains spaces or control characters"),
    ("https:///nohost", "no host"),
    ("http://[::1", "not a URL"),
    ("https://t.example/" + "a" * 2100, "longer than 2048 characters"),
    (42, "must be a string, got int"),
])
def test_tracking_url_must_be_a_plain_http_url(url, problem):
    got = tracking_url_problem(url)
    assert (got is None) if problem is None else (got or "").startswith(problem), got


def test_order_updated_statuses_other_than_shipped_and_delivered_are_no_change():
    assert order_status_change("Order Updated", {"order_id": "o", "status": "processing"}) == (None, [])
    assert order_status_change("Order Updated", {"order_id": "o"}) == (None, [])
    change, drops = order_status_change("Order Updated", {"status": ["shipped"]})
    assert change is None and drops[0][0] == "properties.status"
    change, _ = order_status_change("Order Updated", {"status": " Shipped ", "trackingUrl": "https://t.example/1",
                                                      "trackingNumber": 123456})
    assert (change["status"], change["tracking_url"], change["tracking_number"]) == ("shipped", "https://t.example/1",
                                                                                   "123456")
    assert order_status_change("Order Refunded", {"order_id": "o"})[0]["status"] == "refunded"


def test_an_erasure_removes_the_tracking_links_of_the_customers_shipments(wh, shop, ses, campaigns, run_at):
    from helpers import at
    from relance.privacy import forget_customer

    write_events(shop, "2026-11-20 09", [
        customer("zoe"), customer("ada"),
        order("zoe", "o-zoe", "2026-11-20 09:10", ("p1", 1, 39.9)), shipped("zoe", "o-zoe", "2026-11-20 09:40"),
        order("ada", "o-ada", "2026-11-20 09:15", ("p1", 1, 39.9)), shipped("ada", "o-ada", "2026-11-20 09:45"),
    ])
    run_at(wh, shop, only(campaigns, "order_status"), ["2026-11-20 10:00"], ingest_from="2026-11-20 09:00")
    done = forget_customer(wh, "zoe", at("2026-11-20 11:00"))
    assert done["tables"]["order_status_changes"] == 1
    got = {r["order_id"]: (r["status"], r["carrier"], r["tracking_url"], r["tracking_number"]) for r in wh.query(
        "SELECT order_id, status, carrier, tracking_url, tracking_number FROM order_status_changes")}
    assert got == {"o-zoe": ("shipped", "Colissimo", None, None),
                   "o-ada": ("shipped", "Colissimo", TRACKING, "6A12345678901")}
    assert forget_customer(wh, "zoe", at("2026-11-20 12:00"))["tables"].get("order_status_changes", 0) == 0
