"""Safe YAML reading that keeps the line and column of every node.

Only the YAML core schema is accepted (maps, lists, strings, numbers, booleans, null). Other
tags, duplicate keys, and documents that are too large, too deep or that expand too much
through aliases are reported as :class:`YamlProblem` values with a position, never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # libyaml is ~10x faster; the pure-Python loader gives the same nodes
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",  # kept as the literal text, e.g. a date
}
_SEQ_TAG = "tag:yaml.org,2002:seq"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"

# The YAML 1.2 core schema, which editors (yaml-language-server), check-jsonschema and ajv use.
# PyYAML follows YAML 1.1, where 'yes', 'on', 'off', '0777', '1_000' and '1:30' mean other
# things. A plain scalar that the two read differently is refused: quote it or write it the 1.2
# way. Tools then agree on every spec that lint passes.
_CORE_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_CORE_INT = re.compile(r"^([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
                         r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")
_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_TAG = "tag:yaml.org,2002:merge"

Path = tuple  # a JSON path as a tuple of str keys and int indexes
Position = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class YamlProblem:
    line: int
    col: int
    message: str
    path: Path = ()
    hint: str = ""


@dataclass
class YamlDocument:
    """One document: its plain data and the position of every value (and of every mapping key)."""

    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    key_positions: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Path) -> Position:
        """Position of the deepest node on ``path`` (a missing field points at its parent)."""
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            if prefix in self.positions:
                return self.positions[prefix]
        return (1, 1)


class _Abort(Exception):
    def __init__(self, problem: YamlProblem):
        self.problem = problem


_NO_KEY = object()
_MERGE = object()
_NOT_ALLOWED_HINT = "only plain maps, lists, strings, numbers, booleans and null are accepted"


@dataclass
class _Frame:
    container: Any
    path: Path
    anchor: str | None
    size: int = 1
    key: Any = _NO_KEY
    merges: list = field(default_factory=list)


def _position(event: yaml.Event) -> Position:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


class _Builder:
    """Builds plain data from parser events without recursion, so depth is bounded before any
    deep structure exists (libyaml's own composer overflows the C stack on deep nesting)."""

    def __init__(self) -> None:
        self._resolver = yaml.resolver.Resolver()
        self._constructor = yaml.constructor.SafeConstructor()

    def documents(self, text: str):
        stack: list[_Frame] = []
        doc = YamlDocument(data=None)
        anchors: dict[str, tuple[Any, int]] = {}
        count = 0
        has_root = False

        def place(value: Any, size: int, new_nodes: int, event: yaml.Event, path: Path) -> None:
            """Attach a finished value of ``size`` expanded nodes to its parent (or the root)."""
            nonlocal count, has_root
            count += new_nodes
            if count > MAX_NODES:
                raise _Abort(YamlProblem(*_position(event), f"document expands to more than "
                                         f"{MAX_NODES} nodes (alias bomb?)", path))
            if not stack:
                doc.data, has_root = value, True
                return
            parent = stack[-1]
            parent.size += size
            if isinstance(parent.container, list):
                parent.container.append(value)
            elif parent.key is _MERGE:
                sources = value if isinstance(value, list) else [value]
                if not all(isinstance(source, dict) for source in sources):
                    raise _Abort(YamlProblem(*_position(event), "merge key '<<' needs a mapping",
                                             parent.path))
                parent.merges.extend(sources)
                parent.key = _NO_KEY
            else:
                parent.container[parent.key] = value
                parent.key = _NO_KEY

        for event in yaml.parse(text, Loader=_Loader):
            kind = type(event)
            if kind is yaml.DocumentStartEvent:
                doc, anchors, count, has_root = YamlDocument(data=None), {}, 0, False
                continue
            if kind is yaml.DocumentEndEvent:
                if has_root:
                    yield doc
                continue
            if kind in (yaml.StreamStartEvent, yaml.StreamEndEvent):
                continue
            if kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                frame = stack.pop()
                if frame.merges:
                    for source in frame.merges:
                        for k, v in source.items():
                            frame.container.setdefault(k, v)
                if frame.anchor:
                    anchors[frame.anchor] = (frame.container, frame.size)
                place(frame.container, frame.size, 1, event, frame.path)
                continue
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.container, dict) and parent.key is _NO_KEY:
                self._key(parent, event, doc)
                continue
            if parent is None:
                path: Path = ()
            elif isinstance(parent.container, list):
                path = parent.path + (len(parent.container),)
            elif parent.key is _MERGE:
                path = parent.path
            else:
                path = parent.path + (parent.key,)
            if parent is None or parent.key is not _MERGE:
                doc.positions[path] = _position(event)
            if kind is yaml.AliasEvent:
                if event.anchor not in anchors:
                    raise _Abort(YamlProblem(*_position(event), f"unknown or recursive alias "
                                             f"'*{event.anchor}'", path))
                value, size = anchors[event.anchor]
                place(value, size, size, event, path)
            elif kind is yaml.ScalarEvent:
                value = self._scalar(event, path)
                if event.anchor:
                    anchors[event.anchor] = (value, 1)
                place(value, 1, 1, event, path)
            else:
                if len(stack) >= MAX_DEPTH:
                    raise _Abort(YamlProblem(*_position(event), f"nesting deeper than "
                                             f"{MAX_DEPTH} levels", path))
                is_map = kind is yaml.MappingStartEvent
                node_kind = yaml.MappingNode if is_map else yaml.SequenceNode
                self._check_tag(event, node_kind, _MAP_TAG if is_map else _SEQ_TAG, path)
                stack.append(_Frame({} if is_map else [], path, event.anchor))

    def _key(self, frame: _Frame, event: yaml.Event, doc: YamlDocument) -> None:
        if type(event) is not yaml.ScalarEvent:
            raise _Abort(YamlProblem(*_position(event), "mapping keys must be plain strings",
                                     frame.path))
        key = event.value
        if event.tag not in (None, "!") or (key == "<<" and event.implicit[0]):
            tag = self._resolve(event)
            if tag == _MERGE_TAG:
                frame.key = _MERGE
                return
            if tag not in _SCALAR_TAGS:
                raise _Abort(YamlProblem(*_position(event), f"YAML tag '{tag}' is not allowed",
                                         frame.path, _NOT_ALLOWED_HINT))
        if key in frame.container:
            first = doc.key_positions[frame.path + (key,)][0]
            raise _Abort(YamlProblem(*_position(event), f"duplicate key '{key}' (first defined "
                                     f"on line {first})", frame.path + (key,)))
        doc.key_positions[frame.path + (key,)] = _position(event)
        frame.key = key

    def _check_tag(self, event, node_kind, expected: str, path: Path) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolver.resolve(node_kind, None, event.implicit)
        if tag != expected:
            raise _Abort(YamlProblem(*_position(event), f"YAML tag '{tag}' is not allowed", path,
                                     _NOT_ALLOWED_HINT))

    def _resolve(self, event: yaml.ScalarEvent) -> str:
        if event.tag not in (None, "!"):
            return event.tag
        if not event.implicit[0]:  # quoted: always a string
            return "tag:yaml.org,2002:str"
        return self._resolver.resolve(yaml.ScalarNode, event.value, event.implicit)

    def _scalar(self, event: yaml.ScalarEvent, path: Path) -> Any:
        cache_key = (event.tag, event.implicit, event.value)
        if cache_key in _SCALAR_CACHE:
            return _SCALAR_CACHE[cache_key]
        tag = self._resolve(event)
        if tag not in _SCALAR_TAGS:
            raise _Abort(YamlProblem(*_position(event), f"YAML tag '{tag}' is not allowed", path,
                                     _NOT_ALLOWED_HINT))
        if event.tag in (None, "!") and event.implicit[0]:
            problem = _ambiguous(event.value, tag)
            if problem:
                raise _Abort(YamlProblem(*_position(event), problem[0], path, problem[1]))
        if tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"):
            value = event.value
        else:
            node = yaml.ScalarNode(tag, event.value)
            try:
                value = self._constructor.yaml_constructors[tag](self._constructor, node)
            except (ValueError, KeyError, IndexError, TypeError):
                kind = tag.rsplit(":", 1)[-1]
                raise _Abort(YamlProblem(*_position(event), f"'{event.value}' is not a valid "
                                         f"{kind}", path)) from None
        if len(_SCALAR_CACHE) < 50_000 and len(event.value) < 64:
            _SCALAR_CACHE[cache_key] = value
        return value


def _ambiguous(text: str, tag: str) -> tuple[str, str] | None:
    """(message, hint) when YAML 1.1 (PyYAML) and YAML 1.2 (editors) read a plain scalar
    differently, else None."""
    quote = f"quote it ('{text}') if you mean the text"
    if tag == _BOOL_TAG and not _CORE_BOOL.match(text):
        return (f"'{text}' is a boolean in YAML 1.1 but a string in YAML 1.2 (editors)",
                f"write true or false, or {quote}")
    if tag == _INT_TAG and (not _CORE_INT.match(text) or re.match(r"^[-+]?0[0-9]", text)):
        return (f"'{text}' is read as a different number by YAML 1.1 and YAML 1.2 tools "
                "(octal, '_' separators, base 60 or binary)",
                f"write a plain decimal number without leading zeros, or {quote}")
    if tag == _FLOAT_TAG and not _CORE_FLOAT.match(text):
        return (f"'{text}' is a number in YAML 1.1 but a string in YAML 1.2 (editors)",
                f"write a plain number such as 1000.5, or {quote}")
    if tag == _STR_TAG and _CORE_INT.match(text):
        return (f"'{text}' is a string in YAML 1.1 but a number in YAML 1.2 (editors)",
                f"write the number in decimal, or {quote}")
    if tag == _STR_TAG and _CORE_FLOAT.match(text):
        return (f"'{text}' is a string in YAML 1.1 but a number in YAML 1.2 (editors)",
                f"write the exponent with a sign (1.0e+3) or the plain number (1000.0), or "
                f"{quote}")
    return None


# Resolved scalars by (explicit tag, implicit flags, text); values are immutable.
_SCALAR_CACHE: dict[tuple, Any] = {}


def _line_col(text: str, index: int) -> Position:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _line_of_offset(raw: bytes, offset: int) -> Position:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def read_yaml(raw: bytes) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """Parse every document of a YAML stream; problems are returned, never raised."""
    if len(raw) > MAX_FILE_BYTES:
        return [], [YamlProblem(1, 1, f"file is {len(raw)} bytes, more than the limit of "
                                f"{MAX_FILE_BYTES} bytes")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_of_offset(raw, exc.start)
        return [], [YamlProblem(line, col, f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                                hint="save the file as UTF-8")]
    if text.startswith("\ufeff"):
        text = text[1:]
    documents: list[YamlDocument] = []
    try:
        for doc in _Builder().documents(text):
            if doc.data is not None:  # empty documents ('---' alone) are skipped, as kubectl does
                documents.append(doc)
    except _Abort as abort:
        return documents, [abort.problem]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        at_tab = mark is not None and text[mark.index:mark.index + 1] == "\t"
        hint = "indent YAML with spaces, not tabs" if at_tab else ""
        return documents, [YamlProblem(line, col, f"invalid YAML: {message}", hint=hint)]
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        return documents, [YamlProblem(line, col, "invalid YAML: control characters are "
                                       f"not allowed (#x{exc.character:04x})",
                                       hint="remove it or write it as an escape in a quoted "
                                       "string")]
    except yaml.YAMLError as exc:
        return documents, [YamlProblem(1, 1, f"invalid YAML: {exc}")]
    return documents, []
