"""The dataset spec file: both shipped specs load; a bad spec is refused with one line, by the
library and by the CLI (exit 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from heartml.settings import Settings
from heartml.spec import SpecError, load_spec, spec_from_text
from oracles import HEART_SPEC_FILE, REPO_ROOT

pytestmark = pytest.mark.task2

SHIPPED = sorted((REPO_ROOT / "configs" / "datasets").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_specs_load_and_round_trip(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    again = spec_from_text(spec.to_yaml())
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()


def test_the_heart_spec_is_the_seeds_dataset() -> None:
    spec = load_spec(HEART_SPEC_FILE)
    assert spec.raw_names == (
        "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
        "thalach", "exang", "oldpeak", "slope", "ca", "thal",
    )  # fmt: skip
    assert spec.model_name_prefix == "heart_disease"
    assert spec.one_hot == ("cp", "restecg", "slope", "thal")
    assert [(b.label, b.below) for b in spec.risk_bands] == [
        ("low", 0.3),
        ("moderate", 0.6),
        ("high", None),
    ]
    assert spec.optional_names == (
        "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca", "thal",
    )  # fmt: skip
    assert spec.example_record()["oldpeak"] == 2.3
    assert [spec.risk_level(p) for p in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == [
        "low", "low", "moderate", "moderate", "high", "high",
    ]  # fmt: skip


def heart_raw() -> dict:
    return yaml.safe_load(HEART_SPEC_FILE.read_text())


def with_feature(name: str, expression: str) -> dict:
    raw = heart_raw()
    raw["features"][name] = expression
    return raw


BAD_SPECS = [
    (
        with_feature("bp_chol", "trestbps * cholesterol / 1000"),
        "feature 'bp_chol' = 'trestbps * cholesterol / 1000': unknown column 'cholesterol' "
        "(at 'cholesterol')",
    ),
    (
        with_feature("log_chol", "log(chol)"),
        "feature 'log_chol' = 'log(chol)': unknown function 'log' (allowed: bins) (at 'log')",
    ),
    (with_feature("chol", "chol / 2"), "feature 'chol': the name is already a raw column"),
    (
        with_feature("bp_chol", "trestbps * * chol"),
        "feature 'bp_chol' = 'trestbps * * chol': malformed expression (invalid syntax) "
        "(at '* chol')",
    ),
    (
        with_feature("escape", "__import__('os').system('true')"),
        "feature 'escape' = \"__import__('os').system('true')\": only bins(...) may be called "
        "(at \"__import__('os').system\")",
    ),
]


@pytest.mark.parametrize(("raw", "message"), BAD_SPECS, ids=[m[:40] for _, m in BAD_SPECS])
def test_a_bad_feature_is_one_line_naming_feature_expression_and_token(
    raw: dict, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_text(yaml.safe_dump(raw), "uci_heart.yaml")
    assert str(info.value) == f"uci_heart.yaml: {message}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda r: r["columns"]["age"].update(range=[100, 18]), "columns.age: range [100.0, 18.0]"),
        (lambda r: r["columns"]["sex"]["codes"].update({2: "other"}), "exactly two codes"),
        (lambda r: r["columns"]["age"].update(example=150), "example 150 is not allowed"),
        (lambda r: r.update(one_hot=["age"]), "one_hot: 'age' is not a coded column"),
        (lambda r: r["target"].update(positive="num >"), "target.positive 'num >'"),
        (
            lambda r: r.update(risk_bands=[{"label": "high"}, {"label": "low", "below": 0.3}]),
            "risk_bands",
        ),
        (
            lambda r: r["columns"].update(row_id=r["columns"]["age"]),
            "'row_id': the name is reserved",
        ),
        (lambda r: r["columns"]["age"].update(colour="red"), "columns.age.colour: Extra inputs"),
        (lambda r: r.update(subgroups=["chol"]), "subgroups: 'chol'"),
        (lambda r: r["missing_blocks"].update(x=["age"]), "missing_blocks.x: 'age' is required"),
    ],
)
def test_other_mistakes_name_the_entry(edit, words: str) -> None:
    raw = heart_raw()
    edit(raw)
    with pytest.raises(SpecError, match=None) as info:
        spec_from_text(yaml.safe_dump(raw), "spec.yaml")
    assert words in str(info.value), str(info.value)


def snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for folder in ("data/processed", "models", "packages", "reports"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


@pytest.mark.parametrize("command", [["data"], ["train"], ["pipeline"], ["package"]])
def test_the_cli_refuses_a_bad_spec_before_writing_anything(
    project: Settings, heartml_cli, make_cli_env, command: list[str]
) -> None:
    root = project.resolved_root
    for folder, name in (("data/processed", "train.parquet"), ("models", "x"), ("packages", "y")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(b"earlier output")
    before = snapshot(root)
    spec_file = root / "configs" / "datasets" / "uci_heart.yaml"
    raw = yaml.safe_load(HEART_SPEC_FILE.read_text())
    raw["features"]["bp_chol"] = "trestbps * cholesterol / 1000"
    spec_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = heartml_cli(*command, cwd=root, env=make_cli_env(COLUMNS="200"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"error: {spec_file}: feature 'bp_chol' = 'trestbps * cholesterol / 1000': "
        "unknown column 'cholesterol' (at 'cholesterol')"
    )
    assert snapshot(root) == before
