"""Prediction-store fixtures: a fresh SQLite store per test, and rows to put in it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from store_helpers import SEED_ROW

from heartml.serving.contract import Contract, build_contract
from heartml.store.engine import create_engine, upgrade
from heartml.store.records import db_time, insert_rows, prediction_values
from serving_packages import heart_spec


@pytest.fixture(scope="session")
def contract() -> Contract:
    return build_contract(heart_spec())


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "monitoring" / "predictions.db"


@pytest.fixture
def engine(store_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{store_path}")
    upgrade(engine, create_parent=True)
    return engine


@pytest.fixture
def add_predictions(engine: Engine, contract: Contract) -> Callable[..., list[str]]:
    """add(n, model_version="1", created=now, site=None, chol_unknown=False) -> request ids."""

    def add(
        n: int,
        model_version: str = "1",
        created: float | None = None,
        site: str | None = None,
        prefix: str = "r",
        probabilities: list[float] | None = None,
    ) -> list[str]:
        ids = [f"{prefix}{i}" for i in range(n)]
        rows = prediction_values(
            created_at=db_time("sqlite", time.time() if created is None else created),
            source="api",
            model_name="heart_disease_logistic_regression",
            model_version=model_version,
            threshold=0.5,
            describer=contract,
            request_ids=ids,
            rows=[0] * n,
            inputs=[[*SEED_ROW[:4], math.nan, *SEED_ROW[5:]]] * n,
            probabilities=probabilities or [i / max(n, 1) for i in range(n)],
            predictions=[int(i / max(n, 1) >= 0.5) for i in range(n)],
            site=site,
        )
        with engine.begin() as connection:
            insert_rows(connection, rows)
        return ids

    return add
