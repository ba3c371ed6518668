"""campaign_report (SPEC §9): last-touch attribution into conversions, A/B results and holdout
lift with their intervals, campaign_daily's engagement columns — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from scipy.stats import chi2_contingency

from helpers import dump_tables
from relance.results import run_report
from relance.results.attribution import choose_touch

DAY = datetime(2026, 11, 20, tzinfo=UTC)  # the report day [DAY, DAY + 1 d)
END = DAY + timedelta(days=1)


def message(send_key, customer_id, campaign_id="cart_abandonment", category="marketing", status="sent",
            variant="A", step=1, decided_at=None, sent_at=None):
    decided = decided_at or DAY - timedelta(days=2)
    return {"send_key": send_key, "campaign_id": campaign_id, "campaign_version": "v1", "step": step,
            "step_name": f"step{step}", "variant": variant, "customer_id": customer_id,
            "email": f"{customer_id}@example.com", "locale": "fr", "category": category, "priority": 50,
            "trigger_id": f"t-{send_key}", "trigger_at": decided, "due_at": decided, "status": status,
            "planned_at": decided, "decided_at": decided, "attempts": 1 if status == "sent" else 0,
            "sent_at": (sent_at or decided) if status == "sent" else None,
            "provider_message_id": f"m-{send_key}" if status == "sent" else None}


def event(send_key, event_type, when):
    return {"event_id": f"e-{send_key}-{event_type}-{when:%Y%m%d%H%M%S}", "provider_message_id": f"m-{send_key}",
            "send_key": send_key, "event_type": event_type, "occurred_at": when, "email": "x@example.com",
            "received_at": when}


def order(order_id, customer_id, when, revenue=50.0, status="completed"):
    return {"order_id": order_id, "customer_id": customer_id, "ordered_at": when, "revenue": revenue,
            "currency": "EUR", "status": status, "status_at": when, "message_id": f"o-{order_id}"}


def load(wh, messages=(), events=(), orders=(), campaigns=()):
    with wh.begin() as conn:
        wh.insert_rows("message_log", list(messages), conn)
        wh.insert_rows("message_events", list(events), conn)
        wh.insert_rows("orders", list(orders), conn)
        wh.insert_rows("campaigns", [{"campaign_id": cid, "version_hash": "v1", "category": "marketing",
                                      "priority": 50, "enabled": True, "loaded_at": DAY,
                                      "definition": json.dumps({"id": cid, "variants": [{"name": v} for v in vs]})}
                                     for cid, vs in campaigns], conn)


# -- the attribution rule (pure) --------------------------------------------------------------

def test_last_touch_within_the_click_and_open_windows():
    at = DAY + timedelta(hours=12)
    click = lambda key, hours: {"send_key": key, "event_type": "Click", "occurred_at": at - timedelta(hours=hours)}  # noqa: E731
    opened = lambda key, hours: {"send_key": key, "event_type": "Open", "occurred_at": at - timedelta(hours=hours)}  # noqa: E731
    assert choose_touch(at, [click("a", 4 * 24)], 5, 1)["send_key"] == "a"
    assert choose_touch(at, [click("a", 6 * 24)], 5, 1) is None          # click older than 5 days
    assert choose_touch(at, [opened("b", 23)], 5, 1)["send_key"] == "b"
    assert choose_touch(at, [opened("b", 25)], 5, 1) is None             # open older than 1 day
    assert choose_touch(at, [click("a", 48), opened("b", 2)], 5, 1)["send_key"] == "b"  # the last touch wins
    assert choose_touch(at, [click("a", 2), opened("b", 2)], 5, 1)["send_key"] == "a"   # same second: the click
    assert choose_touch(at, [click("a", -1)], 5, 1) is None              # after the order


# -- on both backends ------------------------------------------------------------------------

def test_orders_are_credited_once_to_the_last_marketing_touch_and_never_to_receipts(wh):
    noon = DAY + timedelta(hours=12)
    load(wh, messages=[
        message("cart-1", "c1"), message("welcome-1", "c1", campaign_id="welcome_series"),
        message("receipt-2", "c2", campaign_id="order_confirmation", category="transactional"),
        message("cart-3", "c3"), message("cart-4", "c4")],
        events=[event("cart-1", "Click", noon - timedelta(days=3)),
                event("welcome-1", "Open", noon - timedelta(hours=2)),
                event("receipt-2", "Click", noon - timedelta(hours=1)),
                event("cart-3", "Click", noon - timedelta(days=6)),
                event("cart-4", "Click", noon - timedelta(hours=5))],
        orders=[order("o1", "c1", noon, 80.0), order("o1b", "c1", noon + timedelta(hours=1), 20.0),
                order("o2", "c2", noon), order("o3", "c3", noon),
                order("o4", "c4", noon, status="refunded"),
                order("o-next-day", "c1", END + timedelta(hours=1))])
    stats = run_report(wh, DAY, END)
    assert (stats["orders"], stats["attributed"]) == (4, 2)
    rows = wh.query("SELECT order_id, send_key, campaign_id, customer_id, revenue, touch, report_date "
                    "FROM conversions ORDER BY order_id")
    assert [(r["order_id"], r["send_key"], r["touch"], r["revenue"]) for r in rows] == [
        ("o1", "welcome-1", "open", 80.0), ("o1b", "welcome-1", "open", 20.0)]
    assert str(rows[0]["report_date"]) == "2026-11-20"

    before = dump_tables(wh, ["conversions", "report_ab_results", "report_holdout_lift"])
    run_report(wh, DAY, END)  # a re-run of the day replaces its rows
    assert dump_tables(wh, ["conversions", "report_ab_results", "report_holdout_lift"]) == before
    with pytest.raises(sa.exc.IntegrityError):  # an order is credited at most once, whatever writes it
        with wh.begin() as conn:
            wh.insert_rows("conversions", [{"order_id": "o1", "send_key": "cart-1", "campaign_id": "cart_abandonment",
                                            "customer_id": "c1", "converted_at": noon, "revenue": 1.0}], conn)


def test_campaign_daily_counts_engagement_and_revenue(wh):
    noon = DAY + timedelta(hours=12)
    load(wh, messages=[message("k1", "c1"), message("k2", "c2"), message("k3", "c3", status="capped")],
         events=[event("k1", "Delivery", noon - timedelta(days=2)), event("k1", "Open", noon - timedelta(hours=3)),
                 event("k1", "Click", noon - timedelta(hours=3)), event("k1", "Open", noon - timedelta(hours=2)),
                 event("k2", "Delivery", noon - timedelta(days=2)), event("k2", "Bounce", noon - timedelta(days=2))],
         orders=[order("o1", "c1", noon, 42.5)])
    run_report(wh, DAY, END)
    (row,) = wh.query("SELECT * FROM campaign_daily")
    assert {k: row[k] for k in ("planned", "sent", "capped", "delivered", "opened", "clicked", "bounced",
                                "converted", "conversions")} == {
        "planned": 3, "sent": 2, "capped": 1, "delivered": 2, "opened": 1, "clicked": 1, "bounced": 1,
        "converted": 1, "conversions": 1}
    assert row["revenue"] == pytest.approx(42.5)


def test_ab_results_give_wilson_intervals_and_the_p_value_against_the_first_variant(wh):
    messages, events, orders = [], [], []
    clicked_at = DAY + timedelta(hours=1)
    for variant, converting in (("B", 40), ("A", 20)):  # A is declared first: the control
        for i in range(200):
            key = f"{variant}{i}"
            messages.append(message(key, f"c{key}", variant=variant))
            events.append(event(key, "Delivery", DAY - timedelta(days=2)))
            if i < converting:
                events.append(event(key, "Click", clicked_at))
                orders.append(order(f"o{key}", f"c{key}", clicked_at + timedelta(hours=1), 10.0 + i % 7))
    load(wh, messages, events, orders, campaigns=[("cart_abandonment", ["A", "B"])])
    run_report(wh, DAY, END)
    rows = {r["variant"]: r for r in wh.query("SELECT * FROM ab_results")}
    a, b = rows["A"], rows["B"]
    assert bool(a["is_control"]) and not bool(b["is_control"])
    assert (a["recipients"], a["delivered"], a["clicked"], a["converted"]) == (200, 200, 20, 20)
    assert a["conversion_rate"] == pytest.approx(0.10) and b["conversion_rate"] == pytest.approx(0.20)
    assert (a["conversion_rate_low"], a["conversion_rate_high"]) == pytest.approx((0.06567, 0.14941), abs=1e-4)
    assert a["delivery_rate"] == 1.0 and a["delivery_rate_high"] == 1.0 and a["delivery_rate_low"] < 1.0
    expected = chi2_contingency([[40, 160], [20, 180]], correction=False)[1]  # = the two-proportion z-test
    assert b["conversion_p_value"] == pytest.approx(expected, rel=1e-9) and a["conversion_p_value"] is None
    revenue_a = [10.0 + i % 7 for i in range(20)] + [0.0] * 180
    assert a["revenue_per_recipient"] == pytest.approx(sum(revenue_a) / 200)
    assert a["revenue_per_recipient_low"] < a["revenue_per_recipient"] < a["revenue_per_recipient_high"]


def test_holdout_lift_compares_everyone_held_out_with_everyone_assigned_to_treatment(wh):
    messages, orders = [], []
    decided = DAY - timedelta(days=3)
    groups = (("h", "holdout", 100, 10), ("t", "sent", 200, 40), ("x", "capped", 100, 20))
    for prefix, status, size, converting in groups:
        for i in range(size):
            customer = f"{prefix}{i}"
            messages.append(message(f"k{customer}", customer, status=status, decided_at=decided))
            if i < converting:
                orders.append(order(f"o{customer}", customer, decided + timedelta(days=2), 30.0))
            elif i < converting + 5:  # ordered after the 5-day window: not an outcome
                orders.append(order(f"o{customer}", customer, decided + timedelta(days=6), 30.0))
    messages.append(message("knc", "nc", status="no_consent", decided_at=decided))  # in neither group
    orders.append(order("onc", "nc", decided + timedelta(days=1)))
    load(wh, messages, orders=orders)
    run_report(wh, END + timedelta(days=3), END + timedelta(days=4))  # windows closed
    (row,) = wh.query("SELECT * FROM holdout_lift")
    assert (row["treated_customers"], row["treated_converted"]) == (300, 60)
    assert (row["holdout_customers"], row["holdout_converted"]) == (100, 10)
    assert row["window_days"] == 5
    assert row["conversion_lift"] == pytest.approx(0.10)
    assert row["conversion_lift_low"] < 0.10 < row["conversion_lift_high"]
    assert row["conversion_lift_relative"] == pytest.approx(1.0)
    assert row["conversion_lift_relative_low"] < 1.0 < row["conversion_lift_relative_high"]
    assert row["revenue_lift"] == pytest.approx(0.2 * 30 - 0.1 * 30)
    assert row["revenue_lift_low"] < row["revenue_lift"] < row["revenue_lift_high"]
    expected = chi2_contingency([[60, 240], [10, 90]], correction=False)[1]
    assert row["conversion_p_value"] == pytest.approx(expected, rel=1e-9)


def test_campaign_report_dag_attributes_the_day_and_refreshes_the_views(dagbag, wh, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
    monkeypatch.setenv("AIRFLOW_VAR_TM_ATTRIBUTION_CLICK_DAYS", "2")
    noon = DAY + timedelta(hours=12)
    load(wh, messages=[message("k1", "c1"), message("k2", "c2")],
         events=[event("k1", "Click", noon - timedelta(days=1)), event("k2", "Click", noon - timedelta(days=3))],
         orders=[order("o1", "c1", noon), order("o2", "c2", noon)], campaigns=[("cart_abandonment", ["A"])])
    run = dagbag.get_dag("campaign_report").test(logical_date=END)
    assert run.state == "success"
    assert [r["order_id"] for r in wh.query("SELECT order_id FROM conversions")] == ["o1"]  # click window 2 days
    (row,) = wh.query("SELECT report_date, recipients, converted FROM ab_results")
    assert (str(row["report_date"]), row["recipients"], row["converted"]) == ("2026-11-20", 2, 1)


def test_the_next_days_run_credits_an_order_that_landed_after_its_days_run(wh):
    late = END - timedelta(minutes=10)
    load(wh, messages=[message("k1", "c1")], events=[event("k1", "Click", late - timedelta(hours=1))])
    run_report(wh, DAY, END)
    assert wh.query("SELECT order_id FROM conversions") == []
    load(wh, orders=[order("o-late", "c1", late)])  # ingested after the day's report ran
    run_report(wh, END, END + timedelta(days=1))
    rows = wh.query("SELECT order_id, report_date FROM conversions")
    assert [(r["order_id"], str(r["report_date"])) for r in rows] == [("o-late", "2026-11-20")]
