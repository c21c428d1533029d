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


# The longest (integration) test files, longest first (a full run's --durations): under two workers
# (pytest-xdist, --dist loadfile) a file is handed to whichever worker is free, in collection
# order, so these start first and none of them is left running alone at the end of the run.
LONGEST_FIRST = ("test_gitops_e2e.py", "test_reconcile.py", "test_compare.py", "test_train.py",
                 "test_serving.py", "test_noop.py", "test_moved_project.py", "test_s3.py",
                 "test_basic_auth.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        slow = item.path.parent.name == "integration"
        return rank.get(item.path.name, len(rank)) if slow else len(rank)

    items.sort(key=order)  # stable: the rest keep their order
