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
            if body.get("$patch") == "delete":  # a strategic-merge patch that removes the object
                assert (body["kind"], body["metadata"]["name"]) == (target["kind"], target["name"])
                docs = [doc for i, doc in enumerate(docs) if i not in matches]
                continue
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


# ---- components/kserve: the image as a KServe InferenceService (custom predictor)

KSERVE = K8S / "components" / "kserve"
# The predictor's fields that are KServe's own (ComponentExtensionSpec), not a PodSpec's.
KSERVE_COMPONENT_FIELDS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "labels",
                           "annotations", "containerConcurrency", "timeout", "canaryTrafficPercent",
                           "logger", "batcher", "deploymentStrategy")  # fmt: skip


@pytest.fixture(scope="module")
def with_kserve() -> list[dict]:
    return render(K8S, [KSERVE])


def test_kserve_component_replaces_the_deployment(with_kserve: list[dict], tmp_path: Path) -> None:
    """KServe owns the pods, their Service and scaling: the base's Deployment, Service, HPA and
    PDB go; the Namespace and the ConfigMap the predictor reads stay and validate."""
    kinds = by_kind(with_kserve)
    assert set(kinds) == {"Namespace", "ConfigMap", "InferenceService"}
    validate([doc for doc in with_kserve if doc["kind"] != "InferenceService"], tmp_path)


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
    validate([pod], tmp_path)

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
