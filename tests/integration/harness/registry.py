"""Reading the registry directly with MLflow's client, independent of heartml.tracking."""

from __future__ import annotations

from typing import Any


def registry_client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def registry_snapshot(uri: str) -> dict[str, Any]:
    """Every version of the four models: number, run, tags, timestamps and aliases."""
    client = registry_client(uri)
    snapshot: dict[str, Any] = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        snapshot[model.name] = {
            # str(): the SQLite store answers alias versions as int, the REST client as str.
            "aliases": {alias: str(number) for alias, number in model.aliases.items()},
            "versions": {
                str(v.version): {
                    "run_id": v.run_id,
                    "tags": dict(v.tags),
                    "last_updated": v.last_updated_timestamp,
                }
                for v in versions
            },
        }
    return snapshot


def champions(uri: str) -> list[tuple[str, str]]:
    """(model name, version) of every version holding the alias `champion`."""
    client = registry_client(uri)
    return [
        (model.name, str(model.aliases["champion"]))
        for model in client.search_registered_models()
        if "champion" in model.aliases
    ]
