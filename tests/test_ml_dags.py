"""``build_segments`` and ``train_recommendations`` run by Airflow itself (``dag.test``).

The wiring only — each run's as-of (midnight for a manual run at 00:30), the warehouse
connection, the model store Variable, the model cards: the models themselves are tested as
functions on both backends in tests/test_ml_models.py. So one backend here: PostgreSQL, the
production one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relance import warehouse
from relance.ingest import ingest_window
from relance.shopsim import generate

START = datetime(2026, 11, 16, tzinfo=UTC)


@pytest.mark.slow
@pytest.mark.backend("postgresql")
@pytest.mark.timeout(600)
def test_both_dags_fill_the_warehouse_and_write_a_card_each(dagbag, warehouse_url, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    generate(landing, customers=600, days=1, start=START.date(), seed=9)
    models = tmp_path / "models"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("AIRFLOW_VAR_TM_MODEL_STORE", str(models))
    wh = warehouse.connect(warehouse_url)
    ingest_window(wh, str(landing), START, START + timedelta(days=1))
    # a manual run at 00:30 gets the last whole daily interval: it decides as of midnight
    logical = START + timedelta(days=1, minutes=30)
    for dag_id in ("build_segments", "train_recommendations"):
        run = dagbag.get_dag(dag_id).test(logical_date=logical)
        assert run.state == "success", dag_id
    day = {"d": (START + timedelta(days=1)).date()}
    # one segment row per known customer, as of the interval's end and no other day
    assert wh.scalar("SELECT COUNT(*) FROM customer_segments WHERE as_of = :d", day) == wh.scalar(
        "SELECT COUNT(*) FROM customers")
    assert wh.scalar("SELECT COUNT(DISTINCT as_of) FROM customer_segments") == 1
    assert wh.scalar("SELECT COUNT(*) FROM recommendations WHERE as_of = :d AND customer_id = '*'", day) == 20
    assert wh.scalar("SELECT COUNT(DISTINCT as_of) FROM recommendations") == 1
    assert wh.scalar("SELECT COUNT(*) FROM product_complements") > 0
    for model in ("segments", "recommender"):
        card = json.loads(Path(models / model / "2026-11-17" / "card.json").read_text())
        assert card["as_of"].startswith("2026-11-17T00:00")
    wh.engine.dispose()
