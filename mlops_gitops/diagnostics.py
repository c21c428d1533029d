"""One diagnostic type for every user mistake, and its renderers: text, JSON, GitHub."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]

# user-info in a URL (``scheme://user:secret@host``): the secret never reaches a message
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the password of every URL's user-info replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text) if "@" in text else text


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A located problem: ``file:line:col``, the JSON path of the field, a message and a hint."""

    file: str
    line: int = 0
    col: int = 0
    path: str = ""
    message: str = ""
    hint: str = ""
    code: str = "error"
    severity: Severity = "error"

    def __post_init__(self) -> None:
        for name in ("file", "message", "hint"):
            value = getattr(self, name)
            if isinstance(value, str) and "@" in value:
                object.__setattr__(self, name, redact(value))

    @property
    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col or 1}"
        return self.file

    def to_dict(self) -> dict:
        return asdict(self)


class DiagnosticError(Exception):
    """Raised by core code to abort an operation with located diagnostics (never a traceback)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(f"{d.location}: {d.message}" for d in self.diagnostics))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint for a near miss, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), sorted(set(map(str, choices))), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def render_text(diagnostics: list[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        field = f" [{d.path}]" if d.path else ""
        lines.append(f"{d.location}: {d.severity}: {d.message}{field}")
        if d.hint:
            lines.append(f"    hint: {d.hint}")
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    lines.append(f"{errors} error(s), {warnings} warning(s)" if diagnostics else
                 "no problems found")
    return "\n".join(lines)


def render_json(diagnostics: list[Diagnostic]) -> str:
    return json.dumps(
        {"ok": not has_errors(diagnostics), "diagnostics": [d.to_dict() for d in diagnostics]},
        indent=2,
    )


def _escape_github(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def render_github(diagnostics: list[Diagnostic]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C::message``."""
    out = []
    for d in diagnostics:
        props = [f"file={_escape_github(d.file, prop=True)}"]
        if d.line:
            props += [f"line={d.line}", f"col={d.col or 1}"]
        if d.path:
            props.append(f"title={_escape_github(d.path, prop=True)}")
        message = d.message + (f" ({d.hint})" if d.hint else "")
        out.append(f"::{d.severity} {','.join(props)}::{_escape_github(message)}")
    return "\n".join(out)


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}
