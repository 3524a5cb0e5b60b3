"""The driver, file to file, with two engines running the same chunk function (score_frame):

- local: reading, scoring and writing overlap in three threads (parquet and CSV decoding,
  onnxruntime and the parquet encoder all release the GIL);
- dask: partitions scored on Dask workers, yielded back in input order; the client writes them.

Only a problem with the file itself stops the run, with one line naming it; a bad row never does.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa

from heartml.batch.contract import ROW_COLUMN, BatchError
from heartml.batch.io import (
    InputFormat,
    count_rows,
    csv_options,
    detect_format,
    iter_chunks,
    read_error,
)
from heartml.batch.model import ScoringModel
from heartml.batch.score import ScoredChunk, score_frame
from heartml.batch.writers import OUTPUT_SUFFIXES, OutputWriter, RejectsWriter
from heartml.choices import ENGINES, Engine

T = TypeVar("T")
Progress = Callable[[int, int | None], None]  # (rows just processed, total rows if known)

DEFAULT_CHUNK_SIZE = 100_000


@dataclass
class ScoreSummary:
    input: Path
    output: Path
    rejects: Path
    engine: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    imputed: int = 0
    seconds: float = 0.0
    partitions: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else math.nan


def default_rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.csv")


def score_file(
    input_path: Path,
    output_path: Path,
    model: ScoringModel,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    rejects_path: Path | None = None,
    engine: Engine = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    on_scored: Callable[[pa.Table], None] | None = None,
) -> ScoreSummary:
    """Score a CSV, parquet or header-less file into `output_path` (.csv or .parquet), by the
    rules of the model's dataset spec.

    on_scored: called with each chunk's scored rows as written (with their `row` column), in
    input order, before the next chunk (`heartml score --record` stores them).

    engine="dask": partitions are scored on the cluster at `scheduler` (a LocalCluster with
    `workers` processes when None); the input path must be readable by the workers.
    """
    if chunk_size < 1:
        raise BatchError(f"chunk size must be at least 1, got {chunk_size}")
    if engine not in ENGINES:
        raise BatchError(f"engine {engine!r}: allowed: {', '.join(ENGINES)}")
    if output_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise BatchError(f"{output_path}: output must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if output_path.resolve() == input_path.resolve():
        raise BatchError(f"{output_path}: the output would overwrite the input")
    rejects_path = rejects_path or default_rejects_path(output_path)
    fmt = detect_format(input_path, model.contract())
    report = progress or (lambda _done, _total: None)
    total = count_rows(input_path, fmt)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    summary = ScoreSummary(input_path, output_path, rejects_path, engine)
    writer = OutputWriter(output_path)
    rejects = RejectsWriter(rejects_path, fmt.columns)
    started = time.perf_counter()
    try:
        if engine == "local":
            frames = _prefetched(iter_chunks(input_path, fmt, chunk_size))
            chunks: Iterator[ScoredChunk] = _prefetched(
                score_frame(frame, model) for frame in frames
            )
        else:
            chunks = _dask_chunks(input_path, fmt, chunk_size, model, scheduler, workers)
        for chunk in chunks:
            scored = _emit(chunk, summary, writer, rejects)
            if on_scored is not None and scored.num_rows:
                on_scored(scored)
            report(chunk.rows, total)
        if summary.rows == 0:
            raise BatchError(f"{input_path}: no data rows")
        writer.commit()
        rejects.commit()
    except BaseException:
        writer.abort()
        rejects.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _emit(
    chunk: ScoredChunk,
    summary: ScoreSummary,
    writer: OutputWriter,
    rejects: RejectsWriter,
) -> pa.Table:
    offset = summary.rows + 1  # rows are numbered from 1
    table = chunk.scored
    table = table.add_column(
        0, pa.field(ROW_COLUMN, pa.int64(), nullable=False), pa.array(chunk.positions + offset)
    )
    writer.write(table)
    if chunk.rejects.num_rows:
        rejects.write(
            chunk.rejects.add_column(0, ROW_COLUMN, pa.array(chunk.reject_positions + offset))
        )
    summary.rows += chunk.rows
    summary.scored += table.num_rows
    summary.rejected += chunk.rejects.num_rows
    summary.imputed += chunk.imputed
    summary.partitions += 1
    return table


# --------------------------------------------------------------------------------------------
# Local: a background thread per stage


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


def _prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run an iterator in a background thread, up to `depth` items ahead of its consumer."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="heartml-batch-stage", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


# --------------------------------------------------------------------------------------------
# Dask: the same chunk function on the workers


def _dask_chunks(
    path: Path,
    fmt: InputFormat,
    chunk_size: int,
    model: ScoringModel,
    scheduler: str | None,
    workers: int | None,
) -> Iterator[ScoredChunk]:
    """Partitions scored on the workers, yielded in input order (a bounded window in flight)."""
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with dask.config.set({"dataframe.convert-string": False}):
        if fmt.kind == "parquet":
            frame = dd.read_parquet(str(path), split_row_groups=True, dtype_backend="pyarrow")
        else:
            # The local reader's options: every field as text, the spec's markers only.
            blocksize = _csv_blocksize(path, chunk_size)
            frame = dd.read_csv(str(path), blocksize=blocksize, **csv_options(fmt))
        parts = frame.to_delayed()
    score = dask.delayed(score_partition, pure=True)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers or min(4, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            window = 2 * max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
            pending: deque[Any] = deque()
            for part in parts:
                pending.append(client.compute(score(part, model, fmt.kind == "parquet")))
                if len(pending) >= window:
                    yield _result(pending.popleft(), path)
            while pending:
                yield _result(pending.popleft(), path)
    finally:
        if cluster is not None:
            cluster.close()


def score_partition(frame: pd.DataFrame, model: ScoringModel, parquet: bool) -> ScoredChunk:
    """A Dask partition. Parquet partitions go back to Arrow, as the local engine reads them, so
    that both engines run the same code on the same values."""
    if parquet:
        return score_frame(pa.Table.from_pandas(frame, preserve_index=False), model)
    return score_frame(frame, model)


def _result(future: Any, path: Path) -> ScoredChunk:
    try:
        chunk: ScoredChunk = future.result()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise read_error(path, exc) from None
    return chunk


def _csv_blocksize(path: Path, chunk_size: int) -> int:
    """Bytes per partition so that a partition holds about `chunk_size` rows."""
    with path.open("rb") as handle:
        sample = handle.read(1 << 16)
    lines = max(sample.count(b"\n"), 1)
    per_row = max(len(sample) / lines, 1.0)
    return max(int(per_row * chunk_size), 1 << 12)
