"""Catalog-driven campaigns (SPEC §8): back in stock, price drop, low stock.

Each scenario is a tiny shop: two daily catalog snapshots and a few shoppers, run through
ingest → planner → dispatcher at chosen instants, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from email import message_from_string
from email.policy import default as default_policy

from helpers import (
    customer,
    only,
    order,
    outbox,
    product,
    recipients,
    track,
    write_catalog,
    write_events,
)
from relance.ingest.identity import guest_customer_id


def html_of(message: dict) -> str:
    parsed = message_from_string(message["raw_data"], policy=default_policy)
    return parsed.get_body(("html",)).get_content()


def subject_of(message: dict) -> str:
    return str(message_from_string(message["raw_data"], policy=default_policy)["Subject"])


# -- back in stock -----------------------------------------------------------------------

def _restock_shop(landing):
    write_catalog(landing, "2026-11-19", [product("p1", title="Croquettes Saumon 4 kg", availability="out_of_stock",
                                                  quantity=0), product("p2")])
    write_catalog(landing, "2026-11-20", [product("p1", title="Croquettes Saumon 4 kg"), product("p2")])
    write_events(landing, "2026-11-18 10", [
        customer("ann"), customer("bob"), customer("cid"), customer("dan", locale="en", timezone="Europe/London"),
        track("ann", "Back In Stock Requested", "2026-11-18 10:00", product_id="p1"),
        track("ann", "Product Added to Wishlist", "2026-11-18 10:05", product_id="p1"),
        track("bob", "Product Viewed", "2026-11-18 10:00", product_id="p1"),            # a view is not a request
        track("cid", "Back In Stock Requested", "2026-11-18 10:00", product_id="p1"),
        track("dan", "Product Added to Wishlist", "2026-11-18 10:00", product_id="p1"),
    ])
    # cid finds it elsewhere in the shop (a preorder) and buys it before the restock mail
    write_events(landing, "2026-11-19 15", [order("cid", "o-cid", "2026-11-19 15:00", ("p1", 1, 29.9))])


def test_back_in_stock_mails_only_who_asked_wishlisted_or_carted_once_at_10_local(wh, tmp_path, ses, campaigns, run_at):
    _restock_shop(tmp_path)
    chosen = only(campaigns, "back_in_stock")
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00", "2026-11-20 10:00", "2026-11-20 11:00"],
           ingest_from="2026-11-18 00:00")
    rows = outbox(wh)
    assert [(r["customer_id"], r["status"], r["due_at"]) for r in rows] == [
        ("ann", "sent", "2026-11-20 09:00"),   # 10:00 in Paris
        ("dan", "sent", "2026-11-20 10:00"),   # 10:00 in London
    ]
    assert rows[0]["trigger_id"] == "p1|2026-11-20"
    assert recipients(ses) == ["ann@example.com", "dan@example.com"]
    subjects = sorted(subject_of(m) for m in ses.sent_messages())
    assert subjects == ["Ann, Croquettes Saumon 4 kg est de retour en stock",
                        "Dan, Croquettes Saumon 4 kg is back in stock"]
    # re-running every planner for the same hours plans nothing new
    run_at(wh, tmp_path, chosen, ["2026-11-20 09:00", "2026-11-20 10:00"], ingest_from="2026-11-20 11:00")
    assert len(outbox(wh)) == 2 and len(ses.sent_messages()) == 2


def test_back_in_stock_exits_when_the_product_is_bought_before_10(wh, tmp_path, ses, campaigns, run_at):
    _restock_shop(tmp_path)
    write_events(tmp_path, "2026-11-20 07", [order("ann", "o-ann", "2026-11-20 07:30", ("p1", 1, 29.9))])
    chosen = only(campaigns, "back_in_stock")
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 08:00", "2026-11-20 09:00"],
           ingest_from="2026-11-18 00:00")
    # ann bought it after the trigger (local midnight of the restock day): planned rows exit;
    # she was never planned here because the trigger SQL already saw the order
    assert [r["customer_id"] for r in outbox(wh)] == []
    assert recipients(ses) == []


def _long_out_of_stock_shop(landing):
    """p1 out of stock from 2 September to 20 November; p2 out twice (restocked on 10 September
    in between); p3 out since July."""
    spells = {"2026-07-01": ("in_stock", "in_stock", "out_of_stock"),
              "2026-09-01": ("in_stock", "in_stock", "out_of_stock"),
              "2026-09-02": ("out_of_stock", "out_of_stock", "out_of_stock"),
              "2026-09-10": ("out_of_stock", "in_stock", "out_of_stock"),
              "2026-09-20": ("out_of_stock", "out_of_stock", "out_of_stock"),
              "2026-11-20": ("in_stock", "in_stock", "in_stock")}
    for day, states in spells.items():
        write_catalog(landing, day, [product(pid, title=f"Article {pid}", availability=state,
                                             quantity=0 if state != "in_stock" else 20)
                                     for pid, state in zip(("p1", "p2", "p3"), states, strict=True)])
    guest = guest_customer_id("Gaby@Example.com")
    # a storefront "notify me" form filled in by a guest: no userId, an email in the properties
    # (ingest gives the guest a customer id of their own, that address and unknown consent)
    guest_request = {"type": "track", "event": "Back In Stock Requested", "anonymousId": "anon-gaby",
                     "messageId": "bis-gaby", "timestamp": "2026-11-01T10:00:00.000Z",
                     "properties": {"product_id": "p1", "email": "gaby@example.com"}}
    write_events(landing, "2026-11-19 10", [
        customer("ann"), customer("bob"), customer("old"), customer("ida"), customer("wes"), guest_request,
        track("ann", "Back In Stock Requested", "2026-09-05 10:00", product_id="p1"),   # 76 days before
        track("old", "Back In Stock Requested", "2026-09-05 10:00", product_id="p2"),   # answered on 10/09
        track("bob", "Back In Stock Requested", "2026-10-01 10:00", product_id="p2"),
        track("ida", "Back In Stock Requested", "2026-07-15 10:00", product_id="p3"),   # > 90 days before
        track("wes", "Product Added to Wishlist", "2026-08-20 10:00", product_id="p1"),  # still in stock then
    ])
    return guest


def test_back_in_stock_keeps_requests_while_out_of_stock_up_to_90_days_and_from_guests(
        wh, tmp_path, ses, campaigns, run_at):
    guest = _long_out_of_stock_shop(tmp_path)
    chosen = only(campaigns, "back_in_stock")
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00"], ingest_from="2026-11-19 10:00")
    rows = {r["customer_id"]: r for r in outbox(wh)}
    assert sorted(rows) == sorted(["ann", "bob", guest])
    assert (rows["ann"]["trigger_id"], rows["ann"]["status"]) == ("p1|2026-11-20", "sent")
    assert (rows["bob"]["trigger_id"], rows["bob"]["status"]) == ("p2|2026-11-20", "sent")
    assert rows[guest]["trigger_id"] == "p1|2026-11-20"     # the guest's request is honoured: planned


def test_a_guests_explicit_request_is_consent_for_that_one_alert(wh, tmp_path, ses, campaigns, run_at):
    guest = _long_out_of_stock_shop(tmp_path)
    run_at(wh, tmp_path, only(campaigns, "back_in_stock"), ["2026-11-20 01:00", "2026-11-20 09:00"],
           ingest_from="2026-11-19 10:00")
    assert {r["customer_id"]: r["status"] for r in outbox(wh)}[guest] == "sent"
    assert "gaby@example.com" in recipients(ses)


# -- price drop --------------------------------------------------------------------------

def _price_shop(landing):
    write_catalog(landing, "2026-11-19", [product("p8", title="Plaid laine", price="50.00 EUR"),
                                          product("p12", title="Théière fonte", price="50.00 EUR")])
    write_catalog(landing, "2026-11-20", [
        product("p8", title="Plaid laine", price="50.00 EUR", sale_price="46.00 EUR"),     # -8 %
        product("p12", title="Théière fonte", price="44.00 EUR"),                           # -12 %
    ])
    write_events(landing, "2026-11-18 10", [
        customer("vic"), customer("buy"), customer("old"),
        track("vic", "Product Viewed", "2026-11-18 10:00", product_id="p8"),
        track("vic", "Product Viewed", "2026-11-18 10:01", product_id="p12"),
        track("buy", "Product Added", "2026-11-18 10:00", product_id="p12"),
        order("buy", "o-buy", "2026-11-18 10:10", ("p12", 1, 50.0)),
    ])
    # old viewed the teapot 20 days before the drop: outside the 14-day window
    write_events(landing, "2026-10-31 10", [customer("old", when="2026-10-31 09:00"),
                                            track("old", "Product Viewed", "2026-10-31 10:00", product_id="p12")])


def test_price_drop_of_12_percent_mails_the_viewer_not_the_buyer_and_8_percent_mails_nobody(
        wh, tmp_path, ses, campaigns, run_at):
    _price_shop(tmp_path)
    chosen = only(campaigns, "price_drop")
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00", "2026-11-20 10:00"],
           ingest_from="2026-10-31 00:00")
    rows = outbox(wh)
    assert [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in rows] == [
        ("vic", "p12|2026-11-20", "sent", "2026-11-20 09:00")]
    (message,) = ses.sent_messages()
    assert subject_of(message) == "Vic, le prix de Théière fonte baisse de 12 %"
    html = html_of(message)
    assert "50,00" in html and "44,00" in html
    run_at(wh, tmp_path, chosen, ["2026-11-20 09:00", "2026-11-20 10:00"], ingest_from="2026-11-20 10:00")
    assert len(outbox(wh)) == 1 and len(ses.sent_messages()) == 1


def test_price_drop_is_measured_against_the_price_the_shopper_saw_not_the_previous_snapshot(
        wh, tmp_path, ses, campaigns, run_at):
    """p1: 100 → 130 → 110 is no drop for who saw 100, a 15 % drop for who saw 130; p2: two small
    cuts 100 → 95 → 89 add up to 11 %; p3: 100 → 85 is no drop for who saw 80 (the `price` of
    their Product Viewed event: a price the catalog snapshot never showed)."""
    write_catalog(tmp_path, "2026-11-17", [product(p, price="100.00 EUR") for p in ("p1", "p2", "p3")])
    write_catalog(tmp_path, "2026-11-18", [product("p1", price="130.00 EUR"), product("p2", price="95.00 EUR"),
                                           product("p3", price="100.00 EUR")])
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Plaid laine", price="110.00 EUR"),
                                           product("p2", title="Théière fonte", price="89.00 EUR"),
                                           product("p3", price="85.00 EUR")])
    write_events(tmp_path, "2026-11-18 12", [
        customer("ann"), customer("bea"), customer("cat"), customer("dan"),
        track("ann", "Product Viewed", "2026-11-17 10:00", product_id="p1"),
        track("bea", "Product Added to Wishlist", "2026-11-17 10:00", product_id="p2"),
        track("cat", "Product Viewed", "2026-11-17 10:00", product_id="p3", price=80.0),
        track("dan", "Product Added", "2026-11-18 12:00", product_id="p1", price=130.0),
    ])
    chosen = only(campaigns, "price_drop")
    run_at(wh, tmp_path, chosen, ["2026-11-19 01:00", "2026-11-19 09:00"], ingest_from="2026-11-17 00:00")
    assert [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in outbox(wh)] == [
        ("bea", "p2|2026-11-19", "sent", "2026-11-19 09:00"),
        ("dan", "p1|2026-11-19", "sent", "2026-11-19 09:00")]
    assert sorted(subject_of(m) for m in ses.sent_messages()) == [
        "Bea, le prix de Théière fonte baisse de 11 %", "Dan, le prix de Plaid laine baisse de 15 %"]


def test_a_currency_change_is_not_a_price_drop(wh, tmp_path, ses, campaigns, run_at):
    """The shop switches p1 from 100 EUR to 85 USD: not a 15 % drop for who saw 100 EUR (nor
    for the event that said 100 EUR); a later cut to 70 USD is one, against 85 USD."""
    write_catalog(tmp_path, "2026-11-17", [product("p1", price="100.00 EUR")])
    write_catalog(tmp_path, "2026-11-18", [product("p1", price="85.00 USD")])
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Plaid laine", price="70.00 USD")])
    write_events(tmp_path, "2026-11-17 12", [
        customer("ann"), customer("eva"),
        track("ann", "Product Viewed", "2026-11-17 10:00", product_id="p1"),
        track("eva", "Product Viewed", "2026-11-17 10:00", product_id="p1", price=100.0, currency="EUR")])
    chosen = only(campaigns, "price_drop")
    run_at(wh, tmp_path, chosen, ["2026-11-18 01:00", "2026-11-18 09:00"], ingest_from="2026-11-17 00:00")
    assert outbox(wh) == []
    run_at(wh, tmp_path, chosen, ["2026-11-19 01:00", "2026-11-19 09:00"], ingest_from="2026-11-18 09:00")
    assert [(r["customer_id"], r["trigger_id"], r["status"]) for r in outbox(wh)] == [
        ("ann", "p1|2026-11-19", "sent"), ("eva", "p1|2026-11-19", "sent")]
    assert {subject_of(m) for m in ses.sent_messages()} == {
        "Ann, le prix de Plaid laine baisse de 18 %", "Eva, le prix de Plaid laine baisse de 18 %"}


# -- low stock ---------------------------------------------------------------------------

def test_low_stock_alerts_a_carted_product_with_5_units_or_fewer_once(wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Bougie figue", quantity=12),
                                           product("p2", quantity=9), product("p3", quantity=4)])
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Bougie figue", quantity=3),
                                           product("p2", quantity=6), product("p3", quantity=4)])
    write_catalog(tmp_path, "2026-11-21", [product("p1", title="Bougie figue", quantity=2),
                                           product("p2", quantity=6), product("p3", quantity=4)])
    write_events(tmp_path, "2026-11-18 10", [
        customer("lou"), customer("wes", locale="en"), customer("zoe"),
        track("lou", "Product Added", "2026-11-18 10:00", product_id="p1"),
        track("wes", "Product Added to Wishlist", "2026-11-18 10:00", product_id="p1"),
        track("wes", "Product Added", "2026-11-18 10:00", product_id="p2"),   # 6 left: not low
        track("zoe", "Product Added", "2026-11-18 10:00", product_id="p3"),   # low all along: no news
        track("zoe", "Product Viewed", "2026-11-18 10:01", product_id="p1"),  # a view is not enough
    ])
    chosen = only(campaigns, "low_stock")
    run_at(wh, tmp_path, chosen, ["2026-11-20 09:00", "2026-11-21 09:00"], ingest_from="2026-11-18 00:00")
    rows = outbox(wh)
    assert [(r["customer_id"], r["trigger_id"], r["status"]) for r in rows] == [
        ("lou", "p1|2026-11-20", "sent"), ("wes", "p1|2026-11-20", "sent")]
    assert sorted(subject_of(m) for m in ses.sent_messages()) == [
        "Lou, plus que 3 Bougie figue en stock", "Wes, only 3 Bougie figue left"]
