"""Shared fixtures: a warehouse on SQLite *and* PostgreSQL, the SES emulator, Airflow.

PostgreSQL comes from ``TM_TEST_POSTGRES_URL`` (default: the local server's ``test``
database); each test gets a schema of its own. Without a reachable PostgreSQL the PostgreSQL
half of the suite is skipped locally, and *fails* under ``CI=true``.

Lanes (markers, see pyproject.toml): every test that needs a warehouse runs on each backend
of ``RELANCE_TEST_BACKENDS`` (default ``sqlite,postgresql``; ignored under ``CI=true``, where
both always run); ``@pytest.mark.backend("postgresql")`` narrows a test to some backends; the
PostgreSQL half is marked ``postgres`` and every test that runs DAGs in Airflow (the ``dagbag``
fixture: a metadata database, ``dag.test``) ``airflow``. ``make test-fast`` = SQLite,
``not airflow and not slow``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Airflow reads its configuration once, at import: set it before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="relance-airflow-home-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)  # one per test process: not left in /tmp
os.environ.update({
    "AIRFLOW_HOME": _AIRFLOW_HOME,
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
})
for _var in ("AIRFLOW_CONN_WAREHOUSE", "AIRFLOW_VAR_TM_LANDING", "AWS_ENDPOINT_URL", "RELANCE_SIMULATED_NOW"):
    os.environ.pop(_var, None)

PG_URL = os.environ.get("TM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ("sqlite", "postgresql")


def selected_backends() -> tuple[str, ...]:
    """The backends this session tests: ``RELANCE_TEST_BACKENDS`` (comma-separated), all under CI."""
    raw = os.environ.get("RELANCE_TEST_BACKENDS", "")
    if IN_CI or not raw.strip():
        return BACKENDS
    chosen = tuple(b.strip() for b in raw.split(",") if b.strip())
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"RELANCE_TEST_BACKENDS: unknown backend(s) {sorted(unknown)}; known: {BACKENDS}")
    return chosen


def backend_params(*only: str) -> list:
    """pytest params for the selected backends (of ``only``, if given); PostgreSQL marked ``postgres``."""
    return [pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgresql" else [])
            for b in selected_backends() if not only or b in only]


def pytest_generate_tests(metafunc):
    """Parametrise every test that needs ``warehouse_url`` (directly or through ``wh``) over the
    selected backends, narrowed by ``@pytest.mark.backend(...)``."""
    if "warehouse_url" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backend")
    only = marker.args if marker else ()
    unknown = set(only) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: backend({', '.join(only)}): unknown {unknown}")
    metafunc.parametrize("warehouse_url", backend_params(*only), indirect=True)


def pytest_collection_modifyitems(config, items):
    """Tests that run DAGs in Airflow (``dag.test`` on the session's metadata DB) are marked ``airflow``."""
    for item in items:
        if {"dagbag", "airflow_home"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.airflow)


def _pg_reachable() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    problem = _pg_reachable()
    if problem is None:
        return True
    if IN_CI:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable and CI=true: {problem}")
    pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {problem}")
    return False


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def warehouse_url(request, tmp_path):
    """A fresh, empty warehouse URI on each selected backend (parametrised by pytest_generate_tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    request.getfixturevalue("postgres_available")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def wh(warehouse_url):
    from relance import warehouse

    db = warehouse.connect(warehouse_url)
    yield db
    db.engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    """moto in server mode: a real HTTP endpoint for SES v2, S3 and SQS."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def reset(self) -> None:
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self.verify_sender()

    def verify_sender(self, domain: str = "shop.example") -> None:
        from relance import aws

        aws.client("sesv2").create_email_identity(EmailIdentity=domain)

    def sent_messages(self) -> list[dict]:
        """Every message the emulator accepted: dicts with ``id``, ``raw_data``, ``destinations``."""
        import requests

        data = requests.get(f"{self.endpoint}/moto-api/data.json", timeout=10).json()
        return list(data.get("ses", {}).get("RawMessage", []))


@pytest.fixture(scope="session")
def emulator():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    emu = Emulator(endpoint)
    emu.verify_sender()
    yield emu
    server.stop()
    os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture
def ses(emulator):
    """The emulator, emptied for this test, sender verified."""
    emulator.reset()
    return emulator


@pytest.fixture(scope="session")
def campaigns():
    """The shipped campaign definitions, validated."""
    from relance.campaigns.config import load_campaigns

    return load_campaigns()


@pytest.fixture(scope="session")
def airflow_home():
    """Airflow's metadata DB (SQLite) initialised once for the session, with the SES pool."""
    env = dict(os.environ)
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, env=env, capture_output=True)
    subprocess.run([str(BIN / "airflow"), "pools", "set", "ses_send", "4", "SES send slots"], check=True,
                   env=env, capture_output=True)
    return Path(_AIRFLOW_HOME)


@pytest.fixture
def run_at(monkeypatch):
    """Scenario runner: at each instant ('2026-11-20 09:00', on the hour) the landing zone is
    ingested up to it, then each campaign's planner and the dispatcher run as of that instant,
    through the very functions their Airflow tasks call, with the same arguments
    (:func:`helpers.plan_at`, :func:`helpers.dispatch_at`; the wall clock pinned to the instant
    by ``RELANCE_SIMULATED_NOW``, as the demo's replay does). A problem that would turn the
    dispatcher's ``report`` task red (a template error, the deliverability guard) fails the scenario.

    The planners plan the given campaigns; the dispatcher, like the DAG, knows every shipped
    campaign (those given override theirs). That Airflow runs these functions with these
    arguments is proven by tests/test_scenarios_airflow.py and tests/test_integration_airflow.py.

    Relance is live from ``ingest_from`` on (the first planner run of a real deployment marks
    its own interval start; a scenario that begins later than the events would otherwise treat
    them as the onboarding history, which never triggers).

    Ingestion catches up over the gap between instants with the function the hourly
    ``ingest_behaviour`` task calls (scenarios jump months ahead; one run per hour would only
    repeat it).
    """
    from helpers import at, dispatch_at, plan_at
    from relance.campaigns.config import load_campaigns
    from relance.campaigns.planner import mark_live_since
    from relance.ingest import ingest_window

    shipped: dict = {}  # the shipped definitions, read once per test (0.3 s a read)

    def run(wh, landing, campaigns: dict, instants: list[str], ingest_from: str, dispatch_runs: bool = True):
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
        if not shipped:
            shipped.update(load_campaigns())
        known = {**shipped, **campaigns}
        previous = at(ingest_from)
        # the scenario starts with Relance already live: what happens from ingest_from on is not
        # history (a later call never moves it; the go-live tests set it themselves)
        mark_live_since(wh, previous)
        for text in instants:
            moment = at(text)
            assert moment.minute == 0, "scenario instants are run ends: on the hour"
            if moment > previous:
                ingest_window(wh, str(landing), previous, moment)
                previous = moment
            monkeypatch.setenv("RELANCE_SIMULATED_NOW", moment.isoformat())
            for campaign in campaigns.values():
                plan_at(wh, campaign, moment)
            if dispatch_runs:
                dispatch_at(wh, known, moment, fail_on_problems=True)

    return run


def _shorten_dag_test_polling() -> None:
    """``dag.test`` polls its run's state with ``time.sleep(1)`` whenever no task is schedulable
    yet (e.g. ``dispatch_messages.report`` after an empty mapped ``send_batch``): a second lost
    per dispatcher run. Shorten that one sleep (only when called from ``Dag.test`` itself) to
    20 ms; every other sleep is untouched."""
    import time

    if getattr(time.sleep, "_relance_short_poll", False):
        return
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        caller = sys._getframe(1)
        if caller.f_code.co_name == "test" and caller.f_globals.get("__name__") == "airflow.sdk.definitions.dag":
            seconds = min(seconds, 0.02)
        real_sleep(seconds)

    sleep._relance_short_poll = True
    time.sleep = sleep


@pytest.fixture(scope="session")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    _shorten_dag_test_polling()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    for dag in bag.dags.values():
        _fresh_params_each_test_run(dag)
    return bag


def _fresh_params_each_test_run(dag) -> None:
    """``dag.test(run_conf=…)`` runs the tasks in this process, and Airflow merges the run's
    conf into the very ``Param`` objects of the DAG and its tasks (``process_params`` sets their
    values): a trigger-form value (a dry run, an erasure request) would stay the default of every
    later run of that DAG in the session. Each run starts from the params the file declared."""
    import copy

    pristine = copy.deepcopy(dag.params), {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
    run = dag.test

    def test(*args, **kwargs):
        dag.params = copy.deepcopy(pristine[0])
        for task in dag.tasks:
            task.params = copy.deepcopy(pristine[1][task.task_id])
        return run(*args, **kwargs)

    object.__setattr__(dag, "test", test)


# -- figures ---------------------------------------------------------------------------------
#: Prefixes of the figure lines some tests print (reliability, privacy, properties, hostile input, send rate): `make test` shows them
#: at the end of the run, although pytest captures the output of passing tests.
FIGURE_PREFIXES = ("[reliability]", "[privacy]", "[property]", "[hostile]", "[send rate]")
_figures: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _figures.extend(line.strip() for line in report.capstdout.splitlines()
                        if line.strip().startswith(FIGURE_PREFIXES))


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("figures")
        for line in _figures:
            terminalreporter.write_line(line)
