"""`heartml data --with-feedback`: the installed command on a real SQLite prediction store. The
oracle is what the test put in the store: which predictions carry an outcome, their inputs and
outcomes, and which of them break a rule of the spec."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from heartml.settings import Settings
from heartml.spec import TARGET
from heartml.stages import processed_data_sha256
from heartml.store.engine import create_engine, upgrade
from heartml.store.outcomes import Outcome, record_outcomes
from serving_packages import heart_spec, read_source
from stored_predictions import store_predictions

pytestmark = pytest.mark.task1

GOOD = 60  # labelled predictions that are valid rows
UNLABELLED = 5


@pytest.fixture
def fed(project: Settings) -> tuple[Settings, Path, pd.DataFrame, np.ndarray]:
    """A store with GOOD valid labelled predictions (Cleveland rows, one year older), two that
    break a rule (chol 5000 mg/dl; sex unknown, which the spec does not allow) and UNLABELLED
    predictions without an outcome."""
    spec = heart_spec()
    names = list(spec.raw_names)
    rows = read_source(spec).iloc[:GOOD][names].copy()
    rows["age"] += 1
    bad = rows.iloc[:2].copy()
    bad.iloc[0, names.index("chol")] = 5000.0
    bad.iloc[1, names.index("sex")] = np.nan
    unlabelled = rows.iloc[:UNLABELLED]
    inputs = pd.concat([rows, bad, unlabelled])
    ids = [f"fb{i}" for i in range(len(inputs))]
    store = project.root / "monitoring" / "predictions.db"
    engine = create_engine(f"sqlite:///{store}")
    upgrade(engine, create_parent=True)
    store_predictions(engine, spec, ids, inputs.to_numpy(dtype=float).tolist())
    outcomes = np.random.default_rng(0).integers(0, 2, GOOD + 2)
    record_outcomes(engine, [Outcome(ids[i], 0, int(o)) for i, o in enumerate(outcomes)])
    return project, store, rows, outcomes


def provenance(root: Path) -> dict[str, Any]:
    return json.loads((root / "data" / "processed" / "provenance.json").read_text())


def test_labelled_predictions_become_rows_and_provenance_counts_them(
    fed: tuple[Settings, Path, pd.DataFrame, np.ndarray],
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
) -> None:
    project, store, rows, outcomes = fed
    env = make_cli_env(HEARTML_OFFLINE="1", HEARTML_STORE_URL=f"sqlite:///{store}")
    plain = heartml_cli("data", cwd=project.root, env=env)
    assert plain.returncode == 0, plain.stderr
    before = provenance(project.root)
    assert before.get("feedback") is None

    result = heartml_cli("data", "--with-feedback", cwd=project.root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    after = provenance(project.root)
    feedback = after["feedback"]
    assert feedback["labelled_predictions"] == GOOD + 2  # the unlabelled ones are not read
    assert feedback["rows_from_feedback"] == GOOD
    assert feedback["rows_rejected"] == 2
    assert feedback["rows_from_source"] == before["rows_clean"]
    assert after["rows_clean"] == before["rows_clean"] + GOOD
    assert after["rows_train"] + after["rows_test"] == after["rows_clean"]
    assert after["sha256"] == before["sha256"]  # the raw file's, unchanged
    assert feedback["sha256"] != before["sha256"]  # the data version did change
    assert feedback["store"] == f"sqlite:///{store}"
    # What training and the promotion gate take as the data's identity.
    assert processed_data_sha256(project) == feedback["sha256"]
    assert f"{before['rows_clean']} rows from the source, {GOOD} from {GOOD + 2}" in result.stdout

    # The feedback rows, as the store held them, with their outcome as the target.
    clean = pd.read_parquet(project.catalog.clean_file)
    added = clean.tail(GOOD)
    names = list(rows.columns)
    np.testing.assert_array_equal(added[names].to_numpy(), rows.to_numpy())
    np.testing.assert_array_equal(added[TARGET].to_numpy(), outcomes[:GOOD])
    # The two bad ones are quarantined by the spec's rules, with the field named.
    rejected = pd.read_csv(project.catalog.rejected_file)
    reasons = " ".join(rejected["reasons"].tail(2))
    assert "chol" in reasons and "sex" in reasons

    # The same store gives the same data version.
    again = heartml_cli("data", "--with-feedback", cwd=project.root, env=env)
    assert again.returncode == 0
    assert provenance(project.root)["feedback"]["sha256"] == feedback["sha256"]


def test_without_a_store_it_is_one_line_and_nothing_is_replaced(
    project: Settings,
    heartml_cli: Callable[..., Any],
    make_cli_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    env = make_cli_env(HEARTML_OFFLINE="1", HEARTML_STORE_URL=f"sqlite:///{tmp_path / 'no.db'}")
    assert heartml_cli("data", cwd=project.root, env=env).returncode == 0
    kept = (project.root / "data" / "processed" / "provenance.json").read_bytes()
    result = heartml_cli("data", "--with-feedback", cwd=project.root, env=env)
    assert result.returncode == 2
    assert "no such database" in result.stderr and "Traceback" not in result.stderr
    assert (project.root / "data" / "processed" / "provenance.json").read_bytes() == kept
