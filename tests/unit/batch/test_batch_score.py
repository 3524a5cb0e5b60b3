"""One chunk: risk bands from the spec, the `imputed` labels, and a patient without an exercise
test or a fasting blood sugar scored with sklearn's own probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from batch_helpers import THRESHOLD, oracle
from sklearn.pipeline import Pipeline

from heartml.batch import ScoringModel, contract, risk_levels, score_frame
from heartml.batch.score import imputed_labels
from heartml.batch.writers import OutputWriter
from heartml.spec import DatasetSpec

pytestmark = pytest.mark.scale


def test_risk_levels_are_the_specs_bands(spec: DatasetSpec) -> None:
    levels = risk_levels(np.array([0.0, 0.29, 0.3, 0.5999, 0.6, 1.0]), contract(spec))
    assert levels.to_pylist() == ["low", "low", "moderate", "moderate", "high", "high"]
    grid = np.linspace(0.0, 1.0, 1001)
    assert risk_levels(grid, contract(spec)).to_pylist() == [spec.risk_level(p) for p in grid]


def test_imputed_labels_name_the_fields_in_the_specs_order(spec: DatasetSpec) -> None:
    optional = [n for n in spec.raw_names if not spec.columns[n].required]
    unknown = np.zeros((5, len(optional)), dtype=bool)
    unknown[1, [optional.index("slope"), optional.index("thalach")]] = True
    unknown[3, optional.index("fbs")] = True
    unknown[4] = unknown[1]
    labels = imputed_labels(unknown.T.copy(), unknown.any(axis=1), contract(spec))
    assert labels.to_pylist() == ["", "thalach,slope", "", "fbs", "thalach,slope"]
    # Only the patterns present, in order of first appearance.
    assert labels.dictionary.to_pylist() == ["", "thalach,slope", "fbs"]


def test_imputed_categories_do_not_depend_on_where_chunks_are_cut(
    spec: DatasetSpec, tmp_path: Path
) -> None:
    """Each chunk has its own dictionary; read back, the file has one set of categories, the
    same whichever way it was cut (the local engine's chunks and Dask's partitions differ)."""
    optional = [n for n in spec.raw_names if not spec.columns[n].required]
    wanted = ["thal", "", "ca", "", "thal", "chol,ca", "ca", "", "slope", "thal"]
    unknown = np.zeros((len(optional), len(wanted)), dtype=bool)
    for i, text in enumerate(wanted):
        for name in filter(None, text.split(",")):
            unknown[optional.index(name), i] = True
    outputs = []
    for cut in (1, 3, 4, len(wanted)):
        writer = OutputWriter(tmp_path / f"cut{cut}.parquet")
        for start in range(0, len(wanted), cut):
            part = unknown[:, start : start + cut]
            column = imputed_labels(part, part.any(axis=0), contract(spec))
            writer.write(pa.table({"imputed": column}))
        writer.commit()
        outputs.append(pd.read_parquet(tmp_path / f"cut{cut}.parquet")["imputed"])
    assert outputs[0].cat.categories.tolist() == ["", "thal", "ca", "chol,ca", "slope"]
    for other in outputs:
        assert other.tolist() == wanted
        assert other.cat.categories.tolist() == outputs[0].cat.categories.tolist()


def test_patients_without_an_exercise_test_or_fbs_get_sklearns_probability(
    spec: DatasetSpec, model: ScoringModel, pipeline: Pipeline
) -> None:
    example = spec.example_record()
    no_exercise = {**example, "slope": None, "oldpeak": None, "thalach": None, "exang": None}
    no_fbs = {**example, "fbs": None}
    no_chol = {**example, "chol": 0}
    rows = [example, no_exercise, no_fbs, no_chol]
    chunk = pa.table({n: pa.array([r[n] for r in rows], pa.float64()) for n in spec.raw_names})
    scored = score_frame(chunk, model)
    assert scored.rejects.num_rows == 0 and scored.imputed == 3
    assert scored.scored.column("imputed").to_pylist() == [
        "",
        "thalach,exang,oldpeak,slope",
        "fbs",
        "chol",
    ]
    expected = oracle(pipeline, spec, [example, no_exercise, no_fbs, {**example, "chol": None}])
    probability = scored.scored.column("probability").to_numpy()
    # ONNX vs sklearn on a logistic regression: equal up to float64 rounding (measured 2.2e-16).
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-12)
    assert len(set(np.round(probability, 6))) == 4  # each unknown block moved the estimate
    assert scored.scored.column("prediction").to_pylist() == [int(p >= THRESHOLD) for p in expected]
