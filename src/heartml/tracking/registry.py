"""The model registry: one object holding the MLflow client and the settings it was built from.

Every call has a timeout and every failure is one TrackingError line; "no such model/version"
is told apart by MlflowException.error_code, never by the wording of a message. The champion
is an alias held by exactly one version across the models; `<alias>_previous` remembers the
one it replaced (for rollback).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from heartml.choices import ALGORITHMS
from heartml.errors import TrackingError
from heartml.settings import Settings
from heartml.tracking import aliases
from heartml.tracking.connection import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    configure,
    describe,
    error_code,
    mlflow_module,
    tracking_errors,
)
from heartml.tracking.promotion import ROLLBACK, PromotionDecision
from heartml.tracking.versions import (
    PREVIOUS_ALIAS_SUFFIX,
    ChampionInfo,
    RegisteredVersion,
    RegistryEntry,
    VersionTag,
)

DECISION_FILE = "promotion_decision.json"
NO_CHAMPION_HINT = "run python src/experiment_tracking.py first"  # the only command that registers
MAX_TAG_LENGTH = 4800  # MLflow caps a tag value at 5000 characters


class Registry:
    """Registry reads and writes for the configured models (`<prefix>_<algorithm>`)."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @classmethod
    def connect(cls, settings: Settings) -> Registry:
        """Point MLflow at the settings' store with short timeouts and check that it answers."""
        client = configure(settings)
        with tracking_errors("connecting to the tracking server", settings.tracking_uri):
            client.search_experiments(max_results=1)
        return cls(client, settings)

    @property
    def uri(self) -> str:
        return self.settings.tracking_uri

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        with tracking_errors(what, self.uri):
            yield

    def model_names(self) -> list[str]:
        return [self.settings.registered_model_name(a) for a in ALGORITHMS]

    def ensure_experiment(self, name: str | None = None) -> str:
        """The id of the experiment `name` (default: the spec's), created when missing."""
        name = name or self.settings.mlflow_experiment
        with self.errors("creating the experiment"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                return str(experiment.experiment_id)
            # Embedded store: artifacts in the project folder; a server decides its own location.
            settings = self.settings
            location = (
                settings.embedded_artifact_root.as_uri() if settings.embedded_tracking else None
            )
            try:
                return str(self.client.create_experiment(name, location))
            except Exception:
                # Another process created it between our look-up and our create.
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                return str(experiment.experiment_id)

    # ----------------------------------------------------------------------------------------
    # Versions and aliases

    def _aliases(self, model_name: str) -> dict[str, str] | None:
        """alias -> version of a registered model; None when the model is not registered."""
        try:
            model = self.client.get_registered_model(model_name)
        except Exception as exc:
            if error_code(exc) == RESOURCE_DOES_NOT_EXIST:
                return None
            raise
        return {alias: str(number) for alias, number in (model.aliases or {}).items()}

    def _holders(self, alias: str) -> list[Any]:
        """Every version (of any of the models) holding `alias`."""
        found = []
        for name in self.model_names():
            version = (self._aliases(name) or {}).get(alias)
            if version is not None:
                found.append(self.client.get_model_version(name, version))
        return found

    def _version(self, model_name: str, version: str) -> Any:
        try:
            return self.client.get_model_version(model_name, str(version))
        except Exception as exc:
            code = error_code(exc)
            if code == RESOURCE_DOES_NOT_EXIST:
                raise TrackingError(
                    f"no version {version} of {model_name} in the registry at {self.uri}",
                    hint="`heartml registry` lists the registered versions",
                ) from None
            if code == INVALID_PARAMETER_VALUE:
                raise TrackingError(
                    f"{model_name} version {version!r} is not valid: {describe(exc)}"
                ) from None
            raise

    def _info(self, version: Any, model_uri: str) -> ChampionInfo:
        prefix = f"{self.settings.model_name_prefix}_"
        return ChampionInfo.from_tags(
            version.name,
            str(version.version),
            str(version.run_id or ""),
            dict(version.tags or {}),
            model_uri,
            default_algorithm=version.name.removeprefix(prefix),
        )

    def find_champion(self) -> ChampionInfo | None:
        return self.find_alias(self.settings.champion_alias)

    def find_alias(self, alias: str) -> ChampionInfo | None:
        """The version holding `alias` across the models (the champion, the challenger)."""
        with self.errors(f"looking up the {alias}"):
            holders = self._holders(alias)
        if not holders:
            return None
        # Should there ever be two (a concurrent promotion), the latest promotion wins.
        holders.sort(key=lambda v: (v.tags or {}).get(VersionTag.PROMOTED_AT, ""), reverse=True)
        return self._info(holders[0], f"models:/{holders[0].name}@{alias}")

    def remove_alias(self, model_name: str, alias: str) -> None:
        with self.errors(f"removing the alias {alias} of {model_name}"):
            self.client.delete_registered_model_alias(model_name, alias)

    def require_champion(self) -> ChampionInfo:
        champion = self.find_champion()
        if champion is None:
            raise TrackingError("no champion in the registry", hint=NO_CHAMPION_HINT)
        return champion

    def find_version(self, model_name: str, version: str) -> ChampionInfo:
        """One registered version, described like the champion; its URI names the version."""
        with self.errors(f"looking up {model_name} version {version}"):
            found = self._version(model_name, version)
        return self._info(found, f"models:/{model_name}/{found.version}")

    def version_tags(self, version: RegisteredVersion) -> dict[str, str]:
        with self.errors("reading version tags"):
            return dict(self._version(version.model_name, version.version).tags or {})

    def apply_promotion(self, decision: PromotionDecision) -> None:
        """Record the promotion (`promoted_at` on the candidate), move the alias, then settle.

        The registry has no lock, so two processes may promote at once: the latest
        `promoted_at` is the champion and the one before it `<alias>_previous`, and
        aliases.settle makes the registry say so whatever the other process did meanwhile.
        """
        if decision.candidate is None:
            raise TrackingError("a promotion needs a candidate version")
        alias = self.settings.champion_alias
        previous_alias = alias + PREVIOUS_ALIAS_SUFFIX
        target, previous, client = decision.candidate, decision.previous, self.client
        with self.errors("moving the champion alias"):
            if previous is not None and (previous.model_name, previous.version) != (
                target.model_name,
                target.version,
            ):
                for holder in self._holders(previous_alias):
                    if holder.name != previous.model_name:
                        client.delete_registered_model_alias(holder.name, previous_alias)
                aliases.set_alias(client, previous.model_name, previous_alias, previous.version)
            now = datetime.now(UTC).isoformat(timespec="microseconds")
            client.set_model_version_tag(
                target.model_name, target.version, VersionTag.PROMOTED_AT, now
            )
            aliases.set_alias(client, target.model_name, alias, target.version)
            aliases.settle(client, self.model_names(), self._holders, alias, previous_alias)

    def record_decision(self, run_id: str, decision: PromotionDecision) -> None:
        """Every decision, promoted or not, is kept in MLflow with its reason and thresholds."""
        record = {
            **decision.record(),
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        verdict = "promoted" if decision.promote else "kept"
        with self.errors("recording the promotion decision"):
            self.client.set_tag(run_id, "promotion.decision", verdict)
            self.client.set_tag(run_id, "promotion.reason", decision.reason[:MAX_TAG_LENGTH])
            self.client.set_tag(
                run_id, "promotion.thresholds", json.dumps(record["thresholds"], sort_keys=True)
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / DECISION_FILE
                path.write_text(json.dumps(record, indent=2))
                self.client.log_artifact(run_id, str(path))
            if decision.candidate is not None:
                self.client.set_model_version_tag(
                    decision.candidate.model_name,
                    decision.candidate.version,
                    VersionTag.PROMOTION_DECISION,
                    f"{verdict}: {decision.reason}"[:MAX_TAG_LENGTH],
                )

    def rollback(self) -> PromotionDecision:
        """Give the champion alias back to the previous champion (and remember the demoted one)."""
        with self.errors("rolling back the champion"):
            holders = self._holders(self.settings.champion_alias + PREVIOUS_ALIAS_SUFFIX)
        if not holders:
            raise TrackingError("no previous champion recorded: nothing to roll back to")
        found, current = holders[0], self.find_champion()
        info = self._info(found, "")
        target = RegisteredVersion(
            info.algorithm, info.model_name, info.version, info.run_id, info.roc_auc
        )
        decision = PromotionDecision(True, ROLLBACK, target, current)
        self.apply_promotion(decision)
        return decision

    def listing(self) -> dict[str, list[RegistryEntry]]:
        """Every version of the models with its aliases (models never registered are absent)."""
        state: dict[str, list[RegistryEntry]] = {}
        with self.errors("reading the registry"):
            for name in self.model_names():
                aliases = self._aliases(name)
                if aliases is None:
                    continue
                by_version: dict[str, list[str]] = {}
                for alias, number in aliases.items():
                    by_version.setdefault(number, []).append(alias)
                versions = self.client.search_model_versions(f"name='{name}'")
                entries = (
                    RegistryEntry.from_tags(
                        name,
                        str(v.version),
                        by_version.get(str(v.version), []),
                        v.run_id,
                        dict(v.tags or {}),
                    )
                    for v in versions
                )
                state[name] = sorted(entries, key=lambda entry: int(entry.version))
        return state

    # ----------------------------------------------------------------------------------------
    # Models and run artifacts

    def load_pipeline(self, model_uri: str) -> Any:
        """The fitted sklearn Pipeline behind a registry URI (skops: only trusted types load)."""
        with self.errors(f"loading {model_uri}"):
            return mlflow_module().sklearn.load_model(model_uri)

    def download_model(self, model_uri: str, destination: Path) -> Path:
        """Copy the MLflow model folder (MLmodel, skops file, env files) of a registry URI."""
        with self.errors(f"downloading {model_uri}"):
            folder = mlflow_module().artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=str(destination), tracking_uri=self.uri
            )
        return Path(folder)

    def run_json(self, run_id: str, artifact_path: str) -> object:
        """A JSON artifact of a run, parsed (read through the client: no global state); the
        caller validates it (heartml.documents)."""
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(run_id, artifact_path, tmp)
            loaded: object = json.loads(Path(local).read_text())
        return loaded

    def run_text(self, run_id: str, name: str) -> str | None:
        """A text artifact at the top of a run, or None when the run has none by that name
        (runs logged before it existed)."""
        with self.errors(f"reading {name} of run {run_id}"):
            if name not in {entry.path for entry in self.client.list_artifacts(run_id)}:
                return None
            with tempfile.TemporaryDirectory() as tmp:
                local = self.client.download_artifacts(run_id, name, tmp)
                return Path(local).read_text(encoding="utf-8")

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def run_params(self, run_id: str) -> dict[str, str]:
        """The parameters a run logged (strings, as MLflow keeps them)."""
        with self.errors(f"reading the parameters of run {run_id}"):
            return dict(self.client.get_run(run_id).data.params)
