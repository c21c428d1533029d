"""Reads stay inside the repository (paths and symlinks), and user revisions never reach git as
options."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.spec.project import load_project

from .support import call_cli

BASE = Path(__file__).resolve().parents[1] / "golden" / "base"
SECRET = "sepal_length,sepal_width,petal_length,petal_width,species\n1,1,1,1,setosa\n"


@pytest.fixture
def root(tmp_path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(BASE, project)
    (tmp_path / "secret.csv").write_text(SECRET)
    return project


def test_train_never_reads_a_data_symlink_that_leaves_the_repository(root):
    from mlops_gitops.targets import training_target
    from mlops_gitops.train.trainer import check_working_copy

    (root / "data" / "iris.csv").symlink_to(root.parent / "secret.csv")
    project = load_project(root)
    model = project.located("Model", "iris-classifier")
    target = training_target(project, model)  # the md5 comes from the .dvc pointer
    with pytest.raises(DiagnosticError, match="data path 'data/iris.csv' leaves the repository"):
        check_working_copy(root, target)


@pytest.mark.parametrize("recorded", ["../secret.csv", "data/link.csv"])
def test_verify_never_reads_a_recorded_path_outside_the_repository(root, recorded):
    from mlops_gitops.spec.models import DatasetSpec
    from mlops_gitops.train.verify import _recorded_frame

    (root / "data" / "link.csv").symlink_to(root.parent / "secret.csv")
    md5 = hashlib.md5(SECRET.encode()).hexdigest()
    meta = {"dataset": {"path": recorded, "md5": md5}, "git": {"commit": None}}
    spec = load_project(root).located("Dataset", "iris").spec.spec
    assert isinstance(spec, DatasetSpec)
    with pytest.raises(DiagnosticError, match="leaves the repository"):
        _recorded_frame(root, meta, spec)


@pytest.mark.parametrize("base", ["--output=/tmp/pwned", "-h", "", "main branch"])
def test_report_base_is_never_a_git_option(root, base):
    from mlops_gitops.report.facts import collect_changes

    with pytest.raises(DiagnosticError, match="is not a git revision"):
        collect_changes(load_project(root), base)


def test_data_diff_revision_is_never_a_git_option(root):
    result = call_cli("data", "diff", "iris", "--rev=--output=/tmp/pwned", "--rev", "HEAD",
                      cwd=root)
    assert result.returncode == 1
    assert "--rev '--output=/tmp/pwned' is not a git revision (it starts with '-'" in \
        result.stderr
    from mlops_gitops.data.versioning import read_at_revision

    with pytest.raises(DiagnosticError, match="starts with '-'"):
        read_at_revision(root, "data/iris.csv", "-x")


def test_report_base_option_is_refused_before_any_work(root):
    result = call_cli("report", "--base=--output=/tmp/pwned", cwd=root)
    assert result.returncode == 1
    assert "--base '--output=/tmp/pwned' is not a git revision" in result.stderr
