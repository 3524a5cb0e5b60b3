"""Security checks of the service and the repository.

- No pickle on the serving path: statically (nothing the serving package imports, directly or
  through other heartml modules, can unpickle), and at run time (a real `heartml serve` under a
  `sys.addaudithook` that records every `pickle.find_class`, i.e. every unpickled global,
  while it loads a package, scores, explains, reloads; and which modules it imported).
- No secrets in the repository: a small regex scanner over `git ls-files` (tracked and
  not-ignored files), with an explicit list of allowed test placeholders and why each is one.
- Error bodies leak no internals: 4xx answers, uvicorn's own 400, a real 500 (a server whose
  model fails on every call), and the 503s of a service that has no model.
- Admin endpoints need the key: none configured -> 404; missing or wrong -> 401; right -> 200.
- The serving image runs as non-root: tests/e2e/test_container.py
  (test_container_image_builds_runs_and_serves asserts "process user: uid 10001 (non-root)").
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from harness.processes import PYTHON, free_port
from harness.serve import SEED_BODY, Server, launch_server
from reliability_helpers import (
    ADMIN_KEY,
    Built,
    install_package,
    report,
    service_log,
    service_tail,
)

pytestmark = [pytest.mark.reliability]  # the tests that start servers are also integration + slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
SERVING = SRC / "heartml" / "serving"

# ============================================================================================
# No pickle on the serving path

# Top-level modules that load pickles (or are built on them); none may be imported by serving.
PICKLE_LOADERS = frozenset(
    {"pickle", "_pickle", "cPickle", "joblib", "cloudpickle", "dill", "skops", "shelve", "torch"}
)
# Libraries whose model loading is pickle-based; not on the serving path either. Registry mode
# reads the registry over MLflow's REST API (heartml.serving.registry_client, httpx): no mlflow,
# and of heartml.tracking only the plain records of heartml.tracking.versions.
MODEL_LIBRARIES = frozenset({"mlflow", "sklearn"})
TRACKING_ALLOWED = frozenset({"heartml.tracking.versions"})


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth (lazy imports too)."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from heartml import tracking` names a module, not an attribute.
            found.update(f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}"))
    return found


def serving_import_graph() -> dict[str, set[str]]:
    """heartml module -> what it imports, for every heartml module the serving package reaches."""
    todo = [module_name(path) for path in SERVING.rglob("*.py")]
    graph: dict[str, set[str]] = {}
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        path = module_file(name)
        assert path is not None, name
        graph[name] = imports_of(path)
        todo.extend(m for m in graph[name] if m.split(".")[0] == "heartml" and module_file(m))
    return graph


def test_serving_code_imports_nothing_that_unpickles() -> None:
    graph = serving_import_graph()
    assert "heartml.serving.model_store" in graph and "heartml.onnx_runtime" in graph
    forbidden = PICKLE_LOADERS | MODEL_LIBRARIES
    offending = {
        module: sorted(name for name in names if name.split(".")[0] in forbidden)
        for module, names in graph.items()
    }
    assert not {m: n for m, n in offending.items() if n}, offending
    for module in graph:
        path = module_file(module)
        assert path is not None
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                assert isinstance(node.value, ast.Constant) and node.value.value is False, (
                    f"{module}: allow_pickle={ast.unparse(node.value)}"
                )
    # No way to MLflow at all: of heartml.tracking, only its plain records are reached.
    tracking = {m for m in graph if m.startswith("heartml.tracking")}
    assert tracking <= TRACKING_ALLOWED, tracking


AUDIT_WRAPPER = '''"""`heartml` with an audit hook: every unpickled global is recorded (pickle.find_class)."""
import atexit, json, os, signal, sys

unpickled = []


def audit(event, args):
    if event == "pickle.find_class":
        unpickled.append(f"{args[0]}.{args[1]}")


sys.addaudithook(audit)


@atexit.register
def write_report():
    with open(os.environ["HEARTML_AUDIT_REPORT"], "w") as out:
        json.dump({"find_class": unpickled, "modules": sorted(sys.modules)}, out)


def stop(signum, frame):
    # uvicorn restores this handler after its graceful shutdown and raises SIGTERM again.
    write_report()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)


from heartml.cli import app

app(prog_name="heartml")
'''


@pytest.mark.integration
@pytest.mark.slow
def test_serving_process_never_unpickles(
    built: Built, serve: Callable[..., Server], tmp_path: Path
) -> None:
    wrapper = tmp_path / "audited_heartml.py"
    wrapper.write_text(AUDIT_WRAPPER)
    audit_report = tmp_path / "audit.json"
    server = serve(
        packages=(built.v1,),
        command=(PYTHON, str(wrapper)),
        HEARTML_AUDIT_REPORT=str(audit_report),
        HEARTML_SERVE_ADMIN_API_KEY=ADMIN_KEY,
        HEARTML_SERVE_RELOAD_INTERVAL_S="0.5",
    )
    server.wait_ready()
    url = server.url
    assert httpx.post(f"{url}/predict", json=SEED_BODY).status_code == 200
    batch = {"records": [SEED_BODY] * 100}  # over 64 rows: the thread-pool path
    assert httpx.post(f"{url}/predict/batch", json=batch).status_code == 200
    assert httpx.post(f"{url}/predict/explain", json=SEED_BODY).status_code == 200
    for path in ("/model/info", "/metrics", "/monitoring/drift", "/"):
        assert httpx.get(f"{url}{path}").status_code == 200, path
    install_package(built.v2, server.root / "packages")  # the watcher loads a second package
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/model/info").json()["version"] != built.version(built.v2):
        assert time.monotonic() < deadline, service_tail(server)
        time.sleep(0.1)
    reload = httpx.post(f"{url}/admin/reload", headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    assert reload.status_code == 200, reload.text
    assert httpx.post(f"{url}/predict", json=SEED_BODY).json()["model_version"] == "2"
    server.stop()  # SIGTERM: uvicorn shuts down, the wrapper writes its report at exit

    assert audit_report.is_file(), f"no audit report:\n{service_tail(server)}"
    audited = json.loads(audit_report.read_text())
    top_level = {name.split(".")[0] for name in audited["modules"]}
    report(
        "no pickle at run time",
        unpickled_globals=len(audited["find_class"]),
        modules_loaded=len(audited["modules"]),
    )
    assert audited["find_class"] == [], f"unpickled: {audited['find_class'][:20]}"
    # The stdlib's pickle module may be imported by a dependency; using it is what the hook
    # above would have caught. The loaders built on it must not even be imported.
    loaders = (PICKLE_LOADERS - {"pickle", "_pickle"}) | MODEL_LIBRARIES
    assert not top_level & loaders, sorted(top_level & loaders)
    assert "onnxruntime" in top_level, "the audit did not see the model being loaded"


# ============================================================================================
# No secrets in the repository


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    secret: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.secret[:12]}…"


RULES: dict[str, re.Pattern[str]] = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
    ),
    "GitHub token": re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"
    ),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    # a password in a URL's userinfo, before the @ (the password is the secret)
    "password in URL": re.compile(
        r"(?i)\b[a-z][a-z0-9+.\-]*://(?P<user>[^\s/:@'\"<>]+):(?P<secret>[^\s/@'\"<>]+)@"
    ),
    # NAME_WITH_SECRET_WORD = "value" / name: value, in any language or config format
    "secret assignment": re.compile(
        r"(?i)(?P<name>[\w.\-]*(?:secret|token|passw(?:or)?d|passwd|api[_\-]?key|access[_\-]?key"
        r"|private[_\-]?key|credential)[\w.\-]*)[\"']?\s*(?::=|=>|[:=])\s*"
        r"(?P<q>[\"']?)(?P<secret>[^\s\"'`,;)\]}]+)(?P=q)"
    ),
}
# A value, not a reference: long, mixed letters and digits, random-looking, no code or template
# characters (a variable, a call, an attribute path are not secrets).
SECRET_VALUE = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")
MIN_ENTROPY_BITS = 3.5
PLACEHOLDER = re.compile(r"^(?:\$|\{|<|%\(|\*+$)")

# (path, user:password) of URL credentials that are test placeholders, and why.
ALLOWED_URL_CREDENTIALS: dict[tuple[str, str], str] = {
    (".ci/run", "heartml_test:heartml_test"): (
        "the role .ci/run creates on the CI machine's own PostgreSQL, listening on loopback only"
    ),
    (".github/workflows/ci.yml", "heartml:heartml"): (
        "the throwaway postgres service container of the GitHub Actions job"
    ),
    (
        "src/heartml/cli/training.py",
        "user:pass",
    ): "the URL shape in the --storage option's help text",
    ("tests/unit/serving/test_model_store.py", "alice:pw123"): (
        "an invented login in the test that log lines redact URL credentials"
    ),
    ("tests/unit/store/test_store_schema.py", "u:secret"): (
        "an invented login in the test that the store's shown URL hides its password"
    ),
    ("tests/integration/test_tuning_postgres.py", "nobody:secret"): (
        "a login refused on a closed port (127.0.0.1:1): the test of the error message"
    ),
}


def entropy_bits(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_secret(value: str) -> bool:
    return (
        SECRET_VALUE.fullmatch(value) is not None
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and entropy_bits(value) >= MIN_ENTROPY_BITS
    )


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        for rule, pattern in RULES.items():
            for match in pattern.finditer(line):
                secret = match.groupdict().get("secret") or match.group(0)
                if rule == "password in URL":
                    if PLACEHOLDER.match(secret):
                        continue
                    if (path, f"{match['user']}:{secret}") in ALLOWED_URL_CREDENTIALS:
                        continue
                if rule == "secret assignment" and not looks_secret(secret):
                    continue
                findings.append(Finding(path, number, rule, secret))
    return findings


SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
SKIPPED_DIRS |= {".pytest_cache", "mlruns", "mlartifacts", "packages", "models", "reports"}


def repository_files() -> list[str]:
    """`git ls-files`: tracked files and new ones not ignored (what the next commit can hold).
    Without git (an exported tree), every file outside the usual generated folders."""
    if shutil.which("git") and (REPO_ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return sorted({name for name in listed.split("\0") if name})
    return sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in REPO_ROOT.rglob("*")
        if path.is_file() and not SKIPPED_DIRS & set(path.relative_to(REPO_ROOT).parts)
    )


def test_repository_contains_no_secrets() -> None:
    files = repository_files()
    assert len(files) > 50 and "pyproject.toml" in files, files[:10]
    findings: list[Finding] = []
    scanned = 0
    for name in files:
        path = REPO_ROOT / name
        if not path.is_file():  # deleted in the work tree
            continue
        content = path.read_bytes()
        if b"\0" in content[:8192]:  # binary
            continue
        scanned += 1
        findings += scan_text(name, content.decode("utf-8", errors="replace"))
    report("secret scan", files=scanned, findings=len(findings))
    assert not findings, "secrets in the repository:\n" + "\n".join(map(str, findings))
    # Every allowance still names something that exists (no stale whitelist).
    for where, _credential in ALLOWED_URL_CREDENTIALS:
        assert where in files, f"allowed credential for a file that is gone: {where}"


def _sample(*parts: str) -> str:
    # Built from pieces, so that this file itself holds no string the scanner flags.
    return "".join(parts)


SCANNER_CASES: list[tuple[str, str | None]] = [
    # (text, the rule that must flag it, or None: must not be flagged)
    (_sample("-----BEGIN ", "OPENSSH PRIVATE KEY-----"), "private key"),
    (_sample("-----BEGIN ", "RSA PRIVATE KEY-----"), "private key"),
    (_sample("key_id = AKIA", "Q3VZ7XKRA2MJ5TBW"), "AWS access key id"),
    (
        _sample("aws_secret_access_key = ", "wJalrXUtnFEMIK7MDENGbPxRfiCYz9Ab3kLm0qPs"),
        "AWS secret access key",
    ),
    (_sample("token: gh", "p_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"), "GitHub token"),
    (_sample("github_", "pat_", "11ABCDEFG0123456789_abcdefghijKLMNOP"), "GitHub token"),
    (_sample("url = postgresql://admin:", "Zq7x!v2@db.internal/prod"), "password in URL"),
    (_sample('API_KEY = "', 'k9Xw2Lq8Zr4Tn6Vb1Mc3"'), "secret assignment"),
    (_sample("  client_secret: ", "Qm9zL2Fkc2Y4N3VxMmw1"), "secret assignment"),
    (_sample("DB_PASSWORD=", "t7Hq2Vz9Lx4Wk1Pm"), "secret assignment"),
    # placeholders and references
    ("postgresql://mlflow:${POSTGRES_PASSWORD:-mlflow}@postgres/mlflow", None),
    ("https://user:<password>@host/db", None),
    ("HEARTML_SERVE_ADMIN_API_KEY: REPLACE-WITH-A-LONG-RANDOM-STRING", None),
    ("expected = configured.get_secret_value().encode()", None),
    ("token = REQUEST_ID.set(request_id)", None),
    ('ADMIN_KEY = "integration-secret"', None),
    ("password: changeme", None),
]


@pytest.mark.parametrize(("text", "rule"), SCANNER_CASES)
def test_secret_scanner_flags_secrets_and_not_placeholders(text: str, rule: str | None) -> None:
    found = {finding.rule for finding in scan_text("sample.txt", text)}
    assert (rule in found) if rule else not found, (text, found)


# ============================================================================================
# Error bodies leak no internals

LEAK_WORDS = (
    "traceback",
    'file "',
    "site-packages",
    "dist-packages",
    "onnxruntime",
    "onnx_runtime",
    "protobuf",
    "pydantic",
    "starlette",
    "fastapi",
    "uvicorn",
    "orjson",
    "numpy",
    "sqlalchemy",
    "mlflow",
    "heartml.",
    "modelnotready",
    "/usr/",
    "/home/",
    "/root/",
    "/tmp/",
    "/opt/",
    "/work/",
)
EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")


def leaks(text: str, *paths: Path | str) -> list[str]:
    lowered = text.lower()
    found = [word for word in LEAK_WORDS if word in lowered]
    found += [str(path) for path in (sys.prefix, REPO_ROOT, *paths) if str(path) in text]
    return found + EXCEPTION_NAME.findall(text)


@pytest.fixture(scope="module")
def keyed_server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = launch_server(
        tmp_path_factory.mktemp("keyed"),
        (built.v2,),
        env={"HEARTML_SERVE_ADMIN_API_KEY": ADMIN_KEY},
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


JSON = {"content-type": "application/json"}
SEED = json.dumps(SEED_BODY)
# (case, method, path, body, headers, status)
BAD_REQUESTS: list[tuple[str, str, str, bytes, dict[str, str], int]] = [
    ("malformed JSON", "POST", "/predict", b'{"age": 63, ', JSON, 400),
    ("invalid UTF-8", "POST", "/predict", b'{"age": "\xff\xfe"}', JSON, 400),
    ("nesting 5000 deep", "POST", "/predict", b"[" * 5000 + b"]" * 5000, JSON, 400),
    ("5000-digit number", "POST", "/predict", SEED.replace("63", "1" * 5000).encode(), JSON, 400),
    ("1e400", "POST", "/predict", SEED.replace("63", "1e400").encode(), JSON, 422),
    # Found by the fuzzing: an integer beyond 64 bits was a 500 (orjson refused to echo it).
    ("30-digit integer", "POST", "/predict", SEED.replace("233", "9" * 30).encode(), JSON, 422),
    ("4000-digit integer", "POST", "/predict", SEED.replace("233", "9" * 4000).encode(), JSON, 422),
    ("30-digit records", "POST", "/predict/batch", b'{"records": ' + b"7" * 30 + b"}", JSON, 422),
    ("NUL in a string", "POST", "/predict", SEED.replace("63", '"\\u0000"').encode(), JSON, 422),
    (
        "10 kB string",
        "POST",
        "/predict",
        SEED.replace("63", '"' + "x" * 10000 + '"').encode(),
        JSON,
        422,
    ),
    (
        "object in a record",
        "POST",
        "/predict/batch",
        b'{"records": [{"age": {"a": 1}}]}',
        JSON,
        422,
    ),
    ("not a list", "POST", "/predict/batch", b'{"records": 5}', JSON, 422),
    ("text/plain", "POST", "/predict/explain", SEED.encode(), {"content-type": "text/plain"}, 415),
    ("too large", "POST", "/predict", b" " * ((1 << 20) + 1), JSON, 413),
    (
        "batch over limit",
        "POST",
        "/predict/batch",
        json.dumps({"records": [SEED_BODY] * 1001}).encode(),
        JSON,
        413,
    ),
    ("unknown path", "GET", "/etc/passwd", b"", {}, 404),
    ("path traversal", "GET", "/static/..%2f..%2fapp.py", b"", {}, 404),
    ("wrong method", "DELETE", "/predict", b"", {}, 405),
    ("no admin key", "POST", "/admin/reload", b"", {}, 401),
]


@pytest.mark.integration
@pytest.mark.slow
def test_error_bodies_leak_no_internals(keyed_server: Server) -> None:
    seen: list[int] = []
    with httpx.Client(base_url=keyed_server.url, timeout=30) as http:
        for case, method, path, body, headers, status in BAD_REQUESTS:
            response = http.request(method, path, content=body, headers=headers)
            assert response.status_code == status, (case, response.text[:300])
            found = leaks(response.text, keyed_server.root)
            assert not found, (case, found, response.text[:500])
            payload = response.json()
            assert payload["request_id"] == response.headers["x-request-id"], case
            seen.append(status)
        # A request id that is not a plain token is replaced, never echoed.
        hostile = http.post(
            "/predict", json=SEED_BODY, headers={"x-request-id": "<script>x</script>"}
        )
        assert "<" not in hostile.headers["x-request-id"] and "<" not in hostile.text
    # Below the app: uvicorn's own answer to something that is not HTTP.
    with socket.create_connection(("127.0.0.1", keyed_server.port), timeout=10) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = raw.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400"), answer
    assert not leaks(answer, keyed_server.root), answer
    report("error bodies", answers_checked=len(seen) + 2, statuses=sorted(set(seen)))


BROKEN_MODEL_SERVER = '''"""A real uvicorn serving a real package whose scorer fails on every call, with internals
(file paths, library names, an exception class) in the exception's text."""
import argparse, dataclasses
from pathlib import Path

import uvicorn

from heartml.serving.app import create_app
from heartml.serving.loaded_model import load_package
from heartml.serving.model_store import ModelStore
from heartml.serving.sources import package_fingerprint
from heartml.settings import Settings

parser = argparse.ArgumentParser()
parser.add_argument("command")
parser.add_argument("--port", type=int)
parser.add_argument("package", type=Path)
args = parser.parse_args()


class BrokenScorer:
    def predict_proba(self, data):
        raise RuntimeError(
            f"[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : {args.package}/model.onnx: "
            "Non-zero status code returned while running Gemm node (onnxruntime/core/gemm.cc:42)"
        )


settings = Settings(model_package=args.package, serve_reload_interval_s=0)
store = ModelStore(settings)
model = load_package(args.package, f"package:{args.package}", package_fingerprint(args.package), 1)
store.current = dataclasses.replace(model, scorer=BrokenScorer())
uvicorn.run(create_app(settings, store=store), host="127.0.0.1", port=args.port, log_config=None)
'''


@pytest.mark.integration
@pytest.mark.slow
def test_an_unexpected_error_is_a_500_with_a_request_id_and_no_internals(
    built: Built, serve: Callable[..., Server], tmp_path: Path
) -> None:
    script = tmp_path / "broken_model_server.py"
    script.write_text(BROKEN_MODEL_SERVER)
    package = tmp_path / built.v1.name
    shutil.copytree(built.v1, package)
    server = serve(command=(PYTHON, str(script)), args=(str(package),))
    server.wait_ready()
    batch = {"records": [SEED_BODY] * 100}  # the thread-pool path
    for path, body in (
        ("/predict", SEED_BODY),
        ("/predict/batch", batch),
        ("/predict/explain", SEED_BODY),
    ):
        response = httpx.post(f"{server.url}{path}", json=body, timeout=30)
        assert response.status_code == 500, (path, response.text)
        request_id = response.headers["x-request-id"]
        assert response.json() == {"detail": "internal error", "request_id": request_id}, path
        assert not leaks(response.text, package), response.text
        # ... while the log keeps the traceback, findable by the request id.
        logged = [
            line
            for line in service_log(server)
            if line.get("request_id") == request_id and line["level"] == "ERROR"
        ]
        assert logged and "RUNTIME_EXCEPTION" in json.dumps(logged), (path, service_tail(server))
    assert httpx.get(f"{server.url}/health").status_code == 200  # and it keeps serving


def _garbage_onnx(package: Path) -> None:
    import hashlib

    (package / "model.onnx").write_bytes(b"not an ONNX graph")
    manifest = json.loads((package / "MANIFEST.json").read_text())
    manifest["files"]["model.onnx"].update(
        sha256=hashlib.sha256(b"not an ONNX graph").hexdigest(), bytes=17
    )
    (package / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("cause", ["broken package", "registry with credentials"])
def test_not_ready_answers_leak_no_internals(
    built: Built, serve: Callable[..., Server], tmp_path: Path, cause: str
) -> None:
    password = "not-a-real-password"  # distinctive, to be searched for in every answer
    if cause == "broken package":
        package = tmp_path / built.v1.name
        shutil.copytree(built.v1, package)
        _garbage_onnx(package)
        server = serve(packages=(package,))
    else:
        uri = f"http://reliability:{password}@127.0.0.1:{free_port()}"  # nothing listens
        server = serve(
            HEARTML_MODEL_SOURCE="registry",
            MLFLOW_TRACKING_URI=uri,
            HEARTML_REGISTRY_MODELS="heart_disease_logistic_regression",  # no spec in this root
        )
    answers: dict[str, httpx.Response] = {}
    for _ in range(200):  # until the first load has failed
        answers["/ready"] = httpx.get(f"{server.url}/ready", timeout=5)
        if answers["/ready"].json()["detail"] != "loading":
            break
        time.sleep(0.1)
    answers["/predict"] = httpx.post(f"{server.url}/predict", json=SEED_BODY, timeout=5)
    answers["/model/info"] = httpx.get(f"{server.url}/model/info", timeout=5)
    for path, response in answers.items():
        assert response.status_code == 503, (path, response.text)
        assert response.json()["detail"], path  # still says why, in the service's words
        found = leaks(response.text, server.root) + (
            [password] if password in response.text else []
        )
        assert not found, (path, found, response.text)
    assert password not in server.log(), "the tracking password is in the log"


# ============================================================================================
# Admin endpoints need the key


def admin_operations(server: Server) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path.startswith("/admin") or "admin" in operation.get("tags", [])
    ]


@pytest.mark.integration
@pytest.mark.slow
def test_admin_endpoints_need_the_key(keyed_server: Server, serve: Callable[..., Server]) -> None:
    operations = admin_operations(keyed_server)
    assert ("POST", "/admin/reload") in operations, operations
    unkeyed = serve(packages=())  # no HEARTML_SERVE_ADMIN_API_KEY
    wrong_keys: list[dict[str, str]] = [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "wrong"},
        {"X-API-Key": ADMIN_KEY[:-1]},
        {"X-API-Key": ADMIN_KEY + "x"},
        {"X-API-Key": ADMIN_KEY.upper()},
        {"Authorization": f"Bearer {ADMIN_KEY}"},
    ]
    checked = 0
    for method, path in operations:
        for headers in wrong_keys:
            refused = httpx.request(method, f"{keyed_server.url}{path}", headers=headers)
            assert refused.status_code == 401, (path, headers, refused.text)
            assert ADMIN_KEY not in refused.text and refused.headers.get("www-authenticate")
            absent = httpx.request(method, f"{unkeyed.url}{path}", headers=headers)
            assert absent.status_code == 404, (path, headers, absent.text)
            checked += 2
        in_query = httpx.request(
            method, f"{keyed_server.url}{path}", params={"X-API-Key": ADMIN_KEY}
        )
        assert in_query.status_code == 401, "the key is accepted only as a header"
        with_key = {"X-API-Key": ADMIN_KEY}
        absent = httpx.request(method, f"{unkeyed.url}{path}", headers=with_key)
        assert absent.status_code == 404, "no key configured: no admin surface at all"
        allowed = httpx.request(method, f"{keyed_server.url}{path}", headers=with_key, timeout=30)
        assert allowed.status_code == 200, (path, allowed.text)
        checked += 3
    report("admin key", operations=len(operations), requests=checked)
