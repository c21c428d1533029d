"""Property tests of the YAML reader and loader (hypothesis).

- whatever the input, ``load_bytes`` returns diagnostics and never raises;
- for data PyYAML can dump (no timestamps), ``read_yaml`` reads back what ``yaml.safe_load`` does.
"""

from __future__ import annotations

import math

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.spec.loader import LoadedSpec, load_bytes
from mlops_gitops.spec.yamlread import MAX_DEPTH, read_yaml

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Pieces of YAML (and of specs) that random text rarely hits: tags, anchors, aliases, merge keys,
# flow and block collections, document markers, directives, quotes, tabs, control characters.
TOKENS = [
    "a", "b", "1", "-1.5", "0x1f", "~", "null", "true", "yes", ".nan", ".inf", "2001-12-14", "é",
    ": ", ":", "\n", "  ", "\t", "- ", "? ", ",", "[", "]", "{", "}", "'", '"', "\\", "#", "|\n",
    ">\n", "&a ", "*a", "&b ", "*b", "<<: ", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,1:\n",
    "!", "! ", "!x ", "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!map ", "!!seq ",
    "!!set ", "!!binary ", "!!timestamp ", "!!python/object:os.system ", "\x00", "\x07", "\ufeff",
    "\r", "\u2028", "apiVersion: mlops-gitops/v1\n", "kind: Model\n", "kind: Dataset\n",
    "metadata: {name: x}\n", "spec:\n", "  path: ../x.csv\n", "  columns: {a: {type: int}}\n",
]
yaml_like = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def _check_result(result) -> None:
    specs, diagnostics = result
    assert isinstance(specs, list) and isinstance(diagnostics, list)
    assert all(isinstance(s, LoadedSpec) for s in specs)
    for d in diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.file == "x.yaml" and d.message
        assert d.line >= 1 and d.col >= 1


@SETTINGS
@given(st.binary(max_size=2000))
def test_load_bytes_never_raises_on_bytes(raw):
    _check_result(load_bytes(raw, "x.yaml"))


@SETTINGS
@given(st.text(max_size=2000))
def test_load_bytes_never_raises_on_text(text):
    _check_result(load_bytes(text.encode("utf-8"), "x.yaml"))


@SETTINGS
@given(yaml_like)
def test_load_bytes_never_raises_on_yaml_like_text(text):
    _check_result(load_bytes(text.encode("utf-8"), "x.yaml"))


# --- round trip against PyYAML -----------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False) | st.text(max_size=30))
keys = st.text(max_size=20)
data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                    | st.dictionaries(keys, inner, max_size=5), max_leaves=30)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _typed(value):
    """Structure with explicit types, so that True != 1 and 1 != 1.0 in comparisons."""
    if isinstance(value, dict):
        return ("map", sorted((k, _typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("seq", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", "-0" if value == 0 and math.copysign(1, value) < 0 else value)
    return (type(value).__name__, value)


def _yaml11_only(problems) -> bool:
    """PyYAML's dumper writes some strings (e.g. '0E0') and numbers plain that YAML 1.2 tools read
    as another type; read_yaml refuses those on purpose (lint agrees with editors)."""
    return len(problems) == 1 and "YAML 1." in problems[0].message


def _read_back(text: str) -> list:
    documents, problems = read_yaml(text.encode("utf-8"))
    assume(not _yaml11_only(problems))
    assert problems == [], (text, problems)
    return [d.data for d in documents]


@SETTINGS
@given(data, st.sampled_from([None, True, False]), st.booleans())
def test_read_yaml_equals_safe_load(value, flow_style, allow_unicode):
    assume(_depth(value) < MAX_DEPTH)
    text = yaml.safe_dump(value, default_flow_style=flow_style, allow_unicode=allow_unicode)
    expected = yaml.safe_load(text)  # an empty (null) document is skipped, as kubectl does
    assert [_typed(d) for d in _read_back(text)] == ([] if expected is None else [_typed(expected)])


@SETTINGS
@given(st.lists(data, min_size=1, max_size=4))
def test_read_yaml_equals_safe_load_all(values):
    assume(all(_depth(v) < MAX_DEPTH for v in values))
    text = yaml.safe_dump_all(values, explicit_start=True)
    expected = [_typed(d) for d in yaml.safe_load_all(text) if d is not None]
    assert [_typed(d) for d in _read_back(text)] == expected


@SETTINGS
@given(st.dictionaries(keys, data, min_size=1, max_size=5))
def test_positions_are_inside_the_text(value):
    """Every value and key has a position, and it lies within the text."""
    assume(_depth(value) < MAX_DEPTH)
    text = yaml.safe_dump(value)
    documents, problems = read_yaml(text.encode("utf-8"))
    assume(not _yaml11_only(problems))
    assert problems == []
    [document] = documents
    line_count = text.count("\n") + 1
    for key in value:
        assert (key,) in document.positions and (key,) in document.key_positions
    for line, col in [*document.positions.values(), *document.key_positions.values()]:
        assert 1 <= line <= line_count and col >= 1
