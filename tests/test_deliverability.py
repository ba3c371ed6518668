"""The deliverability guard (SPEC §7.5, issue 8 item 2), on SQLite and PostgreSQL: bounce and
complaint rates of the last 7 days' sends from message_events; over a threshold marketing is
held (still due, with the reason), receipts go on, the run's report fails; below, it resumes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from helpers import at, customer, dispatch_at, order, product, track, write_catalog, write_events
from relance.campaigns.planner import plan_campaign
from relance.dispatch.policy import DELIVERABILITY_MIN_EVENTS, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_WINDOW
from relance.dispatch.report import run_problems
from relance.dispatch.rules import deliverability
from relance.ingest import ingest_window

AS_OF = at("2026-11-20 14:00")


@pytest.fixture
def campaigns(campaigns):
    """Every customer treated (no holdout): the tests follow named customers."""
    return {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in campaigns.items()}


def plant_sends(wh, n: int, sent_at, prefix: str = "past", category: str = "marketing") -> list[str]:
    """``n`` messages SES accepted at ``sent_at`` (customers of their own); returns their send keys."""
    rows = [{
        "send_key": f"{prefix}-{i}", "campaign_id": "cart_abandonment", "campaign_version": "v1", "step": 1,
        "step_name": "first", "variant": "A", "customer_id": f"{prefix}-c{i}", "email": f"{prefix}{i}@example.com",
        "locale": "fr", "category": category, "priority": 50, "trigger_id": f"t-{prefix}-{i}", "trigger_at": sent_at,
        "due_at": sent_at, "status": "sent", "planned_at": sent_at, "claimed_at": sent_at,
        "batch_id": "old#0000", "attempts": 1, "provider_message_id": f"ses-{prefix}-{i}", "sent_at": sent_at,
        "decided_at": sent_at} for i in range(n)]
    with wh.begin() as conn:
        wh.insert_rows("message_log", rows, conn)
    return [r["send_key"] for r in rows]


def plant_event(wh, n: int, event_type: str, key: str, when, bounce_type: str | None = None,
                by_message_id: bool = False, prefix: str = "past") -> None:
    """An SES event for planted message ``key``: tagged with its send_key, or (a feedback
    notification) only its SES MessageId."""
    with wh.begin() as conn:
        wh.insert_rows("message_events", [{
            "event_id": f"{event_type}-{key}-{n}", "provider_message_id": f"ses-{key}",
            "send_key": None if by_message_id else key, "event_type": event_type, "occurred_at": when,
            "email": None, "detail": "{}", "received_at": when, "bounce_type": bounce_type,
            "feedback_format": "feedback_notification" if by_message_id else "event_publishing"}], conn)


def bad_week(wh, sends: int = 200, bounces: int = 10, complaints: int = 0) -> None:
    """A week of sends with that many permanent bounces and complaints (half linked by MessageId)."""
    when = AS_OF - timedelta(days=1)
    keys = plant_sends(wh, sends, when)
    for i, key in enumerate(keys[:bounces]):
        plant_event(wh, 0, "Bounce", key, when, "Permanent", by_message_id=i % 2 == 1)
    for i, key in enumerate(keys[bounces:bounces + complaints]):
        plant_event(wh, 0, "Complaint", key, when, by_message_id=i % 2 == 1)


def test_rates_come_from_the_events_of_the_windows_sends(wh):
    when = AS_OF - timedelta(days=2)
    keys = plant_sends(wh, 250, when)
    old = plant_sends(wh, 50, AS_OF - DELIVERABILITY_WINDOW - timedelta(hours=1), prefix="old")
    for key in keys[:6]:                       # permanent bounces, by send_key tag
        plant_event(wh, 0, "Bounce", key, when, "Permanent")
    for key in keys[6:10]:                     # … and by SES MessageId only (feedback notifications)
        plant_event(wh, 0, "Bounce", key, when, "Permanent", by_message_id=True)
    plant_event(wh, 1, "Bounce", keys[0], when, "Permanent", by_message_id=True)   # same message again: once
    for key in keys[10:20]:                    # transient bounces are not the guard's business
        plant_event(wh, 0, "Bounce", key, when, "Transient")
    plant_event(wh, 0, "Complaint", keys[20], when)
    plant_event(wh, 0, "Complaint", keys[21], when, by_message_id=True)
    for key in old[:40]:                        # sent before the window: not counted
        plant_event(wh, 0, "Bounce", key, when, "Permanent", prefix="old")
    state = deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    assert (state.sends, state.bounced, state.complained) == (250, 10, 2)
    assert state.bounce_rate == pytest.approx(0.04) and state.complaint_rate == pytest.approx(0.008)
    # 4 % is the threshold, not over it; 0.8 % complaints is over 0.08 %
    assert state.breaches() == ["complaint rate 0.800% over 7 days > 0.080%"]
    assert state.reason().startswith("held: complaint rate 0.800% over 7 days > 0.080%")


def test_sms_sends_are_not_ses_sends_and_do_not_dilute_the_rates(wh):
    bad_week(wh, sends=DELIVERABILITY_MIN_SENDS, bounces=10)  # 5 %: over the 4 % limit
    plant_sends(wh, 400, AS_OF - timedelta(days=1), prefix="sms")
    wh.execute("UPDATE message_log SET channel = 'sms' WHERE send_key LIKE 'sms-%'")
    state = deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    assert (state.sends, state.bounced) == (DELIVERABILITY_MIN_SENDS, 10) and state.tripped


def test_below_the_minimum_volume_the_guard_does_not_judge(wh):
    bad_week(wh, sends=DELIVERABILITY_MIN_SENDS - 1, bounces=50)
    state = deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    assert state.bounce_rate > 0.25 and not state.tripped


def test_a_single_complaint_is_chance_not_a_rate_two_are_a_rate(wh):
    """The demo's shop complains at a realistic 0.03 %: one complaint among its 512 sends is
    0.195 %, over 0.08 % by arithmetic alone. Two among as many trip the guard."""
    when = AS_OF - timedelta(days=1)
    keys = plant_sends(wh, 512, when)
    plant_event(wh, 0, "Complaint", keys[0], when)
    state = deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    assert state.complaint_rate > 0.0008 and not state.tripped
    plant_event(wh, 0, "Complaint", keys[1], when, by_message_id=True)
    state = deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    assert state.complained == 2 and state.breaches() == ["complaint rate 0.391% over 7 days > 0.080%"]


def test_thresholds_are_variables(wh, monkeypatch):
    bad_week(wh, bounces=6)                    # 3 %
    assert not deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS).tripped
    monkeypatch.setenv("AIRFLOW_VAR_TM_MAX_BOUNCE_RATE", "0.02")
    state = deliverability(wh, AS_OF, DELIVERABILITY_WINDOW, DELIVERABILITY_MIN_SENDS, DELIVERABILITY_MIN_EVENTS)
    assert state.tripped and state.breaches() == ["bounce rate 3.00% over 7 days > 2.00%"]


def shop(landing):
    """ann leaves a cart (marketing, due 2 h later); oli orders (a receipt, due at once)."""
    write_catalog(landing, "2026-11-20", [product("p1"), product("p2")])
    write_events(landing, "2026-11-20 10", [
        customer("ann"), customer("oli"),
        track("ann", "Product Added", "2026-11-20 10:05", product_id="p1"),
    ])
    write_events(landing, "2026-11-20 12", [order("oli", "o-oli", "2026-11-20 12:10", ("p2", 1, 19.9))])


def run_hours(wh, landing, campaigns, first: str, hours: int, monkeypatch) -> list[dict]:
    runs = []
    start = at(first)
    for n in range(hours):
        moment = start + timedelta(hours=n)
        monkeypatch.setenv("RELANCE_SIMULATED_NOW", moment.isoformat())
        ingest_window(wh, str(landing), moment - timedelta(hours=1), moment)
        for campaign in campaigns.values():
            plan_campaign(wh, campaign, moment)
        runs.append(dispatch_at(wh, campaigns, moment))
    return runs


def rows(wh):
    return {(r["customer_id"], r["campaign_id"]): (r["status"], r["reason"]) for r in wh.query(
        "SELECT customer_id, campaign_id, status, reason FROM message_log WHERE customer_id IN ('ann', 'oli')")}


def test_over_the_bounce_threshold_marketing_is_held_receipts_go_on_and_it_resumes(wh, tmp_path, ses, campaigns,
                                                                                   monkeypatch):
    shop(tmp_path)
    bad_week(wh, sends=200, bounces=10)        # 5 % permanent bounces over the last 7 days
    runs = run_hours(wh, tmp_path, campaigns, "2026-11-20 11:00", 3, monkeypatch)   # 11:00 … 13:00
    got = rows(wh)
    assert got[("oli", "order_confirmation")] == ("sent", None)                # transactional mail goes on
    status, reason = got[("ann", "cart_abandonment")]
    assert status == "planned"                                                 # held: still due
    assert reason.startswith("held: bounce rate 5.00% over 7 days > 4.00%")
    assert [set(m["destinations"]) for m in ses.sent_messages()] == [{"oli@example.com"}]
    problems = run_problems(wh, at("2026-11-20 13:00"), runs[-1]["batches"])
    assert len(problems) == 1 and "deliverability guard: marketing held" in problems[0]
    assert "cart_abandonment: 1" in problems[0] and "bounce rate 5.00% (max 4.00%)" in problems[0]
    # the rate falls under the threshold (more clean sends): marketing resumes by itself
    plant_sends(wh, 100, at("2026-11-20 12:30"), prefix="clean")               # 10 of 301 = 3.3 %
    runs = run_hours(wh, tmp_path, campaigns, "2026-11-20 14:00", 1, monkeypatch)
    assert rows(wh)[("ann", "cart_abandonment")] == ("sent", None)
    assert sorted(m["destinations"][0] for m in ses.sent_messages()) == ["ann@example.com", "oli@example.com"]
    assert run_problems(wh, at("2026-11-20 14:00"), runs[-1]["batches"]) == []


def test_complaints_hold_marketing_too(wh, tmp_path, ses, campaigns, monkeypatch):
    shop(tmp_path)
    bad_week(wh, sends=800, bounces=0, complaints=2)   # 0.25 % > 0.08 % (two: one alone is chance)
    run_hours(wh, tmp_path, campaigns, "2026-11-20 11:00", 3, monkeypatch)
    status, reason = rows(wh)[("ann", "cart_abandonment")]
    assert status == "planned" and reason.startswith("held: complaint rate 0.250% over 7 days > 0.080%")
    assert rows(wh)[("oli", "order_confirmation")][0] == "sent"


@pytest.mark.backend("sqlite")
def test_the_dispatch_run_turns_red_while_marketing_is_held(wh, tmp_path, ses, campaigns, dagbag, monkeypatch):
    shop(tmp_path)
    bad_week(wh, sends=200, bounces=10)
    run_hours(wh, tmp_path, campaigns, "2026-11-20 11:00", 2, monkeypatch)     # the receipt is sent at 12:00
    moment = at("2026-11-20 13:00")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
    monkeypatch.setenv("AIRFLOW_VAR_TM_LANDING", str(tmp_path))
    monkeypatch.setenv("RELANCE_SIMULATED_NOW", moment.isoformat())
    for campaign in campaigns.values():
        plan_campaign(wh, campaign, moment)
    dag = dagbag.get_dag("dispatch_messages")
    monkeypatch.setattr(dag.get_task("report"), "retries", 0)   # red at once, no retry to wait for
    run = dag.test(logical_date=moment)
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["prepare"] == "success" and states["report"] == "failed"
    status, reason = rows(wh)[("ann", "cart_abandonment")]
    assert status == "planned" and reason.startswith("held: bounce rate 5.00%")
