"""Multi-step journeys against the sending rules (issue 7): every step of a series reaches a
customer who gets nothing else; caps count local calendar days; carts keep one identity;
history from before go-live triggers nothing; the shipped A/B tests and holdouts.
On SQLite and PostgreSQL (the ``wh`` fixture)."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_string
from email.policy import default as default_policy

import pytest

from helpers import at, customer, only, order, outbox, product, track, write_catalog, write_events
from relance.campaigns.config import Campaign, CampaignConfigError, load_campaign, load_campaigns
from relance.campaigns.planner import assign_variant, bucket, mark_live_since, plan_campaign
from relance.ingest import ingest_window
from test_dispatch import dispatch


@pytest.fixture(scope="module")
def treated() -> dict[str, Campaign]:
    """The shipped campaigns, every customer treated (the tests follow named customers)."""
    return {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in load_campaigns().items()}


def subjects(ses) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for message in ses.sent_messages():
        mail = message_from_string(message["raw_data"], policy=default_policy)
        out.setdefault(message["destinations"][0], []).append(str(mail["Subject"]))
    return out


def bodies(ses, address: str) -> list[str]:
    return [message_from_string(m["raw_data"], policy=default_policy).get_body(("plain",)).get_content()
            for m in ses.sent_messages() if m["destinations"][0] == address]


def series(wh, customer_id: str, campaign_id: str) -> list[tuple]:
    return [(r["step"], r["status"], r["due_at"]) for r in outbox(wh, campaign_id) if r["customer_id"] == customer_id]


# -- the cart series against the caps -------------------------------------------------------

def test_cart_series_sends_all_three_reminders_to_a_customer_who_gets_nothing_else(
        wh, tmp_path, ses, treated, run_at):
    """Before issue 7 the 24 h reminder was capped by the 2 h one (a rolling 24 h window)."""
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Croquettes")])
    write_events(tmp_path, "2026-11-20 10", [customer("kat"),
                                             track("kat", "Product Added", "2026-11-20 10:00", product_id="p1")])
    run_at(wh, tmp_path, only(treated, "cart_abandonment"),
           ["2026-11-20 12:00", "2026-11-21 10:00", "2026-11-22 10:00"], ingest_from="2026-11-20 10:00")
    assert series(wh, "kat", "cart_abandonment") == [
        (1, "sent", "2026-11-20 12:00"), (2, "sent", "2026-11-21 10:00"), (3, "sent", "2026-11-22 10:00")]
    variant = assign_variant(treated["cart_abandonment"], "kat")
    first = "Kat, votre Croquettes vous attend" if variant == "A" else "Toujours tenté par Croquettes ?"
    assert subjects(ses)["kat@example.com"][0] == first


def test_a_reminder_deferred_into_the_next_reminders_day_does_not_cap_it(wh, tmp_path, ses, treated, run_at):
    """A cart at 19:30 Paris: the 2 h reminder falls in quiet hours and goes at 08:00 the next
    morning — the local day of the 24 h reminder (19:30). One journey is one conversation:
    its own earlier step does not take its slot."""
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Croquettes")])
    write_events(tmp_path, "2026-11-20 18", [customer("lea"),
                                             track("lea", "Product Added", "2026-11-20 18:30", product_id="p1")])
    run_at(wh, tmp_path, only(treated, "cart_abandonment"),
           ["2026-11-20 21:00", "2026-11-21 07:00", "2026-11-21 19:00", "2026-11-22 19:00"],
           ingest_from="2026-11-20 18:00")
    assert [(step, status) for step, status, _ in series(wh, "lea", "cart_abandonment")] == [
        (1, "sent"), (2, "sent"), (3, "sent")]
    sent = {r["step"]: str(r["sent_at"])[:16] for r in wh.query(
        "SELECT step, sent_at FROM message_log WHERE customer_id = 'lea'")}
    assert sent[1] == "2026-11-21 07:00" and sent[2] == "2026-11-21 19:00"  # same local day, both sent


def test_another_campaign_cannot_take_the_slot_of_a_journeys_day(wh, tmp_path, ses, treated):
    """The journey's steps still count: a browse email due the same local day as a cart
    reminder is capped, and its reason names the reminder that won."""
    cart = treated["cart_abandonment"]
    other = Campaign.model_validate({**cart.model_dump(), "id": "promo", "priority": 10, "trigger": "cart_abandonment",
                                     "steps": [{**cart.steps[0].model_dump(), "name": "promo", "delay": "3h"}]})
    write_catalog(tmp_path, "2026-11-19", [product("p1")])
    write_events(tmp_path, "2026-11-20 10", [customer("sam"),
                                             track("sam", "Product Added", "2026-11-20 10:00", product_id="p1")])
    ingest_window(wh, str(tmp_path), at("2026-11-20 10:00"), at("2026-11-20 11:00"))
    both = {"cart_abandonment": cart, "promo": other}
    for moment in ("2026-11-20 12:00", "2026-11-20 13:00"):
        for campaign in both.values():
            plan_campaign(wh, campaign, at(moment))
        dispatch(wh, both, at(moment))
    (promo,) = wh.query("SELECT status, reason FROM message_log WHERE campaign_id = 'promo'")
    assert promo["status"] == "capped"
    assert "1 per local day, 2026-11-20 in Europe/Paris" in promo["reason"]
    assert "cart_abandonment/reminder_2h" in promo["reason"]


def test_the_daily_cap_follows_each_customers_local_midnight(wh, tmp_path, ses, treated):
    """Two messages 6 h apart, across UTC midnight. New York (UTC-5): both fall on the local
    20 November, the second is capped. Paris (UTC+1): the second is due at 02:00 local — quiet
    hours defer it to 08:00 on the 21st, a new local day, and it goes."""
    cart = treated["cart_abandonment"]

    def one_step(campaign_id: str, delay: str, priority: int) -> Campaign:
        step = {**cart.steps[0].model_dump(), "name": "only", "delay": delay}
        return Campaign.model_validate({**cart.model_dump(), "id": campaign_id, "trigger": "cart_abandonment",
                                        "priority": priority, "steps": [step], "variants": [{"name": "A", "weight": 1}]})

    first, second = one_step("first", "9h", 50), one_step("second", "15h", 40)
    write_catalog(tmp_path, "2026-11-19", [product("p1")])
    write_events(tmp_path, "2026-11-20 10", [
        customer("nyc", timezone="America/New_York"), customer("par", timezone="Europe/Paris"),
        track("nyc", "Product Added", "2026-11-20 10:00", product_id="p1"),
        track("par", "Product Added", "2026-11-20 10:00", product_id="p1")])
    ingest_window(wh, str(tmp_path), at("2026-11-20 10:00"), at("2026-11-20 11:00"))
    both = {"first": first, "second": second}
    for moment in ("2026-11-20 19:00", "2026-11-21 01:00", "2026-11-21 07:00"):
        for campaign in both.values():
            plan_campaign(wh, campaign, at(moment))
        dispatch(wh, both, at(moment))
    got = {(r["customer_id"], r["campaign_id"]): (r["status"], r["reason"]) for r in wh.query(
        "SELECT customer_id, campaign_id, status, reason FROM message_log")}
    assert got[("nyc", "first")][0] == got[("par", "first")][0] == "sent"
    assert got[("nyc", "second")][0] == "capped"
    assert "2026-11-20 in America/New_York" in got[("nyc", "second")][1] and "first/only" in got[("nyc", "second")][1]
    assert got[("par", "second")][0] == "sent"


# -- cart identity ---------------------------------------------------------------------------

def test_a_late_earlier_product_added_does_not_start_a_second_series(wh, tmp_path, ses, treated, run_at):
    write_catalog(tmp_path, "2026-11-19", [product("p1"), product("p2")])
    write_events(tmp_path, "2026-11-20 10", [customer("kat"),
                                             track("kat", "Product Added", "2026-11-20 10:00", product_id="p1")])
    # an add from 09:30, buffered by the source, lands in the 12:00 folder
    write_events(tmp_path, "2026-11-20 12", [track("kat", "Product Added", "2026-11-20 09:30", product_id="p2")])
    run_at(wh, tmp_path, only(treated, "cart_abandonment"), ["2026-11-20 12:00", "2026-11-20 13:00",
                                                             "2026-11-21 10:00"], ingest_from="2026-11-20 10:00")
    rows = wh.query("SELECT trigger_id, step, status FROM message_log WHERE customer_id = 'kat'")
    assert len({r["trigger_id"] for r in rows}) == 1, rows
    assert sorted((r["step"], r["status"]) for r in rows) == [(1, "sent"), (2, "sent")]


def test_a_shopper_who_comes_back_a_week_later_and_abandons_again_gets_a_new_series(
        wh, tmp_path, ses, treated, run_at):
    write_catalog(tmp_path, "2026-11-19", [product("p1"), product("p2", title="Panier osier")])
    write_events(tmp_path, "2026-11-20 10", [customer("kat"),
                                             track("kat", "Product Added", "2026-11-20 10:00", product_id="p1")])
    write_events(tmp_path, "2026-11-28 10", [track("kat", "Product Added", "2026-11-28 10:00", product_id="p2")])
    run_at(wh, tmp_path, only(treated, "cart_abandonment"),
           ["2026-11-20 12:00", "2026-11-21 10:00", "2026-11-22 10:00", "2026-11-28 12:00"],
           ingest_from="2026-11-20 10:00")
    rows = wh.query("SELECT trigger_id, step, status, due_at FROM message_log WHERE customer_id = 'kat' "
                    "ORDER BY due_at")
    assert len({r["trigger_id"] for r in rows}) == 2
    assert [(r["step"], r["status"]) for r in rows] == [(1, "sent"), (2, "sent"), (3, "sent"), (1, "sent")]
    assert "Panier osier" in bodies(ses, "kat@example.com")[-1]


# -- go-live: history never triggers ------------------------------------------------------

def test_the_onboarding_import_mails_nobody_but_history_still_counts(wh, tmp_path, ses, treated):
    """Relance goes live at 2026-11-20 00:00. The first folder holds the shop's history: orders
    from 22 h and 2 h before, a sign-up and a cart of the evening before, a customer whose last
    order was 90 days ago — and one live order. Only the live order gets a receipt; the
    90-day winback (a condition on history, due after go-live) still goes."""
    from test_campaigns_behaviour import popular

    go_live = at("2026-11-20 00:00")
    write_catalog(tmp_path, "2026-11-19", [product("p1"), product("p2")])
    popular(wh, "p2", "p1")
    write_events(tmp_path, "2026-11-20 00", [
        customer("old", when="2025-01-01 09:00"), customer("eve", when="2025-01-01 09:00"),
        customer("new", when="2026-11-19 21:00"),
        customer("win", when="2025-01-01 09:00", timezone="Asia/Tokyo"),  # 01:00 UTC is 10:00 there
        order("old", "o-22h", "2026-11-19 02:00", ("p1", 1, 10.0)),
        order("eve", "o-2h", "2026-11-19 22:00", ("p1", 1, 10.0)),
        track("new", "Signed Up", "2026-11-19 21:00"),
        track("new", "Product Added", "2026-11-19 21:30", product_id="p1"),
        order("win", "o-win", "2026-08-22 00:30", ("p1", 1, 10.0)),
        order("eve", "o-live", "2026-11-20 00:20", ("p1", 1, 10.0)),
    ])
    ingest_window(wh, str(tmp_path), go_live, go_live + timedelta(hours=1))
    mark_live_since(wh, go_live)
    mark_live_since(wh, go_live + timedelta(days=3))  # a later run never moves it
    chosen = only(treated, "order_confirmation", "welcome_series", "cart_abandonment", "winback")
    for hour in range(1, 4):
        moment = go_live + timedelta(hours=hour)
        for campaign in chosen.values():
            plan_campaign(wh, campaign, moment)
        dispatch(wh, chosen, moment)
    got = sorted((r["campaign_id"], r["trigger_id"], r["status"]) for r in wh.query(
        "SELECT campaign_id, trigger_id, status FROM message_log"))
    assert got == [("order_confirmation", "o-live", "sent"), ("winback", "o-win", "sent")]


def test_the_go_live_instant_can_be_set_by_a_variable(wh, tmp_path, treated, monkeypatch):
    write_events(tmp_path, "2026-11-20 10", [customer("eve"), order("eve", "o1", "2026-11-20 10:10", ("p", 1, 1.0))])
    ingest_window(wh, str(tmp_path), at("2026-11-20 10:00"), at("2026-11-20 11:00"))
    monkeypatch.setenv("AIRFLOW_VAR_TM_LIVE_SINCE", "2026-11-20T10:30:00Z")
    assert plan_campaign(wh, treated["order_confirmation"], at("2026-11-20 11:00"))["planned"] == 0
    monkeypatch.setenv("AIRFLOW_VAR_TM_LIVE_SINCE", "2026-11-20T10:00:00Z")
    assert plan_campaign(wh, treated["order_confirmation"], at("2026-11-20 11:00"))["planned"] == 1


# -- welcome series ----------------------------------------------------------------------------

def test_welcome_offer_follows_what_the_new_customer_did_and_offer_steps_exit_on_the_first_order(
        wh, tmp_path, ses, treated, run_at):
    """Day 3: a shopper who carted gets free express shipping, one who browsed 3+ products
    15 %, one who did nothing the 10 % reminder; the one who ordered leaves the series."""
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Bougie figue"), product("p2"), product("p3")])
    from test_campaigns_behaviour import popular

    popular(wh, "p1", "p2")
    signups = []
    for cid in ("eve", "kat", "bro", "ord"):
        signups += [track(cid, "Signed Up", "2026-11-20 09:00"), customer(cid, when="2026-11-20 09:00")]
    write_events(tmp_path, "2026-11-20 09", signups)
    write_events(tmp_path, "2026-11-21 12", [
        track("kat", "Product Added", "2026-11-21 12:00", product_id="p2"),
        *[track("bro", "Product Viewed", f"2026-11-21 12:{m:02d}", product_id=p)
          for m, p in ((1, "p1"), (2, "p2"), (3, "p3"))],
        order("ord", "o-ord", "2026-11-21 12:30", ("p1", 1, 18.0))])
    run_at(wh, tmp_path, only(treated, "welcome_series"),
           ["2026-11-20 10:00", "2026-11-21 13:00", "2026-11-23 09:00", "2026-11-23 10:00"],
           ingest_from="2026-11-20 09:00")
    assert [s for _, s, _ in series(wh, "ord", "welcome_series")] == ["sent", "exited"]
    for cid in ("eve", "kat", "bro"):
        assert [s for _, s, _ in series(wh, cid, "welcome_series")] == ["sent", "sent"], cid
    offers = {cid: bodies(ses, f"{cid}@example.com")[1] for cid in ("eve", "kat", "bro")}
    assert "EXPRESSOFFERT" in offers["kat"] and "BIENVENUE15" not in offers["kat"]
    assert "BIENVENUE15" in offers["bro"] and "EXPRESSOFFERT" not in offers["bro"]
    assert "BIENVENUE10" in offers["eve"] and "BIENVENUE15" not in offers["eve"] and "EXPRESSOFFERT" not in offers["eve"]
    for cid in ("eve", "kat", "bro"):
        variant = assign_variant(treated["welcome_series"], cid)
        welcome = subjects(ses)[f"{cid}@example.com"][0]
        assert welcome.startswith("Bienvenue") if variant == "B" else "bienvenue chez" in welcome, (cid, variant)


# -- what the shipped campaigns offer ---------------------------------------------------------

@pytest.mark.parametrize("campaign_id", ["cart_abandonment", "welcome_series"])
def test_cart_and_welcome_ship_an_ab_test_of_subject_lines_and_a_5_percent_holdout(campaign_id):
    campaign = load_campaigns()[campaign_id]
    assert [v.name for v in campaign.variants] == ["A", "B"] and campaign.holdout_pct == 5
    people = [f"c{i:05d}" for i in range(4000)]
    held = sum(bucket(campaign_id, p, "holdout") < campaign.holdout_pct for p in people) / len(people)
    share_b = sum(assign_variant(campaign, p) == "B" for p in people) / len(people)
    assert 0.04 < held < 0.06 and 0.47 < share_b < 0.53


def test_an_sms_campaign_without_sms_templates_is_refused_at_load_time(tmp_path):
    """channel: sms exists now (issue 12): a campaign whose templates have no sms.txt is refused,
    naming the field and the file it needs (it used to be refused as a channel that did not exist)."""
    source = (load_campaigns()["birthday"].model_dump_json())
    import json

    import yaml

    data = json.loads(source)
    data["channel"] = "sms"
    path = tmp_path / "birthday.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CampaignConfigError, match=r"field steps.0.template: an SMS step needs .*/fr/sms.txt"):
        load_campaign(path)


# -- loyalty -----------------------------------------------------------------------------------

def test_a_tier_crossing_is_not_lost_when_another_update_arrives_before_the_send(wh, tmp_path, ses, treated, run_at):
    """80 → 130 at 07:00 crosses the 100-point tier; 130 → 125.5 at 08:30 (points spent) does
    not, and used to hide the crossing from the 10:00 run. Fractional balances are whole points
    on both engines (125.5 → 125)."""
    write_events(tmp_path, "2026-11-20 07", [
        customer("pts"),
        track("pts", "Loyalty Points Updated", "2026-11-10 12:00", points_balance=80),
        track("pts", "Loyalty Points Updated", "2026-11-20 07:00", points_balance=130)])
    write_events(tmp_path, "2026-11-20 08", [
        track("pts", "Loyalty Points Updated", "2026-11-20 08:30", points_balance="125.5")])
    run_at(wh, tmp_path, only(treated, "loyalty_reminder"), ["2026-11-20 09:00", "2026-11-20 10:00"],
           ingest_from="2026-11-20 07:00")
    assert [(r["trigger_id"].split("|")[0], r["status"]) for r in outbox(wh)] == [("tier", "sent")]
    assert subjects(ses) == {"pts@example.com": ["Pts, vous avez 125 points de fidélité"]}


def test_a_tier_spent_before_the_send_is_not_celebrated(wh, tmp_path, ses, treated, run_at):
    write_events(tmp_path, "2026-11-20 07", [
        customer("pts"),
        track("pts", "Loyalty Points Updated", "2026-11-10 12:00", points_balance=80),
        track("pts", "Loyalty Points Updated", "2026-11-20 07:00", points_balance=130),
        track("pts", "Loyalty Points Updated", "2026-11-20 07:30", points_balance=30)])
    run_at(wh, tmp_path, only(treated, "loyalty_reminder"), ["2026-11-20 09:00", "2026-11-20 10:00"],
           ingest_from="2026-11-20 07:00")
    assert outbox(wh) == []
