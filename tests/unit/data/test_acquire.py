"""Acquisition: download with a timeout over real sockets, fall back to the shipped copy, verify
sha256; fail with one clear error when neither source gives the expected bytes."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from heartml.data.acquire import AcquisitionError, acquire
from oracles import CLEVELAND_SHA256

pytestmark = pytest.mark.task1


def closed_port_url() -> str:
    """A URL on a loopback port that nothing listens on: a real 'connection refused'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/x"


@contextmanager
def http_server(handle: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 in a thread; yields the URL of its /data path."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data"
    finally:
        server.shutdown()
        server.server_close()


def serve(body: bytes, status: int = 200) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handle


@pytest.fixture
def shipped(tmp_path: Path, raw_bytes: bytes) -> Path:
    path = tmp_path / "processed.cleveland.data"
    path.write_bytes(raw_bytes)
    return path


def test_shipped_copy_has_the_published_checksum(raw_bytes: bytes) -> None:
    assert hashlib.sha256(raw_bytes).hexdigest() == CLEVELAND_SHA256


def test_connection_refused_falls_back_to_shipped_copy(shipped: Path, raw_bytes: bytes) -> None:
    url = closed_port_url()
    raw = acquire(url, shipped, CLEVELAND_SHA256, timeout_s=2)
    assert raw.source == "shipped copy"
    assert raw.location == str(shipped)
    assert raw.content == raw_bytes
    assert raw.sha256 == CLEVELAND_SHA256
    assert len(raw.notes) == 1
    assert url in raw.notes[0]
    assert "failed" in raw.notes[0]
    assert "refused" in raw.notes[0].lower()


def test_download_with_correct_bytes_is_used(shipped: Path, raw_bytes: bytes) -> None:
    with http_server(serve(raw_bytes)) as url:
        raw = acquire(url, shipped, CLEVELAND_SHA256, timeout_s=5)
    assert raw.source == "download"
    assert raw.location == url
    assert raw.content == raw_bytes
    assert raw.sha256 == CLEVELAND_SHA256
    assert raw.notes == ()


def test_download_works_without_any_shipped_copy(tmp_path: Path, raw_bytes: bytes) -> None:
    with http_server(serve(raw_bytes)) as url:
        raw = acquire(url, tmp_path / "absent.data", CLEVELAND_SHA256, timeout_s=5)
    assert raw.source == "download"


def test_download_with_wrong_bytes_falls_back_naming_the_mismatch(
    shipped: Path, raw_bytes: bytes
) -> None:
    wrong = raw_bytes.replace(b"63.0", b"64.0", 1)
    wrong_digest = hashlib.sha256(wrong).hexdigest()
    with http_server(serve(wrong)) as url:
        raw = acquire(url, shipped, CLEVELAND_SHA256, timeout_s=5)
    assert raw.source == "shipped copy"
    assert raw.content == raw_bytes
    (note,) = raw.notes
    assert "sha256" in note
    assert wrong_digest in note
    assert CLEVELAND_SHA256 in note


def test_http_error_status_falls_back(shipped: Path) -> None:
    with http_server(serve(b"not here", status=404)) as url:
        raw = acquire(url, shipped, CLEVELAND_SHA256, timeout_s=5)
    assert raw.source == "shipped copy"
    assert "Not Found" in raw.notes[0]


def test_truncated_download_falls_back(shipped: Path, raw_bytes: bytes) -> None:
    """The server promises the whole file but the connection ends half way."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(len(raw_bytes)))
        request.end_headers()
        request.wfile.write(raw_bytes[:1000])
        request.wfile.flush()
        request.close_connection = True

    with http_server(handle) as url:
        raw = acquire(url, shipped, CLEVELAND_SHA256, timeout_s=5)
    assert raw.source == "shipped copy"
    assert url in raw.notes[0]


def test_slow_server_times_out_and_falls_back(shipped: Path, raw_bytes: bytes) -> None:
    release = threading.Event()

    def handle(request: BaseHTTPRequestHandler) -> None:
        release.wait(10)  # far longer than the client's timeout

    with http_server(handle) as url:
        started = time.monotonic()
        try:
            raw = acquire(url, shipped, CLEVELAND_SHA256, timeout_s=0.5)
            elapsed = time.monotonic() - started
        finally:
            release.set()
    assert raw.source == "shipped copy"
    assert raw.content == raw_bytes
    assert "timed out" in raw.notes[0]
    assert elapsed < 2.5, f"fallback took {elapsed:.1f} s with a 0.5 s timeout"


def test_a_silent_server_times_out_within_the_timeout(
    shipped: Path, raw_bytes: bytes, silent_url: str
) -> None:
    """A socket that accepts and never answers (not even reading the request)."""
    started = time.monotonic()
    raw = acquire(f"{silent_url}/data", shipped, CLEVELAND_SHA256, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert raw.source == "shipped copy" and raw.content == raw_bytes
    (note,) = raw.notes
    assert note == f"download from {silent_url}/data failed (timed out); using the shipped copy"
    assert 1.0 <= elapsed < 2.0, f"gave up after {elapsed:.2f} s with a 1 s timeout"


@pytest.mark.slow
def test_cli_against_a_silent_server_ends_in_time_and_moves_nothing(
    project_factory, heartml_cli, make_cli_env, tmp_path: Path, silent_url: str
) -> None:
    """`heartml data` with the UCI URL on a silent server and no shipped copy: one error line
    naming the URL and the timeout, within the documented timeout (HEARTML_DOWNLOAD_TIMEOUT_S)
    plus the command's own start-up, and the processed data of the last run untouched."""
    settings = project_factory(tmp_path / "project")
    first = heartml_cli("data", cwd=settings.root, env=make_cli_env(HEARTML_OFFLINE="1"))
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in settings.processed_dir.iterdir()}
    settings.catalog.raw_path.unlink()
    baseline_started = time.monotonic()
    version = heartml_cli("--help", cwd=settings.root, env=make_cli_env())
    startup = time.monotonic() - baseline_started
    assert version.returncode == 0
    started = time.monotonic()
    result = heartml_cli(
        "data",
        cwd=settings.root,
        env=make_cli_env(
            HEARTML_DATA_URL=f"{silent_url}/data", HEARTML_DOWNLOAD_TIMEOUT_S="2", COLUMNS="300"
        ),
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"error: no usable data: download from {silent_url}/data failed")
    assert "timed out" in lines[0], lines[0]
    assert elapsed < 2 + startup + 10, f"{elapsed:.1f} s (start-up alone {startup:.1f} s)"
    assert {p.name: p.read_bytes() for p in settings.processed_dir.iterdir()} == before


def test_offline_mode_skips_the_download(shipped: Path) -> None:
    raw = acquire(None, shipped, CLEVELAND_SHA256)
    assert raw.source == "shipped copy"
    assert raw.notes == ("offline mode: download skipped",)


def test_download_failing_and_shipped_copy_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone.data"
    url = closed_port_url()
    with pytest.raises(AcquisitionError) as info:
        acquire(url, missing, CLEVELAND_SHA256, timeout_s=2)
    message = str(info.value)
    assert "no usable data" in message
    assert url in message
    assert str(missing) in message
    assert "does not exist" in message


def test_corrupted_shipped_copy_is_an_error(shipped: Path, raw_bytes: bytes) -> None:
    shipped.write_bytes(raw_bytes[:-10])
    digest = hashlib.sha256(raw_bytes[:-10]).hexdigest()
    with pytest.raises(AcquisitionError) as info:
        acquire(closed_port_url(), shipped, CLEVELAND_SHA256, timeout_s=2)
    message = str(info.value)
    assert str(shipped) in message
    assert digest in message
    assert CLEVELAND_SHA256 in message


def test_corrupted_shipped_copy_offline_is_an_error(shipped: Path, raw_bytes: bytes) -> None:
    shipped.write_bytes(raw_bytes + b"\n")
    with pytest.raises(AcquisitionError, match="offline mode"):
        acquire(None, shipped, CLEVELAND_SHA256)


def test_cli_without_any_source_exits_2_with_one_line(
    project_factory, heartml_cli, make_cli_env, tmp_path: Path
) -> None:
    settings = project_factory(tmp_path / "project")
    settings.catalog.raw_path.unlink()
    url = closed_port_url()
    result = heartml_cli(
        "data", cwd=settings.root, env=make_cli_env(HEARTML_DATA_URL=url, COLUMNS="80")
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no usable data")
    assert url in lines[0]
    assert not (settings.processed_dir).exists()


def test_cli_falls_back_to_shipped_copy_and_says_so(
    project_factory, heartml_cli, make_cli_env, tmp_path: Path
) -> None:
    settings = project_factory(tmp_path / "project")
    url = closed_port_url()
    result = heartml_cli("data", cwd=settings.root, env=make_cli_env(HEARTML_DATA_URL=url))
    assert result.returncode == 0, result.stderr
    assert "data: shipped copy" in result.stdout
    assert f"download from {url} failed" in " ".join(result.stdout.split())
    assert (settings.processed_dir / "train.parquet").is_file()
