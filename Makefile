# Two commands: `make demo` (set up + run the lifecycle on the example project) and
# `make test` (set up + run the test suite). Both install everything from this repository's files.
VENV ?= .venv
PY := $(VENV)/bin/python
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true

.PHONY: setup data demo test lint bench clean

setup: $(VENV)/.installed

# uv when it can be had (about five times faster), else pip; `make setup INSTALLER=pip` forces pip.
$(VENV)/.installed: pyproject.toml constraints.txt scripts/setup-venv
	sh scripts/setup-venv $(VENV)
	touch $@

# The example's DVC remote is a local folder (.mlops/dvc-remote) that a fresh clone lacks:
# recreate the tracked files from scikit-learn's bundled data sets, put them in the DVC cache
# and push them there (then `dvc status` and `dvc status --cloud` are clean).
data: setup
	$(PY) -m mlops_gitops.examples

# The GitOps story on a copy of the example project in a scratch repository (.mlops/demo/):
# pull requests, deploys through dev/test/prod, a refused model, a rollback.
demo: setup
	$(PY) -m mlops_gitops.demo

# Two workers (pytest-xdist, see addopts in pyproject.toml); `-n 0` after `-m pytest` runs serially.
test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check mlops_gitops tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m mlops_gitops lint

bench: setup
	for script in benchmarks/[!_]*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .mlops
