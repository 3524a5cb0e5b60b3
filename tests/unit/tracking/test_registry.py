"""heartml.tracking.registry.Registry against a real embedded MLflow store (SQLite, tmp folder).

The oracle is MLflow's own client reading the same store, not the Registry reading itself back.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from heartml.config import PromotionConfig
from heartml.errors import TrackingError
from heartml.settings import Settings
from heartml.tracking.promotion import PromotionDecision
from heartml.tracking.registry import Registry
from heartml.tracking.versions import ChampionInfo, RegisteredVersion, RegistryEntry

pytestmark = pytest.mark.task3

FOREST, SVM = "heart_disease_random_forest", "heart_disease_svm"


def mlflow_client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def aliases(settings: Settings) -> dict[str, dict[str, str]]:
    """alias -> version of every registered model, as MLflow itself reports them."""
    client = mlflow_client(settings)
    return {
        m.name: {alias: str(v) for alias, v in m.aliases.items()}
        for m in client.search_registered_models()
    }


def promote(registry: Registry, model_name: str, version: str) -> PromotionDecision:
    algorithm = model_name.removeprefix("heart_disease_")
    target = RegisteredVersion(algorithm, model_name, version, "", 0.9)
    decision = PromotionDecision(
        True, "test", target, registry.find_champion(), {}, PromotionConfig()
    )
    registry.apply_promotion(decision)
    return decision


def test_an_empty_registry_has_no_champion_and_lists_nothing(store_settings: Settings) -> None:
    registry = Registry.connect(store_settings)
    assert registry.find_champion() is None
    assert registry.listing() == {}
    with pytest.raises(TrackingError, match="no champion in the registry") as info:
        registry.require_champion()
    assert info.value.hint == "run python src/experiment_tracking.py first"
    assert "python src" not in str(info.value)  # advice only in the hint


def test_promotion_moves_the_alias_and_rollback_gives_it_back(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("random_forest", cv_roc_auc="0.881000", data_sha256="d" * 64)
    register("random_forest", cv_roc_auc="0.902000")
    register("svm", cv_roc_auc="0.870000")
    registry = Registry.connect(store_settings)

    promote(registry, FOREST, "1")
    assert aliases(store_settings) == {FOREST: {"champion": "1"}, SVM: {}}
    champion = registry.find_champion()
    assert champion is not None
    assert (champion.model_name, champion.version, champion.algorithm) == (
        FOREST,
        "1",
        "random_forest",
    )
    assert champion.roc_auc == 0.881 and champion.data_sha256 == "d" * 64
    assert champion.model_uri == f"models:/{FOREST}@champion"

    promote(registry, FOREST, "2")  # a new version of the same model
    assert aliases(store_settings)[FOREST] == {"champion": "2", "champion_previous": "1"}

    promote(registry, SVM, "1")  # another model: the alias leaves the forest
    assert aliases(store_settings) == {
        FOREST: {"champion_previous": "2"},
        SVM: {"champion": "1"},
    }

    decision = registry.rollback()
    assert decision.reason == "rollback to the previous champion"
    assert decision.candidate is not None and decision.candidate.model_name == FOREST
    assert aliases(store_settings) == {
        FOREST: {"champion": "2"},
        SVM: {"champion_previous": "1"},
    }


def test_rollback_without_a_previous_champion_is_an_error(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("svm")
    registry = Registry.connect(store_settings)
    promote(registry, SVM, "1")
    with pytest.raises(TrackingError, match="no previous champion recorded"):
        registry.rollback()
    assert aliases(store_settings) == {SVM: {"champion": "1"}}  # nothing moved


def test_the_listing_names_every_version_with_its_aliases(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("random_forest", cv_roc_auc="0.881000")
    register("random_forest", cv_roc_auc="not a number")
    for _ in range(10):  # versions sort as numbers: 10 after 9
        register("svm")
    registry = Registry.connect(store_settings)
    promote(registry, FOREST, "1")
    promote(registry, FOREST, "2")
    listing = registry.listing()
    assert list(listing) == [FOREST, SVM]  # the configured order of the algorithms
    assert listing[FOREST] == [
        RegistryEntry(FOREST, "1", ("champion_previous",), 0.881, None),
        RegistryEntry(FOREST, "2", ("champion",), None, None),
    ]
    assert [entry.version for entry in listing[SVM]] == [str(n) for n in range(1, 11)]


def test_a_named_version_and_its_errors(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("svm", cv_roc_auc="0.870000", test_roc_auc="0.850000")
    registry = Registry.connect(store_settings)
    found = registry.find_version(SVM, "1")
    assert isinstance(found, ChampionInfo)
    assert (found.version, found.roc_auc, found.test_roc_auc) == ("1", 0.87, 0.85)
    assert found.model_uri == f"models:/{SVM}/1"

    # RESOURCE_DOES_NOT_EXIST: a missing version, and a model never registered.
    for name, version in ((SVM, "9"), ("heart_disease_nothing", "1")):
        with pytest.raises(TrackingError) as info:
            registry.find_version(name, version)
        assert str(info.value) == (
            f"no version {version} of {name} in the registry at {store_settings.tracking_uri}"
        )
        assert info.value.hint == "`heartml registry` lists the registered versions"
    # INVALID_PARAMETER_VALUE: not a version number at all.
    with pytest.raises(TrackingError, match=r"heart_disease_svm version 'abc' is not valid: "):
        registry.find_version(SVM, "abc")


def test_a_broken_store_is_an_error_not_an_empty_registry(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("svm")
    registry = Registry.connect(store_settings)
    promote(registry, SVM, "1")
    database = Path(store_settings.tracking_uri.removeprefix("sqlite:///"))
    database.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TrackingError, match=r"^looking up the champion failed on sqlite:///"):
        registry.find_champion()
    with pytest.raises(TrackingError, match=r"^reading the registry failed on sqlite:///"):
        registry.listing()


def test_every_decision_is_recorded_with_its_thresholds(
    store_settings: Settings, register: Callable[..., str]
) -> None:
    register("svm")
    registry = Registry.connect(store_settings)
    client = mlflow_client(store_settings)
    run_id = client.create_run(registry.ensure_experiment()).info.run_id
    policy = PromotionConfig(p_value=0.01, min_improvement=0.02, max_brier_increase=0.005)
    target = RegisteredVersion("svm", SVM, "1", run_id, 0.9)
    decision = PromotionDecision(False, "kept the champion: because", target, None, {}, policy)
    registry.record_decision(run_id, decision)

    tags = client.get_run(run_id).data.tags
    assert tags["promotion.decision"] == "kept"
    assert tags["promotion.reason"] == "kept the champion: because"
    thresholds = {"p_value": 0.01, "min_improvement": 0.02, "max_brier_increase": 0.005}
    assert json.loads(tags["promotion.thresholds"]) == thresholds
    local = client.download_artifacts(run_id, "promotion_decision.json", str(store_settings.root))
    record = json.loads(Path(local).read_text())
    assert record["thresholds"] == thresholds and record["promote"] is False
    assert record["decided_at"]
    version_tags = client.get_model_version(SVM, "1").tags
    assert version_tags["promotion_decision"] == "kept: kept the champion: because"


def test_an_unreachable_server_fails_fast_with_one_line(
    tmp_path: Path, isolated_mlflow: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    settings = Settings(root=tmp_path, mlflow_tracking_uri=f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(TrackingError) as info:
        Registry.connect(settings)
    assert time.perf_counter() - started < 10
    assert str(info.value) == (
        f"connecting to the tracking server failed on http://127.0.0.1:{port}: "
        "no server answers (connection refused)"
    )


def test_connecting_leaves_the_process_environment_as_it_was(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow writes its URIs into os.environ; heartml puts them back, so a program using it as a
    library does not hand this store to every later Settings and child process."""
    import os

    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere.db")
    Registry.connect(store_settings)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:////elsewhere.db"
    assert mlflow.get_tracking_uri() == store_settings.tracking_uri  # the fluent API still is
