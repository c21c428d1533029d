"""JSON Schema (draft 2020-12) of each spec kind, generated from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_gitops.spec.models import KINDS

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema_filename(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def kind_schemas() -> dict[str, dict]:
    """File name -> schema, one per kind."""
    schemas = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schemas[schema_filename(kind)] = {
            "$schema": DRAFT,
            **schema,
            "title": f"mlops-gitops {kind}",
        }
    return schemas


def render_schema(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in kind_schemas().items():
        path = out / name
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(folder: Path) -> list[str]:
    """Names of schema files in ``folder`` that are missing or differ from the models."""
    stale = []
    for name, schema in kind_schemas().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render_schema(schema):
            stale.append(name)
    return stale
