"""deploy/k8s: rendered as kustomize would, validated offline against the Kubernetes schemas
(kubernetes-validate --strict), and checked against the app's real routes and the image's port."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import DEPLOY, load_yaml, load_yaml_all, require_tool, run_tool

pytestmark = pytest.mark.deploy

K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


# ---- a small kustomize: resources, components (resources + strategic-merge patches), namespace,
# ---- images. Enough for this tree; checked against `kubectl kustomize` where kubectl exists.


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(item, dict) and "name" in item for item in base + patch)
    ):
        # lists of named items (containers, volumes, volumeMounts) merge by name
        by_name = {item["name"]: item for item in base}
        merged_list = [
            _merge(by_name[item["name"]], item) if item["name"] in by_name else item
            for item in patch
        ]
        patched = {item["name"] for item in patch}
        return [item for item in base if item["name"] not in patched] + merged_list
    return copy.deepcopy(patch)


def render(directory: Path, components: Sequence[Path] = ()) -> list[dict]:
    kustomization = load_yaml(directory / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    docs = [doc for name in kustomization["resources"] for doc in load_yaml_all(directory / name)]
    for component_dir in [
        *components,
        *(directory / c for c in kustomization.get("components", [])),
    ]:
        component = load_yaml(component_dir / "kustomization.yaml")
        assert component["kind"] == "Component"
        docs += [
            doc
            for name in component.get("resources", [])
            for doc in load_yaml_all(component_dir / name)
        ]
        for patch in component.get("patches", []):
            body = load_yaml(component_dir / patch["path"])
            target = patch["target"]
            matches = [
                i for i, doc in enumerate(docs)
                if doc["kind"] == target["kind"] and doc["metadata"]["name"] == target["name"]
            ]  # fmt: skip
            assert matches, f"patch {patch['path']}: no {target}"
            for i in matches:
                docs[i] = _merge(
                    docs[i], {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
                )
    for doc in docs:
        if doc["kind"] != "Namespace" and "namespace" in kustomization:
            doc["metadata"]["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                if container["image"] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    return docs


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not found"
    return match.group(1)


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return render(K8S)


@pytest.fixture(scope="module")
def with_components() -> list[dict]:
    return render(K8S, [K8S / "components" / "ingress", K8S / "components" / "packages-volume"])


def validate(docs: list[dict], tmp_path: Path) -> None:
    validator = require_tool("kubernetes-validate")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    output = run_tool([validator, "--strict", str(path)])
    assert output.count("passed for resource") == len(docs), output


def test_base_validates_against_the_kubernetes_schemas(base: list[dict], tmp_path: Path) -> None:
    assert set(by_kind(base)) == {
        "Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }  # fmt: skip
    validate(base, tmp_path)


def test_components_and_secret_template_validate(
    with_components: list[dict], tmp_path: Path
) -> None:
    kinds = by_kind(with_components)
    assert {"Ingress", "PersistentVolumeClaim"} <= set(kinds)
    mounts = {m["mountPath"] for m in _containers(kinds["Deployment"])[0]["volumeMounts"]}
    assert mounts == {"/tmp", "/app/packages"}
    secret = load_yaml_all(K8S / "secret.example.yaml")
    validate([*with_components, *secret], tmp_path)


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

    from heartml import cli

    assert inspect.signature(cli.serve).parameters["port"].default == image_port

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


@pytest.fixture(scope="module")
def with_registry() -> list[dict]:
    return render(K8S, [K8S / "components" / "registry"])


MLFLOW_VARIABLES = {
    "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
}  # fmt: skip


def test_registry_component_validates_and_its_settings_work_in_the_image(
    with_registry: list[dict], tmp_path: Path
) -> None:
    from heartml.catalog import Catalog
    from heartml.config import ALGORITHMS
    from heartml.serving.sources import check_source, registry_names
    from heartml.settings import Settings

    component = K8S / "components" / "registry"
    secret = load_yaml_all(component / "mlflow-credentials.example.yaml")
    validate([*with_registry, *secret], tmp_path)
    kinds = by_kind(with_registry)
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
    assert {"configMapRef": {"name": "heartml-api-config"}} in container["envFrom"]
    (template,) = secret
    assert set(template["stringData"]) <= MLFLOW_VARIABLES
    assert all(v.startswith("REPLACE") for v in template["stringData"].values())
    assert "mlflow-credentials.example.yaml" not in str(load_yaml(component / "kustomization.yaml"))
    # The download cache is a writable volume on the read-only root file system.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(settings.registry_cache_dir) in mounts and "/tmp" in mounts
    volumes = {v["name"]: v for v in kinds["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[str(settings.registry_cache_dir)]]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on this machine")
def test_small_renderer_agrees_with_kubectl_kustomize(
    base: list[dict], with_components: list[dict], tmp_path: Path
) -> None:
    """Where kubectl exists, its kustomize renders the same objects as the renderer above, for
    the base and for an overlay with both components. (kubectl is not in Debian's or PyPI's
    packages at a version with kustomize components, so the schema checks above do not need it.)"""

    def kustomize(directory: Path) -> dict:
        result = subprocess.run(
            ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}

    def keyed(docs: list[dict]) -> dict:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert kustomize(K8S) == keyed(base)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S, overlay)],
                "components": [
                    os.path.relpath(K8S / "components" / name, overlay)
                    for name in ("ingress", "packages-volume")
                ],
            }
        )
    )
    assert kustomize(overlay) == keyed(with_components)
    registry_overlay = tmp_path / "registry-overlay"
    registry_overlay.mkdir()
    (registry_overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S, registry_overlay)],
                "components": [os.path.relpath(K8S / "components" / "registry", registry_overlay)],
            }
        )
    )
    assert kustomize(registry_overlay) == keyed(render(K8S, [K8S / "components" / "registry"]))
