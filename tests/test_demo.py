"""The demo's wiring of the feedback loop (plugins/relance/demo.py), without running it: the SES
events queue reaches Airflow and `make airflow` (env.sh), the planted engagement stays under
the deliverability guard's limits (the demo must not trip it), and the queue is created empty
on the emulator."""

from __future__ import annotations

from relance import demo
from relance.webui.page import THRESHOLDS


def test_demo_environment_names_the_ses_events_queue(tmp_path, monkeypatch):
    env = demo.demo_environment()
    assert env["AIRFLOW_VAR_TM_SES_EVENTS_QUEUE"] == demo.SES_EVENTS_QUEUE
    monkeypatch.setattr(demo, "LOCAL", tmp_path)
    assert f"export AIRFLOW_VAR_TM_SES_EVENTS_QUEUE='{demo.SES_EVENTS_QUEUE}'" in demo.write_env_file(env).read_text()


def test_demo_plan_differs_by_campaign_and_variant_and_stays_under_the_guard():
    plan = demo.demo_plan()
    a, b = plan.rates("cart_abandonment", "A"), plan.rates("cart_abandonment", "B")
    assert b.click > a.click and plan.rates("browse_abandonment", "A") != plan.default
    for rates in [plan.default, *plan.campaigns.values(), *plan.variants.values()]:
        assert (1 - rates.delivery) * rates.hard_bounce < THRESHOLDS["bounce"][1] / 2
        assert rates.complaint < THRESHOLDS["complaint"][1] / 2


def test_the_events_queue_is_created_empty(emulator):
    from relance import aws

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=demo.SES_EVENTS_QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")  # left over by an earlier demo
    assert demo.prepare_events_queue() == url
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert demo.prepare_events_queue() == url  # again within 60 s (SQS refuses a second purge): fine
