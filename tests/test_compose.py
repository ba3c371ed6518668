"""docker-compose.yml cannot run here (no Docker engine): check that it wires the production-like
stack of SPEC §3 together — one Airflow image and configuration for every Airflow service,
CeleryExecutor over Redis, PostgreSQL for Airflow and the warehouse, the emulator where the AWS
connection points, include/ and models/ where relance.settings looks — and that it runs what
`make e2e-celery` proves: the same settings (airflow.env, read by both) and the same pinned
packages (requirements.txt + constraints.txt, installed in the image and in this .venv).

Debian's `docker-compose config` (apt-get install docker-compose), when installed, renders the
file the way Docker would (env_file merged, anchors resolved); otherwise the YAML is parsed here."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from relance import settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
COMMON = COMPOSE["x-airflow-common"]
ENV_FILE = "airflow.env"
AIRFLOW_SERVICES = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                    "airflow-worker": "celery worker", "airflow-init": None}
#: never in the production image (requirements.txt): they are requirements-dev.txt's
TEST_TOOLS = {"moto", "pytest", "pytest-timeout", "hypothesis", "ruff", "responses", "docker", "flask",
              "requests"}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, `#` comments: the subset of the env-file format both readers share."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"not KEY=VALUE: {line!r}"
            assert not value.startswith(("'", '"')), f"{key}: no quotes (compose and the e2e would differ)"
            env[key] = value
    return env


SHARED = read_env_file(ROOT / ENV_FILE)
ENV = {**SHARED, **COMMON["environment"]}  # what every Airflow container gets


def pins(path: Path) -> dict[str, str]:
    """name (lower case, extras dropped) → pinned version of a requirements/constraints file."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==(\S+)", line)
            assert match, f"{path.name}: not pinned with ==: {line!r}"
            found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


REQUIREMENTS = pins(ROOT / "requirements.txt")
DEV = pins(ROOT / "requirements-dev.txt")
CONSTRAINTS = pins(ROOT / "constraints.txt")


def load_e2e():
    spec = importlib.util.spec_from_file_location("celery_e2e", ROOT / "tests/e2e/celery_e2e.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stack_is_airflow_postgres_redis_and_the_emulator_nothing_else():
    assert set(SERVICES) == set(AIRFLOW_SERVICES) | {"postgres", "redis", "ses-emulator"}


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_every_airflow_service_runs_the_same_image_configuration_and_mounts(name):
    service = SERVICES[name]
    assert service["image"] == COMMON["image"] == "relance-airflow:local" and service["build"] == "."
    assert service["env_file"] == [ENV_FILE]
    env = service["environment"]
    assert {k: env.get(k) for k in COMMON["environment"]} == COMMON["environment"], "overridden nowhere"
    assert not set(env) & set(SHARED), f"{name} restates settings of {ENV_FILE}: {set(env) & set(SHARED)}"
    assert service["volumes"] == COMMON["volumes"]
    assert {d: c["condition"] for d, c in service["depends_on"].items() if d in ("postgres", "redis")} == {
        "postgres": "service_healthy", "redis": "service_healthy"}
    if AIRFLOW_SERVICES[name]:
        assert service["command"] == AIRFLOW_SERVICES[name]
        assert service["restart"] == "always"
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose is not installed (apt-get install docker-compose)")
def test_docker_compose_renders_airflow_env_into_every_airflow_service():
    rendered = yaml.safe_load(subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
                                             capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    for name in AIRFLOW_SERVICES:
        env = {k: "" if v is None else str(v) for k, v in rendered["services"][name]["environment"].items()}
        extra = {"DUMB_INIT_SETSID": "0"} if name == "airflow-worker" else {}
        if name == "airflow-init":
            extra = {"_AIRFLOW_DB_MIGRATE": "true"}
        assert env == {**ENV, **extra}, name
    assert rendered["services"]["ses-emulator"]["image"] == SERVICES["ses-emulator"]["image"]


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


def test_the_image_can_run_that_executor_celery_provider_celery_and_the_redis_client_pinned():
    for name in ("apache-airflow-providers-celery", "celery", "redis"):
        assert name in REQUIREMENTS, f"CeleryExecutor needs {name} in requirements.txt"
    # and the metadata DB driver of SQL_ALCHEMY_CONN comes with the postgres provider
    assert "apache-airflow-providers-postgres" in REQUIREMENTS and "psycopg2-binary" in CONSTRAINTS


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
    emulator = SERVICES["ses-emulator"]
    assert emulator["entrypoint"][:1] == ["moto_server"]
    assert f"-p {endpoint.port}" in " ".join(emulator["entrypoint"]) and f"{endpoint.port}:" in emulator["ports"][0]
    init = " ".join(SERVICES["airflow-init"]["command"])
    domain = ENV["AIRFLOW_VAR_TM_SENDER"].split("@")[1]
    assert f"EmailIdentity='{domain}'" in init and f"endpoint_url='{extra['endpoint_url']}'" in init
    assert float(ENV["AIRFLOW_VAR_TM_SES_MAX_SEND_RATE"]) > 0


def test_the_emulator_is_moto_at_the_tests_pinned_version_not_the_production_image():
    image, tag = SERVICES["ses-emulator"]["image"].split(":")
    assert image == "motoserver/moto" and tag == DEV["moto"], "the emulator runs the moto the tests run"
    assert "build" not in SERVICES["ses-emulator"]


def test_init_migrates_creates_the_ses_pool_and_the_warehouse_schema():
    init = " ".join(SERVICES["airflow-init"]["command"])
    assert init.index("airflow db migrate") < init.index("pools set")
    assert f"pools set {settings.SES_POOL} {settings.SES_POOL_SLOTS} " in init
    assert "warehouse.connect()" in init  # applies the warehouse migrations


def test_the_image_is_the_pinned_airflow_with_the_pinned_requirements_and_constraints():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = REQUIREMENTS["apache-airflow"]
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.11\s*$", dockerfile, re.M), pinned
    install = re.search(r"^RUN pip install (.*)$", dockerfile, re.M).group(1)
    assert f'"apache-airflow=={pinned}"' in install  # Airflow's advice: never let pip move Airflow
    assert "-r /requirements.txt" in install and "-c /constraints.txt" in install
    assert re.search(r"^COPY requirements\.txt constraints\.txt /\s*$", dockerfile, re.M)


def test_production_requirements_are_direct_pins_without_test_tools():
    assert not TEST_TOOLS & set(REQUIREMENTS), TEST_TOOLS & set(REQUIREMENTS)
    assert len(REQUIREMENTS) <= 30, "direct dependencies only: the transitive ones are constraints.txt's"
    assert {"moto", "pytest", "ruff"} <= set(DEV)
    # one list: pyproject.toml reads its dependencies from requirements.txt
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["dependencies"]' in pyproject
    assert 'dependencies = { file = ["requirements.txt"] }' in pyproject


def test_every_pin_agrees_with_the_constraints_and_is_what_this_venv_runs():
    """The image installs requirements.txt with constraints.txt; `make install` installs the same
    into .venv, which `make e2e-celery` and the tests run: same versions everywhere."""
    for name, pinned in {**REQUIREMENTS, **DEV}.items():
        assert CONSTRAINTS.get(name) == pinned, f"{name}: requirements {pinned}, constraints {CONSTRAINTS.get(name)}"
        assert version(name) == pinned, f"{name}: pinned {pinned}, installed {version(name)} (run make install)"
    assert version("apache-airflow-core") == CONSTRAINTS["apache-airflow-core"]
    # it stands in for Airflow's constraints file of the pinned release
    assert f"constraints-{REQUIREMENTS['apache-airflow']}" in (ROOT / "constraints.txt").read_text()


def test_make_e2e_celery_runs_the_compose_configuration():
    """`make e2e-celery` proves this stack: it starts Airflow with airflow.env unchanged, and sets
    every host-specific setting compose sets, to this machine's services of the same kinds."""
    from datetime import UTC, datetime

    e2e = load_e2e()
    assert e2e.ENV_FILE == ROOT / ENV_FILE and e2e.read_env_file() == SHARED
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    env = e2e.airflow_environment(ROOT / ".local/e2e", "meta", "wh", 8081, 5055, now, now)
    assert {k: env[k] for k in SHARED} == SHARED, "airflow.env, overridden nowhere"
    hosts = COMMON["environment"]
    assert set(hosts) - {"RELANCE_HOME"} <= set(env), set(hosts) - set(env)  # the e2e runs from the checkout
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
                "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW_CONN_WAREHOUSE", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        assert urlsplit(env[key]).scheme == urlsplit(hosts[key]).scheme, key
        assert urlsplit(env[key]).hostname == "127.0.0.1", key
    assert urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).path == "/execution/"
    compose_aws, e2e_aws = (json.loads(e["AIRFLOW_CONN_AWS_DEFAULT"]) for e in (hosts, env))
    assert {k: v for k, v in e2e_aws.items() if k != "extra"} == {k: v for k, v in compose_aws.items() if k != "extra"}
    assert e2e_aws["extra"]["region_name"] == compose_aws["extra"]["region_name"]
    # what only the replay changes (the e2e's docstring says why), nothing else
    extra = set(env) - set(SHARED) - set(hosts)
    assert {k for k in extra if k.startswith("AIRFLOW__") and "PORT" not in k} == {
        "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE",
        "AIRFLOW__API__BASE_URL", "AIRFLOW__LOGGING__LOGGING_LEVEL", "AIRFLOW__OPERATORS__DEFAULT_QUEUE"}
    assert (ROOT / "Makefile").read_text().count("tests/e2e/celery_e2e.py") == 1
    assert "make e2e-celery" in (ROOT / ".ci/run").read_text()
