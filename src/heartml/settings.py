"""Infrastructure settings: one object, read from HEARTML_* variables (and MLFLOW_TRACKING_URI).

Nothing here touches the file system at import time; directories are created by the stage that
writes into them.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from heartml.catalog import DEFAULT_DATASET, PREDICTION_STORE_FILE, Catalog
from heartml.errors import ConfigError
from heartml.monitoring.thresholds import KS_SIGNIFICANT, PSI_SIGNIFICANT
from heartml.sites import SITE_MAX, SITE_PATTERN


def _default_root() -> Path:
    # The project root is the working directory: the seed's commands are run from there.
    return Path.cwd()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEARTML_", extra="ignore")

    root: Path = Field(default_factory=_default_root, description="Project root directory")
    config_path: Path | None = Field(
        default=None, description="Experiment parameters (default: <root>/configs/pipeline.yaml)"
    )

    dataset: str = Field(
        default=DEFAULT_DATASET,
        description="Dataset spec: a name under configs/datasets/ or a path to a spec file",
    )
    # The spec declares the source; these override it (a mirror, a test server).
    data_url: str | None = Field(default=None, description="Override of the spec's source URL")
    data_sha256: str | None = Field(default=None, description="Override of the spec's sha256")
    download_timeout_s: float = Field(default=5.0, gt=0, le=120)
    offline: bool = Field(default=False, description="Skip the download, use the shipped copy")

    # MLflow: the usual variable wins; the embedded default is a SQLite file in the project root,
    # which is also where MLflow's own default (sqlite:///mlflow.db in the working dir) looks.
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "HEARTML_MLFLOW_TRACKING_URI"),
    )
    mlflow_timeout_s: float = Field(default=20.0, gt=0)
    champion_alias: str = "champion"

    # Prediction service (`heartml serve`). The model comes from a verified package: the one
    # named here, else the newest under packages/; with model_source=registry, the package of
    # the registry's champion, downloaded from its run over MLflow's REST API (or the package
    # under packages/ whose MANIFEST names the same model and version).
    model_source: Literal["package", "registry"] = "package"
    model_package: Path | None = Field(
        default=None, description="Package folder to serve (default: newest under packages/)"
    )
    registry_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Registered model names the champion is looked for in, comma-separated "
        "(default: <the dataset spec's model_name_prefix>_<algorithm> for the four algorithms)",
    )
    registry_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Per request to the registry (registry mode)"
    )
    registry_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed registry request (with backoff)"
    )
    registry_cache_dir: Path | None = Field(
        default=None,
        description="Where downloaded packages are kept (default: <temp dir>/heartml-registry)",
    )
    challenger_alias: str = Field(
        default="challenger",
        description="Registry mode: the version holding this alias is scored in shadow; empty = "
        "no shadow from the registry",
    )
    shadow_package: Path | None = Field(
        default=None, description="A package to score every request with in shadow (package mode)"
    )
    shadow_queue_rows: int = Field(
        default=4096,
        ge=1,
        description="Rows waiting for the shadow model at most; more are dropped and counted",
    )
    # MLflow's own variables for a tracking server that asks for credentials (MLflow's rule:
    # user and password win over the token when both are set).
    mlflow_tracking_username: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_USERNAME")
    )
    mlflow_tracking_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_PASSWORD")
    )
    mlflow_tracking_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_TOKEN")
    )
    mlflow_tracking_insecure_tls: bool = Field(
        default=False, validation_alias=AliasChoices("MLFLOW_TRACKING_INSECURE_TLS")
    )
    mlflow_tracking_server_cert_path: Path | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_SERVER_CERT_PATH")
    )
    serve_reload_interval_s: float = Field(
        default=5.0, ge=0, description="Seconds between checks for a new model; 0 = never"
    )
    serve_batch_limit: int = Field(default=1000, ge=1, description="Records per /predict/batch")
    serve_max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Request body limit")
    serve_drift_window: int = Field(default=500, ge=10, description="Recent inputs kept for drift")
    serve_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed CORS origins, comma-separated; empty = CORS off"
    )
    serve_admin_api_key: SecretStr | None = Field(
        default=None, description="X-API-Key for POST /admin/reload; unset = endpoint disabled"
    )
    serve_prediction_log: Path | None = Field(
        default=None, description="Append one JSON line per prediction here (off when unset)"
    )
    serve_log_level: str = "INFO"
    serve_access_log: bool = Field(default=True, description="One JSON log line per request")
    serve_onnx_threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op")
    serve_site: str | None = Field(
        default=None,
        max_length=SITE_MAX,
        pattern=f"^{SITE_PATTERN.pattern}$",
        description="The site a request without its own `site` field comes from (one hospital's "
        "deployment); unset = no site",
    )

    # Per-site recalibration (heartml.calibration): `heartml recalibrate` writes here, the
    # server applies what it finds here for the model version it serves.
    calibrations_dir: Path | None = Field(
        default=None, description="Site calibrations (default: <root>/calibrations)"
    )

    # Prediction store (heartml.store): every prediction, recorded off the request path, and the
    # outcomes sent back for them. SQLite under the project by default; PostgreSQL by URL.
    store_enabled: bool = Field(default=True, description="Record predictions in the store")
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (default: sqlite:///<root>/monitoring/predictions.db); "
        "postgresql://<user>:<password>@<host>/<db> for several replicas",
    )
    store_retention_days: float = Field(
        default=365.0, ge=0, description="Predictions older than this are deleted; 0 = keep all"
    )
    store_queue_rows: int = Field(
        default=50_000, ge=1, description="Predictions waiting for the writer; beyond: dropped"
    )
    store_flush_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Seconds between the writer's batched inserts"
    )
    # Live performance (heartml.monitoring): a sliding window of labelled predictions.
    monitor_window: int = Field(
        default=1000, ge=10, description="Newest predictions per model version in the window"
    )
    monitor_window_days: float = Field(
        default=30.0, gt=0, description="Predictions older than this leave the window"
    )
    monitor_min_labels: int = Field(
        default=100, ge=1, description="Outcomes needed before the live-AUC alert may fire"
    )
    # `heartml monitor check`: an input feature drifts when either figure is above its limit.
    monitor_psi_max: float = Field(
        default=PSI_SIGNIFICANT,
        gt=0,
        description="Population stability index above which a feature has drifted",
    )
    monitor_ks_max: float = Field(
        default=KS_SIGNIFICANT,
        gt=0,
        le=1,
        description="KS statistic D above which a numeric feature has drifted",
    )
    monitor_refresh_s: float = Field(
        default=30.0, ge=0, description="Seconds between recomputations of the /metrics gauges"
    )

    @field_validator(
        "serve_admin_api_key",
        "mlflow_tracking_username",
        "mlflow_tracking_password",
        "mlflow_tracking_token",
        mode="before",
    )
    @classmethod
    def _blank_key_is_no_key(cls, value: Any) -> Any:
        # An empty key would let anyone in with an empty header: treat it as "not configured".
        # (Compose and Kubernetes pass an unset credential on as an empty variable.)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("serve_cors_origins", "registry_models", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # An environment variable holds "https://a.example,https://b.example".
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @cached_property
    def resolved_root(self) -> Path:
        return self.root.resolve()

    @property
    def pipeline_config_path(self) -> Path:
        return self.config_path or self.resolved_root / "configs" / "pipeline.yaml"

    @cached_property
    def catalog(self) -> Catalog:
        """Every path and file name, for this dataset (loads and validates its spec)."""
        return Catalog.load(self.resolved_root, self.dataset)

    # Shortcuts into the catalog and the spec, which own these facts.
    @property
    def processed_dir(self) -> Path:
        return self.catalog.processed_dir

    @property
    def models_dir(self) -> Path:
        return self.catalog.models_dir

    @property
    def reports_dir(self) -> Path:
        return self.catalog.reports_dir

    @property
    def packages_dir(self) -> Path:
        return self.resolved_root / "packages"

    @property
    def resolved_calibrations_dir(self) -> Path:
        return self.calibrations_dir or self.resolved_root / "calibrations"

    @property
    def mlflow_experiment(self) -> str:
        return self.catalog.spec.experiment

    @property
    def model_name_prefix(self) -> str:
        return self.catalog.spec.model_name_prefix

    @property
    def source_url(self) -> str | None:
        return self.data_url or self.catalog.spec.source.url

    @property
    def source_sha256(self) -> str:
        return self.data_sha256 or self.catalog.spec.source.sha256

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.resolved_root / 'mlflow.db'}"

    @property
    def embedded_tracking(self) -> bool:
        return self.mlflow_tracking_uri is None

    @property
    def embedded_artifact_root(self) -> Path:
        return self.resolved_root / "mlartifacts"

    @property
    def resolved_store_url(self) -> str:
        """The prediction store's URL: the configured one, else the project's SQLite file."""
        if self.store_url:
            return self.store_url
        try:
            path = self.catalog.prediction_store_file
        except ConfigError:  # a serving root without the dataset specs (an image): the root's
            path = self.resolved_root / "monitoring" / PREDICTION_STORE_FILE
        return f"sqlite:///{path}"

    def registered_model_name(self, algorithm: str) -> str:
        return self.catalog.registered_name(algorithm)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value is a ConfigError naming the variable, the
    value and what is allowed (pydantic's own text is a multi-line report with a URL)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        info = Settings.model_fields.get(field)
        alias = info.validation_alias if info is not None else None
        if isinstance(alias, AliasChoices):
            variable = str(alias.choices[0])
        else:
            variable = f"HEARTML_{field.upper()}" if field else "settings"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{variable} = {first.get('input')!r}: {first['msg']}{more}",
            hint="the settings and their allowed values are listed in docs/deploy.md",
        ) from None
