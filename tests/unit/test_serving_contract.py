"""The HTTP contract's request validation: every bad body is a RequestError naming the field."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_gitops.serving.runtime.contract import (
    Feature,
    ModelContract,
    RequestError,
    dataframe_instances,
    parse_predict,
    request_id,
)

IRIS = ModelContract("iris", tuple(Feature(n, "float") for n in (
    "sepal_length", "sepal_width", "petal_length", "petal_width")))
MIXED = ModelContract("mixed", (Feature("age", "int"), Feature("city", "string"),
                                Feature("member", "bool")))
GOOD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def refused(body, contracts=None) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_predict(body, contracts or {"iris": IRIS})
    return caught.value


def test_good_request_gives_rows_in_feature_order():
    request = parse_predict({"instances": [GOOD, {**GOOD, "sepal_length": 7}]}, {"iris": IRIS})
    assert request.model == "iris" and not request.probabilities
    assert request.rows.dtype == np.float64
    assert request.rows.tolist() == [[5.1, 3.5, 1.4, 0.2], [7.0, 3.5, 1.4, 0.2]]


def test_model_may_be_left_out_only_when_one_model_is_served():
    two = {"iris": IRIS, "mixed": MIXED}
    error = refused({"instances": [GOOD]}, two)
    assert error.field == "model" and "iris, mixed" in str(error)
    assert parse_predict({"model": "iris", "instances": [GOOD]}, two).model == "iris"


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"instances": [{**GOOD, "petal_length": "x"}]}, "instances[0].petal_length",
     "expected a number"),
    ({"instances": [GOOD, GOOD, GOOD, {**GOOD, "petal_length": True}]},
     "instances[3].petal_length", "expected a number"),
    ({"instances": [{**GOOD, "colour": 1}]}, "instances[0].colour", "unknown column"),
    ({"instances": [{k: v for k, v in GOOD.items() if k != "sepal_width"}]},
     "instances[0].sepal_width", "missing column"),
    ({"instances": []}, "instances", "must not be empty"),
    ({"instances": {"a": 1}}, "instances", "expected a list"),
    ({"instances": ["row"]}, "instances[0]", "expected an object"),
    ({"model": "nope", "instances": [GOOD]}, "model", "unknown model 'nope'"),
    ({"model": 3, "instances": [GOOD]}, "model", "expected a string"),
    ({"inputs": [GOOD]}, "inputs", "unknown field"),
    ({"model": "iris"}, "instances", "required"),
    ({"instances": [GOOD], "probabilities": "yes"}, "probabilities", "expected true or false"),
    ([GOOD], "", "JSON object"),
    ({"instances": [{**GOOD, "sepal_length": math.inf}]}, "instances[0].sepal_length",
     "finite"),
])
def test_bad_requests_name_the_field(body, field, words):
    error = refused(body)
    assert error.status == 422
    assert error.field == field and words in str(error)
    assert str(error).startswith(field) if field else True
    assert error.body() == {"error": str(error), "field": field}


def test_types_follow_the_dataset_contract():
    good = {"age": 3, "city": "Oslo", "member": False}
    request = parse_predict({"instances": [good, {**good, "age": 4.0}]}, {"mixed": MIXED})
    assert request.rows.dtype == object and request.rows[0].tolist() == [3, "Oslo", False]
    for bad, words in (({**good, "age": 3.5}, "expected an integer"),
                       ({**good, "age": True}, "expected an integer"),
                       ({**good, "city": 1}, "expected a string"),
                       ({**good, "member": 1}, "expected true or false")):
        assert words in str(refused({"instances": [bad]}, {"mixed": MIXED}))


def test_mlflow_invocation_bodies():
    columns = list(GOOD)
    split = {"dataframe_split": {"columns": columns, "data": [list(GOOD.values())]}}
    assert dataframe_instances(split) == [GOOD]
    assert dataframe_instances({"dataframe_records": [GOOD]}) == [GOOD]
    for body, field in (({"dataframe_split": {"columns": columns, "data": [[1.0]]}},
                         "dataframe_split.data[0]"),
                        ({"dataframe_split": []}, "dataframe_split"),
                        ({"tensor": []}, "tensor"),
                        ({"a": 1, "b": 2}, "")):
        with pytest.raises(RequestError) as caught:
            dataframe_instances(body)
        assert caught.value.field == field


def test_request_id_is_the_clients_when_sane():
    assert request_id("abc-123", lambda: "generated") == "abc-123"
    for hostile in ("", "a b", "x" * 200, "line\nbreak", "<script>"):
        assert request_id(hostile, lambda: "generated") == "generated"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.text(max_size=12), inner, max_size=5), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_body_is_accepted_or_refused_with_a_field(body):
    """Whatever a client sends, the contract answers a value or a RequestError: never a crash."""
    contracts = {"iris": IRIS, "mixed": MIXED}
    try:
        parse_predict(body, contracts)
    except RequestError as error:
        assert 400 <= error.status < 500 and isinstance(error.field, str)
    try:
        dataframe_instances(body)
    except RequestError as error:
        assert error.status == 422
