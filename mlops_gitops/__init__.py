"""mlops-gitops: the whole ML lifecycle as reviewed YAML specs, reconciled with MLflow."""

__version__ = "0.1.0"
