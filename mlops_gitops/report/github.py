"""The report on GitHub: the hidden marker that finds the one comment to update, the comment's
and the job summary's size limits."""

from __future__ import annotations

import os
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError

MARKER = "<!-- mlops-gitops:report -->"
COMMENT_LIMIT = 65_536  # characters in one GitHub comment
SUMMARY_LIMIT = 1_048_576  # bytes of one step's $GITHUB_STEP_SUMMARY


def fit_comment(text: str, limit: int = COMMENT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters at a line end, with open ``<details>`` blocks
    and code fences closed and a note saying so."""
    if len(text) <= limit:
        return text
    budget = limit
    while True:
        kept = text[:max(0, budget)]
        if "\n" in kept:
            kept = kept[:kept.rindex("\n")]
        closing = "\n```" if kept.count("```") % 2 else ""
        opened = kept.count("<details>") - kept.count("</details>")
        closing += "\n</details>" * max(0, opened)
        note = (f"\n\n> ✂️ This report was cut at {len(kept):,} of {len(text):,} characters to "
                "fit in one GitHub comment; the job summary and `mlops-gitops report` have all "
                "of it.\n")
        out = kept + closing + note
        if len(out) <= limit or budget <= 0:
            return out[:limit]
        budget -= len(out) - limit


def write_step_summary(text: str) -> Path:
    """Append the report to ``$GITHUB_STEP_SUMMARY`` (cut to the summary's size limit)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        raise DiagnosticError([Diagnostic("<command line>", code="usage", message=(
            "--summary needs $GITHUB_STEP_SUMMARY (set by GitHub Actions)"))])
    path = Path(target)
    if len(text.encode("utf-8")) > SUMMARY_LIMIT:
        text = fit_comment(text, SUMMARY_LIMIT // 4)  # a character takes at most 4 bytes
    with path.open("a", encoding="utf-8") as out:
        out.write(text)
    return path
