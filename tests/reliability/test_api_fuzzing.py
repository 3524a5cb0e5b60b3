"""Property-based fuzzing of the live API from its own OpenAPI document (schemathesis).

`schemathesis run` (the CLI, as a team would run it in CI) against a real `heartml serve`:
every phase that applies (documented examples, coverage of boundaries and wrong types, random
positive and negative data), every check (`--checks all`: no 5xx, status code, content type,
headers and body conform to the documented response, negative data rejected, positive data
accepted, unsupported methods answered 405, ...). The admin key is sent with every request, so
POST /admin/reload is fuzzed too. The NDJSON report is read back to count what was generated
and what was answered: at least 1000 cases, no 5xx, at least 1000 bodies validated against
their documented schema.

HEARTML_RELIABILITY_FUZZ_EXAMPLES (default 300): hypothesis examples per operation and phase.
HEARTML_RELIABILITY_FUZZ_SEED: replay a run (the seed is printed on every failure).

Nothing is set aside: every failed check fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from integration_helpers import SEED_BODY, Server
from reliability_helpers import ADMIN_KEY, Built, report

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
MAX_EXAMPLES = int(os.environ.get("HEARTML_RELIABILITY_FUZZ_EXAMPLES", "300"))
SEED = os.environ.get("HEARTML_RELIABILITY_FUZZ_SEED")
MIN_CASES = 1000
# schemathesis' stateful phase (sequences of calls along the API links it infers, e.g. a v2 model
# name from GET /v2/models/{name} into POST .../infer) reports its cases under this label.
STATEFUL = "Stateful tests"
# Measured: ~5 min for the 21 operations on a loaded 2-core machine (the two protocols doubled
# the operation count); the bound only stops a hung run.
FUZZ_TIMEOUT_S = 900

PREDICTION_ROUTES = ("/predict", "/predict/batch", "/predict/explain")
# status -> the component schema its JSON body is documented with
PREDICTION_ERRORS = {
    "400": "ErrorResponse",
    "413": "ErrorResponse",
    "415": "ErrorResponse",
    "422": "ValidationErrorResponse",
    "503": "ErrorResponse",
}
OTHER_DOCUMENTED = {
    ("get", "/ready"): {"200": "ReadyResponse", "503": "ReadyResponse"},
    ("get", "/model/info"): {"200": "ModelInfo", "503": "ErrorResponse"},
    ("post", "/admin/reload"): {
        "200": "ReloadResponse",
        "401": "ErrorResponse",
        "404": "ErrorResponse",
        "409": "ReloadResponse",
    },
}


@dataclass
class FuzzRun:
    """What one `schemathesis run` generated and what the server answered (NDJSON report)."""

    returncode: int
    output: str
    seed: str = ""
    cases: Counter[str] = field(default_factory=Counter)  # per operation
    modes: Counter[str] = field(default_factory=Counter)  # positive / negative
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    checks: Counter[tuple[str, str]] = field(default_factory=Counter)  # (check, status)
    failed_checks: list[dict[str, Any]] = field(default_factory=list)
    no_response: list[str] = field(default_factory=list)
    scenario_statuses: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def clean(self) -> bool:
        """schemathesis passed and no check failed."""
        failing = self.scenario_statuses.keys() - {"success", "skip"}
        return self.returncode == 0 and not failing and not self.failed_checks

    def summary(self) -> str:
        return (
            f"seed {self.seed}; {self.total} cases {dict(self.cases)}; statuses "
            f"{sorted(self.statuses.items())}; failed checks {self.failed_checks[:5]}\n"
            f"--- schemathesis output (tail)\n{self.output[-6000:]}"
        )


def read_report(directory: Path, returncode: int, output: str) -> FuzzRun:
    run = FuzzRun(returncode, output)
    (path,) = directory.glob("*.ndjson")
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if "Initialize" in event:
            run.seed = str(event["Initialize"].get("seed"))
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        run.scenario_statuses[str(finished.get("status"))] += 1
        recorder = finished["recorder"]
        label = recorder["label"]
        for case in recorder.get("cases", {}).values():
            run.cases[label] += 1
            meta = case["value"].get("meta") or {}
            run.modes[str(meta.get("generation", {}).get("mode"))] += 1
        for case_id, interaction in recorder.get("interactions", {}).items():
            response = interaction.get("response")
            if not response:
                run.no_response.append(f"{label} {case_id}")
                continue
            run.statuses[(label, int(response["status_code"]))] += 1
        for case_checks in recorder.get("checks", {}).values():
            for check in case_checks:
                run.checks[(check["name"], check["status"])] += 1
                if check["status"] == "success":
                    continue
                run.failed_checks.append(check)
    return run


def fuzz(
    server: Server, workdir: Path, max_examples: int, checks: str, phases: str | None = None
) -> FuzzRun:
    """`schemathesis run` on the server's /openapi.json; its NDJSON report, read back."""
    reports = workdir / "reports"
    command = [
        SCHEMATHESIS,
        "run",
        f"{server.url}/openapi.json",
        *("--checks", checks),
        *("--max-examples", str(max_examples)),
        *("--workers", "1"),
        *("--request-timeout", "10"),
        *("--header", f"X-API-Key: {ADMIN_KEY}"),
        *("--report", "ndjson", "--report-dir", str(reports)),
        "--suppress-health-check",
        "all",
        # Keep generating after a failure: the count stays whole, and every failure is listed.
        "--continue-on-failure",
        *(("--seed", SEED) if SEED else ()),
        *(("--phases", phases) if phases else ()),
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCHEMATHESIS")}
    env.update(NO_COLOR="1", COLUMNS="160")
    # cwd: a folder of its own, so no schemathesis.toml or .hypothesis database is picked up.
    result = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=FUZZ_TIMEOUT_S,
    )
    return read_report(reports, result.returncode, result.stdout + result.stderr)


def spec_operations(server: Server) -> set[str]:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}


@pytest.fixture
def ready_server(built: Built, serve: Callable[..., Server]) -> Server:
    server = serve(packages=(built.v2,), HEARTML_SERVE_ADMIN_API_KEY=ADMIN_KEY)
    server.wait_ready()
    return server


def test_openapi_documents_every_error_response_with_a_model(ready_server: Server) -> None:
    """Schema conformance means something only if the errors are documented: every 4xx/503 a
    route answers is in the spec, with a JSON body model that names detail and request_id."""
    spec = httpx.get(f"{ready_server.url}/openapi.json", timeout=10).json()
    documented = {
        ("post", path): {"200": None, **PREDICTION_ERRORS} for path in PREDICTION_ROUTES
    } | OTHER_DOCUMENTED
    for (method, path), statuses in documented.items():
        responses = spec["paths"][path][method]["responses"]
        for status, model in statuses.items():
            assert status in responses, f"{method.upper()} {path}: {status} is not documented"
            schema = responses[status]["content"]["application/json"]["schema"]
            assert "$ref" in schema, (path, status, schema)
            if model is not None:
                assert schema["$ref"] == f"#/components/schemas/{model}", (path, status, schema)
    components = spec["components"]["schemas"]
    for name in ("ErrorResponse", "ValidationErrorResponse"):
        assert set(components[name]["required"]) == {"detail", "request_id"}, name
    for path in PREDICTION_ROUTES:  # the body a prediction route reads itself is described
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"].split("/")[-1] in components, path


def test_fuzzing_the_live_api_finds_no_5xx_and_no_schema_violation(
    ready_server: Server, tmp_path: Path
) -> None:
    run = fuzz(ready_server, tmp_path, MAX_EXAMPLES, "all")
    report(
        "fuzzing (model loaded)",
        cases=run.total,
        schema_checked=run.checks[("response_schema_conformance", "success")],
        positive=run.modes["positive"],
        negative=run.modes["negative"],
        statuses=dict(Counter(status for _, status in run.statuses.elements())),
        seed=run.seed,
    )
    assert run.clean, run.summary()
    assert not run.no_response, run.no_response[:10]
    server_errors = {key: n for key, n in run.statuses.items() if key[1] >= 500}
    assert not server_errors, f"5xx answers: {server_errors}\n{run.summary()}"
    assert set(run.cases) - {STATEFUL} == spec_operations(ready_server), run.cases
    assert run.total >= MIN_CASES, run.summary()
    assert run.checks[("response_schema_conformance", "success")] >= MIN_CASES, run.checks
    assert run.modes["positive"] > 100 and run.modes["negative"] > 100, run.modes
    # Both sides of every prediction route were reached: scored, and refused with a 4xx.
    for path in PREDICTION_ROUTES:
        answered = {status for (label, status) in run.statuses if label == f"POST {path}"}
        assert {200, 422} <= answered, (path, answered)
    assert run.statuses[("POST /admin/reload", 200)] > 0, "the admin key was not accepted"


def test_fuzzing_a_server_without_a_model_answers_only_documented_503s(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    """No package yet: /ready, /model/info and valid predictions answer 503 (documented, with
    its body model); bad input is still refused with a 4xx before the model is needed.

    Here 503 is the correct answer, so schemathesis' `not_a_server_error` and
    `positive_data_acceptance` are replaced by the assertion that every 5xx is a 503 documented
    for that operation; the body of every answer is still validated against its schema."""
    server = serve(HEARTML_SERVE_ADMIN_API_KEY=ADMIN_KEY)
    assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 503
    checks = ",".join(
        (
            "status_code_conformance",
            "content_type_conformance",
            "response_headers_conformance",
            "response_schema_conformance",
            "negative_data_rejection",
        )
    )
    # Without a model there is no model name for the stateful phase's links to carry.
    run = fuzz(server, tmp_path, 20, checks, phases="examples,coverage,fuzzing")
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    report(
        "fuzzing (no model)",
        cases=run.total,
        schema_checked=run.checks[("response_schema_conformance", "success")],
        answers_503=sum(n for (_, status), n in run.statuses.items() if status == 503),
    )
    assert run.clean and not run.no_response, run.summary()
    for label, status in run.statuses:
        if status >= 500:
            method, path = label.split(" ", 1)
            assert status == 503, (label, status)
            assert "503" in spec["paths"][path][method.lower()]["responses"], label
    for label in ("POST /predict", "GET /ready", "GET /model/info"):
        assert run.statuses[(label, 503)] > 0, (label, run.statuses)
    assert run.statuses[("POST /predict", 422)] > 0, run.statuses


def _content(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


JSON = {"content-type": "application/json"}
# (case, method, path, body, headers, status): answers fuzzing may not reach, checked one by one.
ERROR_ANSWERS: list[Any] = [
    ("malformed JSON", "POST", "/predict", b'{"age": ', JSON, 400),
    ("not JSON", "POST", "/predict", _content(SEED_BODY), {"content-type": "text/plain"}, 415),
    ("no content type", "POST", "/predict/explain", _content(SEED_BODY), {}, 415),
    ("bad field", "POST", "/predict", {**SEED_BODY, "cp": 9}, JSON, 422),
    ("integer beyond 64 bits", "POST", "/predict", {**SEED_BODY, "chol": 10**30}, JSON, 422),
    ("batch over the limit", "POST", "/predict/batch", {"records": [SEED_BODY] * 1001}, JSON, 413),
    ("body over the limit", "POST", "/predict", b" " * (1 << 20) + b"{}", JSON, 413),
    ("wrong admin key", "POST", "/admin/reload", b"", {"x-api-key": "wrong"}, 401),
    ("empty body", "POST", "/predict", b"", JSON, 422),
]


# The other protocols' doors: (case, method, URL path, documented path, body, headers, status,
# the error model documented for it).
PROTOCOL_ERROR_ANSWERS: list[Any] = [
    ("mlflow: malformed JSON", "POST", "/invocations", "/invocations", b'{"inputs": ', JSON,
     400, "MlflowError"),
    ("mlflow: a refused value", "POST", "/invocations", "/invocations",
     {"dataframe_records": [{**SEED_BODY, "chol": 5000}]}, JSON, 400, "MlflowError"),
    ("mlflow: text/plain", "POST", "/invocations", "/invocations", b"x",
     {"content-type": "text/plain"}, 415, "MlflowError"),
    ("mlflow: body over the limit (middleware)", "POST", "/invocations", "/invocations",
     b" " * (1 << 20) + b"{}", JSON, 413, "MlflowError"),
    ("v2: a refused value", "POST", "/v2/models/{name}/infer", "/v2/models/{name}/infer",
     {"inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64",
                  "data": [*list(SEED_BODY.values())[:4], 5000, *list(SEED_BODY.values())[5:]]}]},
     JSON, 400, "InferenceError"),
    ("v2: another model", "GET", "/v2/models/another", "/v2/models/{name}", b"", {}, 404,
     "InferenceError"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "path", "documented_path", "body", "headers", "status", "model"),
    PROTOCOL_ERROR_ANSWERS,
    ids=[case[0] for case in PROTOCOL_ERROR_ANSWERS],
)
def test_protocol_error_answers_match_their_documented_schema(
    ready_server: Server,
    case: str,
    method: str,
    path: str,
    documented_path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    model: str,
) -> None:
    """MLflow's envelope on /invocations and {"error"} on /v2, as documented, whoever answers
    (a route, an exception handler, or the middleware before any route)."""
    spec = httpx.get(f"{ready_server.url}/openapi.json", timeout=10).json()
    served = httpx.get(f"{ready_server.url}/model/info", timeout=10).json()["name"]
    url = f"{ready_server.url}{path.replace('{name}', served)}"
    response = httpx.request(method, url, content=_content(body), headers=headers, timeout=30)
    assert response.status_code == status, (case, response.text)
    documented = spec["paths"][documented_path][method.lower()]["responses"][str(status)]
    schema = documented["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{model}"}, (case, schema)
    jsonschema.validate(
        response.json(),
        {**schema, "components": spec["components"]},
        cls=jsonschema.Draft202012Validator,
    )
    required = set(spec["components"]["schemas"][model]["required"])
    assert required == set(response.json()), (case, response.json())


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "headers", "status"),
    ERROR_ANSWERS,
    ids=[case[0] if isinstance(case, tuple) else None for case in ERROR_ANSWERS],
)
def test_error_answers_match_their_documented_schema(
    ready_server: Server,
    case: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    spec = httpx.get(f"{ready_server.url}/openapi.json", timeout=10).json()
    response = httpx.request(
        method, f"{ready_server.url}{path}", content=_content(body), headers=headers, timeout=30
    )
    assert response.status_code == status, (case, response.text)
    documented = spec["paths"][path][method.lower()]["responses"][str(status)]
    schema = documented["content"]["application/json"]["schema"]
    jsonschema.validate(
        response.json(),
        {**schema, "components": spec["components"]},
        cls=jsonschema.Draft202012Validator,
    )
