"""One table of rows through all three doors: a Task 1 data file (`heartml data`), a batch
scoring file (`heartml score`) and `/predict` on a real `heartml serve`. Each door must give
every row the same verdict and the same words, and the rows it scores the same probability.

The table is written by hand; what each door says is read from its own output (rejected_rows.csv,
the rejects file, the 422 body), never from the code that words it.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from integration_helpers import launch_server
from sklearn.linear_model import LogisticRegression

from heartml.settings import Settings
from heartml.stages import run_data
from serving_packages import fit, heart_spec, read_source, write_package

pytestmark = [pytest.mark.task1, pytest.mark.serving, pytest.mark.integration, pytest.mark.slow]

SPEC = heart_spec()
FIELDS = SPEC.raw_names
# The seed's first patient, as a data file writes it.
SEED = {
    "age": "63", "sex": "1", "cp": "1", "trestbps": "145", "chol": "233", "fbs": "1",
    "restecg": "2", "thalach": "150", "exang": "0", "oldpeak": "2.3", "slope": "3", "ca": "0",
    "thal": "6",
}  # fmt: skip
UNKNOWN = ""  # an empty field in a file, null in JSON
EXERCISE = dict.fromkeys(("slope", "oldpeak", "thalach", "exang"), UNKNOWN)

# (case, the fields that differ from the seed, the reasons every door must give: "" = valid)
CASES: list[tuple[str, dict[str, str], str]] = [
    ("seed", {}, ""),
    ("no exercise test", EXERCISE, ""),
    ("no fbs", {"fbs": UNKNOWN}, ""),
    ("chol 0 means not measured", {"chol": "0"}, ""),
    ("only the required fields", {n: UNKNOWN for n in FIELDS if n not in ("age", "sex", "cp")}, ""),
    ("age too high", {"age": "150"}, "age: 150 is not allowed; expected a number from 18 to 100 years"),
    (
        "unknown chest pain code",
        {"cp": "5"},
        "cp: 5 is not allowed; expected one of 1 (typical angina), 2 (atypical angina), "
        "3 (non-anginal pain), 4 (asymptomatic)",
    ),
    ("sex unknown", {"sex": UNKNOWN}, "sex: missing; required: one of 0 (female), 1 (male)"),
    (
        "text in chol",
        {"chol": "abc"},
        "chol: 'abc' is not a number; expected a number from 80 to 700 mg/dl",
    ),
    (
        "underscore number",
        {"chol": "1_000"},
        "chol: '1_000' is not a number; expected a number from 80 to 700 mg/dl",
    ),
    ("oldpeak too high", {"oldpeak": "12.5"}, "oldpeak: 12.5 is not allowed; expected a number from -3 to 10 mm"),
    (
        "two problems",
        {"cp": "9", "thal": "4"},
        "cp: 9 is not allowed; expected one of 1 (typical angina), 2 (atypical angina), "
        "3 (non-anginal pain), 4 (asymptomatic); thal: 4 is not allowed; expected one of "
        "3 (normal), 6 (fixed defect), 7 (reversible defect)",
    ),
]  # fmt: skip


def row(case: dict[str, str]) -> dict[str, str]:
    return {**SEED, **case}


def json_value(text: str) -> Any:
    """What a JSON client sends for a file's field: a number, null, or the text itself."""
    if text == UNKNOWN:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if "_" in text:  # Python's float() reads "1_000"; a JSON client would send the text
        return text
    return int(number) if number.is_integer() else number


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = read_source(SPEC)
    pipeline = fit(SPEC, frame, LogisticRegression(max_iter=2000))
    packages = tmp_path_factory.mktemp("doors") / "packages"
    return write_package(packages, SPEC, pipeline, frame)


def task1_reasons(project: Settings, small_config: Any) -> list[str]:
    raw = project.catalog.raw_path
    first_new_line = len(raw.read_bytes().splitlines()) + 1
    lines = [",".join(row(case)[n] for n in FIELDS) + ",1" for _, case, _ in CASES]
    raw.write_bytes(raw.read_bytes() + ("\n".join(lines) + "\n").encode())
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    run_data(project.model_copy(update={"data_sha256": digest}), small_config)
    rejected = pd.read_csv(project.catalog.rejected_file, keep_default_na=False)
    by_line = dict(zip(rejected["line"], rejected["reasons"], strict=True))
    return [by_line.get(first_new_line + i, "") for i in range(len(CASES))]


def batch_reasons(
    package: Path, tmp_path: Path, heartml_cli: Any, env: Any
) -> tuple[list[str], pd.DataFrame]:
    source = tmp_path / "patients.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for _, case, _ in CASES:
            writer.writerow([row(case)[n] for n in FIELDS])
    output = tmp_path / "scored.csv"
    result = heartml_cli(
        "score", "-i", str(source), "-o", str(output), "--package", str(package),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rejects = pd.read_csv(f"{output}.rejects.csv", keep_default_na=False)
    by_row = dict(zip(rejects["row"], rejects["reasons"], strict=True))
    return [by_row.get(i + 1, "") for i in range(len(CASES))], pd.read_csv(output)


def api_answers(package: Path, tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    server = launch_server(tmp_path / "api", packages=(package,))
    try:
        server.wait_ready()
        answers = []
        for _, case, _ in CASES:
            body = {n: json_value(v) for n, v in row(case).items()}
            response = httpx.post(f"{server.url}/predict", json=body, timeout=10)
            if response.status_code == 200:
                answers.append(("", response.json()))
            else:
                assert response.status_code == 422, response.text
                items = response.json()["detail"]
                answers.append(("; ".join(f"{i['field']}: {i['message']}" for i in items), {}))
        return answers
    finally:
        server.stop()


def test_every_door_gives_every_row_the_same_verdict_and_words(
    project: Settings, small_config: Any, package: Path, tmp_path: Path, heartml_cli, make_cli_env
) -> None:
    expected = [reasons for _, _, reasons in CASES]
    task1 = task1_reasons(project, small_config)
    batch, scored = batch_reasons(package, tmp_path, heartml_cli, make_cli_env())
    api = api_answers(package, tmp_path)
    for i, (name, _, _) in enumerate(CASES):
        assert task1[i] == expected[i], f"Task 1, {name}"
        assert batch[i] == expected[i], f"batch, {name}"
        assert api[i][0] == expected[i], f"API, {name}"

    # The rows every door accepts get one probability and the same imputed fields.
    valid = [i for i, reasons in enumerate(expected) if not reasons]
    assert scored["row"].tolist() == [i + 1 for i in valid]
    for position, i in enumerate(valid):
        answer = api[i][1]
        assert math.isclose(scored["probability"][position], answer["probability"], abs_tol=1e-12)
        imputed = scored["imputed"][position]
        batch_imputed = [] if not isinstance(imputed, str) or not imputed else imputed.split(",")
        assert batch_imputed == answer["imputed_fields"], CASES[i][0]
    # The patient without an exercise test: the four fields named, in the spec's order.
    assert api[1][1]["imputed_fields"] == ["thalach", "exang", "oldpeak", "slope"]
    assert api[1][1]["note"]
