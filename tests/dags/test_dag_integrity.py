"""The DAG folder imports cleanly and every DAG in it declares what ops rely on.

Parametrised over the DagBag itself (as in Astronomer's project template), so a new DAG file
or campaign YAML is checked without touching this file. Parsing needs no metadata database:
this file runs in ``make test-fast``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from relance.airflow_support import BEHAVIOUR, OUTBOX, interval_timetable
from relance.campaigns.config import load_campaigns

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
BAG = DagBag(dag_folder=str(DAGS_FOLDER))
DAG_IDS = sorted(BAG.dags)
CAMPAIGNS = load_campaigns()
PLANNERS = {f"campaign__{cid}": campaign for cid, campaign in CAMPAIGNS.items()}

#: SPEC §6: the exact DAG ids besides the planners, their schedule and the asset they also run on.
SPEC = {
    "ingest_behaviour": ("@hourly", None),
    "build_segments": ("@daily", None),
    "train_recommendations": ("@daily", None),
    "dispatch_messages": ("@hourly", OUTBOX),
    "ingest_ses_events": ("*/15 * * * *", None),
    "campaign_report": ("@daily", None),
}
#: Event-driven DAGs (issue 12 item 2): scheduled on an asset that an AssetWatcher in the
#: triggerer updates (no DAG does) once the queue it watches is configured; without it, no schedule.
EVENT_DRIVEN = {"transactional_now": ("relance_events_queue", "AIRFLOW_VAR_TM_EVENTS_QUEUE")}
#: The UI's tag filter: one vocabulary (an area, and the campaign's category for planners).
TAGS = {"relance", "ingest", "ml", "campaign", "marketing", "transactional", "dispatch", "feedback", "reporting"}
#: Airflow re-parses each DAG file every 30 s: parsing must stay cheap (no heavy top-level work).
MAX_PARSE = timedelta(seconds=3)


def expected_schedule(dag_id: str) -> tuple[str, object]:
    if dag_id in PLANNERS:
        return PLANNERS[dag_id].schedule, BEHAVIOUR
    return SPEC[dag_id]


def test_the_dag_folder_imports_without_errors():
    assert BAG.import_errors == {}


def test_the_dag_ids_are_the_spec_ones_and_one_planner_per_campaign_file():
    assert set(DAG_IDS) == set(SPEC) | set(PLANNERS) | set(EVENT_DRIVEN)


def test_every_dag_file_parses_quickly():
    slow = {stat.file: stat.duration for stat in BAG.dagbag_stats if stat.duration > MAX_PARSE}
    assert not slow, f"DAG files slower than {MAX_PARSE} to parse: {slow}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_dag_is_documented_for_ops(dag_id):
    dag = BAG.dags[dag_id]
    heading, _, body = dag.doc_md.strip().partition("\n")
    assert heading.startswith(f"### {dag_id} — ") and len(heading) > len(f"### {dag_id} — ") + 10, heading
    assert len([line for line in body.splitlines() if line.strip()]) >= 3, "a heading and no explanation"
    for task in dag.tasks:
        doc = task.doc_md or getattr(getattr(task, "python_callable", None), "__doc__", None)
        assert doc and doc.strip(), f"task {task.task_id} has no docstring"
    if dag_id in PLANNERS:  # ops find the definition behind the DAG
        assert f"include/campaigns/{PLANNERS[dag_id].id}.yaml" in dag.doc_md
        assert dag.description == PLANNERS[dag_id].description


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_dag_is_tagged_owned_and_retried(dag_id):
    dag = BAG.dags[dag_id]
    assert "relance" in dag.tags and len(dag.tags) >= 2, dag.tags
    assert set(dag.tags) <= TAGS, f"tags outside the vocabulary: {set(dag.tags) - TAGS}"
    if dag_id in PLANNERS:
        assert PLANNERS[dag_id].category in dag.tags
    for task in dag.tasks:
        assert task.owner == "relance", task.task_id
        assert task.retries >= 1 and task.retry_delay > timedelta(0), f"{task.task_id} is not retried"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_dag_starts_in_utc_catches_up_on_nothing_and_has_real_intervals(dag_id):
    dag = BAG.dags[dag_id]
    assert dag.start_date.utcoffset() == timedelta(0) and dag.start_date < datetime.now(UTC)
    assert dag.catchup is False
    assert "catchup=" in Path(dag.fileloc).read_text(), "catchup set explicitly in the DAG file"
    if dag_id in EVENT_DRIVEN:  # no queue configured here: no schedule (see the test below)
        assert type(dag.timetable).__name__ == "NullTimetable"
        return
    schedule, asset = expected_schedule(dag_id)
    timetable = getattr(dag.timetable, "timetable", dag.timetable)  # AssetOrTimeSchedule wraps one
    assert type(timetable).__name__ == "CronDataIntervalTimetable", "runs must decide as of a data interval end"
    assert timetable.expression == interval_timetable(schedule).expression
    assert str(timetable.timezone) in ("UTC", "Timezone('UTC')")
    assert getattr(dag.timetable, "asset_condition", None) == asset


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_trigger_form_params_have_a_default_a_title_and_a_description(dag_id):
    params = BAG.dags[dag_id].params
    for name in params:
        param = params.get_param(name)
        assert param.value is not None, name
        assert param.schema.get("title") and param.description, name
    if dag_id in PLANNERS or dag_id == "dispatch_messages":
        assert params["dry_run"] is False


def test_assets_chain_ingest_to_the_planners_to_the_dispatcher():
    outlets = {dag_id: {str(o) for task in BAG.dags[dag_id].tasks for o in getattr(task, "outlets", [])}
               for dag_id in DAG_IDS}
    assert str(BEHAVIOUR) in outlets["ingest_behaviour"]
    for dag_id in PLANNERS:
        assert outlets[dag_id] == {str(OUTBOX)}, dag_id
        assert BAG.dags[dag_id].timetable.asset_condition == BEHAVIOUR
    assert BAG.dags["dispatch_messages"].timetable.asset_condition == OUTBOX
    produced = set().union(*outlets.values())
    for dag_id in DAG_IDS:  # no DAG waits on an asset nothing updates
        condition = getattr(BAG.dags[dag_id].timetable, "asset_condition", None)
        assert condition is None or str(condition) in produced, dag_id


@pytest.mark.parametrize("dag_id", sorted(EVENT_DRIVEN))
def test_an_event_driven_dag_runs_on_its_watched_asset_once_its_queue_is_set(dag_id, monkeypatch):
    asset_name, variable = EVENT_DRIVEN[dag_id]
    monkeypatch.setenv(variable, "https://sqs.eu-west-3.amazonaws.com/123456789012/segment-events")
    bag = DagBag(dag_folder=str(Path(BAG.dags[dag_id].fileloc)))
    assert bag.import_errors == {}
    condition = bag.dags[dag_id].timetable.asset_condition
    assert condition.name == asset_name
    [watcher] = condition.watchers
    name, kwargs = watcher.trigger.serialize()
    assert name == "relance.triggers.SqsMessagesWaiting"
    assert kwargs["queue"] == "https://sqs.eu-west-3.amazonaws.com/123456789012/segment-events"
    assert bag.dags[dag_id].max_active_runs == 1


def test_sends_are_mapped_over_batches_in_the_ses_pool():
    dag = BAG.dags["dispatch_messages"]
    send = dag.get_task("send_batch")
    assert send.pool == "ses_send"
    assert type(send).__name__.endswith("MappedOperator")
    # the report reads prepare's batch ids (its run's rows are found by id, not by LIKE 'run#%')
    assert sorted(t.task_id for t in dag.get_task("prepare").downstream_list) == ["report", "send_batch"]
    assert [t.task_id for t in send.downstream_list] == ["report"]
