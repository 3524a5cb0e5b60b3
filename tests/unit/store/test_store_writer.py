"""The background writer (heartml.store.writer) on a real SQLite file: what it stores, that the
request path only queues, and that a database that goes away costs dropped rows (counted), never
an error, and is written to again when it comes back."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import SEED_ROW

from heartml.serving.contract import Contract
from heartml.store.engine import create_engine
from heartml.store.query import Selection, count, read
from heartml.store.retention import prune
from heartml.store.writer import PredictionWriter

pytestmark = pytest.mark.monitoring


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def gone(folder: Path) -> None:
    """Delete a folder in one step (renamed away, then removed), as an unmounted volume goes."""
    shutil.rmtree(folder.rename(folder.with_name(folder.name + ".deleted")))


@pytest.fixture
def make_writer(store_path: Path) -> Callable[..., PredictionWriter]:
    writers: list[PredictionWriter] = []

    def make(max_rows: int = 10_000, flush_interval_s: float = 0.05) -> PredictionWriter:
        writer = PredictionWriter(
            create_engine(f"sqlite:///{store_path}"),
            max_rows=max_rows,
            flush_interval_s=flush_interval_s,
        )
        writer.start()
        writers.append(writer)
        return writer

    yield make  # type: ignore[misc]
    for writer in writers:
        writer.close(timeout=5)


def record(writer: PredictionWriter, contract: Contract, ids: list[str], p: float = 0.7) -> None:
    row = [*SEED_ROW[:4], math.nan, *SEED_ROW[5:]]  # chol unknown
    writer.record(
        time.time(), "api", "heart_disease_svm", "3", 0.5, contract,
        ids, [0] * len(ids), [row] * len(ids), [p] * len(ids), [int(p >= 0.5)] * len(ids),
    )  # fmt: skip


def test_writer_stores_every_field_as_received(
    make_writer: Callable[..., PredictionWriter], contract: Contract
) -> None:
    writer = make_writer()
    record(writer, contract, ["a", "b"], p=0.7)
    writer.record(
        time.time(), "api", "heart_disease_svm", "3", 0.5, contract,
        ["batch"] * 2, range(2), [SEED_ROW, SEED_ROW], [0.1, 0.2], [0, 0],
    )  # fmt: skip
    assert writer.wait_written(10)
    stored = read(writer.engine, Selection(), with_inputs=True)
    assert list(zip(stored.request_id, stored.row.tolist(), strict=True)) == [
        ("a", 0), ("b", 0), ("batch", 0), ("batch", 1)
    ]  # fmt: skip
    assert stored.probability.tolist() == [0.7, 0.7, 0.1, 0.2]
    assert stored.prediction.tolist() == [1, 1, 0, 0]
    assert stored.inputs is not None and stored.imputed is not None
    assert stored.inputs[0]["chol"] is None and stored.inputs[0]["age"] == 63
    assert stored.inputs[2] == dict(zip(contract.names, SEED_ROW, strict=True))
    assert stored.imputed[:3] == [["chol"], ["chol"], []]
    assert set(stored.model_version) == {"3"} and stored.site == [None] * 4
    assert writer.written_rows == 4 and writer.dropped == dict.fromkeys(writer.dropped, 0)
    with writer.engine.connect() as connection:
        levels = [r[0] for r in connection.exec_driver_sql("SELECT risk_level FROM predictions")]
    assert levels == ["high", "high", "low", "low"]  # the spec's bands: < 0.3 low, >= 0.6 high


def test_a_repeated_request_id_keeps_the_first_prediction(
    make_writer: Callable[..., PredictionWriter], contract: Contract
) -> None:
    writer = make_writer()
    record(writer, contract, ["same"], p=0.9)
    record(writer, contract, ["same"], p=0.1)
    assert writer.wait_written(10)
    stored = read(writer.engine, Selection())
    assert stored.probability.tolist() == [0.9]
    assert writer.dropped["rejected"] == 0


def test_database_away_drops_new_rows_counted_and_recovers(
    make_writer: Callable[..., PredictionWriter], contract: Contract, store_path: Path
) -> None:
    writer = make_writer(max_rows=50)
    record(writer, contract, [f"before{i}" for i in range(10)])
    assert writer.wait_written(10) and writer.healthy
    gone(store_path.parent)  # the storage is gone (an unmounted volume)
    record(writer, contract, [f"held{i}" for i in range(30)])
    wait_for(lambda: writer.healthy is False)
    for i in range(10):  # queue holds 30 of 50: 20 more fit, the rest are dropped at the door
        record(writer, contract, [f"late{i}_{j}" for j in range(5)])
    assert writer.dropped["queue_full"] == 30 and writer.pending_rows == 50
    assert not writer.wait_written(0.3)  # nothing can be written meanwhile
    store_path.parent.mkdir()  # the volume is back (empty): migrated again, then written
    wait_for(lambda: writer.pending_rows == 0)
    assert writer.healthy is True
    stored = read(writer.engine, Selection())
    assert len(stored) == 50
    assert {f"held{i}" for i in range(30)} <= set(stored.request_id)
    assert writer.written_rows == 60


def test_close_writes_what_is_queued(
    make_writer: Callable[..., PredictionWriter], contract: Contract
) -> None:
    writer = make_writer(flush_interval_s=30)  # nothing is written before close
    record(writer, contract, [f"r{i}" for i in range(100)])
    writer.close()
    assert count(writer.engine) == 100 and writer.dropped["shutdown"] == 0


def test_close_with_the_database_away_counts_the_queued_rows_as_dropped(
    make_writer: Callable[..., PredictionWriter], contract: Contract, store_path: Path
) -> None:
    writer = make_writer(flush_interval_s=30)
    wait_for(lambda: writer.healthy is True)
    gone(store_path.parent)
    record(writer, contract, [f"r{i}" for i in range(7)])
    writer.close()
    assert writer.dropped["shutdown"] == 7 and writer.pending_rows == 0


def test_retention_deletes_only_old_predictions(
    add_predictions: Callable[..., list[str]], engine: object
) -> None:
    now = time.time()
    add_predictions(3, created=now - 40 * 86400, prefix="old")
    add_predictions(2, created=now - 10 * 86400, prefix="new")
    assert prune(engine, 30, now=now) == 3  # type: ignore[arg-type]
    assert read(engine, Selection()).request_id == ["new0", "new1"]  # type: ignore[arg-type]
    assert prune(engine, 0, now=now) == 0  # type: ignore[arg-type]
