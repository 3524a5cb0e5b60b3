"""Prometheus config and alert rules: promtool's checks and unit tests, and every metric the rules
use is one the app really exports."""

from __future__ import annotations

import pytest
import yaml
from deploy_helpers import DEPLOY, promql_metric_names, require_tool, run_tool

pytestmark = pytest.mark.deploy

PROMETHEUS_DIR = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "HeartmlHighErrorRate",
    "HeartmlHighLatencyP99",
    "HeartmlModelNotReady",
    "HeartmlFeatureDrift",
    "HeartmlLiveAucBelowReference",
    "HeartmlPredictionStoreDropping",
}


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_config() -> None:
    promtool = require_tool("promtool")
    output = run_tool([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert "SUCCESS" in output and "1 rule files found" in output


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool")
    output = run_tool([promtool, "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")])
    assert f"SUCCESS: {len(alert_rules())} rules found" in output


def test_promtool_test_rules() -> None:
    """alerts_test.yml: each alert fires on the series it is meant for, and stays quiet on
    healthy, idle or too-few-inputs (NaN) series."""
    promtool = require_tool("promtool")
    output = run_tool([promtool, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in output
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert {rule["alert"] for rule in alert_rules()} <= tested


def test_required_alerts_exist_with_severity_and_summary() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= REQUIRED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert rule.get("for"), f"{name} fires on a single evaluation"


def test_alert_rules_use_only_metrics_the_app_exports(app_series: set[str]) -> None:
    scrape_series = {"up"}  # made by Prometheus itself for each target
    for rule in alert_rules():
        names = promql_metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        unknown = names - app_series - scrape_series
        assert not unknown, (
            f"{rule['alert']} uses {sorted(unknown)}; the app exports {sorted(app_series)}"
        )


def test_drift_alert_uses_the_threshold_the_check_and_the_service_use() -> None:
    """alerts.yml cannot import: its PSI limit is compared with the one declaration
    (heartml.monitoring.thresholds), which the service's drift status and the default of
    HEARTML_MONITOR_PSI_MAX (`heartml monitor check`) read."""
    from heartml.monitoring.thresholds import PSI_SIGNIFICANT
    from heartml.settings import Settings

    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    limit = float(rules["HeartmlFeatureDrift"]["expr"].rsplit(">", 1)[1])
    assert limit == PSI_SIGNIFICANT
    assert Settings.model_fields["monitor_psi_max"].default == PSI_SIGNIFICANT
