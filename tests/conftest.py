"""Shared test setup."""

import os

import pytest

# MLflow must never phone home from a test run.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


@pytest.fixture(autouse=True)
def _restore_environ():
    """Each test starts from the environment the previous one started from.

    In-process code exports settings into ``os.environ`` (``mlflow.set_tracking_uri`` sets
    MLFLOW_TRACKING_URI, the bento builder sets BENTOML_HOME, credentials are exported for the
    MLflow client); child processes then inherit them. Left in place, a later test's CLI
    subprocess would talk to an earlier test's server or bento store, so a test's outcome would
    depend on which tests ran before it in the same process, which under pytest-xdist changes
    from run to run."""
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved) - {"PYTEST_CURRENT_TEST"}:
        del os.environ[name]
    for name, value in saved.items():
        if name != "PYTEST_CURRENT_TEST" and os.environ.get(name) != value:
            os.environ[name] = value
