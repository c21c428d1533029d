"""The last monitoring verdict of an environment, as ``status`` shows it: read from the report
``monitor`` wrote (``.mlops/monitor/ENV/report.json``), with the standard library only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.monitor.columns import column_label
from mlops_gitops.tracking import STATE_DIR


@dataclass(frozen=True)
class LastVerdict:
    env: str
    verdict: str  # healthy | drift | not enough data
    at: str
    detail: str


def report_path(root: Path, env: str) -> Path:
    return root / STATE_DIR / "monitor" / env / "report.json"


def last_verdict(root: Path, env: str, serving: str | None = None) -> LastVerdict | None:
    """None when monitor never wrote a report for ``env`` (or it is unreadable). ``serving``: the
    bento the environment serves now; a verdict made for another one is marked stale."""
    try:
        report = json.loads(report_path(root, env).read_text(encoding="utf-8"))
        models = report.get("models") or []
        detail = "; ".join(
            f"{m['model']}/{m['version']}: {m['samples']} sample(s)"
            + (f", drifted {', '.join(map(column_label, m['drifted']))}"
               if m.get("drifted") else "")
            for m in models)
        due = [f"{a['model']}/{a['version']} trained {a['age_days']:.0f} day(s) ago "
               f"(max {a['max_age_days']:g}): retraining due"
               for a in report.get("model_age") or [] if a.get("overdue")]
        detail = "; ".join(x for x in (detail, *due) if x)
        judged = str(report.get("bento") or "")
        if serving and judged != serving:
            detail = (f"STALE: judged {judged or 'an earlier deployment'}, now serving {serving} "
                      f"(run monitor again); {detail}")
        return LastVerdict(env, str(report["verdict"]), str(report.get("at") or ""), detail)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
