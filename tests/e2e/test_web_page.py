"""The web page at `/`, end to end: a real package, a real `heartml serve`, headless Chromium.

The package is built the way a user builds one (`heartml data`, `train`, `track`, `package` in a
temporary project with the embedded MLflow store, one small logistic regression), then served by
`heartml serve` on a free port in its own process group. Chromium and chromedriver are Debian's
(scripts/ci-install-browser.sh installs them); without them the browser tests fail, unless
HEARTML_SKIP_BROWSER=1. The form's field table is checked against heartml.coding without a
browser.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from heartml.coding import COLUMNS_BY_NAME, RAW_FEATURES, example_record
from heartml.serving.app import STATIC_DIR
from heartml.serving.schemas import NULLABLE

pytestmark = pytest.mark.serving

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SKIP_BROWSER_ENV = "HEARTML_SKIP_BROWSER"
SERVER_READY_TIMEOUT_S = 60
PAGE_TIMEOUT_S = 20
CHROME_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
EXTERNAL_URL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# The page's own files, without a browser


class _PageParser(HTMLParser):
    """Collects the field table (script#heartml-fields) and every src/href of index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.fields_json = ""
        self._in_fields = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href", "action", "formaction", "poster", "srcset"):
            if attributes.get(name):
                self.links.append((tag, name, str(attributes[name])))
        self._in_fields = tag == "script" and attributes.get("id") == "heartml-fields"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_fields = False

    def handle_data(self, data: str) -> None:
        if self._in_fields:
            self.fields_json += data


def parse_page() -> _PageParser:
    parser = _PageParser()
    parser.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    return parser


def test_form_fields_match_the_uci_coding() -> None:
    """Every input of the form is heartml.coding's: name, label, codes and meanings, range,
    unit, the seed's example, and whether the API accepts it unknown."""
    fields = json.loads(parse_page().fields_json)
    assert [field["name"] for field in fields] == list(RAW_FEATURES)
    for field in fields:
        name = field["name"]
        column = COLUMNS_BY_NAME[name]
        assert field["label"] == column.label, name
        assert field["kind"] == column.kind, name
        assert field["example"] == column.example, name
        assert field["nullable"] is (name in NULLABLE), name
        if column.codes:
            assert [tuple(pair) for pair in field["codes"]] == list(column.codes.items()), name
            assert "min" not in field and "max" not in field, name
        else:
            assert "codes" not in field, name
            assert (field["min"], field["max"]) == (column.minimum, column.maximum), name
            assert field["unit"] == column.unit, name


def test_page_files_reference_nothing_outside_the_service() -> None:
    """No CDN, no web fonts, no absolute URLs: the page works offline and same-origin."""
    page = parse_page()
    external = [link for link in page.links if EXTERNAL_URL.match(link[2])]
    assert not external, f"index.html loads from elsewhere: {external}"
    local = {value for tag, attribute, value in page.links if tag in ("link", "script")}
    assert local == {"static/style.css", "static/app.js", "data:,"}, local
    for path in (STATIC_DIR / "style.css", STATIC_DIR / "app.js"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|@import|url\(", text), f"{path.name} names a URL"
    assert not re.search(r"\b(XMLHttpRequest|WebSocket|EventSource)\b", page_script())


def page_script() -> str:
    return (STATIC_DIR / "app.js").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# A served package


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """Offline, embedded MLflow store in the project: no HEARTML_*/MLFLOW_* from this session."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HEARTML_", "MLFLOW_")) and key != "PYTHONPATH"
    }
    env["HEARTML_OFFLINE"] = "1"
    env["COLUMNS"] = "200"
    return env


def _small_config() -> dict[str, Any]:
    """One logistic regression, one grid point, 3-fold CV: a real package in well under a minute."""
    raw = yaml.safe_load((REPO_ROOT / "configs" / "pipeline.yaml").read_text())
    raw["evaluation"].update(cv_folds=3, cv_repeats=1, permutation_repeats=1)
    raw["tuning"].update(cv_folds=3, cv_repeats=1)
    logistic = raw["models"]["logistic_regression"]
    raw["models"] = {
        "logistic_regression": {"params": logistic["params"], "search_space": {"C": [0.3]}}
    }
    return raw


@pytest.fixture(scope="module")
def package_dir(
    tmp_path_factory: pytest.TempPathFactory,
    project_factory: Callable[[Path], Any],
    heartml_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> Path:
    """A champion package made by the user's commands in a throwaway project."""
    root = tmp_path_factory.mktemp("web-page") / "project"
    project_factory(root)  # data/raw and configs, copied from the repository
    (root / "configs" / "pipeline.yaml").write_text(yaml.safe_dump(_small_config()))
    env = _clean_env()
    for command in (
        ("data",),
        ("train", "-a", "logistic_regression"),
        ("track",),
        ("package",),
    ):
        result = heartml_cli(*command, cwd=root, env=env, timeout=300)
        assert result.returncode == 0, (
            f"heartml {' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    packages = sorted((root / "packages").glob("heart_disease_model_*"))
    assert len(packages) == 1, packages
    return packages[0]


def _get_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:]) if path.exists() else ""


@pytest.fixture(scope="module")
def server(package_dir: Path) -> Iterator[str]:
    """`heartml serve` on a free loopback port, in its own process group; its base URL."""
    port = _free_port()
    log_path = package_dir.parent.parent / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(REPO_ROOT / ".venv" / "bin" / "heartml"),
                *("serve", "--port", str(port), "--package", str(package_dir)),
            ],
            cwd=package_dir.parent.parent,
            env=_clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"heartml serve exited with {process.returncode}:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            with contextlib.suppress(OSError):
                if _get_json(f"{base}/ready")[0] == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"heartml serve not ready after {SERVER_READY_TIMEOUT_S} s:\n"
                    f"{_log_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.2)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's headless Chromium through Debian's chromedriver (no Selenium Manager)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        if os.environ.get(SKIP_BROWSER_ENV) == "1":
            pytest.skip(f"{SKIP_BROWSER_ENV}=1 and no browser ({', '.join(missing)})")
        pytest.fail(
            f"headless browser not available: {', '.join(missing)} missing. Install Debian's "
            "chromium and chromium-driver with scripts/ci-install-browser.sh, or set "
            f"{SKIP_BROWSER_ENV}=1 to skip the browser tests",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-page-screenshots")


def _wait(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, PAGE_TIMEOUT_S).until(condition)
    except Exception as error:
        alert = driver.find_element("id", "form-alert")
        raise AssertionError(
            f"timed out waiting for {what}; page alert: {alert.text!r}; "
            f"console: {driver.get_log('browser')}"
        ) from error


def _open_page(driver: Any, base: str) -> None:
    driver.get(f"{base}/")
    _wait(
        driver,
        lambda d: d.find_element("id", "model-version").text not in ("", "–"),
        "the model version in the header",
    )


def _set_number(driver: Any, name: str, value: str) -> None:
    control = driver.find_element("id", f"f-{name}")
    control.clear()
    control.send_keys(value)


def _choose(driver: Any, name: str, meaning: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", f"f-{name}")).select_by_visible_text(meaning)


def _submit_and_wait_for_result(driver: Any) -> None:
    driver.execute_script("document.getElementById('result').hidden = true")
    driver.find_element("id", "submit").click()
    _wait(
        driver,
        lambda d: (
            d.find_element("id", "result").is_displayed()
            and d.find_element("id", "submit").is_enabled()
        ),
        "the result",
    )


def _screenshot(driver: Any, path: Path) -> Path:
    """The whole page: the window is grown until its viewport holds the document."""
    driver.execute_script("window.scrollTo(0, 0)")
    chrome, height = driver.execute_script(
        "return [window.outerHeight - window.innerHeight, document.documentElement.scrollHeight]"
    )
    driver.set_window_size(1280, max(1000, int(height) + int(chrome)))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    print(f"screenshot: {path}")
    return path


def _console_errors(driver: Any) -> list[Any]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _shown_contributions(driver: Any) -> list[dict[str, str]]:
    return [
        {
            "feature": item.get_attribute("data-feature"),
            "direction": item.get_attribute("data-direction"),
            "label": item.find_element("css selector", ".contribution-label").text,
            "amount": item.find_element("css selector", ".contribution-amount").text,
        }
        for item in driver.find_elements("css selector", "#contributions li")
    ]


@pytest.mark.e2e
@pytest.mark.slow
def test_page_scores_a_patient_as_the_api_does(
    browser: Any, server: str, screenshots: Path
) -> None:
    _open_page(browser, server)
    status, info = _get_json(f"{server}/model/info")
    assert status == 200, info
    assert browser.find_element("id", "model-version").text == info["version"]
    assert browser.find_element("id", "model-name").text == info["name"]

    # The form starts as the seed's example patient.
    for name, value in example_record().items():
        shown = browser.find_element("id", f"f-{name}").get_attribute("value")
        assert float(shown) == value, (name, shown)

    _set_number(browser, "age", "45")
    _choose(browser, "cp", "asymptomatic")
    _submit_and_wait_for_result(browser)

    body = {**example_record(), "age": 45, "cp": 4}
    status, direct = _get_json(f"{server}/predict", body)
    assert status == 200, direct
    assert browser.find_element("id", "probability").text == f"{direct['probability']:.1%}"
    risk_text = browser.find_element("id", "risk-level").text
    assert risk_text.lower() == f"{direct['risk_level']} risk", risk_text
    meta = browser.find_element("id", "result-meta").text
    assert f"{direct['model_name']} version {direct['model_version']}" in meta, meta
    assert browser.find_element("id", "model-version").text == direct["model_version"]
    marker = browser.find_element("id", "gauge-marker").value_of_css_property("left")
    track = browser.find_element("id", "gauge").size["width"]
    assert float(marker.removesuffix("px")) == pytest.approx(direct["probability"] * track, abs=1)

    # The explanation: the largest contributions, in plain words, with their direction.
    status, explained = _get_json(f"{server}/predict/explain", body)
    assert status == 200, explained
    shown = _shown_contributions(browser)
    assert 3 <= len(shown) <= 6, shown
    expected = [c for c in explained["contributions"] if abs(c["contribution"]) >= 0.0005]
    assert [item["feature"] for item in shown] == [c["feature"] for c in expected[: len(shown)]]
    for item, contribution in zip(shown, expected, strict=False):
        direction = "up" if contribution["contribution"] > 0 else "down"
        assert item["direction"] == direction, item
        assert item["label"] == COLUMNS_BY_NAME[item["feature"]].label, item
        points = f"{abs(contribution['contribution']) * 100:.1f} pts"
        assert item["amount"].endswith(points), (item, points)
    assert {item["direction"] for item in shown} <= {"up", "down"}

    assert not _console_errors(browser)
    _screenshot(browser, screenshots / "web-page-result.png")


@pytest.mark.e2e
@pytest.mark.slow
def test_page_sends_unknown_measurements_as_null(browser: Any, server: str) -> None:
    _open_page(browser, server)
    browser.find_element("id", "f-chol-unknown").click()
    assert not browser.find_element("id", "f-chol").is_enabled()
    _choose(browser, "ca", "unknown")
    _choose(browser, "thal", "unknown")
    _submit_and_wait_for_result(browser)

    status, direct = _get_json(
        f"{server}/predict", {**example_record(), "chol": None, "ca": None, "thal": None}
    )
    assert status == 200, direct
    assert browser.find_element("id", "probability").text == f"{direct['probability']:.1%}"
    unknown_rows = [
        item.text
        for item in browser.find_elements("css selector", "#contributions li")
        if item.get_attribute("data-feature") in ("chol", "ca", "thal")
    ]
    assert all("unknown" in text for text in unknown_rows), unknown_rows
    assert not _console_errors(browser)


@pytest.mark.e2e
@pytest.mark.slow
def test_page_shows_the_services_validation_error_next_to_the_field(
    browser: Any, server: str, screenshots: Path
) -> None:
    _open_page(browser, server)
    _set_number(browser, "chol", "5000")
    browser.find_element("id", "submit").click()
    error = _wait(
        browser,
        lambda d: (box := d.find_element("id", "f-chol-error")).is_displayed() and box,
        "the cholesterol field's error",
    )
    # The service's 422 message, in the page's words.
    assert "Serum cholesterol must be a number from 80 to 700 mg/dl" in error.text, error.text
    assert "5000" in error.text, error.text
    assert browser.find_element("id", "f-chol").get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element.get_attribute("id") == "f-chol"
    assert browser.find_element("id", "form-alert").is_displayed()
    assert not browser.find_element("id", "result").is_displayed()
    others = [
        node.get_attribute("id")
        for node in browser.find_elements("css selector", ".field-error")
        if node.is_displayed()
    ]
    assert others == ["f-chol-error"], others
    _screenshot(browser, screenshots / "web-page-field-error.png")

    # Corrected, the error goes and the result comes.
    _set_number(browser, "chol", "233")
    _submit_and_wait_for_result(browser)
    assert not browser.find_element("id", "f-chol-error").is_displayed()


@pytest.mark.e2e
@pytest.mark.slow
def test_page_makes_only_same_origin_requests(browser: Any, server: str) -> None:
    _open_page(browser, server)
    _submit_and_wait_for_result(browser)
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources, "the page loaded no resources at all"
    foreign = [url for url in resources if not url.startswith(f"{server}/")]
    assert not foreign, f"requests outside the service: {foreign}"
    names = {url.removeprefix(server) for url in resources}
    assert {"/static/style.css", "/static/app.js", "/model/info"} <= names, names
    assert "/predict/explain" in names, names
