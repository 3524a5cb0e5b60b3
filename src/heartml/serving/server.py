"""Running the service under uvicorn (what `heartml serve` calls)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

APP_FACTORY = "heartml.serving.app:create_app"
DEFAULT_WORKERS = 1  # chosen by measurement: see benchmarks/README.md


def uvicorn_choices(loop: str = "auto", http: str = "auto") -> tuple[str, str]:
    """By default uvloop and httptools when installed (uvicorn[standard]; the fastest pair,
    measured in benchmarks/README.md), the pure-Python pair otherwise."""
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def serve(
    host: str,
    port: int,
    workers: int,
    package: Path | None,
    loop: str = "auto",
    http: str = "auto",
) -> None:
    """Start uvicorn on the app factory; blocks until the server stops."""
    import uvicorn

    if package is not None:
        # Through the environment, because each worker process builds its own Settings.
        os.environ["HEARTML_MODEL_SOURCE"] = "package"
        os.environ["HEARTML_MODEL_PACKAGE"] = str(package.resolve())
    # The app's lifespan installs JSON logging on the root logger; a handler left by the CLI
    # would print every record a second time, unformatted.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    loop, http = uvicorn_choices(loop, http)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=loop,
        http=http,
        access_log=False,  # the app logs each request itself, as JSON with its request id
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
