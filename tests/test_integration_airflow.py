"""End to end with Airflow itself: synthetic shop → ingest → planners → dispatch → SES emulator.

Every DAG runs with ``dag.test`` (real DAG runs, task instances, XComs and mapped tasks) for
each simulated hour, on SQLite and on PostgreSQL; then every DAG is run a second time for the
same intervals, and the emulator must hold exactly the same emails.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from relance.shopsim import generate

HOURS = 28  # long enough for receipts, 2 h and 24 h cart reminders


def replay(dagbag, dag_ids, start: datetime, hours: int, monkeypatch):
    for n in range(1, hours + 1):
        moment = start + timedelta(hours=n)
        monkeypatch.setenv("RELANCE_SIMULATED_NOW", moment.isoformat())
        for dag_id in dag_ids:
            run = dagbag.get_dag(dag_id).test(logical_date=moment)
            assert run.state == "success", f"{dag_id} at {moment}: {run.state}"


@pytest.mark.timeout(1200)
def test_synthetic_shop_end_to_end_sends_each_email_exactly_once(
        dagbag, ses, warehouse_url, tmp_path, monkeypatch):
    from relance import warehouse

    landing = tmp_path / "landing"
    generate(landing, customers=500, days=2, start=date(2026, 11, 16), seed=11)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("AIRFLOW_VAR_TM_LANDING", str(landing))
    dag_ids = ["ingest_behaviour", *sorted(d for d in dagbag.dag_ids if d.startswith("campaign__")),
               "dispatch_messages"]
    start = datetime(2026, 11, 16, tzinfo=UTC)

    replay(dagbag, dag_ids, start, HOURS, monkeypatch)
    wh = warehouse.connect(warehouse_url)
    sent_rows = wh.query("SELECT send_key, campaign_id, provider_message_id FROM message_log "
                         "WHERE status = 'sent'")
    emails = ses.sent_messages()
    campaigns_sent = {r["campaign_id"] for r in sent_rows}
    assert {"order_confirmation", "cart_abandonment"} <= campaigns_sent
    assert len(emails) == len(sent_rows)
    assert {m["id"] for m in emails} == {r["provider_message_id"] for r in sent_rows}
    assert wh.scalar("SELECT COUNT(*) FROM quarantine") > 0  # the shop plants malformed lines
    snapshot = wh.query("SELECT send_key, status, provider_message_id FROM message_log ORDER BY send_key")
    events_before = wh.scalar("SELECT COUNT(*) FROM events")

    replay(dagbag, dag_ids, start, HOURS, monkeypatch)  # every DAG again, same intervals
    assert len(ses.sent_messages()) == len(emails)
    assert wh.query("SELECT send_key, status, provider_message_id FROM message_log ORDER BY send_key") == snapshot
    assert wh.scalar("SELECT COUNT(*) FROM events") == events_before
    wh.engine.dispose()
