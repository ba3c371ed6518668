"""The dispatcher run's report finds its run's rows by index: the rows decided at its as-of and
the rows of the batches its prepare task returned (no ``LIKE 'run#%'`` over all of message_log)."""

from __future__ import annotations

from helpers import at
from relance.dispatch import failed_templates, summary
from relance.warehouse.sqlfiles import load_sql
from test_dispatch import _two_carts, dispatch

RUN_QUERIES = ("outbox/run_summary", "outbox/template_failures", "outbox/missing_secret_failures")


def counts(rows) -> dict[tuple[str, str], int]:
    return {(r["campaign_id"], r["status"]): r["messages"] for r in rows}


def test_the_report_counts_the_runs_rows_once_and_no_other_runs(wh, tmp_path, ses, campaigns):
    _two_carts(wh, tmp_path, campaigns, n=12)
    batches = dispatch(wh, campaigns, at("2026-11-20 12:00"), run_id="run-a")
    assert batches
    # the sent rows are both decided at the run's as-of and in its batches: each counted once
    assert counts(summary(wh, at("2026-11-20 12:00"), batches)) == {("cart_abandonment", "sent"): 12}
    # an hour later the same batches still name them (a report that ran late)
    assert counts(summary(wh, at("2026-11-20 13:00"), batches)) == {("cart_abandonment", "sent"): 12}
    # another run's batches, or a run that claimed nothing, see none of them
    assert summary(wh, at("2026-11-20 13:00"), ["run-b#0000"]) == []
    assert dispatch(wh, campaigns, at("2026-11-20 13:00"), run_id="run-b") == []
    assert summary(wh, at("2026-11-20 13:00"), []) == []
    assert failed_templates(wh, batches) == [] and failed_templates(wh, []) == []


def test_the_reports_queries_are_served_by_indexes(wh, tmp_path, ses, campaigns):
    _two_carts(wh, tmp_path, campaigns, n=3)
    params = {"as_of": at("2026-11-20 12:00"), "batch_ids": ["run-a#0000", "run-a#0001"], "prefix": "x%"}
    with wh.begin() as conn:
        if not wh.is_sqlite:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the planner's choice on a tiny table aside
        for name in RUN_QUERIES:
            sql = load_sql(name)
            explain = "EXPLAIN QUERY PLAN " if wh.is_sqlite else "EXPLAIN "
            plan = " | ".join(str(r) for r in conn.execute(wh.statement(explain + sql, params), wh.params(params)))
            scan = "SCAN message_log" if wh.is_sqlite else "Seq Scan on message_log"
            assert scan not in plan, f"{name} scans message_log: {plan}"
