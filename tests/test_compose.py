"""docker-compose.yml cannot run here (no Docker engine): check by parsing that it wires the
production-like stack of SPEC §3 together — one Airflow image and configuration for every
Airflow service, CeleryExecutor over Redis, PostgreSQL for Airflow and the warehouse, the
emulator where the AWS connection points, include/ and models/ where relance.settings looks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from relance import settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
COMMON = COMPOSE["x-airflow-common"]
ENV = COMMON["environment"]
AIRFLOW_SERVICES = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                    "airflow-worker": "celery worker", "airflow-init": None}


def test_the_stack_is_airflow_postgres_redis_and_the_emulator_nothing_else():
    assert set(SERVICES) == set(AIRFLOW_SERVICES) | {"postgres", "redis", "ses-emulator"}


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_every_airflow_service_runs_the_same_image_configuration_and_mounts(name):
    service = SERVICES[name]
    assert service["image"] == COMMON["image"] == "relance-airflow:local" and service["build"] == "."
    env = service["environment"]
    assert {k: env.get(k) for k in ENV} == ENV, "the shared environment, overridden nowhere"
    assert service["volumes"] == COMMON["volumes"]
    assert {d: c["condition"] for d, c in service["depends_on"].items() if d in ("postgres", "redis")} == {
        "postgres": "service_healthy", "redis": "service_healthy"}
    if AIRFLOW_SERVICES[name]:
        assert service["command"] == AIRFLOW_SERVICES[name]
        assert service["restart"] == "always"
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_celery_executor_with_a_redis_broker_and_postgres_for_metadata_and_results():
    assert ENV["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(ENV["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis" and broker.port == 6379
    assert "6379" in [str(p) for p in SERVICES["redis"]["expose"]]
    metadata = urlsplit(ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.scheme.startswith("postgresql") and metadata.hostname == "postgres"
    assert urlsplit(ENV["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")).hostname == "postgres"
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    for name in ("postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_workers_reach_the_execution_api_of_the_api_server():
    url = urlsplit(ENV["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == "airflow-apiserver" and url.path == "/execution/"
    assert f"{url.port}:{url.port}" in SERVICES["airflow-apiserver"]["ports"]
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_include_and_models_are_mounted_where_relance_settings_finds_them():
    mounts = dict(v.split(":")[:2][::-1] for v in COMMON["volumes"])  # container path → host path
    home = ENV["RELANCE_HOME"]
    for folder in ("dags", "plugins", "include", "models"):
        assert mounts[f"{home}/{folder}"] == f"./{folder}", folder
        assert (ROOT / folder).is_dir()
    assert mounts[ENV["AIRFLOW_VAR_TM_LANDING"]].startswith("./")
    assert settings.INCLUDE_DIR.relative_to(settings.REPO_ROOT) == Path("include")
    assert settings.MODELS_DIR.relative_to(settings.REPO_ROOT) == Path("models")


def test_the_warehouse_is_its_own_postgres_database_created_at_first_start():
    warehouse = urlsplit(ENV["AIRFLOW_CONN_WAREHOUSE"])
    assert warehouse.scheme == "postgresql" and warehouse.hostname == "postgres"
    init = (ROOT / "include/docker/postgres-init.sql").read_text()
    assert f"CREATE USER {warehouse.username} WITH PASSWORD '{warehouse.password}'" in init
    assert f"CREATE DATABASE {warehouse.path.strip('/')} OWNER {warehouse.username}" in init
    assert any(v.startswith("./include/docker/postgres-init.sql:/docker-entrypoint-initdb.d/")
               for v in SERVICES["postgres"]["volumes"])


def test_the_aws_connection_points_at_the_emulator_and_the_sender_domain_is_verified():
    extra = json.loads(ENV["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]
    endpoint = urlsplit(extra["endpoint_url"])
    assert endpoint.hostname == "ses-emulator"
    assert f"-p {endpoint.port}" in " ".join(SERVICES["ses-emulator"]["command"])
    init = " ".join(SERVICES["airflow-init"]["command"])
    domain = ENV["AIRFLOW_VAR_TM_SENDER"].split("@")[1]
    assert f"EmailIdentity='{domain}'" in init and f"endpoint_url='{extra['endpoint_url']}'" in init
    assert float(ENV["AIRFLOW_VAR_TM_SES_MAX_SEND_RATE"]) > 0


def test_init_migrates_creates_the_ses_pool_and_the_warehouse_schema():
    init = " ".join(SERVICES["airflow-init"]["command"])
    assert init.index("airflow db migrate") < init.index("pools set")
    assert f"pools set {settings.SES_POOL} {settings.SES_POOL_SLOTS} " in init
    assert "warehouse.connect()" in init  # applies the warehouse migrations


def test_the_image_is_the_pinned_airflow_with_the_pinned_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.\d+\s*$", dockerfile, re.M), pinned
    assert re.search(r"^RUN pip install .*-r /?requirements\.txt", dockerfile, re.M)
