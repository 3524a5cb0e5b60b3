"""The fast request path agrees with the slow one: the body check, micro-batching, metrics."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from pydantic import ValidationError

from heartml.serving.contract import build_contract
from heartml.serving.drift import DriftMonitor
from heartml.serving.fast_check import batch_rows, checked_record, patient_row
from heartml.serving.loaded_model import LoadedModel, load_package
from heartml.serving.metrics import LATENCY_BUCKETS, LoopHistogram, ServiceMetrics
from heartml.serving.model_store import ModelStore
from heartml.serving.service import Service
from heartml.settings import Settings
from serving_packages import heart_spec, records_of

pytestmark = pytest.mark.serving

PackageFactory = Callable[..., Path]
CONTRACT = build_contract(heart_spec())
RAW_FEATURES = CONTRACT.names
SEED: dict[str, Any] = dict(CONTRACT.spec.example_record())


def same_row(left: list[float], right: list[float]) -> bool:
    return all(
        (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(left, right, strict=True)
    )


def slow_row(body: bytes) -> list[float]:
    return CONTRACT.record_row(CONTRACT.request.model_validate_json(body))


def test_fast_check_gives_the_record_row_for_every_dataset_row(cleveland: pd.DataFrame) -> None:
    bodies = [orjson.dumps(record) for record in records_of(cleveland, RAW_FEATURES)]
    assert len(bodies) == 303
    for body in bodies:
        row = patient_row(body, CONTRACT)
        assert row is not None, body
        assert same_row(row, slow_row(body)), body
    checked = batch_rows(b'{"records": [' + b",".join(bodies) + b'], "site": "A"}', CONTRACT)
    assert checked is not None and checked[1] == "A"
    rows = checked[0]
    assert len(rows) == len(bodies)
    assert all(same_row(a, slow_row(b)) for a, b in zip(rows, bodies, strict=True))


EXERCISE_TEST = ("slope", "oldpeak", "thalach", "exang")
ACCEPTED = [
    orjson.dumps(SEED),
    orjson.dumps({**SEED, "site": "A"}),
    orjson.dumps({**SEED, "site": None}),
    orjson.dumps({**SEED, "cp": 1.0, "age": 63.5}),  # codes as pandas writes them
    orjson.dumps({**SEED, "ca": None, "thal": None, "chol": None, "trestbps": None}),
    orjson.dumps({**SEED, **dict.fromkeys(EXERCISE_TEST)}),  # no exercise test
    orjson.dumps({**SEED, "fbs": None}),
    orjson.dumps({**SEED, "chol": 0, "trestbps": 0.0}),  # UCI's "not measured"
    orjson.dumps({**SEED, "age": 18, "oldpeak": 0}),  # the bounds themselves
    b'  {"age": 63, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2,'
    b' "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": 6}\n',
]
REFUSED = [
    *(orjson.dumps({**SEED, "site": site}) for site in ("bad/site", "café", "-x", "x" * 65, 7)),
    orjson.dumps({**SEED, "age": "63"}),
    orjson.dumps({**SEED, "sex": True}),
    orjson.dumps({**SEED, "age": 150}),
    orjson.dumps({**SEED, "age": 17.9}),
    orjson.dumps({**SEED, "cp": 5}),
    orjson.dumps({**SEED, "slope": 1.5}),
    orjson.dumps({**SEED, "chol": 1}),
    orjson.dumps({**SEED, "age": None}),
    orjson.dumps({**SEED, "sex": None}),
    orjson.dumps({**SEED, "smoker": 1}),
    orjson.dumps({k: v for k, v in SEED.items() if k != "exang"}),
    orjson.dumps({**SEED, "age": [63]}),
    orjson.dumps({**SEED, "age": {"value": 63}}),
    orjson.dumps(SEED).replace(b"2.3", b"NaN"),
    orjson.dumps(SEED).replace(b"233", b"Infinity"),
    orjson.dumps(SEED).replace(b"233", b"1e400"),
    orjson.dumps(SEED).replace(b"233", b"123456789012345678901234567890"),
    orjson.dumps(SEED)[:-1] + b', "age": 200}',  # a duplicate key: the last one counts, in both
    orjson.dumps(SEED) + b" trailing",
    orjson.dumps([SEED]),
    b'"a string"',
    b"[63, 1]",
    b'{"age": 63,',
    b"\xff\xfe",
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_fast_check_accepts_what_the_record_accepts(body: bytes) -> None:
    row = patient_row(body, CONTRACT)
    assert row is not None
    assert same_row(row, slow_row(body))


@pytest.mark.parametrize("body", REFUSED)
def test_fast_check_leaves_every_refusal_to_the_record(body: bytes) -> None:
    assert patient_row(body, CONTRACT) is None
    with pytest.raises(ValidationError):
        CONTRACT.request.model_validate_json(body)


def _values(name: str, junk: bool = True) -> st.SearchStrategy[Any]:
    """A JSON value a client might send for one field: valid ones, the column's edges and
    "not measured" values, null, and (with `junk`) anything else."""
    column = CONTRACT.columns[name]
    edges: list[Any] = [*column.missing_values, -0.0, 0]
    if column.codes is not None:
        codes = list(column.codes)
        edges += [max(codes) + 1, min(codes) - 1, codes[0] + 0.5]
        valid = st.one_of(st.sampled_from(codes), st.sampled_from([float(c) for c in codes]))
    else:
        assert column.range is not None
        low, high = column.range
        edges += [low, high, low - 1e-9, high + 1e-9, math.nextafter(high, math.inf)]
        edges += [math.nextafter(low, -math.inf), int(low), int(high) + 1]
        valid = st.one_of(
            st.floats(min_value=low, max_value=high), st.integers(int(low) + 1, int(high))
        )
    if not junk:
        return st.one_of(valid, st.sampled_from(edges), st.none())
    return st.one_of(
        valid,
        st.sampled_from(edges),
        st.none(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(max_size=3),
        st.lists(st.integers(), max_size=2),
    )


VALUES = {name: _values(name) for name in RAW_FEATURES}
SITES = st.one_of(
    st.sampled_from(["A", "st-marys_2.b", "x" * 64, None, "bad/site", "café", "-x", "x" * 65, ""]),
    st.text(max_size=5),
    st.integers(),
    st.booleans(),
)
NEAR_VALID = {name: _values(name, junk=False) for name in RAW_FEATURES}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    mode = draw(st.integers(0, 3))
    if mode < 2:  # the seed with one field at a valid value, an edge or null: often valid
        name = draw(st.sampled_from(RAW_FEATURES))
        record = {**SEED, name: draw(NEAR_VALID[name])}
    elif mode == 2:  # the seed with a few fields set to anything
        names = draw(st.lists(st.sampled_from(RAW_FEATURES), unique=True, max_size=3))
        record = {**SEED, **{name: draw(VALUES[name]) for name in names}}
    else:
        record = draw(st.fixed_dictionaries(VALUES))
    if draw(st.integers(0, 9)) == 0:
        del record[draw(st.sampled_from(RAW_FEATURES))]
    if draw(st.integers(0, 19)) == 0:
        record["smoker"] = 1
    if draw(st.integers(0, 4)) == 0:  # a site: valid, null, or one the rule refuses
        record["site"] = draw(SITES)
    # The standard library writes integers beyond 64 bits (orjson refuses them).
    return json.dumps(record).encode()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_fast_check_and_the_contract_model_agree_on_random_bodies(body: bytes) -> None:
    """Same verdict, same row: the fast path never accepts what the model refuses, nor the
    other way round (a refusal there is only slower, but then the two sets have drifted)."""
    fast = patient_row(body, CONTRACT)
    try:
        slow: list[float] | None = slow_row(body)
    except ValidationError:
        slow = None
    assert (fast is None) == (slow is None), (body, fast, slow)
    if fast is not None and slow is not None:
        assert same_row(fast, slow), body
        checked = checked_record(body, CONTRACT)
        assert checked is not None and checked[1] == CONTRACT.imputed(slow), body
        assert checked[2] == CONTRACT.request.model_validate_json(body).site  # type: ignore[attr-defined]
        request = orjson.loads(body)
        site = request.pop("site", None)
        batch = batch_rows(orjson.dumps({"records": [request], "site": site}), CONTRACT)
        assert batch is not None and same_row(batch[0][0], fast) and batch[1] == site


class CountingScorer:
    """Delegates to a real scorer; records the batch sizes and refuses rows aged over 90."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        self.batches.append(len(rows))
        if (rows[:, RAW_FEATURES.index("age")] > 90).any():
            raise RuntimeError("poisoned row")
        return np.asarray(self.inner.predict_proba(rows))


def service_with(model: LoadedModel) -> Service:
    settings = Settings(serve_reload_interval_s=0)
    service = Service(
        settings=settings,
        store=ModelStore(settings),
        metrics=ServiceMetrics(),
        drift=DriftMonitor(100),
    )
    service.model_changed(model)
    return service


@pytest.fixture
def counted(tmp_path: Path, make_package: PackageFactory) -> tuple[LoadedModel, LoadedModel]:
    """(the real model, the same model behind a CountingScorer)."""
    real = load_package(make_package(tmp_path / "packages"), "test", "f", 1)
    return real, replace(real, scorer=CountingScorer(real.scorer))


def test_concurrent_requests_share_one_onnx_call_and_get_their_own_answer(
    counted: tuple[LoadedModel, LoadedModel], cleveland: pd.DataFrame
) -> None:
    real, model = counted
    rows = cleveland[list(RAW_FEATURES)].head(8).to_numpy(dtype=np.float64)
    service = service_with(model)

    async def score_all() -> Any:
        return await asyncio.gather(
            *(service.predict_one(model, row.tolist(), f"r{i}") for i, row in enumerate(rows))
        )

    results = asyncio.run(score_all())
    assert model.scorer.batches == [8]  # type: ignore[attr-defined]
    expected = real.probabilities(rows)
    for (probability, prediction), p in zip(results, expected, strict=True):
        assert probability == pytest.approx(p, abs=1e-12)
        assert prediction == int(p >= model.threshold)
    assert service.metrics.probability.count == 8 and len(service.drift) == 8


def test_a_failing_batch_fails_only_the_request_that_caused_it(
    counted: tuple[LoadedModel, LoadedModel],
) -> None:
    _, model = counted
    service = service_with(model)
    good = [float(SEED[name]) for name in RAW_FEATURES]
    poisoned = [95.0, *good[1:]]

    async def score_all() -> Any:
        return await asyncio.gather(
            service.predict_one(model, good, "a"),
            service.predict_one(model, poisoned, "b"),
            service.predict_one(model, good, "c"),
            return_exceptions=True,
        )

    first, second, third = asyncio.run(score_all())
    assert isinstance(second, RuntimeError) and "poisoned" in str(second)
    assert first == third and isinstance(first, tuple)
    assert model.scorer.batches == [3, 1, 1, 1]  # type: ignore[attr-defined]


def test_a_hot_swap_within_one_turn_scores_each_request_with_its_own_model(
    tmp_path: Path, make_package: PackageFactory
) -> None:
    old = load_package(make_package(tmp_path / "a", threshold=0.01), "test", "f", 1)
    new = load_package(make_package(tmp_path / "b", version="2", threshold=0.99), "test", "g", 1)
    service = service_with(old)
    row = [float(SEED[name]) for name in RAW_FEATURES]

    async def score_both() -> Any:
        return await asyncio.gather(
            service.predict_one(old, row, "a"), service.predict_one(new, row, "b")
        )

    (p_old, label_old), (p_new, label_new) = asyncio.run(score_both())
    assert p_old == pytest.approx(p_new)  # the same fitted pipeline in both packages
    assert (label_old, label_new) == (1, 0)  # each decided at its own model's threshold


def test_loop_histogram_renders_like_prometheus_client() -> None:
    values = [0.0005, 0.0004, 0.001, 0.0011, 0.015, 0.7, 1.0, 2.5, 0.0]
    ours = LoopHistogram(LATENCY_BUCKETS)
    registry = CollectorRegistry()
    theirs = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=registry)
    for value in values:
        ours.observe(value)
        theirs.observe(value)
    expected = {
        line.split("{")[1].split("}")[0]: float(line.split()[-1])
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith("h_bucket")
    }
    assert {f'le="{le}"': count for le, count in ours.cumulative()} == expected
    assert ours.count == len(values) and ours.sum == pytest.approx(sum(values))
