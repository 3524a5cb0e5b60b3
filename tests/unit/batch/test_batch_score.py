"""One chunk: risk bands from the spec, the `imputed` labels, and a patient without an exercise
test or a fasting blood sugar scored with sklearn's own probability."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_helpers import THRESHOLD, oracle
from sklearn.pipeline import Pipeline

from heartml.batch import ScoringModel, contract, risk_levels, score_frame
from heartml.batch.score import FileLabels, imputed_labels
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


def test_file_labels_do_not_depend_on_where_chunks_are_cut(
    spec: DatasetSpec, tmp_path: object
) -> None:
    values = ["", "ca", "", "thal", "chol,ca", "ca", "", "thal"]
    outputs = []
    for cut in (1, 3, 8):
        recoder = FileLabels()
        chunks = []
        for start in range(0, len(values), cut):
            part = pa.array(values[start : start + cut]).dictionary_encode()
            chunks.append(recoder.recode(part))
        table = pa.Table.from_batches(
            [pa.record_batch([chunk], names=["imputed"]) for chunk in chunks]
        )
        path = tmp_path / f"cut{cut}.parquet"  # type: ignore[operator]
        writer = pq.ParquetWriter(path, table.schema)
        for batch in table.to_batches():
            writer.write_table(pa.Table.from_batches([batch]))
        writer.close()
        outputs.append(pq.read_table(path).to_pandas()["imputed"])
    for other in outputs[1:]:
        assert other.tolist() == values
        assert other.cat.categories.tolist() == outputs[0].cat.categories.tolist()
    assert outputs[0].cat.categories.tolist() == ["", "ca", "thal", "chol,ca"]


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
