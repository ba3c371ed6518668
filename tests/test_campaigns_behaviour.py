"""Behaviour-driven campaigns (SPEC §8): browse abandonment, post-purchase cross-sell,
welcome series — tiny shops run through ingest → planner → dispatcher on both backends."""

from __future__ import annotations

from email import message_from_string
from email.policy import default as default_policy

from helpers import (
    at,
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


def parsed(message: dict):
    return message_from_string(message["raw_data"], policy=default_policy)


def by_recipient(ses) -> dict:
    out = {}
    for message in ses.sent_messages():
        mail = parsed(message)
        out.setdefault(message["destinations"][0], []).append(
            (str(mail["Subject"]), mail.get_body(("plain",)).get_content()))
    return out


def popular(wh, *product_ids, as_of="2026-01-01"):
    """The popularity fallback of train_recommendations (customer '*')."""
    for rank, pid in enumerate(product_ids, start=1):
        wh.execute("INSERT INTO recommendations (customer_id, product_id, rank, score, as_of) "
                   "VALUES ('*', :p, :r, :s, :d)", {"p": pid, "r": rank, "s": 1.0 / rank, "d": at(as_of + " 00:00").date()})


# -- browse abandonment ------------------------------------------------------------------

def test_browse_abandonment_needs_two_views_in_a_day_and_no_cart(wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Mug grès"), product("p2", title="Théière verre"),
                                           product("p3", title="Tasses expresso")])
    write_events(tmp_path, "2026-11-20 10", [
        customer("bro"), customer("one"), customer("crt"), customer("buy"),
        track("bro", "Product Viewed", "2026-11-20 10:00", product_id="p1"),
        track("bro", "Products Searched", "2026-11-20 10:20", query="théière"),
        track("bro", "Product Viewed", "2026-11-20 10:30", product_id="p2"),
        track("one", "Product Viewed", "2026-11-20 10:00", product_id="p1"),            # once only
        track("crt", "Product Viewed", "2026-11-20 10:00", product_id="p1"),
        track("crt", "Product Viewed", "2026-11-20 10:10", product_id="p2"),
        track("crt", "Product Added", "2026-11-20 10:15", product_id="p2"),             # a cart: cart campaign's job
        track("buy", "Product Viewed", "2026-11-20 10:00", product_id="p1"),
        track("buy", "Product Viewed", "2026-11-20 10:10", product_id="p1"),
    ])
    write_events(tmp_path, "2026-11-20 18", [order("buy", "o-buy", "2026-11-20 18:00", ("p3", 1, 9.0))])
    chosen = only(campaigns, "browse_abandonment")
    run_at(wh, tmp_path, chosen, ["2026-11-20 12:00", "2026-11-21 08:00", "2026-11-21 09:00", "2026-11-21 10:00"],
           ingest_from="2026-11-20 10:00")
    rows = outbox(wh)
    assert [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in rows] == [
        ("bro", "browse|2026-11-20", "sent", "2026-11-21 09:00")]   # 10:00 in Paris, the next day
    ((subject, text),) = by_recipient(ses)["bro@example.com"]
    assert subject == "Bro, Théière verre vous a plu ?"
    # the viewed products, then a similar one (same category); product links (bodies: ASCII asserts)
    assert "/p/p1" in text and "/p/p2" in text and "/p/p3" in text
    run_at(wh, tmp_path, chosen, ["2026-11-21 09:00", "2026-11-21 10:00"], ingest_from="2026-11-21 10:00")
    assert len(outbox(wh)) == 1 and recipients(ses) == ["bro@example.com"]


def test_browse_day_is_the_customers_local_day_and_the_mail_goes_out_the_next_local_morning(
        wh, tmp_path, ses, campaigns, run_at):
    """A Sydney shopper browsing at 10:30 on 21 November (23:30 UTC on the 20th) is mailed at
    10:00 Sydney time on the 22nd — not at once, as a UTC day would have it."""
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Mug grès"), product("p2", title="Théière verre")])
    write_events(tmp_path, "2026-11-20 23", [
        customer("syd", locale="en", timezone="Australia/Sydney"),
        track("syd", "Product Viewed", "2026-11-20 23:30", product_id="p1"),
        track("syd", "Product Viewed", "2026-11-20 23:40", product_id="p2"),
    ])
    chosen = only(campaigns, "browse_abandonment")
    run_at(wh, tmp_path, chosen, ["2026-11-21 00:00", "2026-11-21 01:00"], ingest_from="2026-11-20 23:00")
    assert outbox(wh) == [] and recipients(ses) == []
    run_at(wh, tmp_path, chosen, ["2026-11-21 22:00", "2026-11-21 23:00"], ingest_from="2026-11-21 01:00")
    assert [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in outbox(wh)] == [
        ("syd", "browse|2026-11-21", "sent", "2026-11-21 23:00")]   # 10:00 on the 22nd in Sydney


def test_browse_after_an_order_that_local_day_plans_nothing_instead_of_planning_then_exiting(
        wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Mug grès"), product("p2", title="Théière verre"),
                                           product("p3")])
    write_events(tmp_path, "2026-11-19 18", [
        customer("ord"), customer("eve"),
        order("eve", "o-eve", "2026-11-19 18:00", ("p3", 1, 9.0)),     # the evening before: another day
    ])
    write_events(tmp_path, "2026-11-20 07", [order("ord", "o-ord", "2026-11-20 07:00", ("p3", 1, 9.0))])  # 08:00 Paris
    write_events(tmp_path, "2026-11-20 10", [
        track("ord", "Product Viewed", "2026-11-20 10:00", product_id="p1"),
        track("ord", "Product Viewed", "2026-11-20 10:10", product_id="p2"),
        track("eve", "Product Viewed", "2026-11-20 10:00", product_id="p1"),
        track("eve", "Product Viewed", "2026-11-20 10:10", product_id="p2"),
    ])
    chosen = only(campaigns, "browse_abandonment")
    run_at(wh, tmp_path, chosen, ["2026-11-20 12:00", "2026-11-21 08:00", "2026-11-21 09:00", "2026-11-21 10:00"],
           ingest_from="2026-11-19 18:00")
    assert [(r["customer_id"], r["status"], r["due_at"]) for r in outbox(wh)] == [
        ("eve", "sent", "2026-11-21 09:00")]                        # ord: no row at all, not an 'exited' one


def test_search_only_browsing_gets_products_matching_the_search(wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Mug grès"), product("p2", title="Théière fonte"),
                                           product("p3", title="Théière verre", product_type="Maison > Thé")])
    write_events(tmp_path, "2026-11-20 10", [
        customer("sea"),
        track("sea", "Products Searched", "2026-11-20 10:00", query="mug"),
        track("sea", "Products Searched", "2026-11-20 10:05", query="Théière"),     # the day's latest search
    ])
    chosen = only(campaigns, "browse_abandonment")
    run_at(wh, tmp_path, chosen, ["2026-11-20 12:00", "2026-11-21 09:00"], ingest_from="2026-11-20 10:00")
    assert [(r["customer_id"], r["status"], r["due_at"]) for r in outbox(wh)] == [
        ("sea", "sent", "2026-11-21 09:00")]
    ((subject, text),) = by_recipient(ses)["sea@example.com"]
    assert subject == "Sea, vous cherchiez « théière » ?"
    assert "/p/p2" in text and "/p/p3" in text and "/p/p1" not in text


# -- post-purchase cross-sell ------------------------------------------------------------

def test_cross_sell_seven_days_later_offers_complements_then_upgrades_never_to_refunded_orders(
        wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-11-13", [
        product("bowl", title="Gamelle inox", price="12.00 EUR"),
        product("mat", title="Tapis de gamelle", price="8.00 EUR"),
        product("bowl-xl", title="Gamelle anti-glouton premium", price="24.00 EUR"),
        product("cheap", title="Gamelle plastique", price="5.00 EUR"),
    ])
    wh.execute("INSERT INTO product_complements (product_id, complement_id, score) VALUES ('bowl', 'mat', 3.0)")
    write_events(tmp_path, "2026-11-13 09", [
        customer("kim"), customer("ref", locale="en"),
        order("kim", "o-kim", "2026-11-13 09:00", ("bowl", 1, 12.0)),
        order("ref", "o-ref", "2026-11-13 09:00", ("bowl", 1, 12.0)),
        track("ref", "Order Refunded", "2026-11-14 09:00", order_id="o-ref"),
    ])
    chosen = only(campaigns, "post_purchase_cross_sell")
    run_at(wh, tmp_path, chosen, ["2026-11-14 10:00", "2026-11-20 08:00", "2026-11-20 09:00"],
           ingest_from="2026-11-13 09:00")
    rows = outbox(wh)
    assert [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in rows] == [
        ("kim", "o-kim", "sent", "2026-11-20 09:00")]
    ((subject, text),) = by_recipient(ses)["kim@example.com"]
    assert subject == "Kim, pour compléter votre commande o-kim"
    assert text.index("/p/mat") < text.index("/p/bowl-xl")             # the complement first, then the upgrade
    assert "/p/cheap" not in text and "/p/bowl\r" not in text        # no downgrade, not what was bought
