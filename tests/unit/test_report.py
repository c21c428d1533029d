"""The pull-request report: sections, the hidden marker, the cut to one GitHub comment, the job
summary, and the PNG plots (drawn locally with matplotlib's Agg backend)."""

from __future__ import annotations

import os
import subprocess

import pytest

from mlops_gitops.evaluate.compare import compare_model
from mlops_gitops.evaluate.model_tests import run_model_tests
from mlops_gitops.report import facts, github, markdown

from .eval_support import EvalRegistry, edit, example_project, load, train_into

PNG = b"\x89PNG\r\n\x1a\n"
GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT})


@pytest.fixture
def evaluated(tmp_path):
    """A git repository of the example project: iris champion in prod, a worse challenger
    trained, tested and compared; diabetes trained and compared without a champion."""
    root = example_project(tmp_path / "project")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    registry = EvalRegistry()
    champion = train_into(registry, root, "iris-classifier")
    registry.aliases["iris-classifier"]["prod"] = champion
    edit(root / "specs" / "models" / "iris-classifier.yaml", "params: {C: 1.0, max_iter: 500}",
         "params: {C: 0.001, max_iter: 500}")
    train_into(registry, root, "iris-classifier")
    train_into(registry, root, "diabetes-regressor")
    project = load(root)
    for model in ("iris-classifier", "diabetes-regressor"):
        item = project.located("Model", model)
        run_model_tests(project, item, registry=registry)
        compare_model(project, item, registry=registry, resamples=200)
    return root, project, registry


def test_report_sections_marker_and_plots(evaluated, tmp_path):
    root, project, registry = evaluated
    report = facts.collect(project, base="main", registry=registry)
    images = markdown.make_plots(report, tmp_path / "assets")
    text = markdown.render(report, images, link_base=tmp_path)
    assert text.startswith(github.MARKER + "\n")
    for heading in ("### Data validation", "### What changed", "### Training",
                    "### Model tests", "### Champion vs challenger"):
        assert heading in text
    assert "| `specs/models/iris-classifier.yaml` | modified |" in text
    assert "-    params: {C: 1.0, max_iter: 500}" in text  # the spec diff
    assert "#### iris-classifier: ❌ not blessed" in text
    assert "#### diabetes-regressor: ✅ blessed" in text
    assert "no champion: change thresholds are skipped" in text
    assert "| iris-classifier | iris-classifier/2 |" in text
    names = sorted(image.path.name for image in images)
    assert names == ["diabetes-regressor-residuals.png", "iris-classifier-confusion.png",
                     "iris-classifier-per-species-recall.png"]
    for image in images:
        assert image.path.read_bytes()[:8] == PNG
        assert f"](assets/{image.path.name})" in text


def test_stale_results_are_flagged(evaluated):
    root, project, registry = evaluated
    edit(root / "specs" / "models" / "iris-classifier.yaml",
         "{name: accuracy-floor, metric: accuracy, min: 0.85}",
         "{name: accuracy-floor, metric: accuracy, min: 0.8}")
    edit(root / "policies" / "classification.yaml", "accuracy: {min: 0.85}",
         "accuracy: {min: 0.8}")
    registry.aliases["diabetes-regressor"]["prod"] = 1
    project = load(root)
    report = facts.collect(project, registry=registry)
    by_model = {m.model: m for m in report.models}
    assert "different set of tests" in by_model["iris-classifier"].tests_note
    assert "the policy changed" in by_model["iris-classifier"].compare_note
    assert "verdict is stale: the champion moved since this verdict (then none, now version 1)" in \
        by_model["diabetes-regressor"].compare_note
    assert report.changes is None and "give --base REF" in report.changes_note


def test_untrained_models_and_no_base(tmp_path):
    root = example_project(tmp_path / "project")
    report = facts.collect(load(root), registry=EvalRegistry())
    text = markdown.render(report)
    assert "❌ not trained for this spec (`mlops-gitops train iris-classifier`)" in text
    assert "no base revision to compare with" in text


def test_fit_comment_keeps_short_reports_whole():
    text = github.MARKER + "\nshort\n"
    assert github.fit_comment(text, 1000) is text


def test_fit_comment_cuts_at_a_line_and_closes_open_blocks():
    lines = [github.MARKER, "## report", "<details><summary>diff</summary>", "", "```diff"]
    lines += [f"+ line {i} " + "x" * 40 for i in range(5000)]
    lines += ["```", "</details>", "the end"]
    text = "\n".join(lines)
    cut = github.fit_comment(text, 65_536)
    assert len(cut) <= 65_536 and len(text) > 65_536
    assert cut.startswith(github.MARKER)
    assert "the end" not in cut
    assert cut.count("```") % 2 == 0
    assert cut.count("<details>") == cut.count("</details>")
    assert f"of {len(text):,} characters" in cut
    body = cut[:cut.index("\n```\n</details>")]
    assert body.endswith(" " + "x" * 40)  # whole lines only


@pytest.mark.parametrize("limit", [1000, 4096, 65_536])
def test_fit_comment_never_exceeds_the_limit(limit):
    text = "\n".join(["<details>"] * 300 + ["y" * 120] * 2000)
    assert len(github.fit_comment(text, limit)) <= limit


def test_step_summary(tmp_path, monkeypatch):
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    github.write_step_summary(github.MARKER + "\nreport\n")
    assert target.read_text() == "earlier step\n" + github.MARKER + "\nreport\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    from mlops_gitops.diagnostics import DiagnosticError

    with pytest.raises(DiagnosticError, match="GITHUB_STEP_SUMMARY"):
        github.write_step_summary("x")


def test_plots_use_the_agg_backend(tmp_path):
    from mlops_gitops.report import plots

    path = plots.metric_by_slice(tmp_path / "m.png", "t", "recall", ["a", "b"],
                                 [("v1", [0.5, None]), ("v2", [0.7, 0.9])], (0.6, None))
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"
    assert path.read_bytes()[:8] == PNG
