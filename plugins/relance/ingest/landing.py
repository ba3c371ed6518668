"""The landing zone (SPEC §5): a local folder or ``s3://bucket/prefix``, same layout in both."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from relance import aws


@dataclass(frozen=True)
class LandingFile:
    key: str        # path relative to the landing root, e.g. events/dt=2026-11-20/hour=10/a.jsonl
    uri: str        # full address, recorded as source_file
    size: int


class Landing:
    """List and read files of a landing zone."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.is_s3 = uri.startswith("s3://")
        if self.is_s3:
            bucket, _, prefix = self.uri[len("s3://"):].partition("/")
            self.bucket, self.prefix = bucket, (prefix + "/" if prefix else "")
            self._s3 = aws.client("s3")
        else:
            self.root = Path(uri)

    def list(self, folder: str) -> list[LandingFile]:
        """Files directly or indirectly under ``folder`` (relative), sorted by key."""
        folder = folder.strip("/") + "/"
        out: list[LandingFile] = []
        if self.is_s3:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + folder):
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix):]
                    out.append(LandingFile(key, f"s3://{self.bucket}/{obj['Key']}", obj["Size"]))
        else:
            base = self.root / folder
            if base.is_dir():
                for path in base.rglob("*"):
                    if path.is_file():
                        key = path.relative_to(self.root).as_posix()
                        out.append(LandingFile(key, str(path), path.stat().st_size))
        return sorted(out, key=lambda f: f.key)

    def read_bytes(self, file: LandingFile) -> bytes:
        if self.is_s3:
            data = self._s3.get_object(Bucket=self.bucket, Key=self.prefix + file.key)["Body"].read()
        else:
            data = (self.root / file.key).read_bytes()
        if file.key.endswith(".gz"):
            data = gzip.decompress(data)
        return data

    # -- layout ------------------------------------------------------------------
    @staticmethod
    def events_folder(hour: datetime) -> str:
        return f"events/dt={hour:%Y-%m-%d}/hour={hour:%H}"

    def catalog_dates(self) -> list[date]:
        """Dates of the catalog snapshots present, oldest first."""
        dates = set()
        for file in self.list("catalog"):
            parts = file.key.split("/")
            if len(parts) == 3 and parts[1].startswith("dt=") and parts[2] == "products.csv":
                try:
                    dates.add(date.fromisoformat(parts[1][3:]))
                except ValueError:
                    continue
        return sorted(dates)

    def catalog_file(self, day: date) -> LandingFile | None:
        files = [f for f in self.list(f"catalog/dt={day.isoformat()}") if f.key.endswith("products.csv")]
        return files[0] if files else None
