"""JSON Schema (draft 2020-12) of each spec kind, generated from the pydantic models, plus one
combined schema that dispatches on ``kind`` (one editor mapping covers every spec file).

The schemas say what lint checks on one document, as far as JSON Schema can express it: types
without coercion, patterns, allow-listed class and metric names as enums (for completion).
Rules across fields or files (min <= max, references between specs) stay lint-only.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from mlops_gitops.spec import catalog
from mlops_gitops.spec.models import KINDS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Identifiers, not download locations: editors map files to the committed copies under schemas/.
ID_BASE = "https://mlops-gitops.dev/schemas/v1/"
COMBINED = "mlops-gitops.schema.json"


def schema_filename(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def _close_pattern_properties(node) -> None:
    """pydantic maps a dict with patterned keys to ``patternProperties`` alone, which lets any
    other key through; lint refuses such keys, so the schema says so with ``propertyNames``."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and \
                "additionalProperties" not in node:
            names = node.setdefault("propertyNames", {})
            names.setdefault("pattern", next(iter(patterns)))
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)


def _narrow_model_spec(schema: dict) -> None:
    """Editor completion and the same allow-lists as lint: class names and metric names as enums,
    narrowed by ``task``."""
    props = schema["properties"]
    props["estimator"] = {"$ref": "#/$defs/Step", "properties": {"class": {
        "enum": sorted(catalog.CLASSIFIERS | catalog.REGRESSORS)}}}
    props["steps"]["items"] = {"$ref": "#/$defs/Step", "properties": {"class": {
        "enum": sorted(catalog.TRANSFORMERS)}}}
    props["metrics"]["items"]["enum"] = sorted(catalog.ALL_METRICS)
    props["features"]["uniqueItems"] = True
    schema["allOf"] = [{
        "if": {"properties": {"task": {"const": task}}, "required": ["task"]},
        "then": {"properties": {
            "estimator": {"properties": {"class": {"enum": sorted(catalog.ESTIMATORS[task])}}},
            "metrics": {"items": {"enum": sorted(catalog.METRICS[task])}},
            "tests": {"items": {"properties": {"metric": {"enum": sorted(catalog.METRICS[task])}}}},
        }},
    } for task in ("classification", "regression")]


def kind_schemas() -> dict[str, dict]:
    """File name -> schema, one per kind."""
    schemas = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        _close_pattern_properties(schema)
        if "ModelSpec" in schema.get("$defs", {}):
            _narrow_model_spec(schema["$defs"]["ModelSpec"])
        name = schema_filename(kind)
        schemas[name] = {
            "$schema": DRAFT,
            "$id": ID_BASE + name,
            **schema,
            "title": f"mlops-gitops {kind}",
        }
    return schemas


def combined_schema(kinds: dict[str, dict] | None = None) -> dict:
    """Every kind in one schema: ``kind`` picks the embedded schema (each keeps its ``$id``)."""
    kinds = kinds if kinds is not None else kind_schemas()
    defs = {kind: copy.deepcopy(kinds[schema_filename(kind)]) for kind in KINDS}
    return {
        "$schema": DRAFT,
        "$id": ID_BASE + COMBINED,
        "title": "mlops-gitops spec (any kind)",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {"kind": {"enum": list(KINDS)}},
        "allOf": [{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                   "then": {"$ref": ID_BASE + schema_filename(kind)}} for kind in KINDS],
        "$defs": defs,
    }


def all_schemas() -> dict[str, dict]:
    """Every file ``mlops-gitops schema`` writes: one per kind and the combined one."""
    kinds = kind_schemas()
    return {**kinds, COMBINED: combined_schema(kinds)}


def render_schema(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = out / name
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(folder: Path) -> list[str]:
    """Names of schema files in ``folder`` that are missing or differ from the models."""
    stale = []
    for name, schema in all_schemas().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render_schema(schema):
            stale.append(name)
    return stale
