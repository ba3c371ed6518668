"""The sending rules of SPEC §7 in the dispatcher: caps, quiet hours, holdouts, dry runs,
failing closed, and the shared send rate."""

from __future__ import annotations

import shutil
import threading

import pytest

from helpers import at, customer, product, track, write_catalog, write_events
from relance import settings
from relance.campaigns.config import Campaign, load_campaigns
from relance.campaigns.planner import plan_campaign
from relance.dispatch import prepare, quiet_hours_end
from relance.ingest import ingest_window
from relance.messaging import templates
from relance.messaging.ses import Pacer
from test_dispatch import dispatch


@pytest.fixture(scope="module")
def cart() -> Campaign:
    """The shipped cart campaign, every customer treated (its 5 % holdout would take some of
    the named customers out; holdouts have their own test below)."""
    return load_campaigns()["cart_abandonment"].model_copy(update={"holdout_pct": 0})


def variant_of(base: Campaign, campaign_id: str, **changes) -> Campaign:
    """Another marketing campaign on the same trigger (one step, due 2 h after the cart)."""
    data = base.model_dump()
    data.update({"id": campaign_id, "trigger": "cart_abandonment", "steps": data["steps"][:1], **changes})
    return Campaign.model_validate(data)


def carts(wh, landing, customers: list[tuple[str, str]], added: str = "2026-11-20 10:00"):
    """Customers (id, timezone) who each carted p1 at ``added`` (UTC), ingested."""
    write_catalog(landing, "2026-11-19", [product("p1", title="Croquettes")])
    calls = []
    for cid, tz in customers:
        calls += [customer(cid, timezone=tz), track(cid, "Product Added", added, product_id="p1")]
    hour = added[:13]
    write_events(landing, hour, calls)
    start = at(hour + ":00")
    from datetime import timedelta
    ingest_window(wh, str(landing), start, start + timedelta(hours=1))


def statuses(wh, customer_id=None):
    sql = "SELECT campaign_id, status, reason FROM message_log"
    rows = wh.query(sql + (" WHERE customer_id = :c" if customer_id else ""), {"c": customer_id})
    return {r["campaign_id"]: (r["status"], r["reason"]) for r in rows}


def test_four_eligible_campaigns_in_one_day_give_one_email_the_highest_priority(wh, tmp_path, ses, cart):
    carts(wh, tmp_path, [("ann", "Europe/Paris")])
    competing = {c.id: c for c in [variant_of(cart, "promo_low", priority=10), variant_of(cart, "promo_top", priority=90),
                                   variant_of(cart, "promo_mid", priority=50), variant_of(cart, "promo_30", priority=30)]}
    for campaign in competing.values():
        plan_campaign(wh, campaign, at("2026-11-20 12:00"))
    dispatch(wh, competing, at("2026-11-20 12:00"))
    got = statuses(wh, "ann")
    assert got["promo_top"] == ("sent", None)
    for loser in ("promo_low", "promo_mid", "promo_30"):
        assert got[loser][0] == "capped" and "1 per local day" in got[loser][1]
        assert "promo_top/reminder_2h" in got[loser][1], "the reason names the message that won"
    assert len(ses.sent_messages()) == 1


def test_transactional_mail_is_never_capped_and_never_counts(wh, tmp_path, ses, cart):
    carts(wh, tmp_path, [("bob", "Europe/Paris")])
    receipt = variant_of(cart, "receipt_like", category="transactional", priority=100)
    marketing = variant_of(cart, "promo", priority=50)
    both = {"receipt_like": receipt, "promo": marketing}
    for campaign in both.values():
        plan_campaign(wh, campaign, at("2026-11-20 12:00"))
    dispatch(wh, both, at("2026-11-20 12:00"))
    assert statuses(wh, "bob") == {"receipt_like": ("sent", None), "promo": ("sent", None)}


def test_weekly_cap_holds_over_rolling_seven_days(wh, tmp_path, ses, cart):
    from datetime import timedelta

    carts(wh, tmp_path, [("cy", "Europe/Paris")])
    campaigns = {f"daily_{d}": variant_of(cart, f"daily_{d}", steps=[{
        "name": "s", "delay": f"{2 + 24 * d}h", "template": "cart_abandonment/reminder",
        "content": ["cart_items"], "required": ["cart_items"]}], max_lateness="2h") for d in range(5)}
    for d in range(5):
        moment = at("2026-11-20 12:00") + timedelta(days=d)
        for campaign in campaigns.values():
            plan_campaign(wh, campaign, moment)
        dispatch(wh, campaigns, moment)
    got = statuses(wh, "cy")
    assert [got[f"daily_{d}"][0] for d in range(5)] == ["sent", "sent", "sent", "capped", "capped"]
    assert "3 per 7 days" in got["daily_3"][1]


@pytest.mark.parametrize("runs", [2, 6])
def test_concurrent_runs_never_spend_the_same_cap_slot_twice(wh, tmp_path, ses, cart, runs):
    """Each thread is a dispatcher run for its own campaign, all for the same customers, all
    released at once by a barrier: per customer, exactly one run may reserve the day's slot."""
    people = [(f"p{i}", "Europe/Paris") for i in range(5)]
    carts(wh, tmp_path, people)
    campaigns = [variant_of(cart, f"race_{i}", priority=50) for i in range(runs)]
    for campaign in campaigns:
        plan_campaign(wh, campaign, at("2026-11-20 12:00"))
    barrier, errors, batches = threading.Barrier(runs), [], []

    def run(campaign):
        try:
            barrier.wait()
            batches.extend(prepare(wh, {campaign.id: campaign}, at("2026-11-20 12:00"), at("2026-11-20 12:00"),
                                   run_id=f"run-{campaign.id}"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in campaigns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    rows = wh.query("SELECT customer_id, status FROM message_log")
    for cid, _ in people:
        mine = [r["status"] for r in rows if r["customer_id"] == cid]
        assert sorted(mine) == ["capped"] * (runs - 1) + ["queued"], (cid, mine)


def test_a_cart_reminder_due_at_2330_local_goes_out_at_0800_local(wh, tmp_path, ses, cart):
    # Montreal is UTC-5 in November: cart at 21:30 local (02:30 UTC), reminder due 23:30 local
    carts(wh, tmp_path, [("dee", "America/Montreal")], added="2026-11-21 02:30")
    campaigns = {"cart_abandonment": cart}
    from datetime import timedelta

    for hour in range(5, 14):
        moment = at("2026-11-21 00:00") + timedelta(hours=hour)
        plan_campaign(wh, cart, moment)
        dispatch(wh, campaigns, moment)
        row = wh.query("SELECT status, reason, send_after, sent_at FROM message_log WHERE step = 1")[0]
        if hour < 13:
            assert row["status"] == "deferred_quiet_hours", hour
            assert "America/Montreal" in row["reason"]
            assert str(row["send_after"]).startswith("2026-11-21 13:00")
    assert row["status"] == "sent" and str(row["sent_at"]).startswith("2026-11-21 13:00")


def test_quiet_hours_window_per_time_zone():
    assert quiet_hours_end(at("2026-11-20 19:59"), "Europe/Paris") is None          # 20:59 local
    assert quiet_hours_end(at("2026-11-20 20:00"), "Europe/Paris") == at("2026-11-21 07:00")
    assert quiet_hours_end(at("2026-11-21 06:30"), "Europe/Paris") == at("2026-11-21 07:00")
    assert quiet_hours_end(at("2026-11-21 07:00"), "Europe/Paris") is None          # 08:00 local
    assert quiet_hours_end(at("2026-11-20 14:00"), "Asia/Tokyo") == at("2026-11-20 23:00")
    assert quiet_hours_end(at("2026-11-20 14:00"), "Not/AZone") is None             # Paris assumed


def test_holdout_members_get_a_holdout_row_and_no_mail_stably(wh, tmp_path, ses, cart):
    people = [(f"h{i:02d}", "Europe/Paris") for i in range(40)]
    carts(wh, tmp_path, people)
    held = variant_of(cart, "with_holdout", holdout_pct=50)
    plan_campaign(wh, held, at("2026-11-20 12:00"))
    dispatch(wh, {"with_holdout": held}, at("2026-11-20 12:00"))
    rows = wh.query("SELECT customer_id, status, reason FROM message_log")
    holdout = {r["customer_id"] for r in rows if r["status"] == "holdout"}
    assert 10 <= len(holdout) <= 30 and all("holdout" in r["reason"] for r in rows if r["status"] == "holdout")
    assert {r["status"] for r in rows} == {"holdout", "sent"}
    assert len(ses.sent_messages()) == 40 - len(holdout)
    from relance.dispatch import in_holdout

    assert holdout == {cid for cid, _ in people if in_holdout(held, cid)}  # same hash, any run


def test_dispatcher_dry_run_records_decisions_and_changes_nothing(wh, tmp_path, ses, cart):
    carts(wh, tmp_path, [("eve", "Europe/Paris"), ("fox", "Europe/Paris")])
    wh.execute("UPDATE customers SET email_opt_in = FALSE WHERE customer_id = 'fox'")
    plan_campaign(wh, cart, at("2026-11-20 12:00"))
    assert prepare(wh, {"cart_abandonment": cart}, at("2026-11-20 12:00"), at("2026-11-20 12:00"),
                   run_id="manual__dry", dry_run=True) == []
    rows = {(r["customer_id"], r["status"]): r["reason"] for r in wh.query(
        "SELECT customer_id, status, reason FROM message_log")}
    assert rows[("eve", "dry_run")] == "dry run: would be sent"
    assert rows[("fox", "dry_run")].startswith("dry run: would be no_consent")
    assert ("eve", "planned") in rows and ("fox", "planned") in rows
    assert ses.sent_messages() == []
    dispatch(wh, {"cart_abandonment": cart}, at("2026-11-20 12:00"))
    assert len(ses.sent_messages()) == 1


def test_a_template_error_fails_its_campaign_closed_and_not_the_others(wh, tmp_path, ses, cart, monkeypatch):
    broken_dir = tmp_path / "templates"
    shutil.copytree(settings.TEMPLATES_DIR, broken_dir)
    (broken_dir / "cart_abandonment/free_shipping/fr/body.html").write_text("{% if %}broken")
    monkeypatch.setattr(settings, "TEMPLATES_DIR", broken_dir)
    templates.environment.cache_clear()
    try:
        carts(wh, tmp_path / "landing", [(f"g{i}", "Europe/Paris") for i in range(3)])
        broken = variant_of(cart, "broken_one", priority=60, steps=[{
            "name": "s", "delay": "2h", "template": "cart_abandonment/free_shipping",
            "content": ["cart_items"], "required": ["cart_items"]}])
        healthy = variant_of(cart, "healthy_one", category="transactional", priority=50)
        both = {"broken_one": broken, "healthy_one": healthy}
        for campaign in both.values():
            plan_campaign(wh, campaign, at("2026-11-20 12:00"))
        dispatch(wh, both, at("2026-11-20 12:00"))
    finally:
        templates.environment.cache_clear()
    rows = wh.query("SELECT campaign_id, status, reason FROM message_log")
    assert {r["status"] for r in rows if r["campaign_id"] == "broken_one"} == {"failed"}
    assert all("template error" in r["reason"] and "body.html" in r["reason"]
               for r in rows if r["campaign_id"] == "broken_one")
    assert {r["status"] for r in rows if r["campaign_id"] == "healthy_one"} == {"sent"}
    assert len(ses.sent_messages()) == 3


def test_the_pacer_holds_a_task_to_its_share_of_the_rate():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(rate=14 / 4, clock=lambda: now[0], sleep=sleep)
    for _ in range(15):
        pacer.wait()
    assert now[0] == pytest.approx(14 * 4 / 14)  # 15 calls at 3.5/s: 14 intervals
