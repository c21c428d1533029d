"""Server-side filters for MLflow's registry searches (one project's part of a shared server).

MLflow's ``search_registered_models`` filter takes ``name`` (``=``, ``!=``, ``LIKE``, ``ILIKE``,
``IN``, ``NOT IN``) and ``tags.KEY`` (``=``, ``!=``, ``LIKE``, ``ILIKE``) joined by ``AND``;
``search_model_versions`` takes ``name ... IN (...)`` too. There is no ``OR`` and no escape for a
quote inside a value: a value that cannot be quoted gives ``None`` (no server filter), and the
caller keeps the whole listing and filters it here (correct, only slower).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlops_gitops.identity import TAG_PROJECT
from mlops_gitops.registry.ports import ModelVersion, RegisteredModel

NAMES_PER_SEARCH = 50  # names per `name IN (...)`: keeps a GET's query string short


def _quoted(value: str) -> str | None:
    return None if "'" in value or "\\" in value or "`" in value else f"'{value}'"


def project_filter(project: str) -> str | None:
    """The models tagged as this project's (``mlops.project``)."""
    value = _quoted(project)
    return None if value is None else f"tags.`{TAG_PROJECT}` = {value}"


def name_filters(names: Sequence[str]) -> list[str] | None:
    """``name IN (...)`` filters, one per chunk of names; None when a name cannot be quoted."""
    quoted = [q for q in (_quoted(n) for n in names) if q is not None]
    if len(quoted) < len(names):
        return None
    return [f"name IN ({', '.join(quoted[i:i + NAMES_PER_SEARCH])})"
            for i in range(0, len(quoted), NAMES_PER_SEARCH)]


def version_filters(names: Sequence[str]) -> list[str | None]:
    """The searches to run for ``search_versions``: none for no names, ``[None]`` for one
    unfiltered listing when a name cannot be quoted."""
    if not names:
        return []
    filters = name_filters(names)
    return [None] if filters is None else list(filters)


def model_filters(project: str | None, names: Sequence[str] | None) -> list[str | None]:
    """The searches to run for ``search_models``: ``[None]`` is one unfiltered listing."""
    if project is not None:
        return [project_filter(project)]
    if names is not None:
        filters = name_filters(names)
        return [None] if filters is None and names else list(filters or [])
    return [None]


def select_models(models: Iterable[RegisteredModel], project: str | None,
                  names: Sequence[str] | None) -> list[RegisteredModel]:
    """The same selection on the client (after an unfiltered listing, or as a check)."""
    wanted = set(names) if names is not None else None
    return [m for m in models
            if (project is None or m.tags.get(TAG_PROJECT) == project)
            and (wanted is None or m.name in wanted)]


def select_versions(versions: Iterable[ModelVersion],
                    names: Sequence[str] | None) -> list[ModelVersion]:
    wanted = set(names) if names is not None else None
    return [v for v in versions if wanted is None or v.name in wanted]
