"""Campaign YAML validation: a bad file names itself, the field and what was expected."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from relance.campaigns.config import CampaignConfigError, load_campaign, load_campaigns

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_campaigns_validate():
    campaigns = load_campaigns()
    assert campaigns["order_confirmation"].is_cap_exempt
    assert not campaigns["cart_abandonment"].is_cap_exempt
    assert [s.delay for s in campaigns["cart_abandonment"].steps] == ["2h", "24h", "48h"]


@pytest.mark.parametrize("change, field, expected", [
    (("priority: 60", "priority: high"), "priority", "valid integer"),
    (("category: marketing", "category: promo"), "category", "'transactional' or 'marketing'"),
    (("delay: 24h", "delay: tomorrow"), "steps.1.delay", "expected a number and a unit"),
    (("max_lateness: 12h", "max_latenes: 12h"), "max_latenes", "Extra inputs are not permitted"),
    (("template: cart_abandonment/free_shipping", "template: cart_abandonment/nope"), "steps.2.template",
     "no template folder"),
    (("exit: order_placed\n    content: [cart_items, cart_recommendations]\n    required: [cart_items]\n"
      "  - name: reminder_24h",
      "exit: order_placd\n    content: [cart_items, cart_recommendations]\n    required: [cart_items]\n"
      "  - name: reminder_24h"),
     "steps.0.exit", "no SQL file"),
])
def test_a_bad_campaign_file_names_the_file_the_field_and_the_expectation(tmp_path, change, field, expected):
    source = (ROOT / "include/campaigns/cart_abandonment.yaml").read_text()
    assert change[0] in source
    path = tmp_path / "cart_abandonment.yaml"
    path.write_text(source.replace(change[0], change[1], 1))
    with pytest.raises(CampaignConfigError) as err:
        load_campaign(path)
    text = str(err.value)
    assert str(path) in text and f"field {field}" in text and expected in text


def test_file_name_must_match_the_id(tmp_path):
    path = tmp_path / "other.yaml"
    shutil.copy(ROOT / "include/campaigns/cart_abandonment.yaml", path)
    with pytest.raises(CampaignConfigError, match="field id: 'cart_abandonment' must equal the file name"):
        load_campaign(path)


@pytest.mark.slow
def test_a_bad_campaign_file_fails_the_dag_import(tmp_path):
    """Copy the project, break one YAML, import the DAG folder in a fresh interpreter."""
    copy = tmp_path / "repo"
    for part in ("dags", "plugins", "include"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    yaml_path = copy / "include/campaigns/cart_abandonment.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("priority: 60", "priority: -5"))
    code = ("import os, sys; sys.path.insert(0, os.path.join(sys.argv[1], 'plugins'));"
            "from airflow.dag_processing.dagbag import DagBag;"
            "b = DagBag(dag_folder=os.path.join(sys.argv[1], 'dags'));"
            "print(list(b.import_errors.values()))")
    env = {**__import__("os").environ, "RELANCE_HOME": str(copy)}
    out = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert "cart_abandonment.yaml" in out.stdout and "field priority" in out.stdout, out.stdout + out.stderr
