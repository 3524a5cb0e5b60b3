"""The FastAPI application: `create_app(settings)` builds it; nothing happens at import time.

The lifespan sets up JSON logging, the optional prediction log and the prediction store's writer
(heartml.store; on by default), then starts one background task that loads the model (off the
event loop) and keeps polling its source for a new one, and one that recomputes the live
performance gauges.
Until the first load succeeds /ready and the prediction routes answer 503; /health answers at
once. Run it with `heartml serve`, or `uvicorn --factory heartml.serving.app:create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from heartml import __version__
from heartml.serving.calibrations import ServedCalibrations
from heartml.serving.drift import DriftMonitor
from heartml.serving.errors import EXCEPTION_HANDLERS, error_response
from heartml.serving.loaded_model import LoadedModel
from heartml.serving.logging import (
    FLUSH_INTERVAL_S,
    PredictionLog,
    configure_logging,
    remove_logging,
)
from heartml.serving.metrics import ServiceMetrics
from heartml.serving.middleware import ServiceMiddleware
from heartml.serving.model_store import ModelStore
from heartml.serving.openapi import describe, document_bodies
from heartml.serving.registry_http import public_uri
from heartml.serving.routes import (
    admin,
    feedback,
    health,
    mlflow,
    model,
    monitoring,
    open_inference,
    performance,
    predict,
)
from heartml.serving.service import Service
from heartml.serving.shadow import Shadow
from heartml.serving.source_choice import ModelSourceError, check_source, registry_names
from heartml.serving.sources import CHALLENGER
from heartml.settings import Settings

if TYPE_CHECKING:
    from heartml.serving.live import LiveMonitor

log = logging.getLogger("heartml.serving")

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, *, store: ModelStore | None = None) -> FastAPI:
    """The service for these settings; `store` lets tests put in a model of their own.

    A model source that cannot work in this installation
    (heartml.serving.source_choice.check_source) raises ModelSourceError; called without
    settings, as `uvicorn --factory` does, it ends the process with that one line on stderr and
    exit code 2 instead of a traceback."""
    if settings is None:
        settings = Settings()
        try:
            check_source(settings)
        except ModelSourceError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            print(f"heartml serving: error: {exc}{hint}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
    else:
        check_source(settings)
    metrics = ServiceMetrics()
    shadow = Shadow(settings.shadow_queue_rows)
    metrics.attach_shadow(shadow)
    challenger = ModelStore(settings, role=CHALLENGER)
    challenger.on_change = shadow.set_challenger
    challenger.on_clear = lambda: shadow.set_challenger(None)
    service = Service(
        settings=settings,
        store=store or ModelStore(settings),
        metrics=metrics,
        drift=DriftMonitor(settings.serve_drift_window),
        shadow=shadow,
        challenger_store=challenger,
        calibrations=ServedCalibrations(settings.resolved_calibrations_dir, settings.serve_site),
    )

    def model_changed(loaded: LoadedModel) -> None:
        service.model_changed(loaded)
        # /docs and /openapi.json describe the served contract: built again on the next ask.
        app.openapi_schema = None

    metrics.attach_source(service.store.source_status)
    if settings.store_enabled:
        from heartml.serving.live import StoreCollector

        metrics.registry.register(StoreCollector(service))
    service.store.on_change = model_changed
    if service.calibrations is not None:  # read with each model, then on the model's poll
        service.store.before_swap = service.calibrations.prepare
        service.store.after_refresh = service.calibrations.check
    service.store.on_failure = lambda _reason: metrics.load_failed()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        handler = configure_logging(settings.serve_log_level)
        if settings.serve_prediction_log is not None:
            service.prediction_log = PredictionLog(settings.serve_prediction_log)
            service.prediction_log.start()
        log.info(
            "service starting",
            extra={
                "model_source": settings.model_source,
                "registry": public_uri(settings.tracking_uri)
                if settings.model_source == "registry"
                else None,
                "registry_models": ",".join(registry_names(settings))
                if settings.model_source == "registry"
                else None,
                "model_package": str(settings.model_package or settings.packages_dir),
                "reload_interval_s": settings.serve_reload_interval_s,
                "batch_limit": settings.serve_batch_limit,
                "prediction_log": str(settings.serve_prediction_log or ""),
            },
        )
        interval = settings.serve_reload_interval_s
        tasks = [
            asyncio.create_task(service.store.run(interval), name="model-watcher"),
            asyncio.create_task(_flush_logs(handler), name="log-flusher"),
        ]
        if challenger.source is not None:  # a challenger alias (registry) or a shadow package
            tasks.append(asyncio.create_task(challenger.run(interval), name="challenger-watcher"))
        if settings.store_enabled:
            live = _start_store(service, settings)
            tasks.append(
                asyncio.create_task(
                    live.run(settings.monitor_refresh_s, lambda: service.store.current),
                    name="live-performance",
                )
            )
        thresholds = _tune_gc()
        try:
            yield
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            shadow.stop()
            for store in (service.store, challenger):
                store.close()
            if service.prediction_log is not None:
                service.prediction_log.close()
            if service.recorder is not None:
                # Writes what is queued (one attempt, bounded) before the process ends.
                await asyncio.to_thread(service.recorder.close)
                service.recorder = None
                service.live = None
            log.info("service stopped")
            remove_logging(handler)

    app = FastAPI(
        title="heartml prediction service",
        version=__version__,
        description=describe(None),
        lifespan=lifespan,
        exception_handlers=dict(EXCEPTION_HANDLERS),  # type: ignore[arg-type]
        # Metrics are Prometheus (/metrics); FastAPI's OpenTelemetry hook would only add a
        # provider look-up to every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    if service.store.current is not None:  # a test store that arrives loaded
        model_changed(service.store.current)
    # Routes are matched in this order: the prediction doors and /health first, the rarely
    # called ones last (each route passed costs ~0.9 µs of CPU per request).
    for module in (
        predict,
        health,
        mlflow,
        open_inference,
        feedback,
        model,
        monitoring,
        performance,
        admin,
    ):
        _add_routes(app, module.router)
    document_bodies(app, service)
    _mount_web_page(app)
    if settings.serve_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.serve_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "X-Request-ID"],
        )
    # Added last, so outermost: it times, ids and counts everything, CORS preflights included.
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=settings.serve_max_body_bytes,
        access=settings.serve_access_log,
    )
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes as the app's own, in order, instead of `app.include_router`.

    FastAPI (0.16x) keeps an included router as a nested branch: a request is matched against
    every route of every router before its own, through a scope bookkeeping layer, then
    against its router's routes a second time. Measured in-process
    (benchmarks/bench_request_path.py, logistic regression, CPU per single-row request):
    /predict 91 -> 87 µs, /health 61 -> 51, /invocations 122 -> 94, /v2/.../infer 133 -> 97.
    A route declared on an APIRouter already carries the router's prefix, tags and responses,
    so the OpenAPI document is the same. (`app.dependency_overrides` does not reach these
    routes, as it would an included router's; nothing here overrides a dependency.)"""
    app.router.routes.extend(router.routes)


def _start_store(service: Service, settings: Settings) -> LiveMonitor:
    """The prediction store's writer (its thread migrates the schema, then writes) and the live
    window; their series join the app's /metrics. A store that cannot be reached only logs."""
    from heartml.serving.live import LiveMonitor
    from heartml.store.engine import create_engine, shown
    from heartml.store.writer import PredictionWriter

    engine = create_engine(settings.resolved_store_url)
    writer = PredictionWriter(
        engine,
        max_rows=settings.store_queue_rows,
        flush_interval_s=settings.store_flush_interval_s,
        retention_days=settings.store_retention_days,
    )
    writer.start()
    live = LiveMonitor(settings, writer)
    service.recorder, service.live = writer, live
    log.info(
        "prediction store on",
        extra={
            "store": shown(engine.url),
            "retention_days": settings.store_retention_days,
            "queue_rows": settings.store_queue_rows,
        },
    )
    return live


GC_THRESHOLDS = (10_000, 10, 10)


def _tune_gc() -> tuple[int, int, int]:
    """Freeze what exists at start-up (modules, routes, schemas: never garbage) out of the
    collector's reach, and collect the youngest generation less often; returns the previous
    thresholds. Measured under load: full collections of the unfrozen heap took ~20 ms each,
    every few hundred milliseconds, and set /predict's p99 at c=8 (~22 ms; ~3 ms frozen); the
    higher first threshold saves ~5% CPU per request. Objects are still freed by reference
    counting as usual; only cycles wait a little longer."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return previous


async def _flush_logs(handler: logging.Handler) -> None:
    """Push out buffered log lines when no newer line does (see heartml.serving.logging)."""
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        handler.flush()


def _mount_web_page(app: FastAPI) -> None:
    """`/` serves static/index.html (the web page); `/static` its assets. No CDN."""
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def web_page(request: Request) -> Response:
        if not index.is_file():
            return error_response(request, 404, "no web page installed")
        return FileResponse(index, media_type="text/html")

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
