"""boto3 clients for SES v2, S3 and SQS.

Inside an Airflow task the client comes from the ``aws_default`` connection through the
Amazon provider's ``AwsBaseHook`` (credentials, region, ``endpoint_url`` extra); outside
(command line, tests) from boto3's own chain. Either way boto3 honours ``AWS_ENDPOINT_URL``,
which is how the demo and the tests point everything at the local emulator.
"""

from __future__ import annotations

import os
from typing import Any

from relance import settings


def client(service: str, retries: int = 3, connect_timeout: float = 60, read_timeout: float = 60) -> Any:
    """A boto3 client; ``retries=0`` turns botocore's own retries off (the SES sender retries
    itself, and never after an ambiguous timeout). The timeouts default to botocore's."""
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}, max_pool_connections=16,
                    connect_timeout=connect_timeout, read_timeout=read_timeout)
    if settings._in_airflow_task() and not os.environ.get("RELANCE_PLAIN_BOTO3"):
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(aws_conn_id=settings.AWS_CONN_ID, client_type=service, config=config)
        return hook.get_conn()
    import boto3

    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "eu-west-1"
    return boto3.client(service, region_name=region, config=config)
