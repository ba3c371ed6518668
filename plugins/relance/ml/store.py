"""The model store: ``<store>/<model>/<as_of>/`` holds a model's artifacts and ``card.json``.

``<store>`` is ``models/`` in the repo, or ``s3://bucket/prefix`` when the Airflow Variable
``tm_model_store`` says so (:func:`relance.settings.model_store`). A re-run for the same as-of
overwrites the same keys, so the store stays idempotent like the warehouse.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from relance import settings


class ModelStore:
    def __init__(self, uri: str | None = None):
        self.uri = (uri or settings.model_store()).rstrip("/")
        self.is_s3 = self.uri.startswith("s3://")

    def location(self, model: str, as_of: date) -> str:
        return f"{self.uri}/{model}/{as_of.isoformat()}"

    def _put(self, key_uri: str, body: bytes, content_type: str) -> None:
        if self.is_s3:
            from relance import aws

            bucket, _, key = key_uri[len("s3://"):].partition("/")
            aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
            return
        path = Path(key_uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(body)
        tmp.replace(path)

    def _get(self, key_uri: str) -> bytes:
        if self.is_s3:
            from relance import aws

            bucket, _, key = key_uri[len("s3://"):].partition("/")
            return aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return Path(key_uri).read_bytes()

    def save(self, model: str, as_of: date, card: dict[str, Any], artifacts: dict[str, bytes]) -> str:
        """Write the artifacts, then the card (written last: a card means a complete model).
        Returns the card's URI."""
        where = self.location(model, as_of)
        for name, body in artifacts.items():
            self._put(f"{where}/{name}", body, "application/octet-stream")
        card = {**card, "artifacts": sorted(artifacts), "location": where}
        self._put(f"{where}/card.json", json.dumps(card, indent=2, sort_keys=True, default=str).encode(),
                  "application/json")
        return f"{where}/card.json"

    def card(self, model: str, as_of: date) -> dict[str, Any]:
        return json.loads(self._get(f"{self.location(model, as_of)}/card.json"))
