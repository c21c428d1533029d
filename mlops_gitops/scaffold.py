"""``init``: a new GitOps repository from the bundled template."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlops_gitops.spec.schema import kind_schemas, render_schema

# Template files whose name in the new repository differs (dotfiles are not packaged reliably;
# everything under github/ goes to .github/).
_RENAMES = {"gitignore": ".gitignore", "pre-commit-config.yaml": ".pre-commit-config.yaml"}


@dataclass(frozen=True)
class Scaffolded:
    created: list[str]
    kept: list[str]  # already there: never overwritten


def _template_files():
    root = resources.files("mlops_gitops") / "templates" / "project"
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                stack.append((entry, f"{prefix}{entry.name}/"))
            elif not entry.name.endswith(".pyc"):
                name = f"{prefix}{entry.name}"
                name = _RENAMES.get(name) or (f".{name}" if name.startswith("github/") else name)
                yield name, entry.read_text(encoding="utf-8")


def scaffold(target: Path) -> Scaffolded:
    """Write the template project, JSON Schemas and example data into ``target``."""
    files = dict(_template_files())
    files.update({f"schemas/{n}": render_schema(s) for n, s in kind_schemas().items()})
    created, kept = [], []
    for name, text in sorted(files.items()):
        path = target / name
        if path.exists():
            kept.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        created.append(name)
    data = target / "data" / "iris.csv"
    if data.exists():
        kept.append("data/iris.csv")
    else:
        from mlops_gitops.examples import write_example

        write_example("iris", data)
        created.append("data/iris.csv")
    return Scaffolded(created, kept)
