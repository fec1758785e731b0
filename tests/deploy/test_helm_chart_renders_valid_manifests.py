# SPDX-License-Identifier: Apache-2.0
"""deploy/helm/potluck: the chart lints and renders (Helm's own engine, from the
helm-python-sdk wheel) into manifests that Kubernetes' schemas accept, with the shape the
README promises: probes, one beat, agents on GPU nodes, migrations first, secrets as files."""

from __future__ import annotations

import base64
import json

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from deploy_files import CHART, find, unknown_settings
from deploy_files import render_chart as render

# The oldest Kubernetes minor still commonly run, and the newest these schemas know.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
GPU_VALUES = yaml.safe_load((CHART / "values-gpu.yaml").read_text())
CREATED_SECRET_VALUES = {
    "secrets": {"create": True, "databaseUrl": "postgresql://potluck:pw@db.internal:5432/potluck",
                "redisUrl": "redis://:pw@redis.internal:6379/0",
                "awsCredentials": "[default]\naws_access_key_id = a\naws_secret_access_key = b\n"},
    "storage": {"files": {"backend": "s3"},
                "s3": {"bucket": "potluck-files", "region": "eu-west-1",
                       "credentialsFromSecret": True}},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "grafanaDashboard": {"enabled": True},
}
# Custom resources whose schemas are not bundled with kubernetes-validate.
CUSTOM_KINDS = {"ServiceMonitor"}


def containers(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(d["metadata"]["name"], c) for d in docs
            if d["kind"] in ("Deployment", "DaemonSet", "Job")
            for c in d["spec"]["template"]["spec"]["containers"]]


def env_of(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.fixture(scope="module")
def default_docs() -> list[dict]:
    return render({})


@pytest.fixture(scope="module")
def gpu_docs() -> list[dict]:
    return render(GPU_VALUES)


@pytest.fixture(scope="module")
def secret_docs() -> list[dict]:
    return render(CREATED_SECRET_VALUES)


@pytest.mark.parametrize("values", [{}, GPU_VALUES, CREATED_SECRET_VALUES],
                         ids=["default", "gpu", "created-secret-s3"])
def test_the_chart_lints_without_warnings(values):
    report = helm.lint(str(CHART), values, strict=True)
    assert report["errors"] == []
    # Helm's severities: 1 info (e.g. "icon is recommended"), 2 warning, 3 error.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("docs_fixture", ["default_docs", "gpu_docs", "secret_docs"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_validate_against_the_kubernetes_schema(docs_fixture, version,
                                                                    request):
    docs = request.getfixturevalue(docs_fixture)
    problems = []
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert problems == []


def test_the_schema_check_catches_a_misspelt_field(default_docs):
    """The validation above is not vacuous: a misspelt container field is refused."""
    beat = json.loads(json.dumps(find(default_docs, "Deployment", "potluck-beat")))
    beat["spec"]["template"]["spec"]["containers"][0]["comand"] = ["celery"]
    with pytest.raises(kubernetes_validate.ValidationError, match="comand"):
        kubernetes_validate.validate(beat, KUBERNETES_VERSIONS[0], strict=True)


def test_web_has_liveness_and_readiness_probes_and_an_autoscaler(default_docs):
    web = find(default_docs, "Deployment", "potluck-web")
    assert "replicas" not in web["spec"]  # the HPA owns the replica count
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Django answers only hosts it allows: the probes name one that it always allows.
    probe_host = container["livenessProbe"]["httpGet"]["httpHeaders"][0]["value"]
    assert probe_host in env_of(container)["POTLUCK_ALLOWED_HOSTS"].split(",")
    assert env_of(container)["POTLUCK_BIND"] == "0.0.0.0:8000"
    hpa = find(default_docs, "HorizontalPodAutoscaler", "potluck-web")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "potluck-web"}
    assert hpa["spec"]["minReplicas"] >= 2


def test_exactly_one_beat_and_never_two_during_a_rollout(default_docs):
    beat = find(default_docs, "Deployment", "potluck-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "beat" in beat["spec"]["template"]["spec"]["containers"][0]["command"]


def test_migrations_are_a_hook_that_runs_before_install_and_upgrade(default_docs, secret_docs):
    job = find(default_docs, "Job", "potluck-migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "potluck bootstrap" in " ".join(job["spec"]["template"]["spec"]["containers"][0][
        "command"])
    # A Secret the chart makes is a hook too, created before the Job that reads it.
    secret = find(secret_docs, "Secret", "potluck")
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert (int(secret["metadata"]["annotations"]["helm.sh/hook-weight"])
            < int(annotations["helm.sh/hook-weight"]))


def test_agents_run_one_per_gpu_node_with_its_gpus_and_a_memory_backed_shm(gpu_docs):
    agent = find(gpu_docs, "DaemonSet", "potluck-agent")
    pod = agent["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].endswith("-gpu")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert container["resources"]["limits"]["memory"] == "512Gi"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"]
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    env = env_of(container)
    assert env["POTLUCK_NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["POTLUCK_NODE_ADDRESS"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["POTLUCK_REPLICA_BIND_HOST"] == "0.0.0.0"
    assert env["POTLUCK_SERVING_READY_TIMEOUT_SECONDS"] == "1800"
    # Terminating the pod drains its replicas first, within the grace period.
    assert container["lifecycle"]["preStop"]["exec"]["command"][:2] == ["potluck",
                                                                        "stop-replicas"]
    assert pod["terminationGracePeriodSeconds"] > 60 + 20


def test_cpu_agents_by_default_ask_for_no_gpu(default_docs):
    agent = find(default_docs, "DaemonSet", "potluck-agent")
    [container] = agent["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("-cpu")
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})


def test_only_web_and_agent_pods_may_reach_the_replica_ports(default_docs):
    policy = find(default_docs, "NetworkPolicy", "potluck-agent")
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8100, "endPort": 8999}]
    assert sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                  for p in rule["from"]) == ["agent", "web"]


@pytest.mark.parametrize("docs_fixture", ["default_docs", "gpu_docs", "secret_docs"])
def test_secrets_reach_every_process_only_as_files(docs_fixture, request):
    docs = request.getfixturevalue(docs_fixture)
    for owner, container in containers(docs):
        env = env_of(container)
        for setting in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "POTLUCK_METRICS_TOKEN"):
            assert setting not in env, (owner, setting)
            assert env[f"{setting}_FILE"].startswith("/run/secrets/potluck/"), (owner, setting)
        mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")
        assert mount == {"name": "secrets", "mountPath": "/run/secrets/potluck",
                         "readOnly": True}


@pytest.mark.parametrize("docs_fixture", ["default_docs", "gpu_docs", "secret_docs"])
def test_every_setting_the_chart_sets_is_one_potluck_reads(docs_fixture, request):
    docs = request.getfixturevalue(docs_fixture)
    names = {name for _, container in containers(docs) for name in env_of(container)}
    assert unknown_settings(names) == set()


def test_models_and_finetune_outputs_are_shared_at_the_same_path_in_every_pod(default_docs):
    claim = find(default_docs, "PersistentVolumeClaim", "potluck-shared")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for owner, container in containers(default_docs):
        if owner == "potluck-migrations":
            continue
        shared = {m["mountPath"]: m["subPath"] for m in container["volumeMounts"]
                  if m["name"] == "shared"}
        assert shared == {"/var/lib/potluck/models": "models",
                          "/var/lib/potluck/finetune": "finetune",
                          "/var/lib/potluck/files": "files"}, owner


def test_files_in_s3_use_the_secret_credentials_and_no_shared_files_folder(secret_docs):
    secret = find(secret_docs, "Secret", "potluck")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["database-url"] == CREATED_SECRET_VALUES["secrets"]["databaseUrl"]
    assert len(data["secret-key"]) == 50 and len(data["metrics-token"]) == 32
    assert data["aws-credentials"].startswith("[default]")
    for owner, container in containers(secret_docs):
        env = env_of(container)
        assert env["POTLUCK_FILE_STORAGE"] == "potluck.files.storage_s3.S3Storage", owner
        assert env["POTLUCK_S3_BUCKET"] == "potluck-files"
        assert env["POTLUCK_S3_REGION"] == "eu-west-1"
        assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/potluck/aws-credentials"
        assert "POTLUCK_FILE_STORAGE_ROOT" not in env
        assert "/var/lib/potluck/files" not in {m["mountPath"] for m in container[
            "volumeMounts"]}


def test_prometheus_scrapes_every_web_pod_with_the_metrics_token(secret_docs):
    monitor = find(secret_docs, "ServiceMonitor", "potluck")
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    assert endpoint["authorization"] == {
        "type": "Bearer", "credentials": {"name": "potluck", "key": "metrics-token"}}
    dashboard = find(secret_docs, "ConfigMap", "potluck-dashboard")
    assert json.loads(dashboard["data"]["potluck.json"]) == json.loads(
        (CHART / "dashboards" / "potluck.json").read_text())


def test_the_ingress_terminates_tls_and_the_web_trusts_that_origin(gpu_docs):
    ingress = find(gpu_docs, "Ingress", "potluck")
    assert ingress["spec"]["tls"] == [{"secretName": "potluck-tls",
                                       "hosts": ["potluck.example.com"]}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "potluck", "port": {"name": "http"}}
    web = find(gpu_docs, "Deployment", "potluck-web")
    env = env_of(web["spec"]["template"]["spec"]["containers"][0])
    assert "potluck.example.com" in env["POTLUCK_ALLOWED_HOSTS"].split(",")
    assert env["POTLUCK_CSRF_TRUSTED_ORIGINS"] == "https://potluck.example.com"


@pytest.mark.parametrize(("values", "message"), [
    ({"secrets": {"create": True, "redisUrl": "redis://r"}}, "secrets.databaseUrl is required"),
    ({"storage": {"files": {"backend": "ftp"}}}, "storage.files.backend must be local or s3"),
    ({"storage": {"files": {"backend": "s3"}}}, "storage.s3.bucket is required"),
])
def test_incomplete_values_fail_with_a_message_that_names_the_value(values, message):
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)
