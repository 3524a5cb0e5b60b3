"""MLflow as the system of record: runs, registered versions, the champion alias and its gate.

The ONE module that imports mlflow. Every network call has a timeout; a failure becomes a
TrackingError with one line for the user. The champion only moves after all four versions are
registered, so a failure part-way never leaves a half-registered champion.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from heartml.coding import RAW_FEATURES
from heartml.config import ALGORITHMS
from heartml.errors import TrackingError
from heartml.evaluate import corrected_paired_t_test
from heartml.settings import Settings

log = logging.getLogger(__name__)

PREVIOUS_ALIAS_SUFFIX = "_previous"
PROMOTION_P_VALUE = 0.05  # one-sided corrected paired t-test on the same CV folds
# Types inside our fitted pipelines that skops must be told to trust (it refuses unknown ones).
SKOPS_TRUSTED_TYPES = [
    "heartml.features.FeatureEngineer",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
]
# Distributions a logged pipeline needs to load (heartml: the FeatureEngineer class).
MODEL_DISTRIBUTIONS = ("mlflow", "heartml", "scikit-learn", "skops", "numpy", "pandas", "scipy")


@dataclass(frozen=True)
class RegisteredVersion:
    algorithm: str
    model_name: str
    version: str
    run_id: str
    cv_roc_auc: float


@dataclass(frozen=True)
class ChampionInfo:
    model_name: str
    algorithm: str
    version: str
    run_id: str
    roc_auc: float
    test_roc_auc: float | None
    data_sha256: str | None
    config_hash: str | None
    model_uri: str
    tags: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate: RegisteredVersion | None
    previous: ChampionInfo | None
    statistics: dict[str, float]

    def record(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "candidate": asdict(self.candidate) if self.candidate else None,
            "previous_champion": self.previous.as_dict() if self.previous else None,
            "statistics": self.statistics,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


# --------------------------------------------------------------------------------------------
# Connection


def _mlflow() -> Any:
    import mlflow

    return mlflow


# Transport failures as requests/urllib3 word them, and what they mean to a user.
_TRANSPORT_FAILURES = (
    ("Connection refused", "no server answers (connection refused)"),
    ("Name or service not known", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("timed out", "no answer within the timeout (MLFLOW_HTTP_REQUEST_TIMEOUT)"),
    ("Connection aborted", "the server dropped the connection"),
    ("Connection reset", "the server dropped the connection"),
    ("RemoteDisconnected", "the server dropped the connection"),
    ("too many 5", "the server kept answering with errors (HTTP 5xx)"),
)


def _describe(exc: BaseException) -> str:
    """One short line: a transport failure by its meaning, anything else by its first line."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    everything = " ".join(str(e) for e in chain)
    for marker, meaning in _TRANSPORT_FAILURES:
        if marker in everything:
            return meaning
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


@contextmanager
def tracking_errors(what: str, uri: str) -> Iterator[None]:
    """Any failure inside becomes one TrackingError line naming the operation and the server."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(f"{what} failed on {uri}: {_describe(exc)}") from exc


def connect(settings: Settings) -> Any:
    """Point MLflow at the settings' store with short timeouts and check that it answers."""
    # Short timeouts and few retries: an unreachable server is an error in seconds, not minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(settings.mlflow_timeout_s)))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # urllib3 warns on every retry; the failure, if it comes, is reported once by TrackingError.
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if urllib3_log.getEffectiveLevel() > logging.DEBUG:
        urllib3_log.setLevel(logging.ERROR)
    mlflow = _mlflow()
    uri = settings.tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    with tracking_errors("connecting to the tracking server", uri):
        client.search_experiments(max_results=1)
    return client


def ensure_experiment(client: Any, settings: Settings) -> str:
    with tracking_errors("creating the experiment", settings.tracking_uri):
        experiment = client.get_experiment_by_name(settings.mlflow_experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        # Embedded store: artifacts in the project folder; a server decides its own location.
        location = settings.embedded_artifact_root.as_uri() if settings.embedded_tracking else None
        try:
            return str(client.create_experiment(settings.mlflow_experiment, location))
        except Exception:
            # Another process created it between our look-up and our create.
            experiment = client.get_experiment_by_name(settings.mlflow_experiment)
            if experiment is None:
                raise
            return str(experiment.experiment_id)


# --------------------------------------------------------------------------------------------
# Logging one pipeline execution


def _flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, stats in summary["cv_metrics"].items():
        for key, value in stats.items():
            metrics[f"cv_{name}_{key}"] = float(value)
    for name, value in summary["test_metrics"].items():
        metrics[f"test_{name}"] = float(value)
    for name, interval in summary["test_ci"].items():
        for key, value in interval.items():
            metrics[f"test_{name}_{key}"] = float(value)
    return metrics


def _common_tags(results: dict[str, Any], provenance: dict[str, Any]) -> dict[str, str]:
    versions = results["library_versions"]
    return {
        "data_sha256": results["data_sha256"],
        "data_source": str(provenance.get("source", "unknown")),
        "data_location": str(provenance.get("location", "")),
        "config_hash": results["config_hash"],
        "git_commit": str(results.get("git_commit") or "unknown"),
        "seed": str(results["seed"]),
        "library_versions": json.dumps(versions, sort_keys=True),
        **{f"version.{name}": value for name, value in versions.items()},
    }


def _cv_scheme(results: dict[str, Any]) -> str:
    evaluation = results["config"]["evaluation"]
    return (
        f"repeated-stratified-{evaluation['cv_folds']}-fold-x{evaluation['cv_repeats']}"
        f"-seed{results['seed']}-n{results['n_train']}"
    )


def log_pipeline_execution(
    client: Any,
    settings: Settings,
    results: dict[str, Any],
    pipelines: dict[str, Any],
    example: pd.DataFrame,
    artifacts: dict[str, Path],
    provenance: dict[str, Any],
    progress: Callable[[str], None] | None = None,
) -> tuple[str, list[RegisteredVersion]]:
    """One parent run; one nested run and one new registered version per model."""
    mlflow = _mlflow()
    from mlflow.models import infer_signature

    report = progress or (lambda _m: None)
    uri = settings.tracking_uri
    experiment_id = ensure_experiment(client, settings)
    tags = _common_tags(results, provenance)
    example = example.loc[:, list(RAW_FEATURES)].astype("float64")
    registered: list[RegisteredVersion] = []
    with (
        tracking_errors("logging the pipeline run", uri),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"pipeline-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            tags={**tags, "heartml.run_type": "pipeline"},
        ) as parent,
    ):
        mlflow.log_params(
            {
                "seed": results["seed"],
                "n_train": results["n_train"],
                "n_test": results["n_test"],
                "best_algorithm": results["best_algorithm"],
            }
        )
        _log_paths(client, parent.info.run_id, artifacts)
        for algorithm in (a for a in ALGORITHMS if a in results["models"]):
            report(f"tracking {algorithm}")
            summary = results["models"][algorithm]
            registered.append(
                _log_model_run(
                    client,
                    settings,
                    experiment_id,
                    algorithm,
                    summary,
                    pipelines[algorithm],
                    example,
                    {
                        **tags,
                        "cv_scheme": _cv_scheme(results),
                        "threshold": str(results["threshold"]),
                    },
                    infer_signature,
                    provenance,
                )
            )
            # Each model run carries the reports it was judged by, not only the parent.
            _log_paths(client, registered[-1].run_id, artifacts)
        mlflow.set_tag(
            "registered_versions",
            json.dumps({v.model_name: v.version for v in registered}, sort_keys=True),
        )
        return parent.info.run_id, registered


def _log_paths(client: Any, run_id: str, artifacts: dict[str, Path]) -> None:
    for name, path in artifacts.items():
        if path.is_file():
            client.log_artifact(run_id, str(path), artifact_path=name)
        elif path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=name)


def model_requirements() -> list[str]:
    """What loading a logged pipeline needs, pinned to the training environment.

    Declared rather than inferred: MLflow's inference loads the model in a subprocess (about
    4 s per model) and picks up whatever else the process imported (pytest, psutil, ...).
    """
    from importlib import metadata

    pins = []
    for name in MODEL_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def _log_model_run(
    client: Any,
    settings: Settings,
    experiment_id: str,
    algorithm: str,
    summary: dict[str, Any],
    pipeline: Any,
    example: pd.DataFrame,
    tags: dict[str, str],
    infer_signature: Any,
    provenance: dict[str, Any],
) -> RegisteredVersion:
    mlflow = _mlflow()
    model_name = settings.registered_model_name(algorithm)
    # The experiment must be named here too: a nested run otherwise lands in experiment 0
    # ("Default", artifacts under ./mlruns), away from its parent.
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=algorithm,
        nested=True,
        tags={**tags, "algorithm": algorithm},
    ) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in summary["estimator_params"].items()})
        mlflow.log_params({f"tuned.{k}": str(v) for k, v in summary["best_params"].items()})
        mlflow.log_metrics(_flat_metrics(summary))
        for step, value in enumerate(summary["cv_fold_metrics"]["roc_auc"]):
            mlflow.log_metric("cv_fold_roc_auc", value, step=step)
        mlflow.log_dict(summary, "evaluation/summary.json")
        mlflow.log_dict(provenance, "data/provenance.json")
        signature = infer_signature(example, pipeline.predict_proba(example))
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example.head(3),
            pyfunc_predict_fn="predict_proba",
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=model_requirements(),
            registered_model_name=model_name,
            await_registration_for=60,
        )
        version = str(info.registered_model_version)
        cv_auc = float(summary["cv_metrics"]["roc_auc"]["mean"])
        version_tags = {
            **{k: v for k, v in tags.items() if not k.startswith("version.")},
            "algorithm": algorithm,
            "cv_roc_auc": f"{cv_auc:.6f}",
            "test_roc_auc": f"{summary['test_metrics']['roc_auc']:.6f}",
            "cv_fold_roc_auc": json.dumps(
                [round(v, 6) for v in summary["cv_fold_metrics"]["roc_auc"]]
            ),
        }
        for key, value in version_tags.items():
            client.set_model_version_tag(model_name, version, key, value)
        return RegisteredVersion(algorithm, model_name, version, run.info.run_id, cv_auc)


# --------------------------------------------------------------------------------------------
# Champion


def _champion_from_version(settings: Settings, version: Any) -> ChampionInfo:
    tags = dict(version.tags or {})
    test_auc = tags.get("test_roc_auc")
    return ChampionInfo(
        model_name=version.name,
        algorithm=tags.get(
            "algorithm", version.name.removeprefix(f"{settings.model_name_prefix}_")
        ),
        version=str(version.version),
        run_id=str(version.run_id),
        roc_auc=float(tags.get("cv_roc_auc", "nan")),
        test_roc_auc=float(test_auc) if test_auc else None,
        data_sha256=tags.get("data_sha256"),
        config_hash=tags.get("config_hash"),
        model_uri=f"models:/{version.name}@{settings.champion_alias}",
        tags=tags,
    )


def _versions_with_alias(client: Any, settings: Settings, alias: str) -> list[Any]:
    found = []
    for algorithm in ALGORITHMS:
        name = settings.registered_model_name(algorithm)
        try:
            found.append(client.get_model_version_by_alias(name, alias))
        except Exception as exc:  # no such model or alias
            if (
                "RESOURCE_DOES_NOT_EXIST" not in str(getattr(exc, "error_code", ""))
                and "not found" not in str(exc).lower()
                and "does not exist" not in str(exc).lower()
            ):
                raise
    return found


def find_champion(client: Any, settings: Settings) -> ChampionInfo | None:
    with tracking_errors("looking up the champion", settings.tracking_uri):
        holders = _versions_with_alias(client, settings, settings.champion_alias)
    if not holders:
        return None
    # Should there ever be two (a concurrent promotion), the latest promotion wins.
    holders.sort(key=lambda v: (v.tags or {}).get("promoted_at", ""), reverse=True)
    return _champion_from_version(settings, holders[0])


def find_version(client: Any, settings: Settings, model_name: str, version: str) -> ChampionInfo:
    """One registered version, described like the champion (read-only: `heartml package
    --model NAME --version N` packages it); its URI names the version, not the alias."""
    with tracking_errors(f"looking up {model_name} version {version}", settings.tracking_uri):
        try:
            found = client.get_model_version(model_name, str(version))
        except Exception as exc:
            text = f"{getattr(exc, 'error_code', '')} {exc}".lower()
            if "resource_does_not_exist" in text or "not found" in text:
                raise TrackingError(
                    f"no version {version} of {model_name} in the registry: see `heartml registry`"
                ) from None
            raise
    info = _champion_from_version(settings, found)
    return replace(info, model_uri=f"models:/{model_name}/{found.version}")


def decide(
    candidate: RegisteredVersion,
    candidate_tags: dict[str, str],
    current: ChampionInfo | None,
    force: bool,
) -> PromotionDecision:
    """The promotion gate: replace the champion only for a supported improvement or new data."""
    if force:
        return PromotionDecision(True, "forced with --force-champion", candidate, current, {})
    if current is None:
        return PromotionDecision(True, "no champion yet", candidate, None, {})
    if current.data_sha256 != candidate_tags.get("data_sha256"):
        return PromotionDecision(
            True,
            f"the champion was trained on other data (sha256 {str(current.data_sha256)[:12]}…, "
            f"candidate {candidate_tags.get('data_sha256', '')[:12]}…)",
            candidate,
            current,
            {},
        )
    if current.tags.get("cv_scheme") != candidate_tags.get("cv_scheme"):
        return PromotionDecision(
            False,
            "kept the champion: its CV folds differ from the candidate's "
            f"({current.tags.get('cv_scheme')} vs {candidate_tags.get('cv_scheme')}), so no "
            "paired comparison is possible; use --force-champion to replace it",
            candidate,
            current,
            {},
        )
    champion_folds = json.loads(current.tags.get("cv_fold_roc_auc", "[]"))
    candidate_folds = json.loads(candidate_tags.get("cv_fold_roc_auc", "[]"))
    if len(champion_folds) != len(candidate_folds) or not champion_folds:
        return PromotionDecision(
            False,
            "kept the champion: fold results missing or of different length",
            candidate,
            current,
            {},
        )
    folds = int(candidate_tags.get("cv_scheme", "5-fold").split("-fold")[0].split("-")[-1] or 5)
    test = corrected_paired_t_test(candidate_folds, champion_folds, 1.0 / folds)
    stats = {
        "mean_roc_auc_difference": test["mean_difference"],
        "t": test["t"],
        "p_value": test["p_value"],
        "alpha": PROMOTION_P_VALUE,
    }
    summary = (
        f"CV ROC-AUC {candidate.cv_roc_auc:.4f} vs champion {current.roc_auc:.4f} "
        f"(Δ {test['mean_difference']:+.4f}, one-sided corrected paired t-test "
        f"p={test['p_value']:.3f} on the same {len(candidate_folds)} folds)"
    )
    if test["mean_difference"] > 0 and test["p_value"] < PROMOTION_P_VALUE:
        return PromotionDecision(
            True, f"better by a supported margin: {summary}", candidate, current, stats
        )
    return PromotionDecision(
        False,
        f"kept the champion, not better by a supported margin: {summary}",
        candidate,
        current,
        stats,
    )


# How the stores word a unique-key clash (PostgreSQL, SQLite, MLflow's own message).
_CONCURRENT_INSERT = ("duplicate key", "unique constraint", "already exists")


def _set_alias(client: Any, name: str, alias: str, version: str) -> None:
    """set_registered_model_alias, safe against another process setting the same alias.

    The registry looks for the alias, then inserts it: two writers at once both find none and
    one insert fails on the unique key (measured: tests/integration/test_promotion_race.py).
    By then the other's row exists, so trying again updates it, as a lone writer would have.
    """
    for attempt in range(3):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except Exception as exc:
            text = str(exc).lower()
            if attempt == 2 or not any(marker in text for marker in _CONCURRENT_INSERT):
                raise


def apply_promotion(client: Any, settings: Settings, decision: PromotionDecision) -> None:
    """Record the promotion (`promoted_at` on the candidate), move the alias, then settle.

    The registry has no lock and no compare-and-set, so two processes may promote at once
    (different models, or different versions of one). The promotion with the latest
    `promoted_at` is the champion and the one before it `champion_previous`; _settle_aliases
    makes the registry say so, whatever the other process did meanwhile.
    """
    assert decision.candidate is not None
    alias, previous_alias = settings.champion_alias, settings.champion_alias + PREVIOUS_ALIAS_SUFFIX
    target = decision.candidate
    with tracking_errors("moving the champion alias", settings.tracking_uri):
        if decision.previous is not None and not (
            decision.previous.model_name == target.model_name
            and decision.previous.version == target.version
        ):
            for holder in _versions_with_alias(client, settings, previous_alias):
                if holder.name != decision.previous.model_name:
                    client.delete_registered_model_alias(holder.name, previous_alias)
            _set_alias(
                client, decision.previous.model_name, previous_alias, decision.previous.version
            )
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        client.set_model_version_tag(target.model_name, target.version, "promoted_at", now)
        _set_alias(client, target.model_name, alias, target.version)
        _settle_aliases(client, settings)


SETTLE_ATTEMPTS = 20


def _promotion_order(client: Any, settings: Settings) -> list[Any]:
    """Every version of the four models that was ever promoted, the latest promotion first."""
    promoted = []
    for algorithm in ALGORITHMS:
        versions = client.search_model_versions(
            f"name='{settings.registered_model_name(algorithm)}'"
        )
        promoted += [v for v in versions if (v.tags or {}).get("promoted_at")]
    return sorted(promoted, key=lambda v: v.tags["promoted_at"], reverse=True)


def _settle_aliases(client: Any, settings: Settings) -> None:
    """Put `champion` on the latest promotion and `champion_previous` on the one before, and
    take them off every other model; repeat until one read finds nothing to change.

    Why a loop: an alias is set and deleted per model, without a condition, so a process that
    read the registry a moment ago can delete the alias another process has just set (measured:
    with two promoting processes, no champion at all in about one round in ten). Every process
    aims at the same state (it follows from the `promoted_at` tags, which are only ever
    written before this runs), and each stops only after a read that needs no change, so the
    last one to act also confirms the final state.
    """
    alias, previous_alias = settings.champion_alias, settings.champion_alias + PREVIOUS_ALIAS_SUFFIX
    for _ in range(SETTLE_ATTEMPTS):
        order = _promotion_order(client, settings)
        # Without a second recorded promotion (a registry older than the tag), the previous
        # alias stays where apply_promotion put it.
        wanted = dict(zip((alias, previous_alias), order[:2], strict=False))
        changed = False
        for name, version in wanted.items():
            holders = _versions_with_alias(client, settings, name)
            if not any(
                (h.name, str(h.version)) == (version.name, str(version.version)) for h in holders
            ):
                _set_alias(client, version.name, name, str(version.version))
                changed = True
            for holder in holders:
                if holder.name != version.name:
                    client.delete_registered_model_alias(holder.name, name)
                    changed = True
        if not changed:
            return
        time.sleep(random.uniform(0.01, 0.1))  # let the other writer finish its step
    raise TrackingError(
        f"the {alias} alias did not settle after {SETTLE_ATTEMPTS} attempts: "
        "other promotions keep moving it"
    )


def record_decision(
    client: Any, settings: Settings, run_id: str, decision: PromotionDecision
) -> None:
    """Every decision, promoted or not, is kept in MLflow with its reason."""
    record = decision.record()
    with tracking_errors("recording the promotion decision", settings.tracking_uri):
        client.set_tag(run_id, "promotion.decision", "promoted" if decision.promote else "kept")
        client.set_tag(run_id, "promotion.reason", decision.reason[:4900])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "promotion_decision.json"
            path.write_text(json.dumps(record, indent=2))
            client.log_artifact(run_id, str(path))
        if decision.candidate is not None:
            client.set_model_version_tag(
                decision.candidate.model_name,
                decision.candidate.version,
                "promotion_decision",
                ("promoted: " if decision.promote else "kept: ") + decision.reason[:4800],
            )


def version_tags(client: Any, settings: Settings, version: RegisteredVersion) -> dict[str, str]:
    with tracking_errors("reading version tags", settings.tracking_uri):
        found = client.get_model_version(version.model_name, version.version)
    return dict(found.tags or {})


def rollback(client: Any, settings: Settings) -> PromotionDecision:
    """Give the champion alias back to the previous champion (and remember the demoted one)."""
    previous_alias = settings.champion_alias + PREVIOUS_ALIAS_SUFFIX
    with tracking_errors("rolling back the champion", settings.tracking_uri):
        holders = _versions_with_alias(client, settings, previous_alias)
    if not holders:
        raise TrackingError("no previous champion recorded: nothing to roll back to")
    target_version = holders[0]
    current = find_champion(client, settings)
    target = RegisteredVersion(
        algorithm=(target_version.tags or {}).get("algorithm", ""),
        model_name=target_version.name,
        version=str(target_version.version),
        run_id=str(target_version.run_id),
        cv_roc_auc=float((target_version.tags or {}).get("cv_roc_auc", "nan")),
    )
    decision = PromotionDecision(True, "rollback to the previous champion", target, current, {})
    apply_promotion(client, settings, decision)
    return decision


def load_model_pipeline(settings: Settings, model_uri: str) -> Any:
    """The fitted sklearn Pipeline behind a registry URI (skops: only the trusted types load)."""
    mlflow = _mlflow()
    with tracking_errors(f"loading {model_uri}", settings.tracking_uri):
        return mlflow.sklearn.load_model(model_uri)


def download_model(settings: Settings, model_uri: str, destination: Path) -> Path:
    """Copy the MLflow model folder (MLmodel, skops file, env files) of a registry URI."""
    mlflow = _mlflow()
    with tracking_errors(f"downloading {model_uri}", settings.tracking_uri):
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(destination))
        )


def registry_state(client: Any, settings: Settings) -> dict[str, Any]:
    """Every version of the four models with its aliases: for `heartml registry` and the notes."""
    state: dict[str, Any] = {}
    with tracking_errors("reading the registry", settings.tracking_uri):
        for algorithm in ALGORITHMS:
            name = settings.registered_model_name(algorithm)
            try:
                aliases_by_version: dict[str, list[str]] = {}
                for alias, number in client.get_registered_model(name).aliases.items():
                    aliases_by_version.setdefault(str(number), []).append(alias)
            except Exception as exc:
                if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
                    continue
                raise
            versions = client.search_model_versions(f"name='{name}'")
            state[name] = sorted(
                (
                    {
                        "version": str(v.version),
                        "aliases": sorted(aliases_by_version.get(str(v.version), [])),
                        "cv_roc_auc": (v.tags or {}).get("cv_roc_auc"),
                        "run_id": v.run_id,
                    }
                    for v in versions
                ),
                key=lambda item: int(item["version"]),
            )
    return state


def run_summary(settings: Settings, run_id: str) -> dict[str, Any]:
    """The evaluation summary a model run logged, with its decision threshold."""
    mlflow = _mlflow()
    with tracking_errors(f"reading run {run_id}", settings.tracking_uri):
        summary: dict[str, Any] = mlflow.artifacts.load_dict(
            f"runs:/{run_id}/evaluation/summary.json"
        )
        run = mlflow.MlflowClient().get_run(run_id)
    summary["threshold"] = float(run.data.tags.get("threshold", 0.5))
    return summary


def run_data_info(settings: Settings, run_id: str) -> dict[str, Any]:
    """The data provenance a model run logged (from its tags if the artifact is absent)."""
    mlflow = _mlflow()
    with tracking_errors(f"reading run {run_id}", settings.tracking_uri):
        tags = mlflow.MlflowClient().get_run(run_id).data.tags
        try:
            info: dict[str, Any] = mlflow.artifacts.load_dict(
                f"runs:/{run_id}/data/provenance.json"
            )
        except Exception:
            info = {}
    return {"sha256": tags.get("data_sha256"), "source": tags.get("data_source"), **info}


def pyfunc_probabilities(model_dir: Path, frame: pd.DataFrame) -> Any:
    """P(class=1) from an MLflow model folder through the generic pyfunc interface."""
    import numpy as np

    mlflow = _mlflow()
    model = mlflow.pyfunc.load_model(str(model_dir))
    output = np.asarray(model.predict(frame.loc[:, list(RAW_FEATURES)].astype("float64")))
    return output[:, 1] if output.ndim == 2 else output


# --------------------------------------------------------------------------------------------
# Reproducibility: what a registered version was built from (read by heartml.reproduce)


@dataclass(frozen=True)
class VersionLineage:
    model_name: str
    version: str
    run_id: str  # the model's own (nested) run
    parent_run_id: str | None  # the pipeline run that logged evaluation_results.json
    tags: dict[str, str]  # the model run's tags: data_sha256, config_hash, seed, version.*, ...
    summary: dict[str, Any]  # the model run's evaluation/summary.json (every logged metric)
    provenance: dict[str, Any]  # the model run's data/provenance.json ({} when not logged)
    results: dict[str, Any] | None  # the parent's evaluation_results.json (the full config)
    results_path: str | None  # where it was found among the parent's artifacts


def find_artifact(client: Any, run_id: str, file_name: str, path: str | None = None) -> str | None:
    """The artifact path of the first file called `file_name` in a run (breadth first)."""
    folders: list[str | None] = [path]
    while folders:
        folder = folders.pop(0)
        for info in client.list_artifacts(run_id, folder):
            if info.is_dir:
                folders.append(info.path)
            elif info.path.rsplit("/", 1)[-1] == file_name:
                return str(info.path)
    return None


def version_lineage(
    client: Any, settings: Settings, model_name: str, version: str
) -> VersionLineage:
    """The run behind a registered version, with its logged config, data hash and metrics."""
    mlflow = _mlflow()
    with tracking_errors(f"reading {model_name} version {version}", settings.tracking_uri):
        try:
            found = client.get_model_version(model_name, str(version))
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
                raise TrackingError(
                    f"no version {version} of {model_name} in {settings.tracking_uri}"
                ) from None
            raise
        if not found.run_id:
            raise TrackingError(f"{model_name} version {version} has no run to rebuild it from")
        run = client.get_run(found.run_id)
        tags = dict(run.data.tags)
        summary: dict[str, Any] = mlflow.artifacts.load_dict(
            f"runs:/{found.run_id}/evaluation/summary.json"
        )
        provenance: dict[str, Any] = {}
        if find_artifact(client, found.run_id, "provenance.json") == "data/provenance.json":
            provenance = mlflow.artifacts.load_dict(f"runs:/{found.run_id}/data/provenance.json")
        parent = tags.get("mlflow.parentRunId")
        results_path = results = None
        if parent:
            results_path = find_artifact(client, parent, "evaluation_results.json")
            if results_path:
                results = mlflow.artifacts.load_dict(f"runs:/{parent}/{results_path}")
    return VersionLineage(
        model_name=model_name,
        version=str(version),
        run_id=str(found.run_id),
        parent_run_id=parent,
        tags=tags,
        summary=summary,
        provenance=provenance,
        results=results,
        results_path=results_path,
    )
