"""MLflow's model registry over plain HTTP: which version holds an alias, and its package.

Registry-mode serving needs three answers from an `mlflow server`: which registered version
holds an alias (`champion`, `challenger`), which run it came from, and that run's `package/`
artifacts (uploaded by `heartml package`). This client asks MLflow's documented REST API for
them with httpx (a dependency of the serving image), so the server never imports mlflow:

- `GET /api/2.0/mlflow/registered-models/get`: a model's aliases (one call per name);
- `GET /api/2.0/mlflow/model-versions/get`: the version's run id and tags;
- `GET /api/2.0/mlflow/runs/get`: the run's artifact root;
- `GET /api/2.0/mlflow/artifacts/list`: the files under `package/`;
- `GET /api/2.0/mlflow-artifacts/artifacts/<path>`: one file, proxied by a server started with
  `--serve-artifacts` (the run's artifact root is then `mlflow-artifacts:/...`).
Every request has a timeout; a transport failure, a 429 or a 5xx is retried with exponential
backoff. Credentials, and the failures in words: heartml.serving.registry_http.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartml.package.manifest import MANIFEST, PACKAGE_ARTIFACT_DIR
from heartml.serving.registry_http import (
    HTTP_SCHEMES,
    RegistryError,
    RegistryUnavailable,
    auth_headers,
    is_server_uri,
    public_uri,
    refusal_text,
    response_json,
    transport_failure,
)
from heartml.settings import Settings
from heartml.tracking.versions import VersionTag

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_S = 0.25  # first pause between attempts; doubled each time
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True)
class VersionRef:
    """A registered version holding an alias, as the server needs it."""

    model_name: str
    version: str
    run_id: str
    alias: str
    promoted_at: str = ""

    @property
    def uri(self) -> str:
        return f"models:/{self.model_name}@{self.alias}"

    @property
    def label(self) -> str:
        return f"{self.model_name} version {self.version}"


class RegistryClient:
    """A few read-only calls to one MLflow tracking server; used from worker threads only."""

    def __init__(
        self,
        uri: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        import httpx  # only in registry mode

        if not is_server_uri(uri):
            raise RegistryError(f"{public_uri(uri)} is not an http(s) URI of an MLflow server")
        self.uri = uri.rstrip("/")
        self.public_uri = public_uri(self.uri)
        self.retries = retries
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "heartml-serving", **(headers or {})},
            verify=verify,
            follow_redirects=False,
        )
        self._roots: dict[str, str] = {}  # run id -> artifact root (never changes)

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryClient:
        verify: bool | str = True
        if settings.mlflow_tracking_insecure_tls:
            verify = False
        elif settings.mlflow_tracking_server_cert_path is not None:
            verify = str(settings.mlflow_tracking_server_cert_path)
        return cls(
            settings.tracking_uri,
            timeout_s=settings.registry_timeout_s,
            retries=settings.registry_retries,
            headers=auth_headers(settings),
            verify=verify,
        )

    def close(self) -> None:
        self._http.close()

    # -- transport --------------------------------------------------------------------------------

    def _send(self, url: str, what: str, params: dict[str, str] | None = None) -> Any:
        """GET with retries; the response (any status but the retried ones) or
        RegistryUnavailable once the attempts are used up."""
        import httpx

        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                response = self._http.get(url, params=params)
            except httpx.TimeoutException:
                failure = "no answer within the timeout (HEARTML_REGISTRY_TIMEOUT_S)"
            except httpx.TransportError as exc:
                failure = transport_failure(exc)
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                failure = f"HTTP {response.status_code}"
        attempts = self.retries + 1
        raise RegistryUnavailable(
            f"{what} on {self.public_uri}: {failure} ({attempts} attempt{'s' * (attempts > 1)})"
        )

    def _api(self, endpoint: str, what: str, **params: str) -> dict[str, Any] | None:
        """One REST call's JSON; None for MLflow's RESOURCE_DOES_NOT_EXIST."""
        response = self._send(f"{self.uri}{API}/{endpoint}", what, params)
        body = response_json(response)
        if response.status_code == 200 and isinstance(body, dict):
            return body
        if body.get("error_code") == NOT_FOUND:
            return None
        raise RegistryError(f"{what} on {self.public_uri}: {refusal_text(response, body)}")

    # -- aliases and versions -------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, str] | None:
        """alias -> version of a registered model; None when no model has that name."""
        body = self._api("registered-models/get", f"reading the model {name}", name=name)
        if body is None:
            return None
        model = body.get("registered_model") or {}
        return {str(a["alias"]): str(a["version"]) for a in model.get("aliases") or []}

    def version(self, name: str, version: str, alias: str) -> VersionRef:
        what = f"reading {name} version {version}"
        body = self._api("model-versions/get", what, name=name, version=version)
        found = (body or {}).get("model_version")
        if not found or not found.get("run_id"):
            raise RegistryError(f"{what} on {self.public_uri}: no such version or no run")
        tags = {t["key"]: t.get("value", "") for t in found.get("tags") or []}
        promoted_at = tags.get(VersionTag.PROMOTED_AT, "")
        return VersionRef(name, version, str(found["run_id"]), alias, promoted_at)

    def find(self, alias: str, names: Sequence[str]) -> VersionRef | None:
        """The version holding `alias` across the models `names`; should two hold it (a
        concurrent promotion), the later promotion wins, as heartml.tracking decides."""
        holders = []
        for name in names:
            number = (self.aliases(name) or {}).get(alias)
            if number is not None:
                holders.append(self.version(name, number, alias))
        if not holders:
            return None
        return max(holders, key=lambda ref: ref.promoted_at)

    # -- the package ------------------------------------------------------------------------------

    def artifact_root(self, run_id: str) -> str:
        if run_id not in self._roots:
            body = self._api("runs/get", f"reading run {run_id}", run_id=run_id)
            root = ((body or {}).get("run") or {}).get("info", {}).get("artifact_uri")
            if not root:
                raise RegistryError(f"run {run_id}: not found on {self.public_uri}")
            self._roots[run_id] = str(root)
        return self._roots[run_id]

    def _artifact_url(self, run_id: str, path: str) -> str:
        """Where the server hands out a run's artifact (proxied artifact access)."""
        root = self.artifact_root(run_id)
        parts = urllib.parse.urlsplit(root)
        quoted = urllib.parse.quote(path)
        if parts.scheme == "mlflow-artifacts":
            return f"{self.uri}{ARTIFACTS_API}/{parts.path.strip('/')}/{quoted}"
        if parts.scheme in HTTP_SCHEMES and ARTIFACTS_API in parts.path:
            return f"{root.rstrip('/')}/{quoted}"
        raise RegistryError(
            f"run {run_id} keeps its artifacts at {parts.scheme or 'a local path'}://..., which "
            f"{self.public_uri} does not hand out: start `mlflow server` with --serve-artifacts"
        )

    def list_files(
        self, run_id: str, path: str = PACKAGE_ARTIFACT_DIR, recursive: bool = True
    ) -> list[tuple[str, int]]:
        """(path, bytes) of every file under `path` of the run's artifacts (sub-folders walked
        when recursive)."""
        files: list[tuple[str, int]] = []
        folders = [path]
        while folders:
            folder = folders.pop()
            token = ""
            while True:
                params = {"run_id": run_id, "path": folder}
                if token:
                    params["page_token"] = token
                body = self._api("artifacts/list", f"listing {folder}/ of run {run_id}", **params)
                for entry in (body or {}).get("files") or []:
                    if entry.get("is_dir"):
                        if recursive:
                            folders.append(str(entry["path"]))
                    else:
                        files.append((str(entry["path"]), int(entry.get("file_size") or 0)))
                token = str((body or {}).get("next_page_token") or "")
                if not token:
                    break
        return sorted(files)

    def read_file(self, run_id: str, path: str) -> bytes:
        response = self._send(self._artifact_url(run_id, path), f"downloading {path}")
        if response.status_code != 200:
            refusal = refusal_text(response, response_json(response))
            raise RegistryError(f"downloading {path} of run {run_id}: {refusal}")
        return bytes(response.content)

    def manifest(self, ref: VersionRef) -> bytes | None:
        """The package's MANIFEST.json as stored, or None when the version has no package."""
        path = posixpath.join(PACKAGE_ARTIFACT_DIR, MANIFEST)
        if path not in {p for p, _ in self.list_files(ref.run_id, recursive=False)}:
            return None
        return self.read_file(ref.run_id, path)

    def download_package(self, ref: VersionRef, cache_dir: Path, manifest: bytes) -> Path:
        """Every file under the run's `package/` into a new folder of `cache_dir` (MANIFEST.json
        as read when the version was looked up); the folder is only renamed into place when all
        files arrived. Checksums are checked by the loader, not here."""
        cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(manifest).hexdigest()[:12]
        final = cache_dir / f"{ref.model_name}_v{ref.version}-{digest}"
        if final.is_dir():  # downloaded before (e.g. champion then challenger): fetch again
            shutil.rmtree(final)
        staging = cache_dir / f".partial-{uuid.uuid4().hex[:8]}"
        prefix = PACKAGE_ARTIFACT_DIR + "/"
        try:
            staging.mkdir()
            for path, _size in self.list_files(ref.run_id):
                relative = path.removeprefix(prefix)
                target = staging / relative
                if not path.startswith(prefix) or ".." in Path(relative).parts:
                    raise RegistryError(f"run {ref.run_id}: unexpected artifact path {path!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                if relative == MANIFEST:
                    target.write_bytes(manifest)
                    continue
                with target.open("wb") as out:
                    for chunk in self._stream(ref.run_id, path):
                        out.write(chunk)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def _stream(self, run_id: str, path: str) -> Iterator[bytes]:
        # Whole-file reads would hold a model file twice in memory; chunks keep it flat.
        import httpx

        url = self._artifact_url(run_id, path)
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    refusal = refusal_text(response, response_json(response))
                    raise RegistryError(f"downloading {path} of run {run_id}: {refusal}")
                yield from response.iter_bytes(1 << 16)
        except httpx.TimeoutException as exc:
            raise RegistryUnavailable(f"downloading {path}: no answer within the timeout") from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"downloading {path}: {transport_failure(exc)}") from exc
