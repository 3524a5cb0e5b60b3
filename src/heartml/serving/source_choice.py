"""Choosing and checking the model source at start: which source a store of each role follows
(heartml.serving.sources: a package folder or the registry), and whether it can work in this
installation (`check_source`: the service refuses to start otherwise, naming what is missing).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heartml.choices import ALGORITHMS
from heartml.errors import HeartmlError
from heartml.serving.contract import configured_spec
from heartml.serving.registry_client import RegistryClient
from heartml.serving.registry_http import is_server_uri, public_uri
from heartml.serving.sources import CHAMPION, PackageSource, RegistrySource, Source
from heartml.settings import Settings


class ModelSourceError(HeartmlError):
    """The configured model source cannot work here; the message names the missing piece."""


def registry_names(settings: Settings) -> list[str]:
    """The registered models to look in: the setting, else the configured spec's four."""
    if settings.registry_models:
        return list(settings.registry_models)
    spec = configured_spec(settings)
    if spec is None:
        return []
    return [f"{spec.model_name_prefix}_{algorithm}" for algorithm in ALGORITHMS]


def cache_root(settings: Settings) -> Path:
    return settings.registry_cache_dir or Path(tempfile.gettempdir()) / "heartml-registry"


def check_source(settings: Settings) -> None:
    """Refuse at start a source that cannot work in this installation, naming what is missing."""
    if settings.model_source != "registry":
        return
    uri = settings.tracking_uri
    if not is_server_uri(uri):
        raise ModelSourceError(
            "HEARTML_MODEL_SOURCE=registry needs MLFLOW_TRACKING_URI to point at an MLflow "
            f"tracking server (http:// or https://), not {public_uri(uri)}: the service talks to "
            "the registry over its REST API",
            hint="start `mlflow server` and set MLFLOW_TRACKING_URI, or serve packages with "
            "HEARTML_MODEL_SOURCE=package",
        )
    if importlib.util.find_spec("httpx") is None:
        raise ModelSourceError(
            "HEARTML_MODEL_SOURCE=registry needs the Python package httpx, which this "
            "installation does not have",
            hint="pip install httpx (requirements/serving.txt pins it)",
        )
    if not registry_names(settings):
        raise ModelSourceError(
            "HEARTML_MODEL_SOURCE=registry needs the registered model names: set "
            "HEARTML_REGISTRY_MODELS (comma-separated), or run where the dataset spec "
            f"configs/datasets/{settings.dataset}.yaml is",
        )


def make_source(
    settings: Settings, role: str, packages: Callable[[], list[Path]], client: Any = None
) -> Source | None:
    """The source a store of this role follows; None when the role has none (no shadow)."""
    if settings.model_source == "registry":
        alias = settings.champion_alias if role == CHAMPION else settings.challenger_alias
        if not alias:
            return None
        return RegistrySource(
            settings,
            client or RegistryClient.from_settings(settings),
            alias,
            registry_names(settings),
            packages,
            cache_root(settings) / role,
            fallback=role == CHAMPION,
        )
    if role == CHAMPION:
        return PackageSource(settings, packages, settings.model_package)
    if settings.shadow_package is None:
        return None
    return PackageSource(settings, lambda: [], settings.shadow_package)
