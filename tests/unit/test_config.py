"""configs/pipeline.yaml: validated into a typed model; a wrong key or value is one clear line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from heartml.choices import ALGORITHMS
from heartml.config import ConfigError, ModelConfig, load_config, parse_config
from heartml.models import make_estimator

pytestmark = pytest.mark.task2

REPO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "pipeline.yaml"


@pytest.fixture
def raw_config() -> dict[str, Any]:
    return yaml.safe_load(REPO_CONFIG.read_text())


def test_shipped_config_loads() -> None:
    config = load_config(REPO_CONFIG)
    assert set(config.models) == set(ALGORITHMS)
    assert config.seed == 42
    assert config.split.test_size == 0.2
    assert config.evaluation.cv_folds == 5
    assert config.evaluation.cv_repeats == 10
    assert config.models["svm"].search_space["gamma"] == ["scale", 0.01, 0.03]
    assert config.models["random_forest"].search_space["max_depth"] == [6, None]


def test_every_shipped_model_builds_its_estimator() -> None:
    config = load_config(REPO_CONFIG)
    for algorithm, model in config.models.items():
        estimator = make_estimator(algorithm, model, config.seed)
        assert estimator.get_params()  # a real, configured sklearn estimator


@pytest.mark.parametrize(
    ("edit", "path", "value"),
    [
        (lambda c: c["evaluation"].update(threshold=1.5), "evaluation.threshold", "1.5"),
        (lambda c: c.update(surprise=True), "surprise", "True"),
        (lambda c: c["models"].update(xgboost={"params": {}}), "models.xgboost", "'xgboost'"),
        (lambda c: c.update(seed="abc"), "seed", "'abc'"),
        (lambda c: c["split"].update(test_size=0.9), "split.test_size", "0.9"),
        (lambda c: c["tuning"].update(scoring="auc"), "tuning.scoring", "'auc'"),
        (lambda c: c["evaluation"].update(cv_folds=1), "evaluation.cv_folds", "1"),
        (
            lambda c: c["models"]["svm"].update(search_space={"C": 1.0}),
            "models.svm.search_space.C",
            "1.0",
        ),
        (lambda c: c["models"]["svm"].update(parms={}), "models.svm.parms", "{}"),
        (lambda c: c["promotion"].update(p_value=0), "promotion.p_value", "0"),
        (
            lambda c: c["promotion"].update(max_brier_increase=-0.01),
            "promotion.max_brier_increase",
            "-0.01",
        ),
        (lambda c: c["promotion"].update(min_gain=0.01), "promotion.min_gain", "0.01"),
    ],
    ids=[
        "threshold-above-1",
        "unknown-top-level-key",
        "unknown-model",
        "wrong-type",
        "test-size-too-big",
        "unknown-scoring",
        "one-fold",
        "grid-not-a-list",
        "misspelt-section",
        "p-value-zero",
        "negative-brier-margin",
        "unknown-promotion-key",
    ],
)
def test_bad_value_names_key_path_and_value(
    raw_config: dict[str, Any], edit: Any, path: str, value: str
) -> None:
    edit(raw_config)
    with pytest.raises(ConfigError) as info:
        parse_config(raw_config, source="pipeline.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"pipeline.yaml: {path}")
    assert f" = {value}: " in message


def test_several_errors_are_counted(raw_config: dict[str, Any]) -> None:
    raw_config["seed"] = -1
    raw_config["evaluation"]["threshold"] = 2
    with pytest.raises(ConfigError, match=r"\(\+1 more\)"):
        parse_config(raw_config)


def test_models_section_is_required(raw_config: dict[str, Any]) -> None:
    del raw_config["models"]
    with pytest.raises(ConfigError, match="models"):
        parse_config(raw_config)


def test_unknown_estimator_param_is_named(raw_config: dict[str, Any]) -> None:
    raw_config["models"]["svm"]["params"]["foo"] = 1
    config = parse_config(raw_config)  # estimator parameters are checked against sklearn
    with pytest.raises(ConfigError) as info:
        make_estimator("svm", config.models["svm"], config.seed)
    message = str(info.value)
    assert "\n" not in message
    assert "models.svm.params" in message
    assert "foo" in message
    assert "SVC" in message


def test_unknown_search_space_param_is_named() -> None:
    model = ModelConfig(search_space={"max_depthh": [2, 3]})
    with pytest.raises(ConfigError, match=r"models.random_forest.search_space: .*max_depthh"):
        make_estimator("random_forest", model, seed=0)


def test_seed_reaches_the_estimator() -> None:
    estimator = make_estimator("random_forest", ModelConfig(params={"n_estimators": 7}), seed=11)
    assert estimator.get_params()["random_state"] == 11
    assert estimator.get_params()["n_estimators"] == 7


def test_config_hash_is_stable_and_sensitive(raw_config: dict[str, Any]) -> None:
    first = parse_config(raw_config)
    reordered = dict(reversed(list(copy.deepcopy(raw_config).items())))
    assert parse_config(reordered).config_hash() == first.config_hash()
    assert load_config(REPO_CONFIG).config_hash() == first.config_hash()
    assert len(first.config_hash()) == 64

    raw_config["models"]["svm"]["search_space"]["C"] = [0.1, 1.0]
    assert parse_config(raw_config).config_hash() != first.config_hash()
    changed_seed = first.model_copy(update={"seed": 43})
    assert changed_seed.config_hash() != first.config_hash()


def test_the_promotion_policy_is_validated_but_not_part_of_the_hash(
    raw_config: dict[str, Any],
) -> None:
    shipped = parse_config(raw_config)
    assert shipped.promotion.model_dump() == {
        "p_value": 0.05,
        "min_improvement": 0.005,
        "max_brier_increase": 0.01,
    }
    # A threshold decides after training: changing it must not retrain (same hash) ...
    raw_config["promotion"] = {"p_value": 0.01, "min_improvement": 0.02, "max_brier_increase": 0}
    assert parse_config(raw_config).config_hash() == shipped.config_hash()
    del raw_config["promotion"]
    assert parse_config(raw_config).config_hash() == shipped.config_hash()
    assert parse_config(raw_config).promotion == shipped.promotion  # defaults = shipped values
    # ... but it is in the dumped config that evaluation_results.json records.
    assert shipped.model_dump(mode="json")["promotion"]["min_improvement"] == 0.005


def test_defaults_fill_omitted_sections() -> None:
    config = parse_config({"models": {"logistic_regression": {}}})
    assert config.evaluation.threshold == 0.5
    assert config.tuning.scoring == "roc_auc"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_one_line_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 42\nmodels: {svm: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "not valid YAML" in message
    assert "line " in message


def test_cli_with_a_bad_config_exits_2_with_one_line(
    project, raw_config: dict[str, Any], heartml_cli, make_cli_env
) -> None:
    raw_config["evaluation"]["threshold"] = 1.5
    bad = project.root / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw_config))
    result = heartml_cli(
        "--config", str(bad), "train", cwd=project.root, env=make_cli_env(COLUMNS="60")
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {bad}: evaluation.threshold = 1.5")
    assert not project.models_dir.exists()


def test_cli_with_invalid_yaml_exits_2_with_one_line(project, heartml_cli, make_cli_env) -> None:
    bad = project.root / "broken.yaml"
    bad.write_text("seed: 42\nmodels: {svm: [1, 2\n")
    result = heartml_cli("-c", str(bad), "train", cwd=project.root, env=make_cli_env())
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not valid YAML" in lines[0]
