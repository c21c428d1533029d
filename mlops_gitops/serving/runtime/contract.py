"""The HTTP contract of a served environment: request validation and response shapes.

Pure Python and numpy: it runs on the hot path of every request, and inside the bento (this
package is copied into it), so it imports nothing of mlops-gitops. Every bad request becomes a
:class:`RequestError` whose message names the field (``instances[3].petal_length: expected a
number``); nothing here raises anything else for any input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

REQUEST_FIELDS = ("model", "instances", "probabilities")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class RequestError(Exception):
    """A client mistake: HTTP status, the field it is about, and a message naming it."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.field = field

    def body(self) -> dict:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # float | int | string | bool


@dataclass(frozen=True)
class ModelContract:
    """What one served model accepts: its features in training order, with their types."""

    name: str
    features: tuple[Feature, ...]

    @property
    def numeric(self) -> bool:
        return all(f.type in ("float", "int") for f in self.features)


@dataclass(frozen=True)
class PredictRequest:
    model: str
    rows: np.ndarray
    instances: list[dict]
    probabilities: bool


def request_id(header: str | None, generate) -> str:
    """The client's X-Request-ID when it is a sane token, else a generated one."""
    if header and _REQUEST_ID.match(header):
        return header
    return generate()


def _expected(kind: str) -> str:
    return {"float": "expected a number", "int": "expected an integer",
            "string": "expected a string", "bool": "expected true or false"}[kind]


def _value(kind: str, value, where: str):
    """One cell, checked against the column type (bool is never a number)."""
    cls = type(value)
    if kind == "float":
        if cls is float:
            if math.isfinite(value):
                return value
            raise RequestError(422, where, "expected a finite number")
        if cls is int:
            return value
    elif kind == "int":
        if cls is int:
            return value
        if cls is float and value.is_integer():
            return value
    elif kind == "string":
        if cls is str:
            return value
    elif kind == "bool" and cls is bool:
        return value
    raise RequestError(422, where, _expected(kind))


def _instance_error(index: int, instance, contract: ModelContract) -> RequestError:
    where = f"instances[{index}]"
    if not isinstance(instance, dict):
        return RequestError(422, where, "expected an object of feature values")
    names = [f.name for f in contract.features]
    unknown = sorted(set(instance) - set(names), key=str)
    if unknown:
        return RequestError(422, f"{where}.{unknown[0]}", "unknown column; expected: "
                            + ", ".join(names))
    missing = [n for n in names if n not in instance]
    return RequestError(422, f"{where}.{missing[0]}", "missing column")


def rows_of(instances, contract: ModelContract) -> np.ndarray:
    """The instances as a 2-D array in the model's feature order, every value checked."""
    if not isinstance(instances, list):
        raise RequestError(422, "instances", "expected a list of objects")
    if not instances:
        raise RequestError(422, "instances", "must not be empty")
    names = [f.name for f in contract.features]
    kinds = [f.type for f in contract.features]
    width = len(names)
    rows = []
    for index, instance in enumerate(instances):
        if type(instance) is not dict or len(instance) != width:
            raise _instance_error(index, instance, contract)
        try:
            row = [instance[n] for n in names]
        except KeyError:
            raise _instance_error(index, instance, contract) from None
        for column, (kind, value) in enumerate(zip(kinds, row, strict=True)):
            cls = type(value)
            if kind == "float" and cls is float and math.isfinite(value):
                continue
            row[column] = _value(kind, value, f"instances[{index}].{names[column]}")
        rows.append(row)
    if contract.numeric:
        return np.asarray(rows, dtype=np.float64)
    return np.asarray(rows, dtype=object)


def parse_predict(body, contracts: dict[str, ModelContract]) -> PredictRequest:
    """A decoded ``POST /predict`` body -> a validated request for one served model."""
    if not isinstance(body, dict):
        raise RequestError(422, "", "the body must be a JSON object with 'instances'")
    for key in body:
        if key not in REQUEST_FIELDS:
            raise RequestError(422, str(key), "unknown field; expected: "
                               + ", ".join(REQUEST_FIELDS))
    name = body.get("model")
    if name is None:
        if len(contracts) != 1:
            raise RequestError(422, "model", "required: this environment serves "
                               + ", ".join(sorted(contracts)))
        name = next(iter(contracts))
    elif not isinstance(name, str):
        raise RequestError(422, "model", "expected a string")
    elif name not in contracts:
        raise RequestError(422, "model", f"unknown model '{name[:100]}'; served: "
                           + ", ".join(sorted(contracts)))
    if "instances" not in body:
        raise RequestError(422, "instances", "required")
    probabilities = body.get("probabilities", False)
    if type(probabilities) is not bool:
        raise RequestError(422, "probabilities", "expected true or false")
    instances = body["instances"]
    return PredictRequest(name, rows_of(instances, contracts[name]), instances, probabilities)


def dataframe_instances(body) -> list:
    """An MLflow ``/invocations`` body (``dataframe_split``, ``dataframe_records`` or
    ``instances``) as a list of instance objects."""
    if not isinstance(body, dict) or len(body) != 1:
        raise RequestError(422, "", "expected one of dataframe_split, dataframe_records, "
                           "instances")
    [(key, value)] = body.items()
    if key in ("dataframe_records", "instances"):
        return value
    if key != "dataframe_split":
        raise RequestError(422, str(key), "unknown field; expected one of dataframe_split, "
                           "dataframe_records, instances")
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or \
            not isinstance(value.get("data"), list):
        raise RequestError(422, "dataframe_split", "expected {'columns': [...], 'data': [[...]]}")
    columns = value["columns"]
    if not all(isinstance(c, str) for c in columns):
        raise RequestError(422, "dataframe_split.columns", "expected a list of column names")
    instances = []
    for index, row in enumerate(value["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise RequestError(422, f"dataframe_split.data[{index}]",
                               f"expected a list of {len(columns)} values")
        instances.append(dict(zip(columns, row, strict=True)))
    return instances


def plain(values: np.ndarray) -> list:
    """Predictions as JSON-ready Python values."""
    return values.tolist()
