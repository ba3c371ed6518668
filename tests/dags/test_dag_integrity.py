"""The DAG folder imports cleanly and declares what ops rely on."""

from __future__ import annotations

import pytest

from relance.campaigns.config import load_campaigns

BUILT = {"ingest_behaviour", "dispatch_messages", "build_segments", "train_recommendations"}


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_the_spec_dag_ids_built_so_far_are_present_and_nothing_else(dagbag):
    planners = {f"campaign__{cid}" for cid in load_campaigns()}
    assert set(dagbag.dag_ids) == BUILT | planners
    assert {"campaign__order_confirmation", "campaign__cart_abandonment"} <= planners


@pytest.mark.parametrize("dag_id", sorted(BUILT | {"campaign__order_confirmation", "campaign__cart_abandonment"}))
def test_every_dag_is_documented_tagged_retried_and_has_a_real_interval(dagbag, dag_id):
    dag = dagbag.get_dag(dag_id)
    assert dag.doc_md and len(dag.doc_md) > 200
    assert "relance" in dag.tags
    assert all(task.retries >= 1 for task in dag.tasks)
    assert dag.catchup is False
    assert dag.start_date.tzinfo is not None
    timetable = getattr(dag.timetable, "timetable", dag.timetable)  # AssetOrTimeSchedule wraps one
    assert type(timetable).__name__ == "CronDataIntervalTimetable"


def test_ops_params_have_defaults(dagbag):
    for dag_id in ("dispatch_messages", "campaign__cart_abandonment"):
        params = dagbag.get_dag(dag_id).params
        assert params["dry_run"] is False


def test_sends_are_mapped_over_batches_in_the_ses_pool(dagbag):
    send = dagbag.get_dag("dispatch_messages").get_task("send_batch")
    assert send.pool == "ses_send"
    assert type(send).__name__.endswith("MappedOperator")
