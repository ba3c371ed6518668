"""Send-time optimisation (issue 12, item 5): ``send_time: best_hour`` campaigns send, for a
stable half of the customers, at the customer's best local hour (learned from their opens,
clicks and orders), within quiet hours and ``max_lateness``; the other half keeps the
campaign's time, and the report compares the two arms.

The arithmetic as functions; one tiny shop through ingest → planner → dispatcher against the
SES emulator on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpers import at, customer, only, order, product, write_catalog, write_events
from relance import reporting
from relance.campaigns.config import Campaign
from relance.campaigns.send_time import arm, best_hour, send_after

PARIS = "Europe/Paris"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_best_hour_is_the_most_frequent_local_hour_outside_quiet_hours_with_enough_history():
    # 16:xx UTC is 17:xx in Paris in November; 22:00 UTC (23:00 Paris) is quiet and never counts
    at_17 = [_utc("2026-11-01 16:10"), _utc("2026-11-04 16:50"), _utc("2026-11-06 16:05")]
    assert best_hour(at_17, PARIS) == 17
    assert best_hour(at_17[:2], PARIS) is None                         # too little history
    late = [_utc(f"2026-11-0{d} 22:00") for d in range(1, 6)]
    assert best_hour(late + at_17[:2], PARIS) == 17                    # quiet hours left out
    assert best_hour(late, PARIS) is None
    scattered = [_utc("2026-10-01 08:00"), _utc("2026-10-02 11:00"), _utc("2026-10-03 14:00")]
    assert best_hour(scattered, PARIS) is None                         # no hour seen twice: no habit


def test_send_after_is_the_next_best_hour_within_max_lateness_else_the_campaigns_time():
    due = _utc("2026-11-20 09:00")                                     # 10:00 Paris
    day = timedelta(hours=24)
    assert send_after(due, 17, PARIS, day) == _utc("2026-11-20 16:00")  # later the same local day
    assert send_after(due, 9, PARIS, day) == _utc("2026-11-21 08:00")   # the next morning
    assert send_after(due, 10, PARIS, day) is None                      # due in that very hour
    assert send_after(due, 9, PARIS, timedelta(hours=12)) is None       # beyond max_lateness
    assert send_after(due, None, PARIS, day) is None
    # the same inputs give the same time: a re-plan cannot move a message
    assert send_after(due, 17, PARIS, day) == send_after(due, 17, PARIS, day)


def test_best_hour_is_refused_where_there_is_no_slack_or_for_transactional_mail():
    base = {"id": "x_campaign", "description": "d", "priority": 1, "steps": [{"name": "s", "template": "t"}]}
    assert Campaign(**base, category="marketing", send_time="best_hour").send_time == "best_hour"
    for bad in ({"category": "transactional"}, {"category": "marketing", "max_lateness": "4h"}):
        with pytest.raises(ValueError, match="send_time: best_hour"):
            Campaign(**base, **bad, send_time="best_hour")


def _one_of_each_arm(campaign: Campaign) -> tuple[str, str]:
    names = [f"c{i}" for i in range(40)]
    return (next(n for n in names if arm(campaign, n) == "best_hour"),
            next(n for n in names if arm(campaign, n) == "fixed"))


def test_cross_sell_goes_at_the_customers_best_hour_for_one_arm_and_the_report_compares_them(
        wh, tmp_path, ses, campaigns, run_at):
    chosen = only(campaigns, "post_purchase_cross_sell")
    campaign = chosen["post_purchase_cross_sell"]
    treated, control = _one_of_each_arm(campaign)
    # both usually order at 17:xx Paris (three older orders each, already in the warehouse)
    with wh.begin() as conn:
        wh.insert_rows("orders", [
            {"order_id": f"old-{who}-{d}", "customer_id": who, "ordered_at": _utc(f"2026-11-{d:02d} 16:20"),
             "revenue": 10.0, "currency": "EUR", "status": "completed", "message_id": f"m-{who}-{d}"}
            for who in (treated, control) for d in (2, 4, 6)], conn)
    write_catalog(tmp_path, "2026-11-13", [product("bowl", title="Gamelle inox", price="12.00 EUR"),
                                          product("mat", title="Tapis de gamelle", price="8.00 EUR")])
    wh.execute("INSERT INTO product_complements (product_id, complement_id, score) VALUES ('bowl', 'mat', 3.0)")
    write_events(tmp_path, "2026-11-13 09", [
        customer(treated), customer(control),
        order(treated, f"o-{treated}", "2026-11-13 09:00", ("bowl", 1, 12.0)),
        order(control, f"o-{control}", "2026-11-13 09:00", ("bowl", 1, 12.0)),
    ])
    # due 2026-11-20 09:00 UTC (10:00 Paris): the control goes then, the treated at 17:00 Paris
    run_at(wh, tmp_path, chosen, ["2026-11-14 10:00", "2026-11-20 09:00", "2026-11-20 10:00"],
           ingest_from="2026-11-13 09:00")
    log = {r["customer_id"]: r for r in wh.query(
        "SELECT customer_id, send_key, status, due_at, send_after, sent_at FROM message_log "
        "WHERE campaign_id = 'post_purchase_cross_sell'")}
    assert log[control]["status"] == "sent" and log[control]["send_after"] is None
    assert log[treated]["status"] == "planned"                        # waits for its hour, not expired
    assert str(log[treated]["send_after"])[:16] == "2026-11-20 16:00"
    assert str(log[treated]["due_at"])[:16] == "2026-11-20 09:00"     # the staleness anchor unchanged
    assert [m["destinations"][0] for m in ses.sent_messages()] == [f"{control}@example.com"]

    run_at(wh, tmp_path, chosen, ["2026-11-20 15:00", "2026-11-20 16:00"], ingest_from="2026-11-20 10:00")
    (row,) = wh.query("SELECT status, send_after, sent_at FROM message_log WHERE send_key = :k",
                      {"k": log[treated]["send_key"]})
    assert row["status"] == "sent" and str(row["sent_at"])[:13] == "2026-11-20 16"
    assert str(row["send_after"])[:16] == "2026-11-20 16:00"          # the re-plans moved nothing
    arms = {r["customer_id"]: r for r in wh.query("SELECT customer_id, arm, best_hour, engagements, send_after "
                                                  "FROM send_time_arms")}
    assert {c: (r["arm"], r["best_hour"]) for c, r in arms.items()} == {
        treated: ("best_hour", 17), control: ("fixed", None)}
    assert len(ses.sent_messages()) == 2

    # the report: one click on the best-hour message
    wh.execute("INSERT INTO message_events (event_id, send_key, event_type, occurred_at, received_at) "
               "VALUES ('e1', :k, 'Click', :t, :t)", {"k": log[treated]["send_key"], "t": at("2026-11-20 16:30")})
    (figures,) = reporting.send_time_figures(wh)
    assert figures["campaign_id"] == "post_purchase_cross_sell"
    assert {k: figures["best_hour"][k] for k in ("sent", "moved", "opened", "clicked")} == {
        "sent": 1, "moved": 1, "opened": 1, "clicked": 1}
    assert {k: figures["fixed"][k] for k in ("sent", "moved", "clicked")} == {"sent": 1, "moved": 0, "clicked": 0}
    text = reporting.format_send_time([figures])
    assert "post_purchase_cross_sell best_hour: 1 sent (1 moved), opened 100.0 %, clicked 100.0 %" in text
    assert "post_purchase_cross_sell fixed: 1 sent" in text
    # the Campaigns page shows both arms
    from relance.webui.page import page_data, render

    html = render(page_data(wh))
    assert 'data-key="send_time:post_purchase_cross_sell:best_hour:moved">1<' in html
    assert 'data-key="send_time:post_purchase_cross_sell:fixed:click_rate">0.0 %<' in html
