"""Parsing a large landing file on several cores while the warehouse writes (issue 9).

Parsing and validating Segment calls is Python work of ~30 µs a line: an onboarding import of
millions of lines is CPU-bound in one process. :func:`parallel_batches` cuts the file's lines
into the very chunks :func:`relance.ingest.events.iter_batches` would make (same boundaries,
same line numbers, same per-chunk duplicate check), parses them in worker processes and yields
the batches in file order, at most a few chunks ahead (memory stays bounded), while the caller
writes the previous ones. The batches are identical to the serial ones; where worker processes
cannot start (a daemonic process, a platform without ``fork``) it falls back to parsing here.
Workers come from a fork server (a clean interpreter), never from a fork of this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime

from relance.ingest.events import CHUNK_LINES, MAX_LINE_BYTES, ParsedBatch, iter_batches

log = logging.getLogger(__name__)

#: files at least this large are parsed by worker processes
PARALLEL_MIN_BYTES = 32 << 20


def parse_workers() -> int:
    """Worker processes for a large file: the cores but one (the warehouse writes), at least 1,
    at most 4; ``RELANCE_PARSE_WORKERS`` overrides (0 = parse in-process)."""
    env = os.environ.get("RELANCE_PARSE_WORKERS")
    if env is not None:
        return max(0, int(env))
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def _chunks(lines: Iterable[bytes], chunk_lines: int) -> Iterator[tuple[int, list[bytes]]]:
    """(first line number, raw lines) of each chunk iter_batches would parse as one batch: a
    chunk closes when a line arrives after ``chunk_lines`` counted lines (blank lines are not
    counted, over-long ones are)."""
    chunk: list[bytes] = []
    first, counted = 1, 0
    for line_no, raw in enumerate(lines, start=1):
        if counted >= chunk_lines:
            yield first, chunk
            chunk, first, counted = [], line_no, 0
        chunk.append(raw)
        if len(raw) > MAX_LINE_BYTES or raw.strip():
            counted += 1
    yield first, chunk


def _parse_chunk(args: tuple[list[bytes], str, datetime, int]) -> ParsedBatch:
    raw_lines, source_file, now, first = args
    return next(iter_batches(raw_lines, source_file, now, chunk_lines=1 << 62, first_line_no=first))


def parallel_batches(lines: Iterable[bytes], source_file: str, now: datetime, workers: int,
                     chunk_lines: int = CHUNK_LINES) -> Iterator[ParsedBatch]:
    """The batches of :func:`iter_batches`, parsed by ``workers`` processes, in file order."""
    try:
        # forkserver, not fork: a fork of this process copies its threads' locks as they are (the
        # task runner's, boto3's, a database driver's) and a worker can hang on one for ever; the
        # fork server is a clean single-threaded interpreter that forks the workers
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["relance.ingest.events"])
        pool = context.Pool(workers)
    except (AssertionError, OSError, ValueError) as exc:  # daemonic process, no fork…
        log.info("parsing %s in-process (%s)", source_file, exc)
        yield from iter_batches(lines, source_file, now, chunk_lines)
        return
    pending: deque = deque()
    try:
        for first, chunk in _chunks(lines, chunk_lines):
            pending.append(pool.apply_async(_parse_chunk, ((chunk, source_file, now, first),)))
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()
