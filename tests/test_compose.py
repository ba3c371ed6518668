"""docker-compose.yml cannot run here (no Docker engine): check it by parsing."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_declares_the_production_like_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("postgres", "redis", "ses-emulator", "airflow-apiserver", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-init"):
        assert name in services, name
    worker = services["airflow-worker"]
    env = worker["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW_CONN_WAREHOUSE"].startswith("postgresql://")
    assert "endpoint_url" in env["AIRFLOW_CONN_AWS_DEFAULT"]
    mounts = {v.split(":")[1] for v in services["airflow-scheduler"]["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include", "/opt/airflow/models"} <= mounts
    assert "pools set ses_send" in " ".join(services["airflow-init"]["command"])
    assert (ROOT / "Dockerfile").read_text().count("requirements.txt") >= 1
