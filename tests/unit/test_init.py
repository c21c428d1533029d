"""`mlops-gitops init`: a new repository that lints clean; running it again never overwrites."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

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


def _git(root, *args):
    import subprocess

    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def test_init_pins_the_ci_install_source(scaffolded, tmp_path):
    from mlops_gitops import __version__
    from mlops_gitops.scaffold import DEFAULT_SOURCE

    root, result = scaffolded
    lines = (root / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert lines[-1] == f"mlops-gitops[all] @ {DEFAULT_SOURCE}"
    assert DEFAULT_SOURCE.endswith(f"@v{__version__}")
    hook = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"][0]
    assert hook["language"] == "python"  # its own environment: no venv needs to be active
    assert hook["additional_dependencies"] == [f"mlops-gitops @ {DEFAULT_SOURCE}"]

    (tmp_path / "mine" / "data").mkdir(parents=True)
    shutil.copy2(root / "data" / "iris.csv", tmp_path / "mine" / "data" / "iris.csv")
    url = "git+https://git.example.com/ml/mlops-gitops@3f2c1d0"
    mine = run_cli("init", "mine", "--source", url, cwd=tmp_path)
    assert mine.returncode == 0, mine.output
    assert (tmp_path / "mine" / "requirements.txt").read_text().splitlines()[-1] == \
        f"mlops-gitops[all] @ {url}"
    again = run_cli("init", "mine", "--source", "mlops-gitops==9.9", cwd=tmp_path)
    assert again.returncode == 0  # an existing requirements.txt is kept
    assert url in (tmp_path / "mine" / "requirements.txt").read_text()


def test_init_makes_a_git_repository_with_a_dvc_remote(scaffolded, tmp_path):
    root, result = scaffolded
    assert (root / ".git").is_dir()
    assert "dvc     default remote 'storage' -> .mlops/dvc-remote" in result.stdout
    config = (root / ".dvc" / "config").read_text(encoding="utf-8")
    assert "remote = storage" in config and "url = ../.mlops/dvc-remote" in config

    copy = _copy(scaffolded, tmp_path)
    again = run_cli("init", "repo", "--dvc-remote", "s3://bucket/dvc", "--format", "json",
                    cwd=tmp_path)
    assert again.returncode == 0, again.output
    dvc = json.loads(again.stdout)["dvc"]
    assert dvc["status"] == "kept" and "dvc remote add -d -f storage s3://bucket/dvc" in \
        dvc["detail"]
    assert (copy / ".dvc" / "config").read_text(encoding="utf-8") == config


def test_init_dvc_remote_is_configurable(scaffolded, tmp_path):
    root = tmp_path / "other"
    (root / "data").mkdir(parents=True)
    shutil.copy2(scaffolded[0] / "data" / "iris.csv", root / "data" / "iris.csv")
    remote = tmp_path / "shared-remote"
    result = run_cli("init", "other", "--dvc-remote", str(remote), "--format", "json",
                     cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert json.loads(result.stdout)["dvc"] == {"status": "created", "remote": "storage",
                                                "detail": str(remote)}
    config = (root / ".dvc" / "config").read_text(encoding="utf-8")
    assert "remote = storage" in config and "shared-remote" in config


def test_init_branches_needs_a_commit(scaffolded, tmp_path):
    root = _copy(scaffolded, tmp_path)
    result = run_cli("init", "--branches", cwd=root)
    assert result.returncode == 1
    assert "needs a commit" in result.stderr and "commit the scaffold first" in result.stderr
    assert _git(root, "branch", "--list") == ""


def test_init_branches_creates_missing_environment_branches_and_never_moves_one(scaffolded,
                                                                                tmp_path):
    root = _copy(scaffolded, tmp_path)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "scaffold")
    first = _git(root, "rev-parse", "HEAD")
    _git(root, "branch", "env/test", first)
    (root / "README.md").write_text("later\n", encoding="utf-8")
    _git(root, "add", "README.md")
    _git(root, "commit", "-q", "-m", "later")
    head = _git(root, "rev-parse", "HEAD")

    result = run_cli("init", "--branches", cwd=root)
    assert result.returncode == 0, result.output
    assert "branch  env/dev at HEAD" in result.stdout
    assert "branch  env/test (already there)" in result.stdout
    assert _git(root, "rev-parse", "env/dev") == head
    assert _git(root, "rev-parse", "env/prod") == head
    assert _git(root, "rev-parse", "env/test") == first  # never moved

    again = run_cli("init", "--branches", "--format", "json", cwd=root)
    assert again.returncode == 0, again.output
    assert json.loads(again.stdout)["branches"] == {"env/dev": "kept", "env/test": "kept",
                                                    "env/prod": "kept"}


def test_requirement_line_for_urls_and_requirements():
    from mlops_gitops.diagnostics import DiagnosticError
    from mlops_gitops.scaffold import requirement_line

    url = "git+https://github.com/acme/mlops-gitops@v0.1.0"
    assert requirement_line(url) == f"mlops-gitops @ {url}"
    assert requirement_line(f"mlops-gitops @ {url}") == f"mlops-gitops @ {url}"
    assert requirement_line("mlops-gitops==0.2.0") == "mlops-gitops==0.2.0"
    assert requirement_line(url, "all") == f"mlops-gitops[all] @ {url}"
    assert requirement_line(f"mlops-gitops @ {url}", "all") == f"mlops-gitops[all] @ {url}"
    assert requirement_line("mlops-gitops==0.2.0", "all") == "mlops-gitops[all]==0.2.0"
    assert requirement_line("mlops-gitops-fork==1", "all") == "mlops-gitops-fork==1"
    for bad in ("", "  ", f"{url}\n--index-url https://evil.example", f'{url}"'):
        with pytest.raises(DiagnosticError):
            requirement_line(bad)


def test_init_in_a_subfolder_of_a_repository_uses_a_dvc_subdir(scaffolded, tmp_path):
    outer = tmp_path / "mono"
    (outer / "ml" / "data").mkdir(parents=True)
    _git(outer, "init", "-q")
    shutil.copy2(scaffolded[0] / "data" / "iris.csv", outer / "ml" / "data" / "iris.csv")
    result = run_cli("init", "ml", "--format", "json", cwd=outer)
    assert result.returncode == 0, result.output
    report = json.loads(result.stdout)
    assert report["git"] == "kept" and report["dvc"]["status"] == "created"
    assert not (outer / "ml" / ".git").exists()
    assert (outer / "ml" / ".dvc" / "config").is_file() and not (outer / ".dvc").exists()
