"""Shared fixtures: a warehouse on SQLite *and* PostgreSQL, the SES emulator, Airflow.

PostgreSQL comes from ``TM_TEST_POSTGRES_URL`` (default: the local server's ``test``
database); each test gets a schema of its own. Without a reachable PostgreSQL the PostgreSQL
half of the suite is skipped locally, and *fails* under ``CI=true``.
"""

from __future__ import annotations

import os
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


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path):
    """A fresh, empty warehouse URI on each backend."""
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
def run_at(dagbag, monkeypatch):
    """Scenario runner through Airflow: at each instant ('2026-11-20 09:00', on the hour) the
    landing zone is ingested up to it, then each campaign's ``campaign__<id>`` planner and
    ``dispatch_messages`` run as real DAG runs (``dag.test``), deciding as of that instant.

    Ingestion catches up over the gap between instants with the function the hourly
    ``ingest_behaviour`` task calls (scenarios jump months ahead; one DAG run per hour would
    only repeat it).
    """
    from helpers import at
    from relance.ingest import ingest_window

    def run(wh, landing, campaigns: dict, instants: list[str], ingest_from: str, dispatch_runs: bool = True):
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", wh.uri)
        previous = at(ingest_from)
        for text in instants:
            moment = at(text)
            assert moment.minute == 0, "scenario instants are run ends: on the hour"
            if moment > previous:
                ingest_window(wh, str(landing), previous, moment)
                previous = moment
            monkeypatch.setenv("RELANCE_SIMULATED_NOW", moment.isoformat())
            dag_ids = [f"campaign__{cid}" for cid in campaigns] + (["dispatch_messages"] if dispatch_runs else [])
            for dag_id in dag_ids:
                assert dagbag.get_dag(dag_id).test(logical_date=moment).state == "success", (dag_id, text)

    return run


@pytest.fixture(scope="session")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))
