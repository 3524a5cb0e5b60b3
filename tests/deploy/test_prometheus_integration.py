"""A real Prometheus on loopback, loaded with deploy/prometheus (scrape job + alert rules),
scraping a real `heartml serve`: the app's series arrive, and every dashboard and alert query
evaluates without error."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import (
    DEPLOY,
    OTHER_RECORD,
    SEED_RECORD,
    ApiServer,
    free_port,
    heartml_serve,
    http,
    require_tool,
    stop_group,
    tail,
)

pytestmark = [pytest.mark.deploy, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def api(model_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    fast = {"HEARTML_STORE_FLUSH_INTERVAL_S": "0.2", "HEARTML_MONITOR_REFRESH_S": "1"}
    with heartml_serve(model_package, tmp_path_factory.mktemp("serve"), **fast) as server:
        answers = []
        for i in range(20):
            body = json.dumps(SEED_RECORD if i % 2 else OTHER_RECORD).encode()
            status, text = http(f"{server.url}/predict", body)
            assert status == 200, text
            answers.append(json.loads(text))
        bad = json.dumps({**SEED_RECORD, "age": 500}).encode()
        assert http(f"{server.url}/predict", bad)[0] == 422  # so the error panel has a 4xx share
        # Outcomes for every prediction (both classes), so the live-performance panels have data.
        outcomes = [
            {"request_id": a["request_id"], "outcome": i % 2} for i, a in enumerate(answers)
        ]
        deadline = time.monotonic() + 20
        while (status := http(f"{server.url}/feedback", json.dumps(outcomes).encode())[0]) == 404:
            assert time.monotonic() < deadline, "the predictions never reached the store"
            time.sleep(0.2)  # the writer has not flushed them yet
        assert status == 200
        yield server


@pytest.fixture(scope="module")
def prometheus(api: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_tool("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    # The shipped config, with the compose target (api:8000) pointed at this test's API and
    # faster intervals; the rule file is the shipped one.
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    port = free_port()
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        if job["job_name"] == "heartml-api":
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{api.port}"]
        if job["job_name"] == "prometheus":
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = work / "prometheus.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={work / 'data'}",
                "--web.enable-lifecycle",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"prometheus exited:\n{tail(log)}"
            try:
                if http(f"{url}/-/ready", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready:\n{tail(log)}"
            time.sleep(0.2)
        yield url
    finally:
        stop_group(process)


def query(prometheus: str, expr: str) -> dict[str, Any]:
    status, body = http(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", f"{expr!r}: {payload}"
    return payload["data"]


def wait_for(prometheus: str, expr: str, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = query(prometheus, expr)["result"]
        if result:
            return result
        assert time.monotonic() < deadline, f"no series for {expr!r} after {timeout_s} s"
        time.sleep(0.5)


def test_prometheus_scrapes_the_api_and_finds_its_series(prometheus: str, api: ApiServer) -> None:
    (up,) = wait_for(prometheus, 'up{job="heartml-api"} == 1')
    assert up["metric"]["instance"] == f"127.0.0.1:{api.port}"
    predictions = wait_for(prometheus, 'heartml_predictions_total{job="heartml-api"}')
    assert sum(float(s["value"][1]) for s in predictions) >= 20
    (info,) = wait_for(prometheus, "heartml_model_info")
    assert info["metric"]["version"] and info["metric"]["algorithm"]
    assert float(wait_for(prometheus, "heartml_model_ready")[0]["value"][1]) == 1.0
    latency = wait_for(
        prometheus, 'heartml_http_request_duration_seconds_count{endpoint="/predict"}'
    )
    assert float(latency[0]["value"][1]) >= 20
    assert wait_for(prometheus, "heartml_drift_psi")


def test_every_dashboard_and_alert_query_evaluates(prometheus: str, api: ApiServer) -> None:
    wait_for(prometheus, 'up{job="heartml-api"} == 1')
    dashboard = json.loads((DEPLOY / "grafana/dashboards/heartml-api.json").read_text())
    substitutions = {
        "$__rate_interval": "1m", "$__range": "5m", "$job": ".*", "$instance": ".*",
    }  # fmt: skip
    # Rates need two scrapes: poll until every panel has data.
    quiet: set[str] = set()
    deadline = time.monotonic() + 20
    while True:
        empty = []
        for panel in dashboard["panels"]:
            exprs = [t["expr"] for t in panel["targets"]]
            results = []
            for expr in exprs:
                for variable, value in substitutions.items():
                    expr = expr.replace(variable, value)
                results.append(query(prometheus, expr)["result"])
            if not any(results):
                empty.append(panel["title"])
        if set(empty) <= quiet or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(empty) <= quiet, f"panels without data: {empty}"

    _, body = http(f"{prometheus}/api/v1/rules")
    groups = json.loads(body)["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {
        "HeartmlHighErrorRate", "HeartmlHighLatencyP99", "HeartmlModelNotReady", "HeartmlFeatureDrift",
    }  # fmt: skip
    for rule in rules:
        assert rule["health"] in ("ok", "unknown"), f"{rule['name']}: {rule.get('lastError')}"
        query(prometheus, rule["query"])  # evaluates without error
