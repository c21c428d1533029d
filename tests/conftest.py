"""Shared test setup."""

import os

# MLflow must never phone home from a test run.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
