"""``make demo``: a synthetic shop, the local SES emulator and real Airflow runs, hour by hour.

Everything lives under ``.local/``: the landing zone, the SQLite warehouse, the Airflow home
(SQLite metadata, the runs the UI of ``make airflow`` shows) and ``env.sh``, the environment
both commands share. Each simulated hour runs, with ``dag.test`` (a real Airflow run: task
instances, XComs, mapped tasks, in one process): ``ingest_behaviour``, every
``campaign__<id>`` planner, then ``dispatch_messages``; then the engagement simulator
(``relance.shopsim.engagement``, never the production path) turns the hour's sends into SES
notifications on the emulator's SQS queue and some clicks into orders in the landing zone, and
``ingest_ses_events`` drains the queue. ``campaign_report`` runs once a day, at midnight, once
the day is complete; the demo ends with the report's headline figures and the page's URL.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from relance import settings

MOTO_PORT = 5055
LOCAL = settings.LOCAL_DIR
#: the SQS queue SES publishes its events to (Variable tm_ses_events_queue: a name or a URL)
SES_EVENTS_QUEUE = "relance-ses-events"
#: where ``make airflow`` (airflow standalone, port 8080) shows the Campaigns page
CAMPAIGNS_PAGE_URL = "http://localhost:8080/plugin/campaigns"


def demo_plan():
    """What the demo's recipients do (planted, see relance.shopsim.engagement): rates that differ
    by campaign and by variant (the cart series' subject B gets more clicks), bounces and
    complaints under the deliverability guard's limits (4 % / 0.08 %)."""
    from relance.shopsim.engagement import Plan, Rates

    return Plan(
        default=Rates(delivery=0.98, hard_bounce=0.5, complaint=0.0003, open=0.38, click=0.07, order_after_click=0.25),
        campaigns={"browse_abandonment": Rates(delivery=0.98, complaint=0.0003, open=0.30, click=0.05,
                                               order_after_click=0.20),
                   "order_confirmation": Rates(delivery=0.99, complaint=0.0, open=0.70, click=0.10,
                                               order_after_click=0.05)},
        variants={("cart_abandonment", "A"): Rates(delivery=0.98, complaint=0.0003, open=0.45, click=0.10,
                                                   order_after_click=0.40),
                  ("cart_abandonment", "B"): Rates(delivery=0.98, complaint=0.0003, open=0.50, click=0.20,
                                                   order_after_click=0.40)},
        organic=0.04)


def say(message: str) -> None:
    print(f"[demo {datetime.now():%H:%M:%S}] {message}", flush=True)


def demo_environment(moto_port: int = MOTO_PORT) -> dict[str, str]:
    """The environment of the demo and of ``make airflow`` (written to .local/env.sh)."""
    airflow_home = LOCAL / "airflow"
    endpoint = f"http://127.0.0.1:{moto_port}"
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW_CONN_WAREHOUSE": f"sqlite:///{LOCAL / 'warehouse.db'}",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {
            "region_name": "eu-west-1", "endpoint_url": endpoint}}),
        "AIRFLOW_VAR_TM_LANDING": str(LOCAL / "landing"),
        "AIRFLOW_VAR_TM_SENDER": settings.DEFAULT_SENDER,
        # the emulator has no sending quota: the demo replays days in minutes
        "AIRFLOW_VAR_TM_SES_MAX_SEND_RATE": "200",
        "AIRFLOW_VAR_TM_SES_EVENTS_QUEUE": SES_EVENTS_QUEUE,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONPATH": str(settings.REPO_ROOT / "plugins"),
    }


def write_env_file(env: dict[str, str]) -> Path:
    path = LOCAL / "env.sh"
    path.write_text("".join(f"export {k}='{v}'\n" for k, v in env.items()))
    return path


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_emulator(port: int = MOTO_PORT) -> subprocess.Popen | None:
    """Start moto's server (SES v2, S3, SQS over HTTP) unless one already listens there."""
    if port_open(port):
        return None
    log = open(LOCAL / "moto.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        if port_open(port):
            return proc
        time.sleep(0.1)
    raise RuntimeError(f"the SES emulator did not start on port {port}; see {LOCAL / 'moto.log'}")


def prepare_emulator() -> None:
    """Verify the sender's domain (SES refuses unverified senders, the emulator too)."""
    from relance import aws

    ses = aws.client("sesv2")
    domain = settings.DEFAULT_SENDER.split("@")[1]
    try:
        ses.create_email_identity(EmailIdentity=domain)
    except ses.exceptions.AlreadyExistsException:
        pass
    from relance.messaging.ses import setup_subscription_management  # the `relance ses setup` deploy step
    setup_subscription_management(ses, settings.ses_contact_list(), settings.ses_unsubscribe_topic())


def prepare_events_queue() -> str:
    """The SQS queue SES events arrive on (the emulator's), emptied; its URL."""
    from relance import aws

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=SES_EVENTS_QUEUE)["QueueUrl"]
    try:  # events of an earlier demo left on a long-running emulator (make airflow's)
        sqs.purge_queue(QueueUrl=url)
    except sqs.exceptions.PurgeQueueInProgress:
        pass  # purged less than 60 s ago: already empty
    return url


def airflow_cli(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(customers: int = 2000, days: int = 3, seed: int = 7, start: str = "2026-11-16") -> int:
    started = time.time()
    warnings.filterwarnings("ignore")  # library deprecation chatter; the demo prints its own progress
    first_day = date.fromisoformat(start)
    say(f"resetting {LOCAL}")
    for name in ("landing", "airflow", "warehouse.db", "warehouse.db-wal", "warehouse.db-shm"):
        target = LOCAL / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    LOCAL.mkdir(parents=True, exist_ok=True)
    env = demo_environment()
    os.environ.update(env)
    write_env_file(env)

    from relance.shopsim import generate

    say(f"generating a synthetic shop: {customers} customers, {days} days from {first_day} (seed {seed})")
    stats = generate(LOCAL / "landing", customers=customers, days=days, start=first_day, seed=seed,
                     progress=lambda m: say(f"  shopsim: {m}"))
    say(f"  {stats['events_total']} Segment calls ({stats['orders']} orders, {stats['carts']} carts), "
        f"{stats['products']} products, {stats['malformed_lines']} malformed lines planted")

    say(f"starting the local SES/S3/SQS emulator (moto server) on port {MOTO_PORT}")
    emulator = start_emulator()
    prepare_emulator()
    queue_url = prepare_events_queue()

    say("initialising Airflow (SQLite metadata in .local/airflow) and the warehouse")
    airflow_cli("db", "migrate")
    airflow_cli("pools", "set", settings.SES_POOL, str(settings.SES_POOL_SLOTS), "SES send slots (see README)")
    from relance import warehouse

    warehouse.connect()

    try:
        replay(first_day, days, queue_url, seed)
    finally:
        if emulator is not None:
            emulator.terminate()
    from relance import reporting

    print()
    wh = warehouse.connect()
    print(reporting.format_campaign_summary(reporting.campaign_summary(wh)))
    print(reporting.format_channels(reporting.channel_figures(wh)))
    print(reporting.format_send_time(reporting.send_time_figures(wh)))
    print()
    print(reporting.format_headline(reporting.headline(wh)))
    print()
    say(f"done in {time.time() - started:.0f} s. Warehouse: {LOCAL / 'warehouse.db'}; "
        "`make airflow` shows these runs in the Airflow UI.")
    say(f"Campaigns page: `make airflow`, then {CAMPAIGNS_PAGE_URL}")
    return 0


def label_run(run, started: datetime, moment: datetime) -> None:
    """Make a replayed run read right in the UI: ``dag.test`` stamps the run's start with its
    (simulated) logical date, so the Overview would chart a run of seconds as lasting days.
    Give it its real start, and say in the run's note what it decided as of."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = session.get(DagRun, run.id)
        if stored is not None:
            stored.start_date = started
            stored.note = f"demo replay: decided as of {moment:%Y-%m-%d %H:%M} UTC (simulated time)"


def replay(first_day: date, days: int, queue_url: str, seed: int = 7) -> None:
    """Run every DAG with Airflow for each simulated hour, as the scheduler would; after the
    hour's dispatch, what its recipients do (engagement simulator) and ``ingest_ses_events``."""
    from airflow.dag_processing.dagbag import DagBag

    from relance import aws, warehouse
    from relance.shopsim.engagement import simulate

    bag = DagBag(dag_folder=str(settings.REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    planners = sorted(d for d in bag.dag_ids if d.startswith("campaign__"))
    # daily model DAGs run once a day, just after the hour whose ingest completed the day
    daily = [d for d in ("build_segments", "train_recommendations") if d in bag.dag_ids]
    begin = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    hours = days * 24
    wh = warehouse.connect(upgrade_schema=False)
    sqs, plan = aws.client("sqs"), demo_plan()
    engaged = {"events": 0, "orders": 0}
    spent = {"loop": 0.0, "feedback": 0.0}  # seconds: whole hours, and the feedback loop's share

    def run_dag(dag_id: str, moment: datetime) -> None:
        started = datetime.now(UTC)
        run = bag.get_dag(dag_id).test(logical_date=moment)
        if run.state != "success":
            raise RuntimeError(f"{dag_id} run for {moment} ended {run.state}")
        label_run(run, started, moment)

    for n in range(1, hours + 1):
        moment = begin + timedelta(hours=n)
        os.environ["RELANCE_SIMULATED_NOW"] = moment.isoformat()
        hour_started = time.time()
        for dag_id in ["ingest_behaviour", *(daily if moment.hour == 1 else []), *planners, "dispatch_messages"]:
            run_dag(dag_id, moment)
        # what the recipients of this hour's decisions do (planted), then SES's report of it
        feedback_started = time.time()
        truth = simulate(wh, sqs, queue_url, LOCAL / "landing", moment, moment + timedelta(hours=1), plan, seed=seed)
        engaged["events"] += truth.events
        engaged["orders"] += len(truth.orders)
        run_dag("ingest_ses_events", moment)
        if moment.hour == 0:  # the day just ended is complete: attribute it, refresh A/B and lift
            run_dag("campaign_report", moment)
        spent["feedback"] += time.time() - feedback_started
        spent["loop"] += time.time() - hour_started
        if n % 6 == 0 or n == hours:
            sent = wh.scalar("SELECT COUNT(*) FROM message_log WHERE status = 'sent'")
            say(f"  simulated {moment:%Y-%m-%d %H:%M} UTC ({n}/{hours} h): {sent} emails sent so far, "
                f"{engaged['events']} SES events and {engaged['orders']} orders simulated")
    say(f"  {spent['loop']:.0f} s of DAG runs, of which {spent['feedback']:.0f} s for the feedback loop "
        "(engagement simulator, ingest_ses_events, campaign_report)")
    wh.engine.dispose()
    os.environ.pop("RELANCE_SIMULATED_NOW", None)
