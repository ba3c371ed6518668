"""The landing zone (SPEC §5): a local folder or ``s3://bucket/prefix``, same layout in both."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

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

    @contextmanager
    def open(self, file: LandingFile) -> Iterator[BinaryIO]:
        """A binary stream of the file's content (gunzipped for ``.gz``), read as it is consumed:
        a large file is never held whole in memory."""
        if self.is_s3:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.prefix + file.key)["Body"]
            raw: BinaryIO = io.BufferedReader(_ReadOnly(body), buffer_size=1 << 20)
        else:
            raw = (self.root / file.key).open("rb", buffering=1 << 20)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if file.key.endswith(".gz") else raw
        try:
            yield stream
        finally:
            stream.close()
            raw.close()

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


class _ReadOnly(io.RawIOBase):
    """An S3 response body as a raw stream (so it can be buffered and read line by line)."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def iter_lines(stream: BinaryIO, limit: int) -> Iterator[bytes]:
    """The lines of a stream; a line longer than ``limit`` bytes is yielded cut to ``limit + 1``
    bytes (the caller quarantines it) and the rest of it skipped, never held in memory."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line
