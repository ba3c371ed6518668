"""Lifecycle and calendar campaigns (SPEC §8): winback, birthday, purchase anniversary, VIP
rewards, loyalty reminder. Long gaps are run at a few chosen instants; historical orders sit
in a recent hour folder (onboarding imports may hold events of any age, SPEC §5)."""

from __future__ import annotations

from email import message_from_string
from email.policy import default as default_policy

import pytest

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
from relance.campaigns.planner import calendar_params


def subjects(ses) -> dict:
    out = {}
    for message in ses.sent_messages():
        mail = message_from_string(message["raw_data"], policy=default_policy)
        out.setdefault(message["destinations"][0], []).append(str(mail["Subject"]))
    return out


def popular(wh, *product_ids, as_of="2025-01-01"):
    for rank, pid in enumerate(product_ids, start=1):
        wh.execute("INSERT INTO recommendations (customer_id, product_id, rank, score, as_of) "
                   "VALUES ('*', :p, :r, :s, :d)", {"p": pid, "r": rank, "s": 1.0 / rank, "d": at(as_of + " 00:00").date()})


def segment(wh, customer_id, as_of, name):
    wh.execute("INSERT INTO customer_segments (customer_id, as_of, segment, purchase_propensity) VALUES (:c, :d, :s, 0.5)",
               {"c": customer_id, "d": at(as_of + " 00:00").date(), "s": name})


# -- the planner's calendar parameters ---------------------------------------------------------

def test_calendar_params_cover_the_neighbouring_days_and_29_february():
    params = calendar_params(at("2027-03-01 05:00"))
    assert (params["day_before_date"], params["as_of_date"], params["day_after_date"]) == (
        "2027-02-28", "2027-03-01", "2027-03-02")
    assert (params["day_before_mmdd"], params["day_before_mmdd_leap"], params["as_of_mmdd_leap"]) == ("02-28", "02-29", "")
    assert calendar_params(at("2028-02-28 05:00"))["as_of_mmdd_leap"] == ""   # 2028 has its own 29th
    assert (params["as_of_month"], params["as_of_quarter"], params["quarter_start_date"]) == ("2027-03", "2027-Q1",
                                                                                              "2027-01-01")
    assert calendar_params(at("2026-11-20 23:59"))["quarter_start_date"] == "2026-10-01"


# -- winback -----------------------------------------------------------------------------

def test_winback_escalates_at_90_180_365_days_and_the_90_day_reminder_exits_on_an_order(wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-04-09", [product("p1", title="Plaid laine"), product("p2", title="Bougie figue"),
                                           product("p3", title="Housse de plaid")])
    popular(wh, "p1", "p2")
    # the seed's variant: a complement of the last purchase (p3 goes with the plaid)
    wh.execute("INSERT INTO product_complements (product_id, complement_id, score) VALUES ('p1', 'p3', 2.0)")
    write_events(tmp_path, "2026-04-09 10", [
        customer("win", when="2026-01-01 09:00"), customer("ret", when="2026-01-01 09:00"),
        order("win", "o-win", "2026-01-10 10:00", ("p1", 1, 49.0)),
        order("ret", "o-ret", "2026-01-10 10:00", ("p1", 1, 49.0)),
    ])
    # ret orders again half an hour after her 90-day reminder was planned, before it is sent
    write_events(tmp_path, "2026-04-10 10", [order("ret", "o-ret2", "2026-04-10 10:30", ("p1", 1, 49.0))])
    chosen = only(campaigns, "winback")
    run_at(wh, tmp_path, chosen, ["2026-04-10 10:00"], ingest_from="2026-04-09 10:00", dispatch_runs=False)
    assert [(r["customer_id"], r["status"]) for r in outbox(wh)] == [("ret", "planned"), ("win", "planned")]
    run_at(wh, tmp_path, chosen, ["2026-04-10 11:00"], ingest_from="2026-04-10 10:00")
    run_at(wh, tmp_path, chosen, ["2026-07-09 10:00", "2026-07-09 11:00", "2027-01-10 10:00"], ingest_from="2026-04-10 11:00")
    got = [(r["customer_id"], r["step"], r["trigger_id"], r["status"], r["due_at"]) for r in outbox(wh)]
    assert got == [
        ("ret", 1, "o-ret", "exited", "2026-04-10 10:00"),
        ("ret", 1, "o-ret2", "sent", "2026-07-09 10:30"),   # her new series: 90 days after o-ret2
        ("win", 1, "o-win", "sent", "2026-04-10 10:00"),
        ("win", 2, "o-win", "sent", "2026-07-09 10:00"),
        ("win", 3, "o-win", "sent", "2027-01-10 10:00"),
    ]
    assert subjects(ses)["win@example.com"] == ["Win, vous nous manquez", "Win, la livraison vous est offerte",
                                                "Win, -15 % pour vous retrouver"]
    for message in ses.sent_messages():
        text = message_from_string(message["raw_data"], policy=default_policy).get_body(("plain",)).get_content()
        # picks never include what they already bought (p1); every step offers the complement
        assert "/p/p2" in text and "/p/p1" not in text
        assert "accompagner votre dernier achat" in text and "/p/p3" in text


# -- birthday ----------------------------------------------------------------------------

def test_birthday_is_planned_for_the_local_day_at_9_and_sent_once_a_year(wh, tmp_path, ses, campaigns, run_at):
    write_events(tmp_path, "2026-11-19 10", [
        customer("mtl", birthday="1990-11-21", timezone="America/Montreal", locale="en"),
        customer("par", birthday="1985-11-21"),
        customer("not", birthday="1985-11-23"),
    ])
    chosen = only(campaigns, "birthday")
    # 03:00 UTC on the 21st: already the birthday in Paris (but before 09:00), still the 20th in Montreal
    run_at(wh, tmp_path, chosen, ["2026-11-21 03:00"], ingest_from="2026-11-19 10:00")
    assert outbox(wh) == []
    run_at(wh, tmp_path, chosen, ["2026-11-21 08:00", "2026-11-21 13:00", "2026-11-21 14:00"],
           ingest_from="2026-11-21 03:00")
    got = [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in outbox(wh)]
    assert got == [("mtl", "birthday|2026-11-21", "sent", "2026-11-21 14:00"),   # 09:00 in Montreal
                   ("par", "birthday|2026-11-21", "sent", "2026-11-21 08:00")]   # 09:00 in Paris
    assert subjects(ses) == {"mtl@example.com": ["Happy birthday Mtl! A gift is waiting for you"],
                             "par@example.com": ["Joyeux anniversaire Par ! Un cadeau vous attend"]}
    # the next day's runs see the same birthdays (a day either side): nothing new
    run_at(wh, tmp_path, chosen, ["2026-11-22 08:00", "2026-11-22 14:00"], ingest_from="2026-11-21 14:00")
    assert len(outbox(wh)) == 2 and len(ses.sent_messages()) == 2


# -- purchase anniversary ----------------------------------------------------------------

def test_purchase_anniversary_three_weeks_before_the_first_anniversary_of_a_gift_order(wh, tmp_path, ses, campaigns, run_at):
    write_catalog(tmp_path, "2026-11-09", [
        product("rose", title="Bouquet de roses rouge M", product_type="Fleurs et cadeaux > Bouquets"),
        product("vase", title="Vase en verre", product_type="Fleurs et cadeaux > Vases"),
        product("food", title="Croquettes 4 kg"),
    ])
    write_events(tmp_path, "2026-11-09 10", [
        customer("flo", when="2025-01-01 09:00"), customer("vas", when="2025-01-01 09:00"),
        order("flo", "o-flo", "2025-12-01 10:00", ("rose", 1, 39.0), ("food", 1, 19.9)),
        order("vas", "o-vas", "2025-12-01 10:00", ("vase", 1, 25.0)),                # a vase is no gift
    ])
    chosen = only(campaigns, "purchase_anniversary")
    run_at(wh, tmp_path, chosen, ["2026-11-10 09:00", "2026-11-10 10:00", "2026-11-10 11:00"],
           ingest_from="2026-11-09 10:00")
    got = [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in outbox(wh)]
    assert got == [("flo", "o-flo", "sent", "2026-11-10 10:00")]   # 1 December less three weeks
    assert subjects(ses) == {"flo@example.com": ["Flo, une date importante approche"]}
    html = message_from_string(ses.sent_messages()[0]["raw_data"], policy=default_policy).get_body(
        ("html",)).get_content()
    assert "/p/rose" in html and "/p/vase" not in html and "/p/food" not in html


# -- VIP rewards -------------------------------------------------------------------------

def test_vip_rewards_go_to_current_champions_once_a_month(wh, tmp_path, ses, campaigns, run_at):
    write_events(tmp_path, "2026-11-30 10", [customer("vip"), customer("was"), customer("tor", timezone="America/Toronto")])
    segment(wh, "vip", "2026-11-29", "champions")
    segment(wh, "tor", "2026-11-29", "champions")
    segment(wh, "was", "2026-11-01", "champions")
    segment(wh, "was", "2026-11-29", "at_risk")          # no longer a champion
    chosen = only(campaigns, "vip_rewards")
    run_at(wh, tmp_path, chosen, ["2026-12-01 09:00", "2026-12-01 15:00", "2026-12-02 09:00", "2026-12-02 15:00"],
           ingest_from="2026-11-30 10:00")
    run_at(wh, tmp_path, chosen, ["2027-01-01 09:00"], ingest_from="2026-12-02 15:00")
    got = [(r["customer_id"], r["trigger_id"], r["status"], r["due_at"]) for r in outbox(wh)]
    assert got == [("tor", "vip|2026-12", "sent", "2026-12-01 15:00"),       # 10:00 in Toronto
                   ("vip", "vip|2026-12", "sent", "2026-12-01 09:00"),       # 10:00 in Paris
                   ("vip", "vip|2027-01", "sent", "2027-01-01 09:00")]
    assert subjects(ses)["vip@example.com"] == ["Vip, vos avantages VIP du mois"] * 2


# -- loyalty reminder --------------------------------------------------------------------

def test_loyalty_reminder_on_a_new_100_point_tier_and_quarterly_for_quiet_balances(wh, tmp_path, ses, campaigns, run_at):
    write_events(tmp_path, "2026-11-20 07", [
        customer("pts"), customer("low"), customer("old", locale="en"),
        track("pts", "Loyalty Points Updated", "2026-11-10 12:00", points_balance=80),
        track("pts", "Loyalty Points Updated", "2026-11-20 07:00", points_balance=130),    # 80 → 130: a 5 € voucher
        track("low", "Loyalty Points Updated", "2026-11-10 12:00", points_balance=40),
        track("low", "Loyalty Points Updated", "2026-11-20 07:00", points_balance=60),     # no new tier
        track("old", "Loyalty Points Updated", "2026-09-15 12:00", points_balance=250),    # quiet since Q3
    ])
    chosen = only(campaigns, "loyalty_reminder")
    run_at(wh, tmp_path, chosen, ["2026-11-20 08:00", "2026-11-20 09:00", "2026-11-21 09:00"],
           ingest_from="2026-11-20 07:00")
    got = [(r["customer_id"], r["trigger_id"].split("|")[0], r["status"], r["due_at"]) for r in outbox(wh)]
    assert got == [("old", "quarter", "sent", "2026-11-20 09:00"), ("pts", "tier", "sent", "2026-11-20 09:00")]
    assert subjects(ses) == {"old@example.com": ["Old, you have 250 loyalty points"],
                             "pts@example.com": ["Pts, vous avez 130 points de fidélité"]}
    (old,) = [m for m in ses.sent_messages() if m["destinations"][0] == "old@example.com"]
    text = message_from_string(old["raw_data"], policy=default_policy).get_body(("plain",)).get_content()
    assert "250 loyalty points" in text and "10.00 off" in text      # 250 points = two 5 EUR vouchers
    assert recipients(ses) == ["old@example.com", "pts@example.com"]


@pytest.mark.parametrize("segment, propensity, offered", [("champions", 0.8, False), ("at_risk", 0.6, True),
                                                          ("loyal", 0.1, True), (None, None, True)])
def test_winback_offer_depends_on_segment_and_propensity(segment, propensity, offered):
    from relance.messaging.templates import render

    context = {"customer": {"first_name": "Wyn"}, "shop": {"name": "B", "url": "https://shop.example"},
               "unsubscribe_url": "https://shop.example/u", "recommendations": [],
               "latest_segment": [] if segment is None else [{"segment": segment, "purchase_propensity": propensity}]}
    for locale in ("fr", "en"):
        out = render("winback/offers", locale, context)
        assert ("RETOUR10" in out.text) is offered and ("RETOUR10" in out.html) is offered
