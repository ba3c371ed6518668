"""The loop closed against a known truth: planted engagement (relance.shopsim.engagement) goes
through the emulator's SQS and the landing zone, ingest_ses_events and ingest_behaviour load
it, and campaign_report must find the planted rates and lift inside its intervals — on SQLite
and PostgreSQL. Deterministic (fixed seed); each interval would miss its planted value 5 % of
the time on a random seed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from relance.feedback import drain
from relance.ingest import ingest_window
from relance.results import run_report
from relance.shopsim.engagement import Plan, Rates, Truth, simulate

START = datetime(2026, 11, 10, tzinfo=UTC)
CUSTOMERS = 1200
HOLDOUT_EVERY = 3  # one customer in three held out (a narrow enough interval to see the lift)
PLAN = Plan(
    variants={("cart_abandonment", "A"): Rates(delivery=0.96, hard_bounce=0.6, complaint=0.004, open=0.45,
                                               click=0.10, order_after_click=0.50),
              ("cart_abandonment", "B"): Rates(delivery=0.96, hard_bounce=0.6, complaint=0.004, open=0.50,
                                               click=0.22, order_after_click=0.50)},
    organic=0.06)


def outbox(n: int) -> tuple[list[dict], dict[str, int]]:
    rows, treated = [], {"A": 0, "B": 0}
    for i in range(n):
        customer, decided = f"c{i:05d}", START + timedelta(minutes=i)
        held = i % HOLDOUT_EVERY == 0
        variant = "A" if i % 2 else "B"
        if not held:
            treated[variant] += 1
        rows.append({"send_key": f"cart_abandonment:1:{customer}", "campaign_id": "cart_abandonment",
                     "campaign_version": "v1", "step": 1, "step_name": "reminder_2h", "variant": variant,
                     "customer_id": customer, "email": f"{customer}@example.com", "locale": "fr",
                     "category": "marketing", "priority": 60, "trigger_id": f"cart-{customer}",
                     "trigger_at": decided, "due_at": decided, "planned_at": decided, "decided_at": decided,
                     "status": "holdout" if held else "sent", "attempts": 0 if held else 1,
                     "sent_at": None if held else decided,
                     "provider_message_id": None if held else f"ses-{uuid.uuid5(uuid.NAMESPACE_URL, customer)}"})
    return rows, treated


@pytest.mark.timeout(900)
def test_campaign_report_recovers_the_planted_rates_and_lift(wh, emulator, tmp_path):
    from relance import aws

    rows, treated = outbox(CUSTOMERS)
    with wh.begin() as conn:
        wh.insert_rows("message_log", rows, conn)
        wh.insert_rows("campaigns", [{"campaign_id": "cart_abandonment", "version_hash": "v1", "category": "marketing",
                                      "priority": 60, "enabled": True, "loaded_at": START, "definition": json.dumps(
                                          {"variants": [{"name": "A"}, {"name": "B"}]})}], conn)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"planted-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    landing = tmp_path / "landing"
    end = START + timedelta(days=8)
    truth = Truth()
    for hour in range(CUSTOMERS // 60 + 1):  # hour by hour, as the demo runs: ingest after each
        since = START + timedelta(hours=hour)
        planted = simulate(wh, sqs, url, landing, since, since + timedelta(hours=1), PLAN, seed=3, send_events=False)
        stats = drain(wh, sqs, url, since + timedelta(hours=1), wait_seconds=0)
        assert stats.get("new_events", 0) == planted.events and not stats.get("quarantined")
        truth.events += planted.events
        truth.orders += planted.orders
        truth.hard_bounced |= planted.hard_bounced
        truth.complained |= planted.complained
    ingest_window(wh, str(landing), START, end)
    assert wh.scalar("SELECT COUNT(*) FROM orders") == len(truth.orders)
    assert wh.scalar("SELECT COUNT(*) FROM message_events") == truth.events
    run_report(wh, START, end)

    # planted bounces and complaints are suppressed, nothing else
    suppressed = {(r["email"], r["reason"]) for r in wh.query("SELECT email, reason FROM suppressions")}
    assert truth.hard_bounced and truth.complained
    assert suppressed == ({(e, "hard_bounce") for e in truth.hard_bounced} | {(e, "complaint") for e in truth.complained})

    results = {r["variant"]: r for r in wh.query("SELECT * FROM ab_results")}
    for variant in ("A", "B"):
        row, rates = results[variant], PLAN.rates("cart_abandonment", variant)
        assert row["recipients"] == treated[variant]
        for metric, planted in (("delivery_rate", rates.delivery), ("open_rate", rates.open),
                                ("click_rate", rates.click),
                                ("conversion_rate", PLAN.expected_conversion("cart_abandonment", variant))):
            assert row[f"{metric}_low"] <= planted <= row[f"{metric}_high"], (variant, metric, planted, row)
    assert results["B"]["conversion_p_value"] < 0.05  # B's planted doubling of clicks is detected

    (lift,) = wh.query("SELECT * FROM holdout_lift")
    n_treated = treated["A"] + treated["B"]
    assert (lift["treated_customers"], lift["holdout_customers"]) == (n_treated, CUSTOMERS - n_treated)
    planted_treated = sum(treated[v] * PLAN.expected_customer_conversion("cart_abandonment", v)
                          for v in treated) / n_treated
    planted_holdout = PLAN.expected_customer_conversion("cart_abandonment", None)
    planted_lift = planted_treated - planted_holdout
    assert lift["conversion_lift_low"] <= planted_lift <= lift["conversion_lift_high"], (planted_lift, lift)
    assert lift["conversion_lift_low"] > 0  # and the lift is detected
    planted_relative = planted_treated / planted_holdout - 1
    assert lift["conversion_lift_relative_low"] <= planted_relative <= lift["conversion_lift_relative_high"]
    sqs.delete_queue(QueueUrl=url)
