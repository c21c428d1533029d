"""The example project's data set-up (`make data`) in a fresh clone of this repository: the DVC
state it leaves is real — cache and local remote filled, `dvc status` clean both ways."""

from __future__ import annotations

import sys

import pytest

from tests.integration.conftest import REPO, cli, dvc, run

pytestmark = pytest.mark.integration


@pytest.fixture
def clone(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    root = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(REPO), str(root))
    return root


def test_a_fresh_clone_says_the_local_remote_is_not_filled_yet(clone):
    result = cli(clone, "data", "validate", "iris")
    assert result.returncode == 1
    assert ("'data/iris.csv' is missing and the local DVC remote '.mlops/dvc-remote' does not "
            "exist yet") in result.stderr
    assert "run 'make data'" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_set_up_fills_cache_and_remote(clone):
    setup = run(clone, sys.executable, "-m", "mlops_gitops.examples")
    assert "the DVC cache and remote" in setup.stdout
    assert (clone / ".mlops" / "dvc-remote").is_dir()
    assert run(clone, "git", "status", "--porcelain").stdout == ""  # no .dvc file rewritten
    assert dvc(clone, "status").stdout.strip() == "Data and pipelines are up to date."
    assert "in sync" in dvc(clone, "status", "--cloud").stdout

    (clone / "data" / "iris.csv").unlink()  # a deleted file comes back from the cache
    dvc(clone, "checkout", "data/iris.csv")
    assert (clone / "data" / "iris.csv").is_file()

    (clone / "data" / "iris.csv").unlink()  # and from the remote, with no cache
    run(clone, "rm", "-rf", ".dvc/cache")
    dvc(clone, "pull")
    assert (clone / "data" / "iris.csv").is_file()
    assert dvc(clone, "status").stdout.strip() == "Data and pipelines are up to date."

    result = cli(clone, "data", "diff", "iris", "--rev", "HEAD", "--rev", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "rows: 150 -> 150" in result.stdout

    again = run(clone, sys.executable, "-m", "mlops_gitops.examples")  # idempotent
    assert "wrote" not in again.stdout
