"""POST /predict, /predict/batch and /predict/explain.

Each body is read and validated by heartml.serving.routes.bodies, with the input contract of the
model that scores it (its package's dataset spec). Every answer names the fields the model
imputed (`imputed_fields`) and, if any, says in `note` that the estimate is less certain.

Explanations are model-agnostic occlusion on the ONNX graph: for each of the k raw features,
the record's value is replaced by a typical training value (the median of a numeric feature,
the most frequent code of a coded one, from the package's reference_statistics.json) and the
change in probability is that feature's contribution: P(record) - P(record with the feature at
its typical value). Positive pushed this prediction up, negative pushed it down. One ONNX call
scores the record and the k variants (k + 1 rows). Contributions are local and need not add up
to anything; correlated features (age and maximum heart rate) share credit unevenly.
"""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from heartml.serving.errors import JSONBytesResponse, json_response, request_id
from heartml.serving.fast_check import batch_rows
from heartml.serving.middleware import MODEL_VERSION_KEY
from heartml.serving.requests import BATCH_MODEL, REQUEST_MODEL
from heartml.serving.routes.bodies import (
    ERRORS,
    THREADPOOL_ROWS,
    check_batch_limit,
    json_body,
    openapi_body,
    record_row,
    served_model,
    service_of,
    site_or_default,
    validated,
)
from heartml.serving.schemas import (
    BatchPredictionResponse,
    ExplanationResponse,
    PredictionResponse,
)

router = APIRouter(tags=["prediction"])

EXPLANATION_METHOD = (
    "occlusion: each raw feature replaced by its training median (numeric) or most frequent "
    "code (coded); contribution = P(record) - P(record with that feature replaced)"
)


@router.post(
    "/predict",
    response_model=PredictionResponse,
    responses=ERRORS,
    openapi_extra=openapi_body(REQUEST_MODEL),
)
async def predict(request: Request) -> Response:
    """Score one record (the served model's input fields; see /model/info), optionally for a
    site: its calibration, if any, is applied (see `calibration` in the answer)."""
    body = await json_body(request)
    service = service_of(request)
    model = served_model(service, body)
    contract = model.contract
    # The fast check accepts only valid records; anything else gets the contract model's verdict.
    row, imputed, site = record_row(body, contract)
    site = site_or_default(service, site)
    rid = request_id(request)
    probability, prediction, raw, entry = await service.score_one(model, row, rid, site)
    request.scope[MODEL_VERSION_KEY] = model.version
    return JSONBytesResponse(
        orjson.dumps(
            {
                "prediction": prediction,
                "probability": probability,
                "risk_level": contract.risk_level(probability),
                "imputed_fields": imputed,
                "note": contract.note(imputed),
                "model_name": model.name,
                "model_version": model.version,
                "request_id": rid,
                "site": site,
                "calibration": None if entry is None else entry.body(raw),
            }
        )
    )


@router.post(
    "/predict/batch",
    response_model=BatchPredictionResponse,
    responses=ERRORS,
    openapi_extra=openapi_body(BATCH_MODEL),
)
async def predict_batch(request: Request) -> Response:
    """Score many records at once: one result per record, in order; a top-level `site`
    applies that site's calibration to every record."""
    body = await json_body(request, batch=True)
    service = service_of(request)
    model = served_model(service, body, batch=True)
    contract = model.contract
    checked = batch_rows(body, contract)
    if checked is None:
        batch = validated(body, contract.batch, contract)
        row_list, site = [contract.record_row(record) for record in batch.records], batch.site
    else:
        row_list, site = checked
    check_batch_limit(service, len(row_list))
    site = site_or_default(service, site)
    entry = service.site_entry(model, site)
    rid = request_id(request)
    rows = np.array(row_list, dtype=np.float64)
    if len(rows) > THREADPOOL_ROWS:
        raw = await run_in_threadpool(model.probabilities, rows)
    else:
        raw = model.probabilities(rows)
    probabilities, predictions = service.record(model, rows, raw, rid, entry)
    service.metrics.batch_size.observe(len(rows))
    request.scope[MODEL_VERSION_KEY] = model.version
    results = []
    for row, p, label, own in zip(
        row_list, probabilities.tolist(), predictions.tolist(), raw.tolist(), strict=True
    ):
        imputed = contract.imputed(row)
        results.append(
            {
                "prediction": label,
                "probability": p,
                "risk_level": contract.risk_level(p),
                "imputed_fields": imputed,
                "note": contract.note(imputed),
                "calibration": None if entry is None else entry.body(own),
            }
        )
    return json_response(
        {
            "results": results,
            "count": len(rows),
            "model_name": model.name,
            "model_version": model.version,
            "request_id": rid,
            "site": site,
        }
    )


@router.post(
    "/predict/explain",
    response_model=ExplanationResponse,
    responses=ERRORS,
    openapi_extra=openapi_body(REQUEST_MODEL),
)
async def explain(request: Request) -> Response:
    """Score one record and say which features pushed the probability up or down (with a site,
    on the site's calibrated probabilities)."""
    body = await json_body(request)
    service = service_of(request)
    model = served_model(service, body)
    contract = model.contract
    listed, imputed, site = record_row(body, contract)
    site = site_or_default(service, site)
    entry = service.site_entry(model, site)
    rid = request_id(request)
    row = np.array(listed, dtype=np.float64)
    count = len(row)
    rows = np.repeat(row[None, :], count + 1, axis=0)
    rows[np.arange(count) + 1, np.arange(count)] = model.baseline
    raw = model.probabilities(rows)
    # Contributions in the probability the answer gives (the calibration is monotone).
    probabilities = raw if entry is None else entry.apply(raw)
    _, decided = service.record(model, rows[:1], raw[:1], rid, entry)
    probability, prediction = float(probabilities[0]), int(decided[0])
    request.scope[MODEL_VERSION_KEY] = model.version
    deltas = probability - probabilities[1:]
    names, columns = contract.names, contract.columns
    contributions = [
        {
            "feature": names[i],
            "label": columns[names[i]].label,
            "value": None if np.isnan(row[i]) else float(row[i]),
            "reference_value": float(model.baseline[i]),
            "contribution": float(deltas[i]),
        }
        for i in np.argsort(-np.abs(deltas), kind="stable").tolist()
    ]
    return json_response(
        {
            "prediction": prediction,
            "probability": probability,
            "risk_level": contract.risk_level(probability),
            "imputed_fields": imputed,
            "note": contract.note(imputed),
            "model_name": model.name,
            "model_version": model.version,
            "request_id": rid,
            "site": site,
            "calibration": None if entry is None else entry.body(float(raw[0])),
            "method": EXPLANATION_METHOD,
            "contributions": contributions,
        }
    )
