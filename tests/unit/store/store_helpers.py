"""Shared pieces of the prediction-store tests (a module of its own name: every test folder has
a conftest.py, and `from conftest import` would find whichever was imported first)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

SEED_ROW = [63.0, 1.0, 1.0, 145.0, 233.0, 1.0, 2.0, 150.0, 0.0, 2.3, 3.0, 0.0, 6.0]


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored row, every column: what "nothing changed" is checked against."""
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.exec_driver_sql("SELECT * FROM predictions ORDER BY id")
        ]
