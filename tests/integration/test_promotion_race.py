"""Two processes register and promote DIFFERENT best models against one PostgreSQL-backed
`mlflow server` at the same moment, 20 rounds in step (a barrier before registering and one
before promoting). After every round the registry, read with MLflow's own client:

- exactly one version of the four models holds `champion`, and it is this round's version whose
  promotion came last (the `promoted_at` rule of Registry.apply_promotion);
- `champion_previous` is held by exactly one version, never the champion, and it is a version
  that was champion before: last round's champion or this round's other candidate;
- no version is lost: each model has exactly versions 1..round, each from the run its process
  reported, and each process's decision is recorded on its own run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from integration_helpers import MlflowServer, Project, registry_client, registry_snapshot
from race_worker import promote_rounds

pytestmark = [pytest.mark.task3, pytest.mark.integration, pytest.mark.slow]

ROUNDS = 20
SIDES = ("logistic_regression", "random_forest")  # a different best model on each side
STEP_TIMEOUT_S = 120.0


def holders(snapshot: dict[str, Any], alias: str) -> list[tuple[str, str]]:
    return sorted(
        (name, model["aliases"][alias])
        for name, model in snapshot.items()
        if alias in model["aliases"]
    )


def test_two_processes_promoting_different_models_leave_one_champion_every_round(
    mlflow_server: MlflowServer, make_project: Callable[..., Project]
) -> None:
    url = mlflow_server.url
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(SIDES) + 1)  # the two sides and this test
    outcomes = context.Queue()
    workers = [
        context.Process(
            target=promote_rounds,
            args=(
                str(make_project(url).root),
                url,
                algorithm,
                ROUNDS,
                barrier,
                outcomes,
                STEP_TIMEOUT_S,
            ),
            name=f"promote-{algorithm}",
        )
        for algorithm in SIDES
    ]
    for worker in workers:
        worker.start()
    client = registry_client(url)
    champion_before: tuple[str, str] | None = None
    try:
        for round_number in range(ROUNDS):
            for _step in ("start", "registered", "promoted"):
                barrier.wait(STEP_TIMEOUT_S)
            reports = [outcomes.get(timeout=STEP_TIMEOUT_S) for _ in SIDES]
            errors = [r["error"] for r in reports if "error" in r]
            assert not errors, "\n".join(errors)
            candidates = {(r["model_name"], r["version"]): r for r in reports}
            assert {r["algorithm"] for r in reports} == set(SIDES)
            snapshot = registry_snapshot(url)
            where = f"round {round_number + 1}"

            # No version lost: every round adds exactly one version to each side's model.
            for name, version in candidates:
                versions = snapshot[name]["versions"]
                assert sorted(versions, key=int) == [str(v) for v in range(1, round_number + 2)], (
                    f"{where}: {name} has versions {sorted(versions, key=int)}"
                )
                assert versions[version]["run_id"] == candidates[(name, version)]["run_id"]
                decision = client.get_run(candidates[(name, version)]["run_id"]).data.tags
                assert decision.get("mlflow.parentRunId"), where
                parent = client.get_run(decision["mlflow.parentRunId"]).data.tags
                assert parent["promotion.decision"] == "promoted", (where, parent)

            # Exactly one champion: the candidate whose promotion came last.
            champions = holders(snapshot, "champion")
            assert len(champions) == 1, f"{where}: champion held by {champions}"
            (champion,) = champions
            promoted_at = {
                key: snapshot[key[0]]["versions"][key[1]]["tags"]["promoted_at"]
                for key in candidates
            }
            assert champion == max(promoted_at, key=promoted_at.__getitem__), (
                f"{where}: champion {champion}, promotions {promoted_at}"
            )

            # champion_previous: one holder, not the champion, and a former champion.
            previous = holders(snapshot, "champion_previous")
            other = next(key for key in candidates if key != champion)
            if champion_before is None:
                assert len(previous) <= 1 and champion not in previous, (where, previous)
            else:
                assert len(previous) == 1, f"{where}: champion_previous held by {previous}"
                assert previous[0] in (champion_before, other), (
                    f"{where}: champion_previous {previous[0]}, expected "
                    f"{champion_before} (last champion) or {other} (the other candidate)"
                )
            assert champion not in previous, where
            champion_before = champion
            barrier.wait(STEP_TIMEOUT_S)  # next round
    except threading.BrokenBarrierError:
        # A side failed and broke the barrier: fail with what it said, not with the barrier.
        said = []
        with contextlib.suppress(queue.Empty):
            while True:
                said.append(outcomes.get(timeout=5))
        errors = [r["error"] for r in said if "error" in r]
        pytest.fail("a side failed:\n" + ("\n".join(errors) or "(no error reported)"))
    except BaseException:
        barrier.abort()
        raise
    finally:
        for worker in workers:
            worker.join(timeout=STEP_TIMEOUT_S)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=10)
    assert [worker.exitcode for worker in workers] == [0, 0]
    final = registry_snapshot(url)
    assert sorted(final) == sorted(f"heart_disease_{a}" for a in SIDES)
    run_ids = {v["run_id"] for model in final.values() for v in model["versions"].values()}
    assert len(run_ids) == ROUNDS * len(SIDES), "every version comes from its own run"
