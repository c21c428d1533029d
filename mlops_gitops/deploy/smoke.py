"""The smoke test of a deployed service: one ``/predict`` per served model, with a row of its
dataset's test split, answered with a prediction by the expected version."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from mlops_gitops.deploy.target import SmokeResult
from mlops_gitops.spec.project import Project

TIMEOUT_S = 30


def smoke_requests(project: Project, manifest: dict, rows: int = 1) -> list[dict]:
    """One request body per served model with ``rows`` rows of its dataset's test split."""
    from mlops_gitops.evaluate.versions import load_test_split

    bodies, splits = [], {}
    for entry in manifest["models"]:
        model = project.models.get(entry["spec_name"])
        dataset = project.located("Dataset", model.spec.dataset) if model else None
        instances = None
        if dataset is not None:
            if dataset.name not in splits:
                splits[dataset.name] = load_test_split(project, dataset, "").frame
            frame = splits[dataset.name]
            names = [f["name"] for f in entry["features"]]
            if all(n in frame.columns for n in names) and len(frame):
                instances = [{n: _plain(row[n]) for n in names}
                             for _, row in frame.head(rows).iterrows()]
        if instances is None:  # a pinned version trained on columns the data no longer has
            instances = [{f["name"]: _default(f["type"]) for f in entry["features"]}] * rows
        bodies.append({"model": entry["name"], "instances": instances})
    return bodies


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _default(kind: str):
    return {"float": 0.0, "int": 0, "string": "", "bool": False}[kind]


def run_smoke(base_url: str, manifest: dict, bodies: list[dict]) -> SmokeResult:
    checks, failures = [], []
    versions = {m["name"]: str(m["version"]) for m in manifest["models"]}
    for body in bodies:
        name = body["model"]
        request = urllib.request.Request(
            base_url + "/predict", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-Request-ID": f"smoke-{name}"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            failures.append(f"{name}: HTTP {exc.code} {exc.read()[:200].decode(errors='replace')}")
            continue
        except (OSError, ValueError) as exc:
            failures.append(f"{name}: {exc}")
            continue
        if answer.get("version") != versions[name] or \
                len(answer.get("predictions") or []) != len(body["instances"]):
            failures.append(f"{name}: unexpected answer {json.dumps(answer)[:200]}")
            continue
        checks.append(f"{name}/{versions[name]}: predicted {answer['predictions'][0]!r}")
    if failures:
        return SmokeResult(False, "; ".join(failures), tuple(checks))
    return SmokeResult(True, f"{len(checks)} model(s) answered", tuple(checks))
