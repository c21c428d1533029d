"""The kubernetes deploy target's manifests: content, offline schema validation, files, kubectl."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mlops_gitops.deploy import kubernetes as k8s
from mlops_gitops.deploy.kubernetes import KubernetesRelease
from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.spec.models import Environment, EnvironmentSpec
from mlops_gitops.spec.project import load_project

from .support import REPO

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
TAG = "mlops-example-prod:3f2a9c1b0d4e"
MODELS = (("iris-classifier", 3), ("diabetes-regressor", 1))


@pytest.fixture(scope="module")
def project():
    loaded = load_project(REPO)
    assert loaded.ok, loaded.diagnostics
    return loaded


def release(project_name: str = "example", env: str = "prod", **changes) -> KubernetesRelease:
    values = {"project": project_name, "env": env, "bento_tag": TAG, "models": MODELS,
              "commit": "0123456789abcdef0123456789abcdef01234567"}
    return KubernetesRelease(**{**values, **changes})


def env_spec(**fields) -> EnvironmentSpec:
    return EnvironmentSpec.model_validate(fields)


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs}


def container(docs: list[dict]) -> dict:
    (only,) = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


# --- offline validation (real schemas, no network) -----------------------------------------------

@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_example_environments_validate(project, env):
    docs = k8s.manifests(release(project.name, env), project.environments[env].spec)
    assert [doc["kind"] for doc in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    assert k8s.validate(docs) == []


@pytest.mark.parametrize("version", sorted(set(kubernetes_validate.utils.all_versions())))
def test_prod_validates_against_every_shipped_kubernetes_version(project, version):
    docs = k8s.manifests(release(project.name), project.environments["prod"].spec)
    assert k8s.validate(docs, version) == []


def test_default_schema_version_is_shipped():
    shipped = kubernetes_validate.utils.all_versions()
    assert k8s.KUBERNETES_VERSION in shipped


def test_every_spec_setting_validates():
    spec = env_spec(service={"port": 8080, "timeout_s": 120, "resources": {
        "requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}},
        deploy={"target": "kubernetes", "kubernetes": {
            "namespace": "ml-serving", "image": "registry.example.com/ml/iris:1.2.3",
            "autoscaling": {"min_replicas": 2, "max_replicas": 10, "target_cpu_percent": 60}}})
    assert k8s.validate(k8s.manifests(release(commit=None), spec)) == []


def test_documented_example_validates():
    text = (REPO / "docs" / "kubernetes.md").read_text()
    block = re.search(r"## Spec fields\n\n```yaml\n(.*?)```", text, re.S).group(1)
    environment = Environment.model_validate(yaml.safe_load(block))
    assert environment.spec.deploy.target == "kubernetes"
    docs = k8s.manifests(release(), environment.spec)
    assert by_kind(docs)["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    assert k8s.validate(docs) == []


def test_validator_reports_an_unknown_field(project):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    container(docs)["imagePullPolcy"] = "Always"
    errors = k8s.validate(docs)
    assert len(errors) == 1
    assert errors[0].startswith("Deployment/example-prod: spec.template.spec.containers.0:")
    assert "imagePullPolcy" in errors[0]


def test_validator_reports_wrong_types_and_missing_fields(project):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    broken = copy.deepcopy(docs)
    by_kind(broken)["Service"]["spec"]["ports"][0]["port"] = "eighty"
    by_kind(broken)["HorizontalPodAutoscaler"]["spec"]["minReplicas"] = "2"
    del by_kind(broken)["Deployment"]["spec"]["selector"]
    errors = k8s.validate(broken)
    assert len(errors) == 3
    assert any("Service/example-prod: spec.ports.0.port" in e and "'eighty'" in e for e in errors)
    assert any("spec.minReplicas" in e and "integer" in e for e in errors)
    assert any("'selector' is a required property" in e for e in errors)
    assert k8s.validate(docs) == []  # the originals were not touched


def test_validator_reports_an_unknown_kind():
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    (error,) = k8s.validate([doc])
    assert error.startswith("Widget/w:") and "Couldn't find schema" in error


def test_validator_reports_objects_without_kind():
    docs = [{"apiVersion": "v1", "metadata": {"name": "x"}}, ["not", "a", "mapping"],
            {"apiVersion": "v1", "kind": "Service", "metadata": "x", "spec": {}}]
    errors = k8s.validate(docs)
    assert errors[:2] == ["object 1: not a Kubernetes object (needs apiVersion and kind)",
                          "object 2: not a Kubernetes object (needs apiVersion and kind)"]
    assert len(errors) == 3 and errors[2].startswith("Service/?: metadata:")


@pytest.mark.parametrize("version", ["1.2.0", "9.99.0"])
def test_unsupported_kubernetes_version_is_a_diagnostic(project, version):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    with pytest.raises(DiagnosticError, match=f"no schemas for Kubernetes {version}"):
        k8s.validate(docs, version)


# --- content -------------------------------------------------------------------------------------

def test_deployment_probes_rollout_and_container(project):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    deployment = by_kind(docs)["Deployment"]
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    box = container(docs)
    assert box["image"] == TAG
    assert box["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert {"name": "BENTOML_DO_NOT_TRACK", "value": "true"} in box["env"]
    assert box["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert box["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        settings = box[probe]
        assert settings["periodSeconds"] > 0 and settings["failureThreshold"] >= 3
        assert settings["timeoutSeconds"] < settings["periodSeconds"]
    assert box["livenessProbe"]["initialDelaySeconds"] >= box["readinessProbe"][
        "initialDelaySeconds"]
    startup = box["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # room to load models


def test_default_resources_omit_unset_values(project):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    assert container(docs)["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                                            "limits": {"memory": "1Gi"}}


def test_resources_come_from_the_spec():
    spec = env_spec(service={"resources": {"requests": {"cpu": "2"},
                                           "limits": {"cpu": "4", "memory": "3Gi"}}})
    assert container(k8s.manifests(release(), spec))["resources"] == {
        "requests": {"cpu": "2"}, "limits": {"cpu": "4", "memory": "3Gi"}}
    spec = env_spec(service={"resources": {"requests": {"cpu": "100m"}, "limits": {}}})
    assert container(k8s.manifests(release(), spec))["resources"] == {
        "requests": {"cpu": "100m"}}


def test_request_above_limit_is_refused():
    spec = env_spec(service={"resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                           "limits": {"memory": "1Gi"}}})
    with pytest.raises(DiagnosticError, match=r"requests.memory \(2Gi\) is greater than "
                                              r"limits.memory \(1Gi\)") as caught:
        k8s.manifests(release(), spec)
    assert caught.value.diagnostics[0].path == "spec.service.resources.requests.memory"


def test_autoscaler_without_cpu_request_is_refused():
    spec = env_spec(service={"resources": {"requests": {"memory": "1Gi"}, "limits": {}}})
    with pytest.raises(DiagnosticError, match="CPU request"):
        k8s.manifests(release(), spec)
    spec = env_spec(service={"resources": {"requests": {"memory": "1Gi"}, "limits": {"cpu": "1"}}})
    assert k8s.validate(k8s.manifests(release(), spec)) == []  # the limit is the request then


@pytest.mark.parametrize(("value", "expected"), [
    ("250m", "0.25"), ("2", "2"), ("1.5", "1.5"), ("512Mi", str(512 * 2**20)), ("1Gi", str(2**30)),
    ("1G", str(10**9)), ("3k", "3000")])
def test_quantity(value, expected):
    assert k8s.quantity(value) == k8s.Decimal(expected)


def test_autoscaler_bounds_and_replicas():
    spec = env_spec(deploy={"kubernetes": {"autoscaling": {
        "min_replicas": 2, "max_replicas": 7, "target_cpu_percent": 65}}})
    docs = by_kind(k8s.manifests(release(), spec))
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "example-prod"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 65}}}]
    assert docs["Deployment"]["spec"]["replicas"] == 2


def test_service_targets_the_named_container_port(project):
    docs = by_kind(k8s.manifests(release(env="dev"), project.environments["dev"].spec))
    service = docs["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 3001, "targetPort": "http",
                                         "protocol": "TCP"}]
    deployment = docs["Deployment"]["spec"]
    assert service["spec"]["selector"] == deployment["selector"]["matchLabels"]
    pod_labels = deployment["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_labels_annotations_and_namespace():
    spec = env_spec(deploy={"kubernetes": {"namespace": "ml-serving"}})
    docs = k8s.manifests(release(), spec)
    for doc in docs:
        meta = doc["metadata"]
        assert meta["name"] == "example-prod" and meta["namespace"] == "ml-serving"
        assert meta["labels"] == {"app.kubernetes.io/name": "example",
                                  "app.kubernetes.io/instance": "example-prod",
                                  "app.kubernetes.io/managed-by": "mlops-gitops",
                                  "mlops-gitops/env": "prod"}
        assert meta["annotations"]["mlops-gitops/bento-tag"] == TAG
        assert meta["annotations"]["mlops-gitops/models"] == (
            "diabetes-regressor:1,iris-classifier:3")
    deployment = by_kind(docs)["Deployment"]
    assert deployment["metadata"]["annotations"]["mlops-gitops/commit"] == release().commit
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert template["mlops-gitops/bento-tag"] == TAG  # a new bento rolls the pods
    assert "mlops-gitops/commit" not in template  # a commit alone restarts nothing
    no_commit = by_kind(k8s.manifests(release(commit=None), spec))["Deployment"]
    assert "mlops-gitops/commit" not in no_commit["metadata"]["annotations"]


def test_image_override():
    image = "registry.example.com/ml/iris:1.2.3"
    spec = env_spec(deploy={"kubernetes": {"image": image}})
    assert container(k8s.manifests(release(), spec))["image"] == image


def test_security_context_and_grace_period():
    docs = k8s.manifests(release(), env_spec(service={"timeout_s": 60.5}))
    pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 60.5 + 5
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int)  # kubelet can check non-root
    assert pod["automountServiceAccountToken"] is False
    box = pod["containers"][0]["securityContext"]
    assert box["allowPrivilegeEscalation"] is False
    assert box["capabilities"] == {"drop": ["ALL"]}
    short = k8s.manifests(release(), env_spec(service={"timeout_s": 1}))
    assert by_kind(short)["Deployment"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"] >= 6


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("project_name", "expected"), [
    ("example", "example-prod"),
    ("My_Project", "my-project-prod"),
    ("ML  Team__Fraud.Detector", "ml-team-fraud-detector-prod"),
    ("__x__", "x-prod"),
    ("2024-forecast", "app-2024-forecast-prod"),
    ("___", "app-prod"),
])
def test_names_are_sanitised(project_name, expected):
    assert release(project_name).name == expected


def test_env_label_keeps_a_valid_environment_name():
    docs = k8s.manifests(release(env="1st"), env_spec())
    assert docs[0]["metadata"]["name"] == "example-1st"
    assert docs[0]["metadata"]["labels"]["mlops-gitops/env"] == "1st"


def test_long_names_are_cut_with_a_hash():
    long_a = "Very_Long_Project_Name_" * 5 + "A"
    long_b = "Very_Long_Project_Name_" * 5 + "B"
    name_a, name_b = release(long_a).name, release(long_b).name
    assert len(name_a) <= 63 and len(name_b) <= 63
    assert name_a != name_b
    assert re.search(r"-[0-9a-f]{8}$", name_a)
    assert release(long_a).name == name_a  # stable


@pytest.mark.parametrize("project_name", ["My_Project", "Very_Long_Project_Name_" * 6, "9lives",
                                          "ÜnïcødeProject"])
def test_sanitised_names_make_valid_objects(project_name):
    docs = k8s.manifests(release(project_name), env_spec())
    for doc in docs:
        assert DNS_1035.match(doc["metadata"]["name"]) and len(doc["metadata"]["name"]) <= 63
        for value in doc["metadata"]["labels"].values():
            assert LABEL_VALUE.match(value) and len(value) <= 63
    assert k8s.validate(docs) == []


# --- determinism and files -----------------------------------------------------------------------

def test_output_is_deterministic(project, tmp_path):
    spec = project.environments["prod"].spec
    first = k8s.write_manifests(k8s.manifests(release(), spec), tmp_path / "a")
    second = k8s.write_manifests(k8s.manifests(release(models=MODELS[::-1]), spec),
                                 tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_output_does_not_depend_on_the_hash_seed(tmp_path):
    script = (
        "import sys; from pathlib import Path\n"
        "from mlops_gitops.deploy import kubernetes as k\n"
        "from mlops_gitops.spec.models import Environment, EnvironmentSpec\n"
        "r = k.KubernetesRelease('My_Project', 'prod', 'x:1', (('b', 2), ('a', 1)), 'c0ffee')\n"
        "k.write_manifests(k.manifests(r, EnvironmentSpec()), Path(sys.argv[1]))\n"
    )
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, timeout=120)
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 4


def test_write_manifests_files_and_kustomization(project, tmp_path):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    out = tmp_path / "deploy" / "prod"
    written = k8s.write_manifests(docs, out)
    assert [p.name for p in written] == ["deployment.yaml", "service.yaml", "hpa.yaml",
                                         "kustomization.yaml"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no tmp
    for path, doc in zip(written, docs, strict=False):
        text = path.read_text()
        assert text.startswith("# Generated by mlops-gitops")
        assert yaml.safe_load(text) == doc
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization == {"apiVersion": "kustomize.config.k8s.io/v1beta1",
                             "kind": "Kustomization",
                             "resources": ["deployment.yaml", "service.yaml", "hpa.yaml"]}
    # the files on disk validate too
    assert k8s.validate([yaml.safe_load(p.read_text()) for p in written[:3]]) == []


def test_write_manifests_removes_stale_files_it_wrote(project, tmp_path):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    extra = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": "example-prod"},
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}}}
    (tmp_path / "notes.yaml").write_text("mine: true\n")
    k8s.write_manifests([*docs, extra], tmp_path)
    assert (tmp_path / "poddisruptionbudget.yaml").is_file()
    written = k8s.write_manifests(docs, tmp_path)
    assert not (tmp_path / "poddisruptionbudget.yaml").exists()
    assert (tmp_path / "notes.yaml").read_text() == "mine: true\n"  # not ours: kept
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in written] + ["notes.yaml"])
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert "poddisruptionbudget.yaml" not in kustomization["resources"]


def test_write_manifests_refuses_two_objects_in_one_file(project, tmp_path):
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    with pytest.raises(ValueError, match="service.yaml"):
        k8s.write_manifests([*docs, docs[1]], tmp_path)


def test_write_manifests_replaces_changed_files(project, tmp_path):
    spec = project.environments["prod"].spec
    k8s.write_manifests(k8s.manifests(release(), spec), tmp_path)
    k8s.write_manifests(k8s.manifests(release(bento_tag="mlops-example-prod:ffff"), spec),
                        tmp_path)
    deployment = yaml.safe_load((tmp_path / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "mlops-example-prod:ffff")


# --- kubectl -------------------------------------------------------------------------------------

FAKE_KUBECTL = """#!/bin/sh
for arg in "$@"; do printf '%s\\n' "$arg"; done > "{record}"
echo "deployment.apps/example-prod configured"
"""

FAILING_KUBECTL = """#!/bin/sh
i=0
while [ $i -lt 30 ]; do echo "error line $i" >&2; i=$((i+1)); done
exit 1
"""


def fake_kubectl(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kubectl"
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_kubectl_missing_is_a_diagnostic(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(DiagnosticError) as caught:
        k8s.kubectl_apply(tmp_path)
    (diagnostic,) = caught.value.diagnostics
    assert "kubectl is not installed" in diagnostic.message
    assert "kubectl" in diagnostic.hint


def test_kubectl_apply_command_line(project, tmp_path, monkeypatch):
    record = tmp_path / "args.txt"
    bin_dir = tmp_path / "bin"
    fake_kubectl(bin_dir, FAKE_KUBECTL.format(record=record))
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "manifests"
    k8s.write_manifests(k8s.manifests(release(), project.environments["prod"].spec), out)
    output = k8s.kubectl_apply(out)
    assert output.strip() == "deployment.apps/example-prod configured"
    assert record.read_text().splitlines() == ["apply", "-k", str(out)]
    k8s.kubectl_apply(out, context="kind-staging")
    assert record.read_text().splitlines() == ["apply", "-k", str(out), "--context",
                                               "kind-staging"]


def test_kubectl_apply_without_kustomization_uses_f(tmp_path, monkeypatch):
    record = tmp_path / "args.txt"
    fake_kubectl(tmp_path / "bin", FAKE_KUBECTL.format(record=record))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "plain").mkdir()
    k8s.kubectl_apply(tmp_path / "plain")
    assert record.read_text().splitlines() == ["apply", "-f", str(tmp_path / "plain")]


def test_kubectl_failure_shows_its_first_stderr_lines(tmp_path, monkeypatch):
    fake_kubectl(tmp_path / "bin", FAILING_KUBECTL)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(DiagnosticError) as caught:
        k8s.kubectl_apply(tmp_path)
    message = caught.value.diagnostics[0].message
    assert "exit code 1" in message
    assert "error line 0" in message and "error line 19" in message
    assert "error line 20" not in message and "10 more lines" in message


def test_report_is_json_serialisable(project):
    """The objects are plain data (a CLI can print them as JSON too)."""
    docs = k8s.manifests(release(), project.environments["prod"].spec)
    assert json.loads(json.dumps(docs)) == docs
