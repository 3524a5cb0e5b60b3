"""The OpenAPI document (/openapi.json, the /docs page) of the served contract.

The prediction routes read their body themselves, so FastAPI cannot know the request models:
they are the served contract's (heartml.serving.requests builds them), added to the components
here, with the contract's risk bands and positive class in the response models and the other
protocols' bodies (heartml.serving.protocol_schemas). The document is built on the first ask
after every model change (the app sets `app.openapi_schema = None`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from heartml.serving.contract import Contract
from heartml.serving.protocol_schemas import document_protocols
from heartml.serving.requests import generic_models
from heartml.serving.service import Service


def describe(contract: Contract | None) -> str:
    """The /docs page's introduction, for the contract being served."""
    if contract is None:
        what = (
            "Risk scores from the input fields of the model's dataset spec (none loaded yet: "
            "the request bodies are described once a model is served)"
        )
        bands = "see `/model/info`"
    else:
        spec = contract.spec
        what = (
            f"{spec.title}: P({spec.target.positive_label}) for one {spec.record_title} from "
            f"{len(contract.names)} input fields ({contract.fields_text})"
        )
        bands = spec.risk_bands_text
    return f"""
{what}, scored by the served model's verified ONNX package (engineered features inside the
graph; no pickle). The input fields, their allowed values and the risk bands come from the
dataset spec inside the package; a reload to a package with another spec changes this page.

* `POST /predict`: one record → `prediction` (0/1 at the package threshold), `probability`,
  `risk_level` ({bands}), `imputed_fields` and `note` (fields the model imputed because they
  were null), model name and version.
* A `site` (optional; `{{"records": [...], "site": ...}}` in a batch; default HEARTML_SERVE_SITE):
  the site's calibration, if it has one, turns the model's probability into the site's own,
  and the decision and risk level are taken on it; the answer's `calibration` says which
  version was applied (`model_probability`: the model's own), or that the site has none.
* `POST /predict/batch`: `{{"records": [...]}}` → one result each.
* `POST /predict/explain`: the prediction plus each feature's contribution (occlusion against
  the training median / most frequent code).
* `GET /health`, `GET /ready`, `GET /model/info` (also every input field, for building a form),
  `GET /metrics`, `GET /monitoring/drift`.
* MLflow's scoring protocol, as `mlflow models serve` answers it: `POST /invocations`
  (`dataframe_split`, `dataframe_records`, `instances`, `inputs`, or CSV) →
  `{{"predictions": [[P(0), P(1)], ...]}}`; `GET /ping`, `GET /version`. Errors in MLflow's
  envelope (`error_code`, `message`).
* The Open Inference Protocol (KServe v2): `GET /v2`, `/v2/health/live`, `/v2/health/ready`,
  `/v2/models/{{name}}[/versions/{{version}}][/ready]`, `POST /v2/models/{{name}}/infer`
  (a tensor `input` [n, k] or one tensor per column → `probabilities` [n, 2], `label` [n]).
  Errors as `{{"error": ...}}`.

A field left out is a 422 naming it; a bad value is a 422 naming the field, the value received
and what is allowed. For research and education: not a medical device.
"""


def served_contract(service: Service) -> Contract | None:
    """The served model's contract; before any model, the project's configured spec's."""
    model = service.store.current
    if model is not None:
        return model.contract
    return service.store.configured_contract()


def document_bodies(app: FastAPI, service: Service) -> None:
    """Add the request-body models of the routes that read their body themselves (the served
    contract's, which FastAPI cannot know) to the OpenAPI components, and describe the
    contract's risk bands. Regenerated after every model change (app.openapi_schema = None)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            contract = served_contract(service)
            app.description = describe(contract)
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            bodies = (
                generic_models()
                if contract is None
                else (contract.record, contract.request, contract.batch)
            )
            for body_model in bodies:
                definition = body_model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
                components.update(definition.pop("$defs", {}))
                components[body_model.__name__] = definition
            if contract is not None:
                _describe_results(components, contract)
            current = service.store.current
            document_protocols(
                schema, contract, (current.name, current.version) if current else None
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_results(components: dict[str, Any], contract: Contract) -> None:
    """The contract's words in the response models: its risk bands and its positive class."""
    spec = contract.spec
    for name in ("PredictionResult", "PredictionResponse", "ExplanationResponse"):
        properties = components.get(name, {}).get("properties", {})
        if "risk_level" in properties:
            properties["risk_level"]["enum"] = contract.risk_labels
            properties["risk_level"]["description"] = f"Probability band ({spec.risk_bands_text})"
        if "probability" in properties:
            properties["probability"]["description"] = (
                f"P({spec.target.positive_label}), from the ONNX model, then the site's "
                "calibration if it has one (the decision and risk level are taken on it)"
            )
        if "prediction" in properties:
            properties["prediction"]["description"] = (
                f"1 = {spec.target.positive_label} predicted (probability at or above the "
                "package threshold)"
            )
