"""The micro-batching of single-record predictions: a part of Service (heartml.serving.service).

Every /predict that reaches the model in one turn of the event loop joins one pending list, and
one callback scheduled for the next turn scores them all with a single ONNX call, then records
metrics and drift for the batch. An ONNX call costs about the same for 1 row as for 8 (its fixed
cost is per graph node, not per row), so under concurrent load each request pays a fraction of
it; a lone request waits for nothing but that next turn (microseconds); under concurrent load a
small batch waits one turn more for the requests still arriving. Each request's own row is
scored with the model it started with: no caching, no shared answers.

A request's site calibration is applied to its own row after the ONNX call, with one Python
function of one float (a micro-batch may mix sites). A micro-batch without any site pays one
list scan for this.

`MicroBatching` is Service's base class rather than an object of its own, so that a request
calls `service.score_one` directly: no extra call per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from heartml.serving.calibrations import SiteEntry
from heartml.serving.loaded_model import LoadedModel

if TYPE_CHECKING:
    from heartml.serving.drift import DriftMonitor
    from heartml.serving.logging import PredictionLog
    from heartml.serving.metrics import ServiceMetrics
    from heartml.serving.shadow import Shadow
    from heartml.store.writer import PredictionWriter

FULL_BATCH = 8  # rows from which waiting one more loop turn for company gains little
# (served probability, 0/1 decision, the model's own probability, the site's entry or None)
Scored = tuple[float, int, float, SiteEntry | None]
# (model, row, request id, future of Scored or None when the batch failed, site or None)
Pending = tuple[LoadedModel, list[float], str, "asyncio.Future[Scored | None]", str | None]


class MicroBatching:
    """Service's single-record scoring (see the module docstring). The parts of Service it uses
    are declared here for the type checker; Service (a dataclass) holds them."""

    metrics: ServiceMetrics
    drift: DriftMonitor
    prediction_log: PredictionLog | None
    shadow: Shadow | None
    recorder: PredictionWriter | None
    site_entry: Callable[[LoadedModel, str | None], SiteEntry | None]
    record: Callable[
        [LoadedModel, np.ndarray, np.ndarray, str, SiteEntry | None], tuple[np.ndarray, np.ndarray]
    ]
    _pending: list[Pending]  # the single records waiting for the next loop turn
    _last_batch: int  # rows in the last batch scored
    _deferred: bool  # the pending batch already waited one turn for company

    async def predict_one(
        self, model: LoadedModel, row: list[float], request_id: str
    ) -> tuple[float, int]:
        """P(positive) and the 0/1 decision for one record's raw row, micro-batched (see above)."""
        probability, prediction, _, _ = await self.score_one(model, row, request_id)
        return probability, prediction

    async def score_one(
        self,
        model: LoadedModel,
        row: list[float],
        request_id: str,
        site: str | None = None,
    ) -> Scored:
        """`predict_one` for a record from `site`: also the model's own probability and the
        site's entry (which calibration was applied), or None without a site."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Scored | None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._score_pending)
        self._pending.append((model, row, request_id, future, site))
        result = await future
        if result is None:
            # The batch's ONNX call failed: score this row alone, so that its own error (and
            # only its own) reaches this request, and a good row still gets its answer.
            entry = self.site_entry(model, site)
            rows = np.array([row], dtype=np.float64)
            raw = model.probabilities(rows)
            probabilities, predictions = self.record(model, rows, raw, request_id, entry)
            return float(probabilities[0]), int(predictions[0]), float(raw[0]), entry
        return result

    def _score_pending(self) -> None:
        # Under concurrent load (the previous batch had company), the requests still on their
        # way get one more loop turn to join: one ONNX call for more rows, measured ~10% less
        # CPU per request at concurrency 8. A lone client (batches of one) never waits.
        if not self._deferred and self._last_batch > 1 and len(self._pending) < FULL_BATCH:
            self._deferred = True
            asyncio.get_running_loop().call_soon(self._score_pending)
            return
        self._deferred = False
        pending, self._pending = self._pending, []
        self._last_batch = len(pending)
        first = pending[0][0]
        if all(item[0] is first for item in pending):
            groups = [pending]
        else:  # a hot swap between two requests of one turn: each keeps the model it started with
            by_model: dict[int, list[Pending]] = {}
            for item in pending:
                by_model.setdefault(id(item[0]), []).append(item)
            groups = list(by_model.values())
        for group in groups:
            self._score_group(group)

    def _score_group(self, group: list[Pending]) -> None:
        try:
            model = group[0][0]
            row_list = [item[1] for item in group]
            rows = np.array(row_list, dtype=np.float64)
            try:
                scored = model.probabilities(rows)
            except Exception:
                return  # each request scores its own row alone (finally, below)
            # A few rows: Python floats are cheaper than numpy operations from here on.
            raws = scored.tolist()
            sites = [item[4] for item in group]
            if sites.count(None) == len(sites):
                entries: list[SiteEntry | None] = [None] * len(group)
                probabilities = raws
            else:  # per row: a micro-batch may mix sites (and rows without one)
                entries = [self.site_entry(model, site) for site in sites]
                probabilities = [
                    p if e is None or e.function is None else e.function(p)
                    for p, e in zip(raws, entries, strict=True)
                ]
            threshold = model.threshold
            predictions = [1 if p >= threshold else 0 for p in probabilities]
            self.metrics.observe_predictions(predictions, probabilities)
            self.drift.observe(row_list)
            log = self.prediction_log
            for index, (item, probability, prediction) in enumerate(
                zip(group, probabilities, predictions, strict=True)
            ):
                if log is not None:
                    log.write(
                        item[2],
                        model.name,
                        model.version,
                        model.columns,
                        rows[index : index + 1],
                        np.array([probability], dtype=np.float64),
                        np.array([prediction], dtype=np.int64),
                    )
                if not item[3].done():  # a cancelled request (client gone) needs no answer
                    item[3].set_result((probability, prediction, raws[index], entries[index]))
            if self.recorder is not None:
                self._store(model, group, row_list, probabilities, predictions, raws, entries)
            shadow = self.shadow
            if shadow is not None and shadow.challenger is not None:
                # After the answers are set; `submit` only appends to the shadow's queue (its
                # worker thread scores later) and cannot raise into these requests.
                shadow.submit(model, rows, scored)
        finally:
            # Whatever went wrong, no request is left waiting: the unanswered score alone.
            for item in group:
                if not item[3].done():
                    item[3].set_result(None)

    def _store(
        self,
        model: LoadedModel,
        group: list[Pending],
        row_list: list[list[float]],
        probabilities: list[float],
        predictions: list[int],
        raws: list[float],
        entries: list[SiteEntry | None],
    ) -> None:
        """One append to the store's writer per site of the group (one, nearly always)."""
        assert self.recorder is not None
        first = entries[0]
        if all(e is first for e in entries):
            parts = [list(range(len(group)))]
        else:
            by_site: dict[str | None, list[int]] = {}
            for index, entry in enumerate(entries):
                by_site.setdefault(None if entry is None else entry.site, []).append(index)
            parts = list(by_site.values())
        for part in parts:
            whole = len(part) == len(group)
            self.store_api_rows(
                model,
                [group[i][2] for i in part],
                [0] * len(part),
                row_list if whole else [row_list[i] for i in part],
                probabilities if whole else [probabilities[i] for i in part],
                predictions if whole else [predictions[i] for i in part],
                entries[part[0]],
                raws if whole else [raws[i] for i in part],
            )

    def store_api_rows(
        self,
        model: LoadedModel,
        request_ids: Sequence[str],
        rows: Sequence[int],
        inputs: Any,
        probabilities: Any,
        predictions: Any,
        entry: SiteEntry | None,
        raws: Any,
    ) -> None:
        """One append to the store's writer: API predictions of one site (entry), with the
        model's own probabilities (raws) kept when that site's calibration changed them."""
        assert self.recorder is not None
        calibrated = entry is not None and entry.calibration is not None
        self.recorder.record(
            time.time(),
            "api",
            model.name,
            model.version,
            model.threshold,
            model.contract,
            request_ids,
            rows,
            inputs,
            probabilities,
            predictions,
            site=None if entry is None else entry.site,
            raw_probabilities=raws if calibrated else None,
            calibration_version=None if entry is None else entry.version,
        )
