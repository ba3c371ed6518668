"""Scenarios through Airflow itself: each DAG run with ``dag.test`` for the hours the scenario
needs, small hand-made customers, the SES emulator.

These prove the wiring — each run's as-of, the real or simulated wall clock, the trigger form's
params, the connections — not the SQL, which the function-level tests (test_planner,
test_dispatch, test_rules, test_campaigns_*) prove on both backends. So each scenario runs on
one backend (``@pytest.mark.backend``): PostgreSQL, the production backend, for the ones whose
decisions hang on timestamps and exits (the 2 h reminder, quiet hours) and for the dry run's
rolled-back transaction; SQLite for the others, so that both connection paths run in Airflow.
The three multi-step series (cart, welcome, winback: issue 7) run whole on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpers import at, customer, order, product, track, write_catalog, write_events

INGEST, CART, RECEIPT, DISPATCH = ("ingest_behaviour", "campaign__cart_abandonment",
                                   "campaign__order_confirmation", "dispatch_messages")
WELCOME, WINBACK = "campaign__welcome_series", "campaign__winback"


@pytest.fixture
def airflow_env(dagbag, ses, warehouse_url, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("AIRFLOW_VAR_TM_LANDING", str(landing))

    def run(hours: list[str], dag_ids=(INGEST, CART, RECEIPT, DISPATCH), simulated_clock=True, params=None):
        for hour in hours:
            moment = at(hour)
            if simulated_clock:
                monkeypatch.setenv("RELANCE_SIMULATED_NOW", moment.isoformat())
            else:
                monkeypatch.delenv("RELANCE_SIMULATED_NOW", raising=False)
            for dag_id in dag_ids:
                result = dagbag.get_dag(dag_id).test(logical_date=moment, run_conf=params)
                assert result.state == "success", (dag_id, hour)

    from relance import warehouse

    class Env:
        pass

    env = Env()
    env.landing, env.run, env.ses = landing, run, ses
    env.wh = lambda: warehouse.connect(warehouse_url)
    return env


def hours(first: str, count: int) -> list[str]:
    start = at(first)
    return [(start + timedelta(hours=n)).strftime("%Y-%m-%d %H:%M") for n in range(count)]


@pytest.mark.backend("postgresql")
def test_a_cart_bought_three_hours_later_gets_the_2h_reminder_only(airflow_env):
    write_catalog(airflow_env.landing, "2026-11-19", [product("p1", title="Croquettes 4 kg")])
    write_events(airflow_env.landing, "2026-11-20 10", [
        customer("ann"), track("ann", "Product Added", "2026-11-20 10:05", product_id="p1")])
    write_events(airflow_env.landing, "2026-11-20 13", [order("ann", "o-ann", "2026-11-20 13:10", ("p1", 1, 39.9))])
    airflow_env.run(hours("2026-11-20 11:00", 4))                     # 11:00 … 14:00
    airflow_env.run(["2026-11-21 11:00", "2026-11-22 11:00"], dag_ids=(CART, DISPATCH))  # +24 h, +48 h
    rows = airflow_env.wh().query("SELECT campaign_id, step, status FROM message_log ORDER BY campaign_id, step")
    assert rows == [{"campaign_id": "cart_abandonment", "step": 1, "status": "sent"},
                    {"campaign_id": "order_confirmation", "step": 1, "status": "sent"}]
    assert len(airflow_env.ses.sent_messages()) == 2


@pytest.mark.backend("sqlite")
def test_an_opted_out_customer_gets_the_receipt_but_no_marketing(airflow_env):
    write_catalog(airflow_env.landing, "2026-11-19", [product("p1"), product("p2")])
    write_events(airflow_env.landing, "2026-11-20 10", [
        customer("oli", opt_in=False),
        order("oli", "o-oli", "2026-11-20 10:01", ("p1", 1, 19.9)),
        track("oli", "Product Added", "2026-11-20 10:30", product_id="p2")])
    airflow_env.run(hours("2026-11-20 11:00", 3))
    got = {r["campaign_id"]: r["status"] for r in airflow_env.wh().query(
        "SELECT campaign_id, status FROM message_log")}
    assert got == {"order_confirmation": "sent", "cart_abandonment": "no_consent"}
    assert len(airflow_env.ses.sent_messages()) == 1


@pytest.mark.backend("postgresql")
def test_a_reminder_due_at_night_is_sent_at_0800_local(airflow_env):
    write_catalog(airflow_env.landing, "2026-11-20", [product("p1")])
    write_events(airflow_env.landing, "2026-11-21 02", [
        customer("mtl", timezone="America/Montreal"),
        track("mtl", "Product Added", "2026-11-21 02:30", product_id="p1")])  # 21:30 local
    airflow_env.run(["2026-11-21 03:00"], dag_ids=(INGEST, CART, DISPATCH))
    airflow_env.run(["2026-11-21 05:00"], dag_ids=(CART, DISPATCH))      # due 04:30 UTC, 23:30 local
    airflow_env.run(["2026-11-21 12:00"], dag_ids=(DISPATCH,))           # 07:00 local: still waiting
    row = airflow_env.wh().query("SELECT status, send_after FROM message_log")[0]
    assert row["status"] == "deferred_quiet_hours" and str(row["send_after"]).startswith("2026-11-21 13:00")
    assert airflow_env.ses.sent_messages() == []
    airflow_env.run(["2026-11-21 13:00"], dag_ids=(DISPATCH,))
    row = airflow_env.wh().query("SELECT status, send_after, sent_at FROM message_log")[0]
    assert row["status"] == "sent" and str(row["sent_at"]).startswith("2026-11-21 13:00")  # 08:00 local
    assert len(airflow_env.ses.sent_messages()) == 1


@pytest.mark.backend("sqlite")
def test_a_backfill_of_last_week_recomputes_plans_and_mails_nobody(airflow_env):
    week_ago = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=7)
    first = week_ago.strftime("%Y-%m-%d %H:%M")
    write_catalog(airflow_env.landing, week_ago.strftime("%Y-%m-%d"), [product("p1")])
    write_events(airflow_env.landing, week_ago.strftime("%Y-%m-%d %H"), [
        customer("bf"), track("bf", "Product Added", week_ago.strftime("%Y-%m-%d %H:05"), product_id="p1"),
        order("bf", "o-bf", week_ago.strftime("%Y-%m-%d %H:10"), ("p1", 1, 9.9))])
    airflow_env.run(hours(first, 4)[1:], simulated_clock=False)  # decided by the real wall clock
    rows = airflow_env.wh().query("SELECT campaign_id, status, reason FROM message_log")
    assert rows and {r["status"] for r in rows} == {"expired"}
    assert airflow_env.ses.sent_messages() == []


@pytest.mark.backend("postgresql")
def test_dry_run_from_the_trigger_form_changes_nothing(airflow_env):
    write_catalog(airflow_env.landing, "2026-11-19", [product("p1")])
    write_events(airflow_env.landing, "2026-11-20 10", [
        customer("dry"), order("dry", "o-dry", "2026-11-20 10:01", ("p1", 1, 19.9))])
    airflow_env.run(["2026-11-20 11:00"], dag_ids=(INGEST, RECEIPT))
    airflow_env.run(["2026-11-20 11:00"], dag_ids=(DISPATCH,), params={"dry_run": True})
    rows = airflow_env.wh().query("SELECT status, reason FROM message_log ORDER BY status")
    assert [r["status"] for r in rows] == ["dry_run", "planned"]
    assert rows[0]["reason"] == "dry run: would be sent"
    assert airflow_env.ses.sent_messages() == []


# -- whole series through Airflow (issue 7): every step reaches a customer with nothing else --

def treated(campaign_id: str, customer_id: str) -> str:
    """The shipped campaigns hold 5 % out: the series tests follow customers who are treated."""
    from relance.campaigns.config import load_campaigns
    from relance.dispatch.rules import in_holdout

    assert not in_holdout(load_campaigns()[campaign_id], customer_id), (campaign_id, customer_id)
    return customer_id


def popular(env, *product_ids):
    """The popularity fallback that train_recommendations writes (customer '*')."""
    wh = env.wh()
    for rank, pid in enumerate(product_ids, start=1):
        wh.execute("INSERT INTO recommendations (customer_id, product_id, rank, score, as_of) "
                   "VALUES ('*', :p, :r, :s, :d)", {"p": pid, "r": rank, "s": 1.0 / rank, "d": at("2025-01-01 00:00").date()})


def sent_series(env, campaign_id: str) -> list[tuple]:
    return [(r["customer_id"], r["step"], r["status"]) for r in env.wh().query(
        "SELECT customer_id, step, status FROM message_log WHERE campaign_id = :c ORDER BY customer_id, step",
        {"c": campaign_id})]


def test_the_cart_series_sends_its_three_reminders_through_airflow(airflow_env):
    """The 2 h, 24 h and 48 h reminders all go: the 24 h one is not capped by the 2 h one
    (caps count local calendar days, and a journey's own steps never cap each other)."""
    kat = treated("cart_abandonment", "kat")
    write_catalog(airflow_env.landing, "2026-11-19", [product("p1", title="Croquettes 4 kg")])
    write_events(airflow_env.landing, "2026-11-20 10", [
        customer(kat), track(kat, "Product Added", "2026-11-20 10:05", product_id="p1")])
    airflow_env.run(["2026-11-20 11:00"], dag_ids=(INGEST, CART, DISPATCH))
    # the 2 h reminder (due 12:05), then +24 h and +48 h
    airflow_env.run(["2026-11-20 13:00", "2026-11-21 11:00", "2026-11-22 11:00"], dag_ids=(CART, DISPATCH))
    assert sent_series(airflow_env, "cart_abandonment") == [(kat, 1, "sent"), (kat, 2, "sent"), (kat, 3, "sent")]
    assert [m["destinations"][0] for m in airflow_env.ses.sent_messages()] == ["kat@example.com"] * 3


def test_the_welcome_series_sends_its_three_steps_through_airflow(airflow_env):
    new = treated("welcome_series", "neo")
    write_catalog(airflow_env.landing, "2026-11-19", [product("p1", title="Bougie figue"), product("p2")])
    write_events(airflow_env.landing, "2026-11-20 10", [
        customer(new, when="2026-11-20 10:10"), track(new, "Signed Up", "2026-11-20 10:10")])
    airflow_env.run(["2026-11-20 11:00"], dag_ids=(INGEST, WELCOME, DISPATCH))  # welcome at once
    popular(airflow_env, "p1", "p2")
    airflow_env.run(["2026-11-23 11:00", "2026-11-30 11:00"], dag_ids=(WELCOME, DISPATCH))  # +3 d, +10 d
    assert sent_series(airflow_env, "welcome_series") == [(new, 1, "sent"), (new, 2, "sent"), (new, 3, "sent")]
    assert len(airflow_env.ses.sent_messages()) == 3


def test_the_winback_series_sends_its_three_steps_through_airflow(airflow_env):
    """An order placed before the campaign's first run (history counts for winback: no
    skip_history), then the 90-, 180- and 365-day reminders in the runs that follow."""
    win = treated("winback", "win")
    write_catalog(airflow_env.landing, "2026-01-01", [product("p1", title="Plaid laine"), product("p2")])
    write_events(airflow_env.landing, "2026-01-02 10", [
        customer(win, when="2025-06-01 09:00"), order(win, "o-win", "2026-01-02 10:10", ("p1", 1, 49.0))])
    airflow_env.run(["2026-01-02 11:00"], dag_ids=(INGEST,))
    popular(airflow_env, "p2", "p1")
    airflow_env.run(["2026-04-02 11:00", "2026-07-01 11:00", "2027-01-02 11:00"], dag_ids=(WINBACK, DISPATCH))
    assert sent_series(airflow_env, "winback") == [(win, 1, "sent"), (win, 2, "sent"), (win, 3, "sent")]
    assert len(airflow_env.ses.sent_messages()) == 3
