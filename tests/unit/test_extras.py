"""The base install (pydantic, pyyaml, rich) lints and exports schemas; a command that needs an
extra that is not installed says which one to install, exit 1, no traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from mlops_gitops.extras import EXTRA_OF
from tests.unit.support import REPO, copy_example_project

# Run the CLI as if the given top-level modules were not installed.
RUN_WITHOUT = """
import sys, runpy
from importlib.machinery import PathFinder
blocked = set(sys.argv[1].split(","))
class NotInstalled(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NotInstalled)
sys.argv = ["mlops-gitops", *sys.argv[2:]]
runpy.run_module("mlops_gitops", run_name="__main__")
"""


def run_without(blocked, *args, cwd):
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT, ",".join(sorted(blocked)), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path):
    return copy_example_project(tmp_path / "project")


def test_lint_and_schema_need_only_the_base_install(project):
    every_extra = set(EXTRA_OF) | {"jsonschema", "deepdiff"}
    lint = run_without(every_extra, "lint", cwd=project)
    assert lint.returncode == 0, lint.stderr
    assert "no problems found" in lint.stdout
    schema = run_without(every_extra, "schema", cwd=project)
    assert schema.returncode == 0, schema.stderr
    assert '"title": "mlops-gitops Model"' in schema.stdout


@pytest.mark.parametrize(("blocked", "args", "extra", "data"), [
    ({"mlflow", "sklearn"}, ("train", "iris-classifier"), "train", True),
    ({"pandas"}, ("data", "validate"), "train", True),
    ({"dvc"}, ("data", "validate"), "train", False),  # a missing file is pulled by DVC
    ({"bentoml"}, ("build", "--env", "dev"), "serve", True),
])
def test_a_missing_extra_is_named(project, blocked, args, extra, data):
    from mlops_gitops.examples import write_example

    if data:
        write_example("iris", project / "data" / "iris.csv")
        write_example("diabetes", project / "data" / "diabetes.csv")
    else:  # tracked by DVC, not checked out
        (project / "data").mkdir()
        for pointer in (REPO / "data").glob("*.csv.dvc"):
            (project / "data" / pointer.name).write_bytes(pointer.read_bytes())
    result = run_without(blocked, *args, cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"pip install 'mlops-gitops[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_the_extras_hold_every_module_they_are_named_for():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    base = " ".join(project["dependencies"])
    assert "mlflow" not in base and "bentoml" not in base and "scikit-learn" not in base
    distribution = {"sklearn": "scikit-learn"}
    for module, extra in EXTRA_OF.items():
        name = distribution.get(module, module)
        if module == "numpy":  # comes with scikit-learn, pandas and scipy
            continue
        assert any(req.startswith(name) for req in extras[extra]), (module, extra)
    assert "mlops-gitops[train]" in extras["serve"] and extras["all"] == [
        "mlops-gitops[train,serve]"]
