"""
Campaign planners: one DAG `campaign__<id>` per file of `include/campaigns/`.

Each planner runs its campaign's trigger SQL as of its run's end and writes the steps that are
due as `planned` rows of the outbox (`message_log`); the dispatcher decides and sends them.
A campaign file that does not validate fails this file's import, naming the file and field.
"""

from __future__ import annotations

from airflow.sdk import DAG, AssetOrTimeSchedule, Param, task

from relance.airflow_support import BEHAVIOUR, DEFAULT_ARGS, OUTBOX, START_DATE, interval_timetable
from relance.campaigns.config import Campaign, load_campaigns

DOC = """
### campaign__{id} — {description}

*{category}*, priority **{priority}**, steps: {steps}.

Runs **{schedule}** (and after each `ingest_behaviour` load): runs
`include/sql/triggers/{trigger}.sql` as of the run's end and writes one `planned` row per step
that is due into `message_log`; the `dispatch_messages` DAG then applies the sending rules
and sends. Re-running, retrying or backfilling never duplicates a message: each row has a
deterministic `send_key`.

**Params**
* `dry_run` — compute the plan and record it as `dry_run` rows of `message_log` (what would
  be planned, under keys of their own that nothing sends); the real plan is left untouched.

**Go-live**: the first planner run records when Relance went live (`relance_state`, or the
Variable `tm_live_since`): nothing due before it is planned, and an order, cart or sign-up from
before it (the onboarding import) triggers nothing.

**Ops**: pause this DAG to pause the campaign (rows already planned are still decided by the
dispatcher; set `enabled: false` in the YAML to stop planning for good). A backfill recomputes
past plans; their messages are marked `expired` by the dispatcher rather than sent late.
Definition: `include/campaigns/{id}.yaml`.
"""


def build_planner(campaign: Campaign) -> DAG:
    steps = ", ".join(f"`{s.name}` (+{s.delay})" for s in campaign.steps)
    with DAG(
        dag_id=f"campaign__{campaign.id}",
        description=campaign.description,
        schedule=AssetOrTimeSchedule(timetable=interval_timetable(campaign.schedule), assets=BEHAVIOUR),
        start_date=START_DATE,
        catchup=False,
        default_args=DEFAULT_ARGS,
        tags=["relance", "campaign", campaign.category],
        doc_md=DOC.format(**{**campaign.model_dump(), "steps": steps, "trigger": campaign.trigger or campaign.id}),
        params={"dry_run": Param(False, type="boolean", title="Dry run",
                                 description="Compute the plan, write nothing.")},
    ) as planner:

        @task(outlets=[OUTBOX])
        def plan(campaign_id: str = campaign.id, **context) -> dict:
            """Write the due steps of this campaign into the outbox."""
            from relance import warehouse
            from relance.campaigns.config import load_campaigns
            from relance.campaigns.planner import mark_live_since, plan_campaign
            from relance.timeutil import run_window

            definition = load_campaigns()[campaign_id]
            wh = warehouse.connect()
            start, end = run_window(context)
            dry_run = bool(context["params"]["dry_run"])
            if not dry_run:
                mark_live_since(wh, start)  # the first run ever: Relance goes live
            return plan_campaign(wh, definition, end, run_id=context["run_id"], dry_run=dry_run)

        plan()
    return planner


for _campaign in load_campaigns().values():
    globals()[f"campaign__{_campaign.id}"] = build_planner(_campaign)
