"""`mlops-gitops init`: a new repository that lints clean; running it again never overwrites."""

from __future__ import annotations

import json
import shutil

import pytest

from mlops_gitops.spec.schema import stale_schemas

from .support import run_cli


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """One real `init` (it writes the example data with scikit-learn), copied by each test."""
    parent = tmp_path_factory.mktemp("init")
    result = run_cli("init", "repo", cwd=parent)
    assert result.returncode == 0, result.output
    assert "Traceback" not in result.output
    return parent / "repo", result


def _copy(scaffolded, tmp_path):
    root, _ = scaffolded
    target = tmp_path / "repo"
    shutil.copytree(root, target)
    return target


def test_init_creates_a_project_that_lints_clean(scaffolded, tmp_path):
    root, result = scaffolded
    for name in ("mlops-gitops.yaml", "specs", "policies", "environments", "schemas",
                 ".gitignore", ".pre-commit-config.yaml", "data/iris.csv"):
        assert (root / name).exists(), name
        assert f"created repo/{name}" in result.stdout or (root / name).is_dir()
    assert "next: cd repo" in result.stdout
    lint = run_cli("lint", cwd=_copy(scaffolded, tmp_path))
    assert lint.returncode == 0, lint.output
    assert lint.stdout.strip() == "no problems found"


def test_init_writes_fresh_schemas(scaffolded):
    root, _ = scaffolded
    assert stale_schemas(root / "schemas") == []


def test_init_again_keeps_existing_files(scaffolded, tmp_path):
    root = _copy(scaffolded, tmp_path)
    model = root / "specs" / "models" / "iris-classifier.yaml"
    edited = model.read_text(encoding="utf-8").replace("max_iter: 500", "max_iter: 321")
    edited += "# edited by hand\n"
    model.write_text(edited, encoding="utf-8")
    data = (root / "data" / "iris.csv").read_bytes()
    (root / "environments" / "prod.yaml").unlink()

    again = run_cli("init", str(root), "--format", "json", cwd=tmp_path)
    assert again.returncode == 0, again.output
    report = json.loads(again.stdout)
    assert report["created"] == ["environments/prod.yaml"]
    assert "specs/models/iris-classifier.yaml" in report["kept"]
    assert "data/iris.csv" in report["kept"]
    assert model.read_text(encoding="utf-8") == edited
    assert (root / "data" / "iris.csv").read_bytes() == data
    assert (root / "environments" / "prod.yaml").is_file()

    text = run_cli("init", str(root), cwd=tmp_path)
    assert text.returncode == 0
    assert "already there" in text.stdout and "created" not in text.stdout
    assert model.read_text(encoding="utf-8") == edited
    assert run_cli("lint", cwd=root).returncode == 0


def test_init_into_a_folder_with_own_config_keeps_it(scaffolded, tmp_path):
    """A file that exists before the first `init` is kept as it is."""
    root = tmp_path / "repo"
    root.mkdir()
    own = ("apiVersion: mlops-gitops/v1\nkind: Project\nmetadata: {name: mine}\n"
           "spec: {model_prefix: team-}\n")
    (root / "mlops-gitops.yaml").write_text(own, encoding="utf-8")
    shutil.copytree(scaffolded[0] / "data", root / "data")  # skip writing the data again
    result = run_cli("init", "repo", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "kept    repo/mlops-gitops.yaml (already there)" in result.stdout
    assert (root / "mlops-gitops.yaml").read_text(encoding="utf-8") == own
    assert run_cli("lint", cwd=root).returncode == 0
