"""The generic BentoML service of an environment: every model its manifest names, baked in.

This package is copied into each bento beside ``served.json`` (the manifest written by
``mlops-gitops build``), so it imports nothing of mlops-gitops. The HTTP contract is served by
a small ASGI app mounted on the BentoML service: BentoML keeps its own ``/readyz``, ``/livez``
and ``/metrics``; ``/predict``, ``/invocations`` and ``/models`` are ours. The hot path is lean
on purpose: orjson, no DataFrame, one ``predict`` call for all the requests that arrived in the
same event-loop turn (adaptive batching with no added wait), inference log written by a thread.
"""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
import warnings
from pathlib import Path

import bentoml
import numpy as np
import orjson

from .contract import (
    Feature,
    ModelContract,
    RequestError,
    dataframe_instances,
    parse_predict,
    plain,
    request_id,
    rows_of,
)
from .inference_log import InferenceLog

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "served.json"
MANIFEST = orjson.loads(MANIFEST_PATH.read_bytes())
SETTINGS = MANIFEST["service"]
LOG_DIR_VARIABLE = "MLOPS_INFERENCE_LOG_DIR"

PREDICTIONS = bentoml.metrics.Counter(
    name="mlops_predictions", documentation="Prediction requests per served model and outcome",
    labelnames=["model", "version", "outcome"])
ROWS = bentoml.metrics.Counter(
    name="mlops_predicted_rows", documentation="Rows predicted per served model",
    labelnames=["model", "version"])
LOG_DROPPED = bentoml.metrics.Counter(
    name="mlops_inference_log_dropped", documentation="Inference-log records dropped (a full "
    "queue or a failed write)", labelnames=[])


class Served:
    """One loaded model, its contract, and its adaptive batcher."""

    def __init__(self, entry: dict, path: Path, max_rows: int):
        import skops.io

        self.entry = entry
        self.name = entry["name"]
        self.version = int(entry["version"])
        self.contract = ModelContract(self.name, tuple(
            Feature(f["name"], f["type"]) for f in entry["features"]))
        self.model = skops.io.load(path / entry["model_file"], trusted=entry["trusted_types"])
        self.has_proba = hasattr(self.model, "predict_proba")
        self.max_rows = max_rows
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._scheduled = False

    def predict(self, rows: np.ndarray) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((rows, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        start = 0
        while start < len(pending):
            end, count = start + 1, len(pending[start][0])
            while end < len(pending) and count + len(pending[end][0]) <= self.max_rows:
                count += len(pending[end][0])
                end += 1
            chunk = pending[start:end]
            start = end
            try:
                rows = chunk[0][0] if len(chunk) == 1 else np.concatenate([r for r, _ in chunk])
                out = self.model.predict(rows)
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                for _, future in chunk:
                    if not future.done():
                        future.set_exception(exc)
                continue
            offset = 0
            for rows, future in chunk:
                if not future.done():
                    future.set_result(out[offset:offset + len(rows)])
                offset += len(rows)

    def probabilities(self, rows: np.ndarray) -> list[dict]:
        if not self.has_proba:
            raise RequestError(422, "probabilities", f"model '{self.name}' does not give "
                               "probabilities")
        classes = [c.item() if hasattr(c, "item") else c for c in self.model.classes_]
        return [dict(zip(map(str, classes), p, strict=True))
                for p in self.model.predict_proba(rows).tolist()]

    def describe(self) -> dict:
        keys = ("name", "spec_name", "version", "fingerprint", "commit", "data_md5", "run_id",
                "task")
        return {**{k: self.entry.get(k) for k in keys},
                "version": str(self.version), "bento": MANIFEST["bento_tag"],
                "features": [{"name": f.name, "type": f.type} for f in self.contract.features]}


class PredictionApp:
    """A raw ASGI app: fewer layers than a framework on the hot path."""

    def __init__(self):
        self.served: dict[str, Served] = {}
        self.log: InferenceLog | None = None
        self.max_body = int(SETTINGS["max_request_kb"]) * 1024

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        headers = dict(scope.get("headers") or ())
        rid = request_id(headers.get(b"x-request-id", b"").decode("latin-1"),
                         lambda: uuid.uuid4().hex)
        try:
            if path == "/predict":
                self._method(method, "POST")
                status, body = await self._predict(await self._body(headers, receive), rid)
            elif path == "/invocations":
                self._method(method, "POST")
                status, body = await self._invocations(await self._body(headers, receive),
                                                       scope, rid)
            elif path == "/models":
                self._method(method, "GET")
                status, body = 200, {"environment": MANIFEST["env"],
                                     "project": MANIFEST["project"],
                                     "bento": MANIFEST["bento_tag"],
                                     "models": [s.describe() for s in self.served.values()]}
            else:
                raise RequestError(404, "", f"no such endpoint: {method} {path[:200]}; "
                                   "use POST /predict, POST /invocations or GET /models")
        except RequestError as exc:
            status, body = exc.status, {**exc.body(), "request_id": rid}
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"x-request-id", rid.encode())]})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed:
            raise RequestError(405, "", f"method {method} not allowed; use {allowed}")

    async def _body(self, headers: dict, receive) -> object:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise RequestError(413, "", f"request body larger than {self.max_body} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "", "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise RequestError(413, "", f"request body larger than {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, "", f"the body is not valid JSON: {exc}") from None

    async def _run(self, served: Served, rows: np.ndarray) -> list:
        try:
            out = await served.predict(rows)
        except ValueError as exc:  # the model refused values the contract allows
            PREDICTIONS.labels(served.name, served.version, "refused").inc()
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise RequestError(422, "instances", f"the model refused the input: {first}") \
                from None
        except Exception as exc:  # noqa: BLE001 - a server fault, never a traceback
            PREDICTIONS.labels(served.name, served.version, "error").inc()
            raise RequestError(500, "", f"prediction failed ({type(exc).__name__})") from None
        PREDICTIONS.labels(served.name, served.version, "ok").inc()
        ROWS.labels(served.name, served.version).inc(len(rows))
        return plain(out)

    async def _predict(self, body, rid: str) -> tuple[int, dict]:
        try:
            request = parse_predict(body, {n: s.contract for n, s in self.served.items()})
        except RequestError:
            name = body.get("model") if isinstance(body, dict) else None
            if isinstance(name, str) and name in self.served:
                PREDICTIONS.labels(name, self.served[name].version, "invalid").inc()
            raise
        served = self.served[request.model]
        predictions = await self._run(served, request.rows)
        answer = {"model": served.name, "version": str(served.version),
                  "predictions": predictions, "request_id": rid}
        if request.probabilities:
            answer["probabilities"] = served.probabilities(request.rows)
        if self.log is not None:
            self.log.record(rid, served.name, served.version, request.instances, predictions)
        return 200, answer

    async def _invocations(self, body, scope, rid: str) -> tuple[int, dict]:
        """MLflow's scoring protocol, so clients of ``mlflow models serve`` work unchanged."""
        query = scope.get("query_string", b"").decode("latin-1")
        wanted = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("model")
        if wanted is None and len(self.served) != 1:
            raise RequestError(422, "model", "this environment serves several models: add "
                               "?model=NAME")
        served = self.served.get(wanted) if wanted else next(iter(self.served.values()))
        if served is None:
            raise RequestError(422, "model", f"unknown model; served: {', '.join(self.served)}")
        instances = dataframe_instances(body)
        predictions = await self._run(served, rows_of(instances, served.contract))
        if self.log is not None:
            self.log.record(rid, served.name, served.version, instances, predictions)
        return 200, {"predictions": predictions}


APP = PredictionApp()


@bentoml.asgi_app(APP, path="/")
class MlopsService:
    """Loads every model of the manifest once per worker, then freezes the heap for the GC."""

    def __init__(self) -> None:
        import sklearn

        # The contract already refused non-finite numbers and put the columns in training
        # order: skip scikit-learn's own per-call re-checks of both.
        sklearn.set_config(assume_finite=True)
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        for index, entry in enumerate(MANIFEST["models"]):
            stored = getattr(self, f"model_{index}")
            APP.served[entry["name"]] = Served(entry, Path(stored.path),
                                               int(SETTINGS["max_batch_size"]))
        log_dir = os.environ.get(LOG_DIR_VARIABLE)
        log = MANIFEST["inference_log"]
        if log_dir and log["sample_rate"] > 0:
            APP.log = InferenceLog(Path(log_dir), MANIFEST["env"], float(log["sample_rate"]),
                                   int(log["rotate_mb"]) * 1_000_000,
                                   on_drop=LOG_DROPPED.inc)
        # The imports above leave a large heap: collect it once, keep it out of later
        # collections, and collect young objects less often (the request path allocates little).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)


for _index, _entry in enumerate(MANIFEST["models"]):
    setattr(MlopsService, f"model_{_index}", bentoml.models.BentoModel(_entry["bentoml_model"]))

MlopsService = bentoml.service(
    name=MANIFEST["bento_name"],
    workers=int(SETTINGS["workers"]),
    traffic={"timeout": float(SETTINGS["timeout_s"])},
    logging={"access": {"enabled": False}},
)(MlopsService)
