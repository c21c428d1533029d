"""Which optional dependency group (extra) provides a module: the base install lints, exports
schemas and renders plans; training, the registry and serving come with extras."""

from __future__ import annotations

import importlib.util

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError

EXTRA_OF = {
    **dict.fromkeys(("mlflow", "sklearn", "skops", "pandas", "pandera", "scipy", "numpy",
                     "matplotlib", "dvc"), "train"),
    **dict.fromkeys(("bentoml", "orjson", "aiohttp"), "serve"),
}


def missing_extra(exc: ModuleNotFoundError) -> DiagnosticError | None:
    """The error to show for a module that an extra provides, or None (a bug to report)."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    return DiagnosticError([Diagnostic(
        "install", code="missing-extra",
        message=f"this command needs the '{extra}' extra ('{module}' is not installed)",
        hint=f"pip install 'mlops-gitops[{extra}]' (or [all]); the base install only lints, "
             "exports schemas and renders plans")])


def require(*modules: str) -> None:
    """Fail early, naming the extra to install, when one of ``modules`` is not installed."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(ModuleNotFoundError(f"No module named {module!r}", name=module))
