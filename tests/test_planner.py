"""Planning: trigger SQL → outbox rows, deterministic and idempotent."""

from __future__ import annotations

from datetime import timedelta

from helpers import at, customer, order, product, track, write_catalog, write_events
from relance.campaigns.planner import assign_variant, bucket, plan_campaign, send_key
from relance.ingest import ingest_window


def ingest_range(wh, landing, first_hour: str, hours: int):
    start = at(first_hour + ":00")
    return ingest_window(wh, str(landing), start, start + timedelta(hours=hours))


def plan_hours(wh, campaign, first: str, hours: int, run_id: str = "test"):
    start = at(first + ":00")
    for n in range(hours):
        plan_campaign(wh, campaign, start + timedelta(hours=n), run_id=run_id)


def test_send_key_is_deterministic_unique_and_safe_as_an_ses_tag():
    key = send_key("cart_abandonment", 2, "user with spaces/é", "msg:1")
    assert key == send_key("cart_abandonment", 2, "user with spaces/é", "msg:1")
    assert key != send_key("cart_abandonment", 3, "user with spaces/é", "msg:1")
    assert key != send_key("cart_abandonment", 2, "user with spaces/é", "msg:2")
    assert all(ch.isalnum() or ch in "_-" for ch in key) and len(key) <= 256


def test_variants_are_stable_and_follow_the_weights(campaigns):
    data = campaigns["cart_abandonment"].model_dump()
    data["variants"] = [{"name": "A", "weight": 3}, {"name": "B", "weight": 1}]
    campaign = type(campaigns["cart_abandonment"]).model_validate(data)
    picks = [assign_variant(campaign, f"c{i}") for i in range(4000)]
    assert picks == [assign_variant(campaign, f"c{i}") for i in range(4000)]
    assert 0.70 < picks.count("A") / len(picks) < 0.80
    assert 0 <= bucket("x", "y", "variant") < 100


def _cart_shop(landing):
    write_catalog(landing, "2026-11-20", [product("p1", title="Croquettes 4 kg"), product("p2")])
    write_events(landing, "2026-11-20 10", [
        customer("ann"), customer("bob"),
        track("ann", "Product Added", "2026-11-20 10:00", product_id="p1"),
        track("bob", "Product Added", "2026-11-20 10:10", product_id="p2"),
    ])
    # bob buys 3 hours later: he must get the 2 h reminder only
    write_events(landing, "2026-11-20 13", [order("bob", "o-bob", "2026-11-20 13:10", ("p2", 1, 19.9))])


def test_cart_reminders_are_planned_when_due_and_stop_after_an_order(wh, tmp_path, campaigns):
    _cart_shop(tmp_path)
    cart = campaigns["cart_abandonment"]
    for hour in range(11, 24):
        ingest_range(wh, tmp_path, f"2026-11-20 {hour - 1:02d}", 1)
        plan_campaign(wh, cart, at(f"2026-11-20 {hour:02d}:00"), run_id="h")
    ingest_range(wh, tmp_path, "2026-11-20 23", 49)
    plan_hours(wh, cart, "2026-11-21 00", 60)
    ann = wh.query("SELECT step, status FROM message_log WHERE customer_id = 'ann' ORDER BY step")
    bob = wh.query("SELECT step, status FROM message_log WHERE customer_id = 'bob' ORDER BY step")
    assert ann == [{"step": 1, "status": "planned"}, {"step": 2, "status": "planned"},
                   {"step": 3, "status": "planned"}]
    # bob's 2 h reminder was planned at 12:10; with no dispatcher run before his 13:10 order
    # it exits, and the later steps are never planned (with the dispatcher: test_dispatch).
    assert bob == [{"step": 1, "status": "exited"}]
    due = [str(r["due_at"])[:16] for r in wh.query(
        "SELECT due_at FROM message_log WHERE customer_id = 'ann' ORDER BY step")]
    assert due == ["2026-11-20 12:00", "2026-11-21 10:00", "2026-11-22 10:00"]


def test_a_planned_reminder_exits_when_the_order_arrives_before_it_is_sent(wh, tmp_path, campaigns):
    write_catalog(tmp_path, "2026-11-20", [product("p1")])
    write_events(tmp_path, "2026-11-20 10", [customer("cat"),
                                             track("cat", "Product Added", "2026-11-20 10:00", product_id="p1")])
    write_events(tmp_path, "2026-11-20 12", [order("cat", "o-cat", "2026-11-20 12:30", ("p1", 1, 19.9))])
    cart = campaigns["cart_abandonment"]
    ingest_range(wh, tmp_path, "2026-11-20 10", 1)
    plan_campaign(wh, cart, at("2026-11-20 12:00"))
    assert wh.scalar("SELECT status FROM message_log") == "planned"
    ingest_range(wh, tmp_path, "2026-11-20 12", 1)
    plan_campaign(wh, cart, at("2026-11-20 13:00"))
    assert wh.query("SELECT status, reason FROM message_log") == [
        {"status": "exited", "reason": "order placed after the trigger"}]


def test_replanning_overlapping_and_backfilled_runs_never_duplicate(wh, tmp_path, campaigns):
    _cart_shop(tmp_path)
    ingest_range(wh, tmp_path, "2026-11-20 10", 14)
    for campaign in campaigns.values():
        for run_id in ("scheduled", "retry", "backfill__x"):
            plan_hours(wh, campaign, "2026-11-20 11", 13, run_id=run_id)
    keys = wh.query("SELECT send_key, COUNT(*) AS n FROM message_log GROUP BY send_key")
    assert keys and all(k["n"] == 1 for k in keys)
    assert {r["planned_by"] for r in wh.query("SELECT planned_by FROM message_log")} == {"scheduled"}


def test_imported_order_history_never_triggers_receipts(wh, tmp_path, campaigns):
    write_events(tmp_path, "2026-11-20 00", [customer("old"),
                                             order("old", "o-2024", "2024-03-01 10:00", ("p1", 1, 10.0))])
    ingest_range(wh, tmp_path, "2026-11-20 00", 1)
    result = plan_campaign(wh, campaigns["order_confirmation"], at("2026-11-20 01:00"))
    assert result["triggers"] == 0 and wh.scalar("SELECT COUNT(*) FROM message_log") == 0


def test_receipt_is_planned_for_a_late_delivered_order_within_max_lateness(wh, tmp_path, campaigns):
    """A receipt's lateness is hours, not a day (max_lateness 4h): an order delivered two hours
    late still gets its receipt, one delivered six hours late does not."""
    write_events(tmp_path, "2026-11-20 15", [customer("lea"), customer("ola"),
                                             order("lea", "o-late", "2026-11-20 13:10", ("p1", 1, 10.0)),
                                             order("ola", "o-too-late", "2026-11-20 09:40", ("p1", 1, 10.0))])
    ingest_range(wh, tmp_path, "2026-11-20 15", 1)
    plan_campaign(wh, campaigns["order_confirmation"], at("2026-11-20 16:00"))
    assert wh.query("SELECT trigger_id, status FROM message_log") == [{"trigger_id": "o-late", "status": "planned"}]


def test_a_dry_run_records_what_it_would_plan_and_the_real_run_still_plans_it(wh, tmp_path, campaigns):
    write_events(tmp_path, "2026-11-20 10", [customer("max"), order("max", "o1", "2026-11-20 10:01", ("p", 1, 1.0))])
    ingest_range(wh, tmp_path, "2026-11-20 10", 1)
    campaign = campaigns["order_confirmation"]
    result = plan_campaign(wh, campaign, at("2026-11-20 11:00"), run_id="manual__dry", dry_run=True)
    assert result["due"] == 1 and result["would_plan"] == 1 and result["planned"] == 0
    assert wh.query("SELECT status, reason FROM message_log") == [
        {"status": "dry_run", "reason": "dry run: would be planned"}]
    plan_campaign(wh, campaign, at("2026-11-20 11:00"), run_id="manual__dry", dry_run=True)  # idempotent
    real = plan_campaign(wh, campaign, at("2026-11-20 11:00"), run_id="scheduled")
    assert real["planned"] == 1
    assert sorted(r["status"] for r in wh.query("SELECT status FROM message_log")) == ["dry_run", "planned"]
