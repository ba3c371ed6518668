"""replenishment: a consumable's reminder at 75 % of its learned repurchase interval."""

from __future__ import annotations

from datetime import timedelta

from helpers import at, customer, order, product, write_catalog, write_events
from relance.campaigns.config import load_campaigns
from relance.campaigns.planner import plan_campaign
from relance.ingest import ingest_window
from test_dispatch import dispatch


def _shop(wh, landing, rebuy: bool):
    write_catalog(landing, "2026-11-19", [product("dogfood", title="Croquettes 4 kg"), product("bowl")])
    write_events(landing, "2026-11-20 08", [
        customer("rex", "2026-01-01 09:00"),
        order("rex", "o-old", "2026-09-01 10:00", ("dogfood", 1, 39.9)),
        order("rex", "o-1", "2026-10-01 10:00", ("dogfood", 1, 39.9), ("bowl", 1, 9.9)),
        *([order("rex", "o-2", "2026-11-10 10:00", ("dogfood", 1, 39.9))] if rebuy else []),
    ])
    ingest_window(wh, str(landing), at("2026-11-20 08:00"), at("2026-11-20 09:00"))
    wh.execute("INSERT INTO product_repurchase_intervals (product_id, interval_days, gaps, repeat_buyers, buyers, "
               "as_of) VALUES ('dogfood', 60, 40, 30, 100, :d)", {"d": at("2026-11-19 00:00").date()})


def test_reminder_is_due_at_three_quarters_of_the_interval_after_the_latest_purchase(wh, tmp_path, ses):
    _shop(wh, tmp_path, rebuy=False)
    campaign = {"replenishment": load_campaigns()["replenishment"]}
    due = at("2026-10-01 10:00") + timedelta(days=45)  # 2026-11-15 10:00 UTC, 11:00 in Paris
    plan_campaign(wh, campaign["replenishment"], due - timedelta(hours=1))
    assert wh.scalar("SELECT COUNT(*) FROM message_log") == 0
    plan_campaign(wh, campaign["replenishment"], due + timedelta(minutes=30))
    dispatch(wh, campaign, due + timedelta(minutes=30))
    rows = wh.query("SELECT trigger_id, status, due_at FROM message_log")
    assert [(r["trigger_id"], r["status"], str(r["due_at"])[:16]) for r in rows] == [
        ("dogfood|o-1", "sent", "2026-11-15 10:00")]
    (mail,) = ses.sent_messages()
    assert "Croquettes 4 kg" in mail["raw_data"]


def test_no_reminder_when_the_product_was_bought_again(wh, tmp_path, ses):
    _shop(wh, tmp_path, rebuy=True)
    campaign = load_campaigns()["replenishment"]
    plan_campaign(wh, campaign, at("2026-11-15 10:30"))
    assert wh.scalar("SELECT COUNT(*) FROM message_log") == 0  # the latest purchase is o-2: due late December


def test_two_bags_last_twice_as_long_as_the_usual_one(wh, tmp_path, ses):
    """The learned interval is what a usual purchase (1 bag here) lasts: 2 bags → 2 × 60 days,
    reminder at 75 % of 120 days after the purchase, not 45 days."""
    write_catalog(tmp_path, "2026-11-19", [product("dogfood", title="Croquettes 4 kg")])
    write_events(tmp_path, "2026-11-20 08", [
        customer("rex", "2026-01-01 09:00"), customer("ida", "2026-01-01 09:00"),
        order("ida", "o-ida", "2026-06-01 10:00", ("dogfood", 1, 39.9)),
        order("rex", "o-old", "2026-07-01 10:00", ("dogfood", 1, 39.9)),
        order("rex", "o-2bags", "2026-09-01 10:00", ("dogfood", 2, 39.9)),
    ])
    ingest_window(wh, str(tmp_path), at("2026-11-20 08:00"), at("2026-11-20 09:00"))
    wh.execute("INSERT INTO product_repurchase_intervals (product_id, interval_days, gaps, repeat_buyers, buyers, "
               "as_of) VALUES ('dogfood', 60, 40, 30, 100, :d)", {"d": at("2026-06-01 00:00").date()})
    campaign = load_campaigns()["replenishment"]
    plan_campaign(wh, campaign, at("2026-10-16 12:00"))     # 45 days after: one bag would be due
    assert wh.scalar("SELECT COUNT(*) FROM message_log WHERE customer_id = 'rex'") == 0
    due = at("2026-09-01 10:00") + timedelta(days=90)       # 75 % of 120 days
    plan_campaign(wh, campaign, due + timedelta(minutes=30))
    dispatch(wh, {"replenishment": campaign}, due + timedelta(minutes=30))
    rows = wh.query("SELECT customer_id, trigger_id, status, due_at FROM message_log WHERE customer_id = 'rex'")
    assert [(r["trigger_id"], r["status"], str(r["due_at"])[:16]) for r in rows] == [
        ("dogfood|o-2bags", "sent", "2026-11-30 10:00")]
    (mail,) = [m for m in ses.sent_messages() if m["destinations"][0] == "rex@example.com"]
    assert "2 unit" in mail["raw_data"] and "120 jours" in mail["raw_data"]
