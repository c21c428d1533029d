"""Spec files -> validated spec objects, with every problem as a located :class:`Diagnostic`.

One bad file never stops the others: each file yields its specs and its diagnostics.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from mlops_gitops.diagnostics import Diagnostic, did_you_mean
from mlops_gitops.spec.models import (
    API_VERSION,
    KINDS,
    PATTERN_MESSAGES,
    AnySpec,
    SpecError,
)
from mlops_gitops.spec.yamlread import MAX_FILE_BYTES, YamlDocument, read_yaml

CONFIG_FILE = "mlops-gitops.yaml"
SPEC_FOLDERS = ("specs", "policies", "environments")
YAML_SUFFIXES = (".yaml", ".yml")


Kind = TypeVar("Kind", bound=AnySpec)


@dataclass(frozen=True)
class LoadedSpec(Generic[Kind]):
    """A validated spec and where it came from (for locating later, cross-file diagnostics);
    ``LoadedSpec[Model]`` is a loaded Model spec."""

    spec: Kind
    file: str
    document: YamlDocument

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def name(self) -> str:
        return self.spec.metadata.name

    def diagnostic(self, path: tuple, message: str, hint: str = "", code: str = "reference") -> \
            Diagnostic:
        line, col = self.document.key_positions.get(path) or self.document.position(path)
        return Diagnostic(self.file, line, col, format_path(path), message, hint, code)


def format_path(path: Iterable) -> str:
    """('spec', 'tests', 0, 'min') -> 'spec.tests[0].min'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def discover(root: Path) -> list[Path]:
    """The project's spec files: the config file and every YAML file under the spec folders."""
    files = [root / CONFIG_FILE] if (root / CONFIG_FILE).is_file() else []
    for folder in SPEC_FOLDERS:
        files += sorted(p for p in (root / folder).rglob("*") if p.suffix in YAML_SUFFIXES
                        and p.is_file())
    return files


def load_file(path: Path, display: str) -> tuple[list[LoadedSpec], list[Diagnostic]]:
    """Read and validate every document of one file."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a pipe or a device would hang or never end
            return [], [Diagnostic(display, 0, 0, "", "not a regular file (a pipe, device or "
                                   "socket is never read)", code="io")]
        if status.st_size > MAX_FILE_BYTES:
            return [], [Diagnostic(display, 1, 1, "", f"file is {status.st_size} bytes, more "
                                   f"than the limit of {MAX_FILE_BYTES} bytes",
                                   "split it into smaller files", "file-too-large")]
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # a file growing meanwhile stops here
        if len(raw) > MAX_FILE_BYTES:
            return [], [Diagnostic(display, 1, 1, "", f"file is more than the limit of "
                                   f"{MAX_FILE_BYTES} bytes", "split it into smaller files",
                                   "file-too-large")]
    except OSError as exc:
        return [], [Diagnostic(display, 0, 0, "", f"cannot read file: {exc.strerror}", code="io")]
    return load_bytes(raw, display)


def load_bytes(raw: bytes, display: str) -> tuple[list[LoadedSpec], list[Diagnostic]]:
    documents, problems = read_yaml(raw)
    diagnostics = [Diagnostic(display, p.line, p.col, format_path(p.path), p.message, p.hint,
                              "yaml") for p in problems]
    if not documents and not problems:
        diagnostics.append(Diagnostic(display, 1, 1, "", "file has no YAML document",
                                      f"a spec needs apiVersion: {API_VERSION}, kind, metadata and "
                                      "spec", "empty"))
    specs = []
    for document in documents:
        spec, found = _validate(document, display)
        diagnostics += found
        if spec is not None:
            specs.append(LoadedSpec(spec, display, document))
    return specs, diagnostics


def _validate(document: YamlDocument, file: str) -> tuple[AnySpec | None, list[Diagnostic]]:
    data = document.data

    def at(path: tuple, message: str, hint: str = "", code: str = "schema") -> Diagnostic:
        line, col = document.key_positions.get(path) or document.position(path)
        return Diagnostic(file, line, col, format_path(path), message, hint, code)

    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "null"
        return None, [at((), f"a spec document must be a mapping, not {kind}", code="not-mapping")]
    if data.get("apiVersion") != API_VERSION:
        found = data.get("apiVersion")
        message = "missing apiVersion" if found is None else f"unsupported apiVersion '{found}'"
        return None, [at(("apiVersion",), message, f"use apiVersion: {API_VERSION}", "api-version")]
    kind = data.get("kind")
    if kind not in KINDS:
        message = "missing kind" if kind is None else f"unknown kind '{kind}'"
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        return None, [at(("kind",), message, hint or f"kinds: {', '.join(KINDS)}", "kind")]
    try:
        return KINDS[kind].model_validate(data), []
    except ValidationError:
        # Validate again, now remembering which fields each mapping allows (for hints).
        context: dict[str, Any] = {}
        try:
            KINDS[kind].model_validate(data, context=context)
        except ValidationError as exc:
            return None, _from_validation_error(exc, document, context.get("fields_of", {}), at)
        raise


def _walk(data: Any, loc: tuple, error_type: str) -> tuple[tuple, Any]:
    """Map a pydantic error location onto the data (skipping union tags pydantic inserts).

    Returns the data path and the mapping that holds its last key (for 'did you mean' hints)."""
    path: list = []
    node, parent = data, None
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            parent, node = node, node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, node = node, node[part]
            path.append(part)
        elif i == len(loc) - 1 and error_type in ("missing", "extra_forbidden"):
            parent = node
            path.append(part)
    return tuple(path), parent


def _from_validation_error(exc: ValidationError, document: YamlDocument, fields_of: dict,
                           at) -> list[Diagnostic]:
    by_path: dict[tuple, list[dict]] = {}
    for error in exc.errors(include_url=False):
        path, parent = _walk(document.data, tuple(error["loc"]), error["type"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            path += cause.path
        if error["type"] == "invalid_test_type" and isinstance(error["input"], dict) \
                and "type" in error["input"]:
            path += ("type",)
            error["input"] = error["input"]["type"]
        error["_parent"] = parent
        by_path.setdefault(path, []).append(error)

    diagnostics = []
    for path, errors in by_path.items():
        error = errors[0]
        name = path[-1] if path else ""
        if error["type"] == "extra_forbidden":
            allowed = fields_of.get(id(error["_parent"]), [])
            hint = did_you_mean(name, allowed) or (f"allowed fields: {', '.join(allowed)}"
                                                   if allowed else "")
            diagnostics.append(at(path, f"unknown field '{name}'", hint, "unknown-field"))
        elif error["type"] == "missing":
            diagnostics.append(at(path, f"missing required field '{name}'", code="missing-field"))
        elif len(errors) > 1:  # every member of a union failed
            expected = ", ".join(dict.fromkeys(
                _message(e).removeprefix("input should be ").removeprefix("a valid ")
                for e in errors))
            diagnostics.append(at(path, f"invalid value: {_show(error['input'])}",
                                  f"expected one of: {expected}", "type"))
        else:
            diagnostics.append(at(path, _message(error) + _got(error), _strict_hint(error),
                                  code="value"))
    return diagnostics


_WANTS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false"}


def _looks_like(text: str, error_type: str) -> bool:
    if error_type == "bool_type":
        return text.strip().lower() in ("true", "false", "yes", "no", "on", "off")
    try:
        float(text) if error_type == "float_type" else int(text)
    except ValueError:
        return False
    return True


def _strict_hint(error: dict) -> str:
    """Quoted numbers and booleans are strings, to lint as to the JSON Schema editors use."""
    wants, value = _WANTS.get(error["type"]), error.get("input")
    if wants is None:
        return ""
    if isinstance(value, str) and _looks_like(value, error["type"]):
        return f"write {wants} without quotes: a quoted value is a string"
    if isinstance(value, bool):
        return f"write {wants}, not a boolean"
    return ""


def _message(error: dict) -> str:
    if error["type"] == "string_pattern_mismatch" and \
            error["ctx"]["pattern"] in PATTERN_MESSAGES:
        return PATTERN_MESSAGES[error["ctx"]["pattern"]]
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def _got(error: dict) -> str:
    if error["type"].startswith(("value_error", "assertion_error")):
        return ""
    return f", got {_show(error['input'])}"


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
