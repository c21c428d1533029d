"""A whole GitOps repository: find its root, load and check every spec."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, has_errors
from mlops_gitops.spec.loader import (
    CONFIG_FILE,
    SPEC_FOLDERS,
    YAML_SUFFIXES,
    LoadedSpec,
    discover,
    load_file,
)
from mlops_gitops.spec.models import Dataset, Environment, Model, ProjectSpec, PromotionPolicy
from mlops_gitops.spec.references import check_references, promotion_order


def find_root(start: Path | None = None) -> Path:
    """The nearest folder, from ``start`` upwards, holding the config file or a spec folder."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    for folder in (start, *start.parents):
        if any((folder / name).is_dir() for name in SPEC_FOLDERS):
            return folder
    return start


@dataclass
class Project:
    root: Path
    loaded: list[LoadedSpec] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _index: dict | None = field(default=None, init=False, repr=False, compare=False)

    def _of(self, kind: type) -> dict:
        return {item.name: item.spec for item in self.loaded if isinstance(item.spec, kind)}

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    @property
    def datasets(self) -> dict[str, Dataset]:
        return self._of(Dataset)

    @property
    def models(self) -> dict[str, Model]:
        return self._of(Model)

    @property
    def policies(self) -> dict[str, PromotionPolicy]:
        return self._of(PromotionPolicy)

    @property
    def environments(self) -> dict[str, Environment]:
        return self._of(Environment)

    @property
    def name(self) -> str:
        """The project's name: the Project config's metadata.name, else the root folder's."""
        for item in self.loaded:
            if item.kind == "Project":
                return item.name
        return self.root.name

    @property
    def config(self) -> ProjectSpec:
        for item in self.loaded:
            if item.kind == "Project":
                return item.spec.spec
        return ProjectSpec()

    def located(self, kind: str, name: str) -> LoadedSpec:
        if self._index is None:
            self._index = {(i.kind, i.name): i for i in self.loaded}
        return self._index[(kind, name)]

    def promotion_order(self) -> list[str]:
        return promotion_order({i.name: i for i in self.loaded if i.kind == "Environment"})


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(os.path.abspath(path))
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


def load_project(root: Path, paths: list[Path] | None = None) -> Project:
    """Load the project's specs and check references between them.

    With ``paths``, those files (or folders) are checked and reported on; the rest of the project is
    still read so that references to it resolve.
    """
    project = Project(root=root)
    files = discover(Path(os.path.abspath(root)))
    selected = set(_expand(paths)) if paths else None
    if not files and not selected:
        project.diagnostics.append(Diagnostic(
            str(root), code="no-specs", message="no spec files found (looked for "
            f"{CONFIG_FILE} and YAML files under {', '.join(f + '/' for f in SPEC_FOLDERS)})",
            hint="run 'mlops-gitops init', or point -C at the project root"))
        return project
    known = set(files)
    display = _Display(Path.cwd())
    for path in [*files, *(p for p in sorted(selected or ()) if p not in known)]:
        specs, diagnostics = load_file(path, display(path))
        project.loaded += specs
        if selected is None or path in selected:
            project.diagnostics += diagnostics
    cross = check_references(project.loaded, _broken_names(project, files, display))
    if selected is not None:
        shown = {display(p) for p in selected}
        cross = [d for d in cross if d.file in shown]
    project.diagnostics += cross
    project.diagnostics.sort(key=lambda d: (d.file, d.line, d.col))
    return project


ANY_KIND = "*"  # a broken document whose kind cannot be told (misspelt, or the YAML is unreadable)
_NAME = re.compile(r"""\bname:\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)""")


def _broken_names(project: Project, files: list[Path], display) -> frozenset[tuple[str, str]]:
    """(kind, name) of documents in files with errors that did not load (read again only on
    this error path), so that references to them are not reported as unknown: the cause is
    reported once, in its own file. A document of an unknown kind counts for every kind; a file
    whose YAML cannot be read, for every name it seems to declare; any broken file, for its file
    name (without the suffix)."""
    from mlops_gitops.spec.models import KINDS
    from mlops_gitops.spec.yamlread import read_yaml

    failed = {d.file for d in project.diagnostics if d.severity == "error"}
    loaded = {(item.kind, item.name) for item in project.loaded}
    names = set()
    for path in files:
        if display(path) not in failed:
            continue
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        documents, problems = read_yaml(raw)
        for document in documents:
            data = document.data if isinstance(document.data, dict) else {}
            meta = data.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                kind = data.get("kind")
                names.add((kind if kind in KINDS else ANY_KIND, meta["name"]))
        names.add((ANY_KIND, path.stem))  # e.g. a misspelt metadata.name in iris.yaml
        if problems:  # unreadable from some point on: guess what it declares
            text = raw.decode("utf-8", errors="replace")
            names.update((ANY_KIND, name) for name in _NAME.findall(text))
    return frozenset(n for n in names if n not in loaded)


class _Display:
    """Paths as users typed them: relative to the current folder when inside it."""

    def __init__(self, cwd: Path):
        self.prefix = str(cwd).rstrip(os.sep) + os.sep

    def __call__(self, path: Path) -> str:
        text = str(path)
        return text[len(self.prefix):] if text.startswith(self.prefix) else text
