"""Grafana provisioning and the dashboard: structure, the required panels, and every metric the
dashboard queries is one the app really exports."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from deploy_helpers import DEPLOY, promql_metric_names

pytestmark = pytest.mark.deploy

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "heartml-api.json"
# The list -> a word every matching panel title has.
REQUIRED_PANELS = {
    "request rate": "request rate",
    "latency percentiles": "latency percentiles",
    "error rate": "error rate",
    "predictions by class": "predictions by class",
    "probability distribution": "probability distribution",
    "drift per feature": "drift per feature",
    "model version": "model being served",
    "live performance": "live roc-auc",
    "calibration": "live calibration",
    "prediction store": "prediction store",
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and templating query."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        query = (
            variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        )
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query.strip())
        found.append((f"variable {variable['name']}", match.group(1) if match else query))
    return found


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/heartml.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    # compose mounts deploy/grafana/dashboards at the provider's path
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_dashboard_structure(dashboard: dict) -> None:
    datasource_uid = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_has_the_required_panels(dashboard: dict) -> None:
    titles = [panel["title"].lower() for panel in dashboard["panels"]]
    for what, word in REQUIRED_PANELS.items():
        assert any(word in title for title in titles), f"no panel for {what} (titles: {titles})"
    latency = next(p for p in dashboard["panels"] if "latency percentiles" in p["title"].lower())
    exprs = " ".join(target["expr"] for target in latency["targets"])
    quantiles = set(re.findall(r"histogram_quantile\(([\d.]+)", exprs))
    assert {"0.5", "0.99"} <= quantiles


def test_dashboard_queries_only_metrics_the_app_exports(
    dashboard: dict, app_series: set[str]
) -> None:
    used: set[str] = set()
    for where, expr in queries(dashboard):
        names = promql_metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - app_series
        assert not unknown, f"{where} queries {sorted(unknown)}, which the app does not export"
        used |= names
    # and the dashboard covers the app's main families
    for family in (
        "heartml_http_requests_total",
        "heartml_http_request_duration_seconds_bucket",
        "heartml_predictions_total",
        "heartml_prediction_probability_bucket",
        "heartml_drift_psi",
        "heartml_model_info",
        "heartml_live_roc_auc",
        "heartml_estimated_roc_auc",
        "heartml_model_cv_roc_auc_low",
        "heartml_store_dropped_rows_total",
    ):
        assert family in used, f"the dashboard never shows {family}"
