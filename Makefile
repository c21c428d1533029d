# Two commands: `make demo` (set up + run the lifecycle on the example project) and
# `make test` (set up + run the test suite). Both install everything from this repository's files.
VENV ?= .venv
PY := $(VENV)/bin/python
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true

.PHONY: setup data demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

# The example's DVC remote is a local folder (.mlops/dvc-remote) that a fresh clone lacks:
# recreate the tracked files from scikit-learn's bundled data sets and push them there.
data: setup
	$(PY) -m mlops_gitops.examples

# The lifecycle, then the dev service: deployed, asked for predictions, its status shown.
demo: data
	$(VENV)/bin/mlops-gitops run
	$(VENV)/bin/mlops-gitops deploy --env dev
	$(PY) -m mlops_gitops.examples predict dev
	$(VENV)/bin/mlops-gitops status --env dev
	@echo "The dev service keeps running on http://127.0.0.1:3001 (stop it: $(VENV)/bin/mlops-gitops undeploy --env dev)"

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check mlops_gitops tests benchmarks
	$(VENV)/bin/mlops-gitops lint

bench: setup
	for script in benchmarks/[!_]*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .mlops
