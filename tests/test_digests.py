"""Digests instead of silence (issue 12, item 4): a marketing message that loses the daily cap,
of a campaign with ``digest: true``, is folded into the customer's next digest — one email the
next local day at 09:00, which counts once against the caps — instead of being dropped.

Tiny shops run through ingest → planners → dispatcher (the functions the Airflow tasks call)
against the SES emulator, on SQLite and PostgreSQL; the key arithmetic is tested as functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_string
from email.policy import default as default_policy

import pytest
from pydantic import ValidationError

from helpers import customer, identify, only, order, product, track, write_catalog, write_events
from relance import settings
from relance.campaigns.config import Campaign
from relance.campaigns.digest import digest_day, digest_days, digest_send_key
from relance.dispatch.caps import CapLedger, Reservation
from relance.dispatch.digests import lost_daily_cap_only

FOLDING = ("back_in_stock", "price_drop", "digest")


def parsed(message: dict):
    return message_from_string(message["raw_data"], policy=default_policy)


def rows(wh) -> dict[tuple[str, str], dict]:
    """(customer, campaign) → its message_log row (one per pair in these shops)."""
    got = wh.query("SELECT customer_id, campaign_id, send_key, status, reason, digest_send_key, cap_reserved_at, "
                   "due_at FROM message_log WHERE status <> 'dry_run'")
    return {(r["customer_id"], r["campaign_id"]): r for r in got}


def _restock_and_drop_shop(landing, **traits):
    """p1 comes back in stock and p12 drops 12 % on 20 November: ann asked for p1 and viewed
    p12, so both alerts are due at 10:00 Paris the same day."""
    write_catalog(landing, "2026-11-19", [product("p1", title="Croquettes Saumon 4 kg", availability="out_of_stock",
                                                  quantity=0),
                                          product("p12", title="Théière fonte", price="50.00 EUR")])
    write_catalog(landing, "2026-11-20", [product("p1", title="Croquettes Saumon 4 kg"),
                                          product("p12", title="Théière fonte", price="44.00 EUR")])
    write_events(landing, "2026-11-18 10", [
        customer("ann", **traits),
        track("ann", "Back In Stock Requested", "2026-11-18 10:00", product_id="p1"),
        track("ann", "Product Viewed", "2026-11-18 10:01", product_id="p12"),
    ])


def test_a_price_drop_that_loses_the_daily_cap_goes_into_the_next_days_digest_once(
        wh, tmp_path, ses, campaigns, run_at):
    _restock_and_drop_shop(tmp_path)
    chosen = only(campaigns, *FOLDING)
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00"], ingest_from="2026-11-18 00:00")
    got = rows(wh)
    assert got["ann", "back_in_stock"]["status"] == "sent"      # priority 70 wins the day's slot
    folded = got["ann", "price_drop"]
    expected_key = digest_send_key("ann", date(2026, 11, 21))
    assert folded["status"] == "digested"
    assert folded["digest_send_key"] == expected_key and folded["cap_reserved_at"] is None
    assert "back_in_stock/back_in_stock" in folded["reason"] and "digest of 2026-11-21" in folded["reason"]
    assert len(ses.sent_messages()) == 1

    # the next day, 09:00 Paris: the digest planner writes the very row the folded one points at
    run_at(wh, tmp_path, chosen, ["2026-11-21 07:00", "2026-11-21 08:00"], ingest_from="2026-11-20 09:00")
    got = rows(wh)
    digest = got["ann", "digest"]
    assert digest["send_key"] == expected_key
    assert digest["status"] == "sent" and str(digest["due_at"])[:16] == "2026-11-21 08:00"
    assert digest["cap_reserved_at"] is not None                # one email, counted once
    assert got["ann", "price_drop"]["status"] == "digested"    # the folded row keeps its decision
    messages = ses.sent_messages()
    assert len(messages) == 2
    mail = parsed(messages[-1])
    assert str(mail["Subject"]) == "Ann, votre récap : baisse de prix"
    html = mail.get_body(("html",)).get_content()
    assert "Les prix baissent" in html and "fonte" in html and "50,00" in html and "44,00" in html
    assert "amazonSESUnsubscribeUrl" in html                    # marketing: its unsubscribe link

    # a re-run of every hour plans no second digest and folds nothing twice
    run_at(wh, tmp_path, chosen, ["2026-11-20 09:00", "2026-11-21 08:00"], ingest_from="2026-11-21 08:00")
    assert rows(wh) == got and len(ses.sent_messages()) == 2

    # the demo's summary and the Campaigns page count them
    from relance import reporting
    from relance.webui.page import page_data, render

    summary = reporting.format_campaign_summary(reporting.campaign_summary(wh))
    assert "digested 1" in summary
    assert "digests: 1 messages that lost the daily cap folded into digests; 1 digests sent, 0 to come" in summary
    assert reporting.digest_figures(wh) == {"folded": 1, "digests_sent": 1, "digests_waiting": 0,
                                            "digests_carried_over": 0, "digests_not_sent": 0}
    page = render(page_data(wh))
    assert '<td class="n" data-key="digests:folded">1</td>' in page
    assert '<td class="n" data-key="digests:digests_sent">1</td>' in page


def test_two_messages_that_lose_the_same_day_make_one_digest_with_a_section_each_in_english(
        wh, tmp_path, ses, campaigns, run_at):
    """dan (London, en): on 20 November at 10:00 local his back-in-stock alert, a price drop and
    the products he browsed the day before are all due; the alert wins, the other two make one
    digest the next morning."""
    write_catalog(tmp_path, "2026-11-19", [product("p1", title="Salmon kibble 4 kg", availability="out_of_stock",
                                                   quantity=0),
                                           product("p12", title="Cast-iron teapot", price="50.00 EUR"),
                                           product("p2", title="Wool throw"), product("p3", title="Dog bed")])
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Salmon kibble 4 kg"),
                                           product("p12", title="Cast-iron teapot", price="44.00 EUR"),
                                           product("p2", title="Wool throw"), product("p3", title="Dog bed")])
    write_events(tmp_path, "2026-11-18 10", [
        customer("dan", locale="en", timezone="Europe/London"),
        track("dan", "Back In Stock Requested", "2026-11-18 10:00", product_id="p1"),
        track("dan", "Product Viewed", "2026-11-18 10:01", product_id="p12"),
    ])
    write_events(tmp_path, "2026-11-19 14", [track("dan", "Product Viewed", "2026-11-19 14:00", product_id="p2"),
                                             track("dan", "Product Viewed", "2026-11-19 14:05", product_id="p3")])
    chosen = only(campaigns, *FOLDING, "browse_abandonment")
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 10:00", "2026-11-21 09:00"],
           ingest_from="2026-11-18 00:00")
    got = rows(wh)
    assert got["dan", "back_in_stock"]["status"] == "sent"
    key = digest_send_key("dan", date(2026, 11, 21))
    for folded in ("price_drop", "browse_abandonment"):
        assert (got["dan", folded]["status"], got["dan", folded]["digest_send_key"]) == ("digested", key)
    assert got["dan", "digest"]["send_key"] == key and got["dan", "digest"]["status"] == "sent"
    messages = ses.sent_messages()
    assert len(messages) == 2                                   # the alert, then one digest for both
    mail = parsed(messages[-1])
    assert str(mail["Subject"]) == "Dan, your digest: what you looked at, price drops"
    text = mail.get_body(("plain",)).get_content()
    assert "What you looked at" in text and "Wool throw" in text and "Dog bed" in text
    assert "Price drops" in text and "Cast-iron teapot: " in text and "50.00 -> " in text and "44.00" in text


def test_a_digest_that_loses_its_day_to_the_cart_series_is_carried_over_with_its_items(
        wh, tmp_path, ses, campaigns, run_at, monkeypatch):
    """ann carts p5 at 08:30 Paris on 20 November: the cart series (priority 60) reminds her at
    08:30 on the 21st and the 22nd, before the 09:00 digest (58), which is carried over twice
    and goes on the 23rd with the price drop it carries. (With the default 3 a week, the
    reminders and the alert fill her week by the 22nd: the digest is capped then, not carried.)"""
    monkeypatch.setenv("AIRFLOW_VAR_TM_CAP_PER_WEEK", "5")
    _restock_and_drop_shop(tmp_path)
    write_catalog(tmp_path, "2026-11-20", [product("p1", title="Croquettes Saumon 4 kg"),
                                           product("p12", title="Théière fonte", price="44.00 EUR"),
                                           product("p5", title="Panier osier")])
    write_events(tmp_path, "2026-11-20 07", [track("ann", "Product Added", "2026-11-20 07:30", product_id="p5")])
    chosen = only(campaigns, *FOLDING, "cart_abandonment")
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00", "2026-11-20 10:00", "2026-11-21 08:00",
                                  "2026-11-22 08:00", "2026-11-23 08:00"], ingest_from="2026-11-18 00:00")
    digests = {str(r["due_at"])[:10]: r for r in wh.query(
        "SELECT send_key, status, digest_send_key, reason, due_at FROM message_log WHERE campaign_id = 'digest'")}
    last = digest_send_key("ann", date(2026, 11, 23))
    assert [(day, r["status"]) for day, r in sorted(digests.items())] == [
        ("2026-11-21", "digested"), ("2026-11-22", "digested"), ("2026-11-23", "sent")]
    assert "cart_abandonment/reminder_24h" in digests["2026-11-21"]["reason"]
    assert digests["2026-11-22"]["digest_send_key"] == last
    folded = rows(wh)["ann", "price_drop"]
    assert folded["status"] == "digested" and folded["digest_send_key"] == last
    assert "carried over to the digest of 2026-11-23" in folded["reason"]
    subjects = [str(parsed(m)["Subject"]) for m in ses.sent_messages()]
    assert subjects.count("Ann, votre récap : baisse de prix") == 1 and len(subjects) == 4  # + alert, 2 reminders

    from relance import reporting

    assert reporting.digest_figures(wh) == {"folded": 1, "digests_sent": 1, "digests_waiting": 0,
                                            "digests_carried_over": 2, "digests_not_sent": 0}


def test_a_digest_to_a_customer_who_opted_out_since_is_not_sent_and_its_items_say_where_they_went(
        wh, tmp_path, ses, campaigns, run_at):
    _restock_and_drop_shop(tmp_path)
    write_events(tmp_path, "2026-11-20 12", [identify("ann", "2026-11-20 12:00", email_opt_in=False)])
    chosen = only(campaigns, *FOLDING)
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00", "2026-11-21 08:00"],
           ingest_from="2026-11-18 00:00")
    got = rows(wh)
    digest = got["ann", "digest"]
    assert digest["status"] in ("no_consent", "unsubscribed") and digest["cap_reserved_at"] is None
    # the folded row keeps its decision and its pointer: one join says what became of it
    (fate,) = wh.query("SELECT d.status FROM message_log m JOIN message_log d ON d.send_key = m.digest_send_key "
                       "WHERE m.status = 'digested'")
    assert fate["status"] == digest["status"]
    assert len(ses.sent_messages()) == 1                        # the back-in-stock alert only


def test_a_digest_whose_only_item_was_bought_since_is_no_content_not_an_empty_email(
        wh, tmp_path, ses, campaigns, run_at):
    _restock_and_drop_shop(tmp_path)
    write_events(tmp_path, "2026-11-20 15", [order("ann", "o-ann", "2026-11-20 15:00", ("p12", 1, 44.0))])
    chosen = only(campaigns, *FOLDING)
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00", "2026-11-21 08:00"],
           ingest_from="2026-11-18 00:00")
    got = rows(wh)
    assert got["ann", "price_drop"]["status"] == "digested"
    assert got["ann", "digest"]["status"] == "no_content"      # the price drop exited: nothing left to show
    assert len(ses.sent_messages()) == 1


def test_without_digest_true_the_loser_is_capped_as_before(wh, tmp_path, ses, campaigns, run_at):
    _restock_and_drop_shop(tmp_path)
    chosen = {**only(campaigns, *FOLDING), "price_drop": campaigns["price_drop"].model_copy(update={"digest": False})}
    run_at(wh, tmp_path, chosen, ["2026-11-20 01:00", "2026-11-20 09:00", "2026-11-21 08:00"],
           ingest_from="2026-11-18 00:00")
    got = rows(wh)
    assert got["ann", "price_drop"]["status"] == "capped" and got["ann", "price_drop"]["digest_send_key"] is None
    assert ("ann", "digest") not in got


# -- the arithmetic, as functions --------------------------------------------------------------

def test_the_digest_is_the_next_local_day_or_the_next_chosen_weekday():
    friday_10_paris = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert digest_day(friday_10_paris, "Europe/Paris") == date(2026, 11, 21)
    # 23:30 UTC is already Saturday in Paris: the day whose cap was full is Saturday
    assert digest_day(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "Europe/Paris") == date(2026, 11, 22)
    assert digest_day(friday_10_paris, "America/Los_Angeles") == date(2026, 11, 21)
    assert digest_day(friday_10_paris, "Europe/Paris", "monday") == date(2026, 11, 23)
    monday = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert digest_day(monday, "Europe/Paris", "monday") == date(2026, 11, 30)   # never the same day


def test_the_planner_finds_the_digest_each_folded_row_points_at_even_after_a_time_zone_change():
    folded_at = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    day = digest_day(folded_at, "Pacific/Auckland")                  # already the 21st there: the 22nd
    key = digest_send_key("ann", day)
    weekly = digest_send_key("bob", digest_day(folded_at, "Europe/Paris", "sunday"))  # Saturday there: Sunday 22
    rows_in = [{"customer_id": "ann", "digest_send_key": key, "decided_at": folded_at, "timezone": "Europe/Paris"},
               {"customer_id": "ann", "digest_send_key": key, "decided_at": folded_at, "timezone": "Europe/Paris"},
               {"customer_id": "bob", "digest_send_key": weekly, "decided_at": folded_at, "timezone": None},
               {"customer_id": "eve", "digest_send_key": "digest-1-unknown", "decided_at": folded_at,
                "timezone": None}]
    out = digest_days(rows_in, folded_at)
    assert out == [{"customer_id": "ann", "trigger_id": f"digest|{day.isoformat()}",
                    "trigger_local_date": day.isoformat(), "timezone": "Europe/Paris"},
                   {"customer_id": "bob", "trigger_id": "digest|2026-11-22", "trigger_local_date": "2026-11-22",
                    "timezone": None}]


def test_only_the_daily_cap_folds_a_message_the_weekly_cap_still_caps_it():
    as_of = datetime(2026, 11, 20, 9, tzinfo=UTC)
    ledger = CapLedger(as_of, per_day=1, per_week=3)
    ledger.load([{"customer_id": "ann", "send_key": "k1", "campaign_id": "back_in_stock", "step_name": "s",
                  "trigger_id": "t1", "cap_reserved_at": as_of}])
    assert lost_daily_cap_only(ledger, "ann")
    ledger.used["ann"] += [Reservation(f"k{n}", "winback", "s", f"t{n}", as_of - timedelta(days=n)) for n in (2, 3)]
    assert not lost_daily_cap_only(ledger, "ann")


def test_digest_true_is_refused_on_transactional_campaigns_and_the_digest_itself(campaigns):
    receipt = campaigns["order_confirmation"].model_dump()
    with pytest.raises(ValidationError, match="digest: true is for marketing campaigns"):
        Campaign.model_validate({**receipt, "digest": True})
    with pytest.raises(ValidationError, match="digest: true is for marketing campaigns"):
        Campaign.model_validate({**campaigns["digest"].model_dump(), "digest": True})
    assert {cid for cid, c in campaigns.items() if c.digest} == {"browse_abandonment", "back_in_stock",
                                                                 "price_drop", "low_stock"}


def test_tm_digest_every_takes_day_or_a_weekday(monkeypatch):
    assert settings.digest_every() == "day"
    monkeypatch.setenv("AIRFLOW_VAR_TM_DIGEST_EVERY", "Sunday")
    assert settings.digest_every() == "sunday"
    monkeypatch.setenv("AIRFLOW_VAR_TM_DIGEST_EVERY", "weekly")
    with pytest.raises(ValueError, match="tm_digest_every"):
        settings.digest_every()


def test_migration_0020_keeps_every_column_and_row_of_a_live_outbox(warehouse_url, tmp_path, monkeypatch):
    """0020 rebuilds message_log (for its CHECK): every column the earlier migrations made — the
    SMS channel's of 0019 included — survives with its values, plus digest_send_key."""
    import shutil

    import sqlalchemy as sa

    from relance.warehouse import Warehouse
    from relance.warehouse import migrations as migrations_module

    schema = tmp_path / "schema"
    schema.mkdir()
    ours = settings.SQL_DIR / "schema" / "0020_digests.sql"
    for path in sorted((settings.SQL_DIR / "schema").glob("*.sql")):
        if path.name < ours.name:
            shutil.copy(path, schema)
    monkeypatch.setattr(migrations_module, "MIGRATIONS_DIR", schema)
    wh = Warehouse(warehouse_url)
    wh.upgrade()
    moment = datetime(2026, 11, 20, 10, tzinfo=UTC)
    row = {"send_key": "k1", "campaign_id": "c", "campaign_version": "v", "step": 1, "step_name": "s",
           "variant": "A", "customer_id": "u", "category": "marketing", "priority": 1, "trigger_id": "t",
           "trigger_at": moment, "due_at": moment, "context": "{}", "planned_at": moment, "planned_by": "test",
           "status": "sent", "sent_at": moment, "lease_until": moment, "provider_message_id": "m1"}
    with wh.begin() as conn:
        wh.insert_rows("message_log", [row], conn)
    before = {c["name"] for c in sa.inspect(wh.engine).get_columns("message_log")}
    kept = wh.query("SELECT * FROM message_log")
    shutil.copy(ours, schema)
    assert wh.upgrade() == [ours.stem]
    after = {c["name"] for c in sa.inspect(wh.engine).get_columns("message_log")}
    assert after == before | {"digest_send_key"}
    assert [{k: v for k, v in r.items() if k != "digest_send_key"} for r in wh.query("SELECT * FROM message_log")] \
        == kept
    wh.execute("UPDATE message_log SET status = 'digested', digest_send_key = 'digest-1-x'")
    with pytest.raises(sa.exc.IntegrityError):
        wh.execute("UPDATE message_log SET status = 'folded'")
    assert wh.scalar("SELECT SUM(digested) FROM campaign_daily") == 1
    wh.engine.dispose()
