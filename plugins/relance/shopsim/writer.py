"""Writes JSON lines into the landing zone's hour folders, in arrival order.

Lines are routed by *arrival* time (when the shop's pipeline delivered them), not by their
``timestamp``: a late event has an arrival hours after its timestamp, a duplicate a second
arrival. Each hour folder is written once all the lines that can arrive in it are known.
"""

from __future__ import annotations

import gzip as gzip_module
import io
from datetime import date, timedelta
from pathlib import Path

import numpy as np

HOUR_MS = 3_600_000


class HourFolder:
    def __init__(self, path: Path, use_gzip: bool, max_lines: int):
        self.path, self.use_gzip, self.max_lines = path, use_gzip, max_lines
        self.file_no = 0
        self.in_file = 0
        self.handle: io.BufferedWriter | gzip_module.GzipFile | None = None
        self.raw: io.BufferedWriter | None = None
        self.files: list[Path] = []
        self.lines = 0

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        name = self.path / f"events-{self.file_no:04d}.jsonl{'.gz' if self.use_gzip else ''}"
        self.files.append(name)
        raw = open(name, "wb")  # closed in _close
        if self.use_gzip:
            self.raw = raw
            self.handle = gzip_module.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
        else:
            self.raw, self.handle = None, raw
        self.in_file = 0

    def _close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            if self.raw is not None:
                self.raw.close()
            self.handle = self.raw = None
            self.file_no += 1

    def write(self, lines: list[str]) -> None:
        pos = 0
        while pos < len(lines):
            if self.handle is None:
                self._open()
            room = self.max_lines - self.in_file
            chunk = lines[pos: pos + room]
            self.handle.write(("\n".join(chunk) + "\n").encode("utf-8"))
            self.in_file += len(chunk)
            self.lines += len(chunk)
            pos += len(chunk)
            if self.in_file >= self.max_lines:
                self._close()

    def close(self) -> None:
        if self.handle is None and not self.files:
            self._open()  # an hour with no event still gets its (empty) file
        self._close()


class LandingWriter:
    def __init__(self, out_dir: Path, start: date, days: int, use_gzip: bool, max_lines: int = 200_000):
        self.out_dir, self.start, self.days = out_dir, start, days
        self.use_gzip, self.max_lines = use_gzip, max_lines
        self.start_ms = (start - date(1970, 1, 1)).days * 86_400_000
        self.n_hours = days * 24
        self.pending: dict[int, list[tuple[np.ndarray, list[str]]]] = {}
        self.folders: dict[int, HourFolder] = {}
        self.flushed_until = 0
        self.files: list[Path] = []
        self.lines = 0

    def folder(self, hour: int) -> HourFolder:
        if hour not in self.folders:
            d = self.start + timedelta(days=hour // 24)
            path = self.out_dir / "events" / f"dt={d.isoformat()}" / f"hour={hour % 24:02d}"
            self.folders[hour] = HourFolder(path, self.use_gzip, self.max_lines)
        return self.folders[hour]

    def write_now(self, hour: int, lines: list[str]) -> None:
        """Write lines to an hour folder ahead of the buffered ones (the onboarding import)."""
        self.folder(hour).write(lines)

    def push(self, arrival_ms: np.ndarray, lines: list[str]) -> None:
        if not lines:
            return
        hour = (arrival_ms - self.start_ms) // HOUR_MS
        if hour.min() < self.flushed_until or hour.max() >= self.n_hours:
            raise ValueError("arrival outside the writable window")
        order = np.argsort(hour, kind="stable")
        hs = hour[order]
        cuts = np.flatnonzero(np.diff(hs)) + 1
        for grp in np.split(order, cuts):
            h = int(hour[grp[0]])
            self.pending.setdefault(h, []).append((arrival_ms[grp], [lines[i] for i in grp.tolist()]))

    def flush_until(self, hour_exclusive: int) -> None:
        for h in range(self.flushed_until, min(hour_exclusive, self.n_hours)):
            parts = self.pending.pop(h, [])
            if parts:
                arrival = np.concatenate([a for a, _ in parts])
                lines = [line for _, ls in parts for line in ls]
                order = np.argsort(arrival, kind="stable")
                self.folder(h).write([lines[i] for i in order.tolist()])
            f = self.folder(h)
            f.close()
            self.files.extend(f.files)
            self.lines += f.lines
            del self.folders[h]
        self.flushed_until = max(self.flushed_until, min(hour_exclusive, self.n_hours))
