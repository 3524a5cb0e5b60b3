"""deploy/compose.yaml: valid for docker-compose (Debian's 1.29), and wired as the docs say."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from deploy_helpers import DEPLOY, REPO_ROOT, require_tool

pytestmark = pytest.mark.deploy

COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    """`docker-compose config` output: the file as the tool resolved it (profiles included)."""
    compose = require_tool("docker-compose")
    result = subprocess.run(
        [compose, "-f", str(COMPOSE), "--profile", "train", "--profile", "monitor", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},  # no leaked overrides from the caller
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_services(config: dict) -> None:
    assert set(config["services"]) == {
        "api",
        "api-registry",
        "mlflow",
        "postgres",
        "prometheus",
        "grafana",
        "pipeline",
        "monitor",
    }
    # Started only when asked for: a plain `up` runs the package-serving api alone.
    assert config["services"]["api-registry"]["profiles"] == ["registry"]
    assert config["services"]["pipeline"]["profiles"] == ["train"]


def test_api_uses_the_serving_image_on_loopback(config: dict) -> None:
    api = config["services"]["api"]
    assert api["build"]["target"] == "serving"
    assert api["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert api["build"]["context"] == str(REPO_ROOT)
    ports = api["ports"]
    assert len(ports) == 1 and str(ports[0]).startswith("127.0.0.1:") and "8000" in str(ports[0])
    assert api["read_only"] is True and api["user"] == "10001:10001"
    assert any(v.endswith(":/app/packages:ro") for v in api["volumes"])
    # the site calibrations of `heartml recalibrate`, where the image's HEARTML_ROOT looks
    assert any(v.endswith(":/app/calibrations:ro") for v in api["volumes"])
    from heartml.settings import Settings

    fields = {f"HEARTML_{name.upper()}" for name in Settings.model_fields}
    assert set(api["environment"]) <= fields, set(api["environment"]) - fields


def test_mlflow_on_postgres_with_proxied_artifacts(config: dict) -> None:
    mlflow = config["services"]["mlflow"]
    command = mlflow["command"]
    assert mlflow["entrypoint"] == ["mlflow", "server"]
    assert any(
        c.startswith("--backend-store-uri=postgresql+psycopg2://") and "@postgres:5432/" in c
        for c in command
    )
    assert "--serve-artifacts" in command
    assert any(c.startswith("--artifacts-destination=") for c in command)
    assert "--workers=1" in command
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (
        config["services"]["pipeline"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    )


def test_monitor_job_checks_the_store_the_api_writes_with_the_real_command(config: dict) -> None:
    from heartml.cli.main import app
    from heartml.cli.monitor import parse_duration

    services = config["services"]
    monitor = services["monitor"]
    assert monitor["profiles"] == ["monitor"]
    assert monitor["build"]["target"] == "pipeline"  # ENTRYPOINT heartml
    command = monitor["command"]
    assert command[:2] == ["monitor", "check"]
    group = {g.name: g for g in app.registered_groups}["monitor"].typer_instance
    assert group is not None and "check" in {c.name for c in group.registered_commands}
    assert parse_duration(command[command.index("--since") + 1]) > 0
    store = monitor["environment"]["HEARTML_STORE_URL"]
    assert store.startswith("postgresql://") and "@postgres:5432/" in store
    assert store == services["api"]["environment"]["HEARTML_STORE_URL"]
    api_packages = next(v for v in services["api"]["volumes"] if v.endswith(":/app/packages:ro"))
    assert api_packages in monitor["volumes"]  # the package the API serves
    assert monitor["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_prometheus_and_grafana_mount_the_checked_files(config: dict) -> None:
    services = config["services"]
    prometheus_mounts = {
        v.split(":")[0] for v in services["prometheus"]["volumes"] if v.startswith("/")
    }
    assert str(DEPLOY / "prometheus" / "prometheus.yml") in prometheus_mounts
    assert str(DEPLOY / "prometheus" / "alerts.yml") in prometheus_mounts
    grafana_mounts = {v.split(":")[0] for v in services["grafana"]["volumes"] if v.startswith("/")}
    assert str(DEPLOY / "grafana" / "provisioning") in grafana_mounts
    assert str(DEPLOY / "grafana" / "dashboards") in grafana_mounts
    for service in ("prometheus", "grafana", "mlflow"):
        for port in services[service].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{service} publishes {port} beyond loopback"

    # Prometheus scrapes the api service on the port the API listens on.
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    api_job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "heartml-api")
    assert api_job["static_configs"][0]["targets"] == ["api:8000"]
    assert api_job["metrics_path"] == "/metrics"
    # Grafana's data source points at the prometheus service.
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"


def test_no_secret_values_in_the_file() -> None:
    text = COMPOSE.read_text()
    assert "HEARTML_SERVE_ADMIN_API_KEY:" not in text  # an empty key must never be configured
    for line in text.splitlines():
        if "PASSWORD" in line and ":" in line and not line.strip().startswith("#"):
            assert "${" in line, f"hard-coded password: {line.strip()}"


@pytest.fixture(scope="module")
def registry_config() -> dict:
    """`docker-compose --profile registry config`: the stack with the registry-following API."""
    compose = require_tool("docker-compose")
    result = subprocess.run(
        [compose, "-f", str(COMPOSE), "--profile", "registry", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_registry_variant_follows_the_stacks_mlflow_without_packages(
    registry_config: dict,
) -> None:
    from heartml.catalog import Catalog
    from heartml.choices import ALGORITHMS
    from heartml.serving.source_choice import check_source, registry_names
    from heartml.settings import Settings

    services = registry_config["services"]
    api = services["api-registry"]
    assert api["build"]["target"] == "serving" and api["image"] == services["api"]["image"]
    mounted = [volume.split(":")[1] for volume in api.get("volumes", [])]
    assert mounted == ["/app/calibrations"], "the registry variant mounts no package folder"
    assert api["read_only"] is True and api["user"] == "10001:10001"
    (port,) = api["ports"]
    assert str(port).startswith("127.0.0.1:") and str(port) != str(services["api"]["ports"][0])
    assert api["depends_on"]["mlflow"]["condition"] == "service_healthy"

    env = api["environment"]
    fields = {f"HEARTML_{name.upper()}" for name in Settings.model_fields}
    mlflow_names = {
        "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
    }  # fmt: skip
    assert set(env) <= fields | mlflow_names, set(env) - fields - mlflow_names
    # The tracking URI names the stack's mlflow service on the port it listens on.
    mlflow_port = next(c for c in services["mlflow"]["command"] if c.startswith("--port="))
    assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow_port.split('=')[1]}"
    # The settings as the container reads them: a source that works there (no spec in the image,
    # so the names are listed), and they are the four names the spec registers.
    settings = Settings(_env_file=None, root="/nonexistent", **_as_settings(env))
    assert settings.model_source == "registry"
    check_source(settings)
    catalog = Catalog.load(REPO_ROOT, "uci_heart")
    assert registry_names(settings) == [catalog.registered_name(a) for a in ALGORITHMS]
    # Unset credentials arrive as empty strings: they mean "none", never an empty password.
    assert settings.mlflow_tracking_password is None and settings.mlflow_tracking_token is None


def _as_settings(env: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in env.items():
        if name.startswith("HEARTML_"):
            out[name.removeprefix("HEARTML_").lower()] = value
        else:
            out[name] = value  # MLflow's variables are the settings' aliases
    return out
