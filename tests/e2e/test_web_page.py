"""The web page at `/`, end to end: real packages, a real `heartml serve`, headless Chromium.

The heart package is built the way a user builds one (`heartml data`, `train`, `track`,
`package` in a temporary project); the package of a spec with one more column, which no data
file has, is built by tests/serving_packages.py (the pipeline fitted from that spec, exported to
ONNX, written with heartml.package's pieces). `heartml serve` runs on a free port in its own
process group. The page builds its form from GET /model/info, so
every expectation about the form comes from the spec file itself. Chromium and chromedriver are
Debian's (scripts/ci-install-browser.sh installs them); without them the browser tests fail,
unless HEARTML_SKIP_BROWSER=1. What the page sends is read from Chrome's own network log
(performance log, Network.requestWillBeSent), not from the page's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from headless_browser import headless_chrome
from heartml.serving.app import STATIC_DIR
from serving_packages import fit, heart_spec, read_source, with_extra_column, write_package
from site_calibrations import make_calibration, offline

pytestmark = pytest.mark.serving

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_READY_TIMEOUT_S = 60
PAGE_TIMEOUT_S = 20
PAGE_POLL_S = 15  # app.js asks model/info again this often
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
SPEC = heart_spec()
SEED = SPEC.example_record()
SMOKER = {
    "kind": "binary",
    "label": "Current smoker",
    "description": "Smokes now (1 = yes)",
    "codes": {0: "no", 1: "yes"},
    "required": True,
    "example": 1,
    "group": "Patient",
}
EXTERNAL_URL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# The page's own files, without a browser


class _PageParser(HTMLParser):
    """Collects every src/href of index.html and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.inline_scripts = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href", "action", "formaction", "poster", "srcset"):
            if attributes.get(name):
                self.links.append((tag, name, str(attributes[name])))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts += data


def parse_page() -> _PageParser:
    parser = _PageParser()
    parser.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    return parser


def test_the_page_names_no_input_field_of_its_own() -> None:
    """The form comes from /model/info: no field table, no column name, no code label, no
    risk band edge in the page's files (one fact, one place: the dataset spec)."""
    assert parse_page().inline_scripts.strip() == ""
    texts = {path.name: path.read_text(encoding="utf-8") for path in STATIC_DIR.iterdir()}
    names = [f'"{name}"' for name in SPEC.raw_names] + [f"'{name}'" for name in SPEC.raw_names]
    # Code labels long enough not to be ordinary words of the page's code ("true", "no").
    codes = [
        label for c in SPEC.raw_columns for label in (c.codes or {}).values() if len(label) > 5
    ]
    labels = codes + [column.label for column in SPEC.raw_columns]
    for file, text in texts.items():
        assert not [n for n in names if n in text], file
        assert not [label for label in labels if f'"{label}"' in text or f">{label}<" in text], file
    assert "0.3" not in texts["app.js"] and "30%" not in texts["index.html"]


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


def _clean_env(**extra: str) -> dict[str, str]:
    """Offline, no HEARTML_*/MLFLOW_* from this session."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HEARTML_", "MLFLOW_")) and key != "PYTHONPATH"
    }
    env["HEARTML_OFFLINE"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return read_source(SPEC)


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
def heart_package(
    tmp_path_factory: pytest.TempPathFactory,
    project_factory: Callable[[Path], Any],
    heartml_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> Path:
    """The champion's package made by the user's commands (`heartml data`, `train`, `track`,
    `package`) in a throwaway project with the embedded MLflow store."""
    root = tmp_path_factory.mktemp("web-page") / "project"
    project_factory(root)  # data/raw and configs, copied from the repository
    (root / "configs" / "pipeline.yaml").write_text(yaml.safe_dump(_small_config()))
    env = _clean_env()
    for command in (("data",), ("train", "-a", "logistic_regression"), ("track",), ("package",)):
        result = heartml_cli(*command, cwd=root, env=env, timeout=300)
        assert result.returncode == 0, (
            f"heartml {' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    packages = sorted((root / "packages").glob(f"{SPEC.package_prefix}_*"))
    assert len(packages) == 1, packages
    return packages[0]


@pytest.fixture(scope="module")
def smoker_package(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> Path:
    """Version 2, trained with a spec that adds a required column."""
    extended = with_extra_column(SPEC, "smoker", SMOKER)
    rng = np.random.default_rng(2)
    data = frame.assign(
        smoker=np.where(rng.random(len(frame)) < 0.3 + 0.4 * frame["target"], 1.0, 0.0)
    )
    pipeline = fit(extended, data, LogisticRegression(max_iter=2000))
    return write_package(tmp_path_factory.mktemp("smoker"), extended, pipeline, data, version="2")


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


@contextlib.contextmanager
def _serving(root: Path, *packages: Path, **env: str) -> Iterator[str]:
    """`heartml serve` in `root` (its packages/), on a free loopback port, in its own process
    group; yields its base URL once ready."""
    (root / "packages").mkdir(parents=True, exist_ok=True)
    for package in packages:
        shutil.copytree(package, root / "packages" / package.name)
    port = _free_port()
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(REPO_ROOT / ".venv" / "bin" / "heartml"), "serve", "--port", str(port)],
            cwd=root,
            env=_clean_env(**env),
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, heart_package: Path) -> Iterator[str]:
    with _serving(tmp_path_factory.mktemp("web-page"), heart_package) as base:
        yield base


# --------------------------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium with its network log on (what the page sends is read from there)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with headless_chrome(profile, PAGE_TIMEOUT_S, True, CHROME_ARGUMENTS) as driver:
        yield driver


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-page-screenshots")


def _wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout or PAGE_TIMEOUT_S).until(condition)
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
        lambda d: (
            d.find_element("id", "model-version").text not in ("", "–")
            and d.find_element("id", "submit").is_enabled()
        ),
        "the model version in the header and the form",
    )
    driver.get_log("performance")  # drop what the page load sent


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


def _sent_bodies(driver: Any, path: str) -> list[dict[str, Any]]:
    """The JSON bodies Chrome sent to `path` since the last call (its network log)."""
    bodies = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        request = message["params"]["request"]
        if request["method"] == "POST" and request["url"].endswith(path):
            bodies.append(json.loads(request["postData"]))
    return bodies


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
    """Severe console entries, but not the network line Chrome writes for a 422 the test asked
    for (the page handles it)."""
    return [
        entry
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
        and not (entry.get("source") == "network" and "status of 422" in entry["message"])
    ]


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


def _form_order(groups_and_names: list[tuple[str, str]]) -> list[str]:
    """The fields as the form shows them: group by group, groups in the order the spec first
    names them, fields in the spec's order within a group."""
    groups = list(dict.fromkeys(group for group, _ in groups_and_names))
    return [name for group in groups for g, name in groups_and_names if g == group]


def _form_fields(driver: Any) -> list[str]:
    # One script call: element handles go stale while the page rebuilds its form.
    fields: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#form-fields .field')]"
        ".map((node) => node.dataset.field)"
    )
    return fields


# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_the_form_is_the_specs(browser: Any, server: str) -> None:
    """Fields, labels, allowed values, units, groups (in the spec's order) and "unknown" for
    exactly the columns the spec does not require: all from the spec file."""
    _open_page(browser, server)
    assert _form_fields(browser) == _form_order([(c.group, c.name) for c in SPEC.raw_columns])
    legends = [n.text for n in browser.find_elements("css selector", "fieldset.group legend")]
    groups = list(dict.fromkeys(column.group.upper() for column in SPEC.raw_columns))
    assert [legend.upper() for legend in legends] == groups  # CSS shows legends in capitals
    from selenium.webdriver.support.ui import Select

    for column in SPEC.raw_columns:
        control = browser.find_element("id", f"f-{column.name}")
        label = browser.find_element("css selector", f"label[for='f-{column.name}']")
        assert label.text == column.label, column.name
        if column.codes is not None:
            options = [(o.get_attribute("value"), o.text) for o in Select(control).options]
            assert options == [(str(code), text) for code, text in column.codes.items()]
        else:
            assert column.range is not None
            assert float(control.get_attribute("min")) == column.range[0], column.name
            assert float(control.get_attribute("max")) == column.range[1], column.name
        assert float(control.get_attribute("value")) == column.example, column.name
        unknown = browser.find_elements("id", f"f-{column.name}-unknown")
        assert len(unknown) == (0 if column.required else 1), column.name
    assert browser.find_element("id", "page-title").text == "Heart disease risk"
    assert not _console_errors(browser)


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

    _set_number(browser, "age", "45")
    _choose(browser, "cp", "asymptomatic")
    _submit_and_wait_for_result(browser)

    # What the page sent, read from Chrome's network log: the seed with the two changes.
    (sent,) = _sent_bodies(browser, "/predict/explain")
    assert sent == {**SEED, "age": 45, "cp": 4}
    status, direct = _get_json(f"{server}/predict", sent)
    assert status == 200, direct
    assert browser.find_element("id", "probability").text == f"{direct['probability']:.1%}"
    risk_text = browser.find_element("id", "risk-level").text
    assert risk_text.lower() == f"{direct['risk_level']} risk", risk_text
    assert not browser.find_element("id", "imputed-note").is_displayed()
    meta = browser.find_element("id", "result-meta").text
    assert f"{direct['model_name']} version {direct['model_version']}" in meta, meta
    marker = browser.find_element("id", "gauge-marker").value_of_css_property("left")
    track = browser.find_element("id", "gauge").size["width"]
    assert float(marker.removesuffix("px")) == pytest.approx(direct["probability"] * track, abs=1)
    bands = browser.find_elements("css selector", "#gauge-track .gauge-band")
    widths = [band.size["width"] / track for band in bands]
    assert widths == pytest.approx([0.3, 0.3, 0.4], abs=0.01)  # the spec's bands

    # The explanation: the largest contributions, in plain words, with their direction.
    status, explained = _get_json(f"{server}/predict/explain", sent)
    assert status == 200, explained
    shown = _shown_contributions(browser)
    assert 3 <= len(shown) <= 6, shown
    expected = [c for c in explained["contributions"] if abs(c["contribution"]) >= 0.0005]
    assert [item["feature"] for item in shown] == [c["feature"] for c in expected[: len(shown)]]
    for item, contribution in zip(shown, expected, strict=False):
        direction = "up" if contribution["contribution"] > 0 else "down"
        assert item["direction"] == direction, item
        assert item["label"] == SPEC.columns[item["feature"]].label, item
        points = f"{abs(contribution['contribution']) * 100:.1f} pts"
        assert item["amount"].endswith(points), (item, points)

    assert not _console_errors(browser)
    _screenshot(browser, screenshots / "web-page-result.png")


@pytest.mark.e2e
@pytest.mark.slow
def test_page_sends_unknown_measurements_as_null_and_shows_the_imputed_fields(
    browser: Any, server: str, screenshots: Path
) -> None:
    _open_page(browser, server)
    unknown = ("thalach", "exang", "oldpeak", "slope", "fbs")  # no exercise test, no fbs
    for name in unknown:
        browser.find_element("id", f"f-{name}-unknown").click()
        assert not browser.find_element("id", f"f-{name}").is_enabled(), name
    _submit_and_wait_for_result(browser)

    (sent,) = _sent_bodies(browser, "/predict/explain")
    assert sent == {**SEED, **dict.fromkeys(unknown)}
    status, direct = _get_json(f"{server}/predict", sent)
    assert status == 200, direct
    assert direct["imputed_fields"] == [n for n in SPEC.raw_names if n in unknown]
    assert browser.find_element("id", "probability").text == f"{direct['probability']:.1%}"
    note = browser.find_element("id", "imputed-note")
    assert note.is_displayed() and note.text == direct["note"]
    for name in unknown:
        assert SPEC.columns[name].label in note.text, name
    assert not _console_errors(browser)
    _screenshot(browser, screenshots / "web-page-imputed.png")


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
    # The service's 422 message (the rules' words), after the field's label.
    assert (
        error.text
        == "Serum cholesterol: 5000 is not allowed; expected a number from 80 to 700 mg/dl"
    )
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
def test_page_sends_the_site_and_shows_its_calibration(
    browser: Any, heart_package: Path, tmp_path: Path, screenshots: Path
) -> None:
    """A site with a calibration: the page sends `site`, shows the calibrated probability the
    API gives that site and the answer's calibration detail; a bad site name gets the
    service's 422 next to the site field."""
    manifest = json.loads((heart_package / "MANIFEST.json").read_text())
    make_calibration(
        tmp_path / "calibrations",
        "north-1",
        1,
        intercept=1.1,
        slope=0.8,
        model_name=manifest["model_name"],
        model_version=str(manifest["version"]),
    )
    with _serving(tmp_path, heart_package) as base:
        _open_page(browser, base)
        site = browser.find_element("id", "f-site")
        site.send_keys("north-1")
        _submit_and_wait_for_result(browser)
        (sent,) = _sent_bodies(browser, "/predict/explain")
        assert sent == {**SEED, "site": "north-1"}
        status, direct = _get_json(f"{base}/predict", sent)
        assert status == 200 and direct["calibration"]["version"] == 1, direct
        _, raw = _get_json(f"{base}/predict", SEED)
        assert direct["probability"] == pytest.approx(
            float(offline(raw["probability"], 1.1, 0.8)), abs=1e-12
        )
        assert browser.find_element("id", "probability").text == f"{direct['probability']:.1%}"
        note = browser.find_element("id", "calibration-note")
        assert note.is_displayed() and note.text == direct["calibration"]["detail"]
        _screenshot(browser, screenshots / "web-page-site.png")

        site.clear()
        site.send_keys("north/1")
        browser.find_element("id", "submit").click()
        error = _wait(
            browser,
            lambda d: (box := d.find_element("id", "f-site-error")).is_displayed() and box,
            "the site field's error",
        )
        status, refused = _get_json(f"{base}/predict", {**SEED, "site": "north/1"})
        assert status == 422 and error.text == refused["detail"][0]["message"]
        assert site.get_attribute("aria-invalid") == "true"
        assert not _console_errors(browser)

        site.clear()  # no site: the model's own estimate, no calibration line
        _submit_and_wait_for_result(browser)
        assert browser.find_element("id", "probability").text == f"{raw['probability']:.1%}"
        assert not browser.find_element("id", "calibration-note").is_displayed()


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


def _swap_in(root: Path, package: Path) -> None:
    """As `heartml package` does: build beside, then one rename into packages/."""
    staging = root / "packages" / f".staging-{package.name}"
    shutil.copytree(package, staging)
    staging.rename(root / "packages" / package.name)


@pytest.mark.e2e
@pytest.mark.slow
def test_the_form_follows_a_reload_to_another_spec(
    browser: Any,
    heart_package: Path,
    smoker_package: Path,
    tmp_path: Path,
    screenshots: Path,
) -> None:
    """A package whose spec adds a required column replaces the served one: a submission of
    the old form gets the service's 422, the page notices the new spec and rebuilds the form
    (earlier values kept), and the next submission scores with the new column."""
    root = tmp_path / "root"
    with _serving(root, heart_package, HEARTML_SERVE_RELOAD_INTERVAL_S="0.5") as base:
        _open_page(browser, base)
        _set_number(browser, "age", "58")
        assert "smoker" not in _form_fields(browser)
        old_hash = _get_json(f"{base}/model/info")[1]["spec_hash"]
        _swap_in(root, smoker_package)
        deadline = time.monotonic() + 15
        while _get_json(f"{base}/model/info")[1]["spec_hash"] == old_hash:
            assert time.monotonic() < deadline, _log_tail(root / "serve.log")
            time.sleep(0.1)

        browser.find_element("id", "submit").click()
        _wait(browser, lambda d: "smoker" in _form_fields(d), "the rebuilt form")
        columns = [(c.group, c.name) for c in SPEC.raw_columns]
        expected = _form_order([*columns, (str(SMOKER["group"]), "smoker")])
        assert _form_fields(browser) == expected
        assert expected.index("smoker") == 2  # in its group, "Patient", after age and sex
        assert browser.find_element("id", "form-alert").is_displayed()
        assert browser.find_element("id", "f-age").get_attribute("value") == "58"  # kept
        assert browser.find_element("id", "model-version").text == "2"
        _choose(browser, "smoker", "yes")
        _submit_and_wait_for_result(browser)
        sent = _sent_bodies(browser, "/predict/explain")
        assert sent[0] == {**SEED, "age": 58}  # the old form, refused
        assert sent[-1] == {**SEED, "age": 58, "smoker": 1}
        status, direct = _get_json(f"{base}/predict", sent[-1])
        assert status == 200, direct
        assert browser.find_element("id", "probability").text == f"{direct['probability']:.1%}"
        assert not _console_errors(browser)
        _screenshot(browser, screenshots / "web-page-new-spec.png")


@pytest.mark.e2e
@pytest.mark.slow
def test_an_idle_page_notices_a_new_spec_by_itself(
    browser: Any, heart_package: Path, smoker_package: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    with _serving(root, heart_package, HEARTML_SERVE_RELOAD_INTERVAL_S="0.5") as base:
        _open_page(browser, base)
        _swap_in(root, smoker_package)
        _wait(
            browser,
            lambda d: "smoker" in _form_fields(d),
            "the page to rebuild its form without a submission",
            timeout=PAGE_POLL_S + 10,
        )
        smoker = browser.find_element("css selector", "label[for='f-smoker']")
        assert smoker.text == SMOKER["label"]
