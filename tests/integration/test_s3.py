"""S3-compatible storage by configuration only, against moto's standalone S3 server on 127.0.0.1:
a DVC remote on S3 (push, a fresh clone pulls, the data gate reads that version) and an
`mlflow server` whose artifacts live in a bucket (train through it, load the model back)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.conftest import (
    cli,
    dvc,
    free_port,
    run,
    skip_or_fail,
    start_mlflow,
    stop,
    use_server,
    wait_http,
)

pytestmark = pytest.mark.integration

BUCKET = "mlops-gitops-test"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}


def missing_s3() -> str | None:
    for module, package in (("moto", "moto[s3]"), ("dvc_s3", "dvc-s3"), ("boto3", "boto3")):
        try:
            __import__(module)
        except ImportError:
            return f"{package} is not installed (pip install -e '.[dev]' installs it)"
    return None


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> str:
    """moto's S3 server on a free port of 127.0.0.1 with one bucket; stopped at the end."""
    reason = missing_s3()
    if reason:
        skip_or_fail(reason)
    port = free_port()
    folder = tmp_path_factory.mktemp("moto")
    log = open(folder / "moto.log", "a")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{endpoint}/moto-api/", 60, process)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop(process)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


def keys(endpoint: str, prefix: str) -> list[str]:
    found = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in found.get("Contents", [])]


def test_dvc_remote_on_s3_push_then_a_fresh_clone_pulls_the_right_version(
        example_repo, s3_endpoint, tmp_path, monkeypatch):
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    dvc(example_repo, "remote", "add", "-d", "storage", f"s3://{BUCKET}/dvc")
    dvc(example_repo, "remote", "modify", "storage", "endpointurl", s3_endpoint)
    dvc(example_repo, "push", "-q")
    run(example_repo, "git", "commit", "-qam", "data on S3")
    assert any(key.startswith("dvc/files/md5/") for key in keys(s3_endpoint, "dvc/"))

    (tmp_path / "remote").rename(tmp_path / "local-remote-gone")  # only S3 can serve it now
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(example_repo), str(clone))
    assert not (clone / "data" / "iris.csv").exists()
    validated = cli(clone, "data", "validate", "--format", "json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    pulled = (clone / "data" / "iris.csv").read_bytes()
    assert pulled == (example_repo / "data" / "iris.csv").read_bytes()


def test_dvc_remote_on_s3_without_credentials_says_which_setting(
        example_repo, s3_endpoint, tmp_path, monkeypatch):
    for name in (*S3_ENV, "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    dvc(example_repo, "remote", "add", "-d", "storage", f"s3://{BUCKET}/nocreds")
    dvc(example_repo, "remote", "modify", "storage", "endpointurl", s3_endpoint)
    run(example_repo, "git", "commit", "-qam", "data on S3")
    (tmp_path / "remote").rename(tmp_path / "local-remote-gone")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(example_repo), str(clone))
    result = cli(clone, "data", "validate")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert ".csv' is missing and 'dvc pull' failed" in result.stderr, result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr


def test_mlflow_artifacts_on_s3_train_and_load_the_model_back(example_repo, s3_endpoint,
                                                              tmp_path, request):
    folder, port = tmp_path / "s3-server", free_port()
    folder.mkdir()
    # S3 credentials on the server only: clients upload and download through it
    server = start_mlflow(folder, port, artifacts=f"s3://{BUCKET}/mlflow",
                          env={**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint})
    try:
        repo = use_server(example_repo, f"http://127.0.0.1:{port}", request.node.name)
        trained = cli(repo, "train", "--format", "json")
        assert trained.returncode == 0, trained.stdout + trained.stderr
        assert {t["status"] for t in json.loads(trained.stdout)} == {"trained"}
        stored = keys(s3_endpoint, "mlflow/")
        assert sum(key.endswith("MLmodel") for key in stored) == 2, stored
        tested = cli(repo, "test", "iris-classifier")  # downloads and loads the model
        assert tested.returncode == 0, tested.stdout + tested.stderr
        # a bento for dev built from the registry whose artifacts live in the bucket
        applied = cli(repo, "apply", "--env", "dev", "--auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        built = cli(repo, "build", "--env", "dev", "--format", "json")
        assert built.returncode == 0, built.stdout + built.stderr
        bento = json.loads(built.stdout)
        assert bento["status"] == "built" and len(bento["models"]) == 2, bento
    finally:
        stop(server)


def test_a_missing_artifact_bucket_is_one_clear_message(example_repo, s3_endpoint, tmp_path,
                                                        request):
    folder, port = tmp_path / "no-bucket-server", free_port()
    folder.mkdir()
    server = start_mlflow(folder, port, artifacts="s3://no-such-bucket/mlflow",
                          env={**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint})
    try:
        repo = use_server(example_repo, f"http://127.0.0.1:{port}", request.node.name)
        result = cli(repo, "train", "iris-classifier")
    finally:
        stop(server)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out and "testing" not in out  # no secret either
    assert "could not store or read artifacts" in result.stderr, out
    assert "--artifacts-destination" in result.stderr and "bucket" in result.stderr, out
    assert "NoSuchBucket" in (folder / "server.log").read_text()  # the server's own reason
