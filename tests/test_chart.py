"""The Helm chart (charts/openstack-rca) and the EKS files (k8s/), verified without a cluster.

Lint and render go through Helm's own Go SDK (helm-python-sdk: `helm_python.lint`, `Chart.render`, offline, no
helm binary); every rendered object is validated, strictly, against the Kubernetes OpenAPI schemas of the oldest
version the chart supports and of the EKS version in k8s/eksctl-cluster.yaml (kubernetes-validate). On top: the
security properties of every pod, the wiring between objects (selectors, policies, env, probes), and values the
schema must refuse with a message that names the field.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (dev extra) renders the chart")
kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (dev extra) checks the objects")

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "openstack-rca"
K8S = ROOT / "k8s"
# The chart's minimum (Chart.yaml kubeVersion) and the EKS version k8s/eksctl-cluster.yaml creates.
K8S_VERSIONS = ("1.30.0", "1.34.0")
RELEASE = NS = "openstack-rca"
SECRET_NAMES = {"ANTHROPIC_API_KEY", "RCA_API_TOKEN", "CHROMA_TOKEN"}
# CRDs kubernetes-validate cannot know: checked by hand below.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
POD_KINDS = {"Deployment", "StatefulSet", "CronJob", "Pod", "Job", "DaemonSet"}


def _values(name: str | None) -> dict | None:
    return None if name is None else yaml.safe_load((CHART / "ci" / name).read_text())


VALUE_SETS = {"default": None, "production": "production-values.yaml", "external": "external-values.yaml"}


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(CHART) as c:
        yield c


def render(chart, values: dict | None = None) -> list[dict]:
    """Every object the chart renders (hooks included), NOTES.txt left out."""
    out = []
    for path, text in chart.render(values, name=RELEASE, namespace=NS).items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {})["__template"] = path
                out.append(doc)
    return out


@pytest.fixture(scope="module")
def rendered(chart):
    return {key: render(chart, _values(name)) for key, name in VALUE_SETS.items()}


def clean(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("__template", None)
    return obj


def find(objs, kind, name=None, component=None):
    hits = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
            and (component is None or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)]
    return hits


def one(objs, kind, name=None, component=None) -> dict:
    hits = find(objs, kind, name, component)
    assert len(hits) == 1, f"expected one {kind} {name or ''} {component or ''}, got {len(hits)}"
    return hits[0]


def pod_spec(obj: dict) -> dict:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: dict) -> dict:
    if obj["kind"] == "Pod":
        return obj["metadata"]["labels"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def env_of(container: dict) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def configmap_data(objs) -> dict:
    return one(objs, "ConfigMap")["data"]


def rca_deployment(objs) -> dict:
    return one(objs, "Deployment", component="server")


def helm_error(chart, values) -> str:
    with pytest.raises(helm.HelmError) as err:
        chart.render(values, name=RELEASE, namespace=NS)
    return str(err.value)


# ---------------------------------------------------------------------------------------------------- chart basics

def test_chart_metadata_and_schema_shape(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2" and meta["name"] == "openstack-rca"
    assert meta["appVersion"] == "0.1.0"
    assert meta["kubeVersion"] == ">=1.30.0-0"
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    assert chart.schema == schema
    for f in ("templates/_helpers.tpl", "templates/NOTES.txt", "templates/tests/test-readyz.yaml",
              "ci/production-values.yaml", "ci/external-values.yaml"):
        assert (CHART / f).is_file(), f


def test_values_yaml_is_complete_and_commented(chart):
    """Every key the schema declares has a default in values.yaml (and vice versa), and values.yaml explains them."""
    schema = chart.schema
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict, vals: dict, path: str):
        props = node.get("properties", {})
        if node.get("additionalProperties") is False:
            assert set(vals) <= set(props), f"{path}: keys not in the schema: {set(vals) - set(props)}"
        for key, sub in props.items():
            if key == "global":
                continue
            assert key in vals, f"{path}{key} is in the schema but has no default in values.yaml"
            sub = schema["definitions"][sub["$ref"].rsplit("/", 1)[1]] if "$ref" in sub else sub
            if sub.get("type") == "object" and isinstance(vals[key], dict) and "properties" in sub:
                walk(sub, vals[key], f"{path}{key}.")

    walk(schema, values, "")
    text = (CHART / "values.yaml").read_text().splitlines()
    comments = sum(1 for line in text if line.strip().startswith("#"))
    assert comments > 150, f"values.yaml has only {comments} comment lines"


@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_lint_is_clean(values_name):
    report = helm.lint(CHART, _values(VALUE_SETS[values_name]), strict=True, namespace=NS,
                       kube_version="v" + K8S_VERSIONS[0])
    assert report["errors"] == [], report
    # severity 1 (INFO) is allowed: Helm recommends an icon; warnings and errors are not
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_default_values_render_the_whole_platform(rendered):
    objs = rendered["default"]
    kinds = sorted((o["kind"], o["metadata"]["labels"].get("app.kubernetes.io/component", "-")) for o in objs)
    for expected in [("Deployment", "server"), ("Service", "server"), ("ConfigMap", "server"),
                     ("StatefulSet", "chroma"), ("Service", "chroma"), ("Deployment", "mlflow"),
                     ("Service", "mlflow"), ("PersistentVolumeClaim", "mlflow"), ("NetworkPolicy", "chroma"),
                     ("NetworkPolicy", "mlflow"), ("Pod", "test")]:
        assert expected in kinds, (expected, kinds)
    assert one(objs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert len(find(objs, "Secret")) == 1  # generated tokens: no existingSecret in the defaults
    # nothing optional sneaks in by default
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "ServiceMonitor", "CronJob"):
        assert not find(objs, kind), kind


# ------------------------------------------------------------------------------------------ Kubernetes schemas

@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_every_object_validates_against_kubernetes(rendered, values_name, version):
    checked = 0
    for obj in rendered[values_name]:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            continue
        try:
            kv.validate(clean(obj), version, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for {version} at "
                        f"{'.'.join(map(str, exc.path))}: {exc.message}")
        checked += 1
    assert checked >= 5


def test_the_validator_is_strict():
    """A sanity check that the validation above is not vacuous: an unknown field and a wrong type are refused."""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
               "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    kv.validate(dep, K8S_VERSIONS[0], strict=True)
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True  # typo: capital S
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSIONS[0], strict=True)
    bad = copy.deepcopy(dep)
    bad["spec"]["replicas"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSIONS[0], strict=True)


def test_servicemonitor_by_hand(rendered):
    objs = rendered["production"]
    sm = one(objs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(sm) == {"apiVersion", "kind", "metadata", "spec"}
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] == "http" and ep["path"] == "/metrics"
    assert re.fullmatch(r"\d+s", ep["interval"]) and re.fullmatch(r"\d+s", ep["scrapeTimeout"])
    svc = one(objs, "Service", name=RELEASE)
    assert matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert "http" in {p["name"] for p in svc["spec"]["ports"]}
    assert sm["spec"]["namespaceSelector"]["matchNames"] == [NS]


# -------------------------------------------------------------------------------------------------- security

@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_every_pod_is_hardened(rendered, values_name):
    pods = [o for o in rendered[values_name] if o["kind"] in POD_KINDS]
    assert pods
    for obj in pods:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = pod_spec(obj)
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] > 0 and psc["fsGroup"] > 0, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        for v in volumes.values():
            assert set(v) & {"emptyDir", "persistentVolumeClaim"}, f"{where}: volume {v}"
        for c in containers(spec):
            cw = f"{where}/{c['name']}"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, cw
            assert sc["allowPrivilegeEscalation"] is False, cw
            assert sc["capabilities"] == {"drop": ["ALL"]}, cw
            assert not sc.get("privileged"), cw
            assert sc.get("runAsUser", psc["runAsUser"]) != 0, cw
            assert "resources" in c and c["resources"].get("limits", {}).get("memory"), cw
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{cw}: /tmp must be writable"
            for m in mounts.values():
                assert m in volumes or m in claims, f"{cw}: mount {m} has no volume"
            # every path the app writes is on a volume, since the root filesystem is read-only
            cm = configmap_data(rendered[values_name]) if c.get("envFrom") else {}
            env = {**cm, **{k: e.get("value") for k, e in env_of(c).items() if "value" in e}}
            for var in ("RCA_HOME", "BENTOML_HOME", "XDG_CACHE_HOME", "HF_HOME", "KERAS_HOME", "MPLCONFIGDIR",
                        "HOME"):
                path = env.get(var)
                if path:
                    assert any(path == mp or path.startswith(mp.rstrip("/") + "/") for mp in mounts), \
                        f"{cw}: {var}={path} is not on a writable volume"


def test_secrets_only_through_secret_key_refs(chart):
    values = {"secrets": {"apiToken": "tok-api-5up3r-s3cr3t", "chromaToken": "tok-chroma-s3cr3t",
                          "anthropicApiKey": "sk-ant-s3cr3t"}}
    objs = render(chart, values)
    secret_values = set(values["secrets"].values())
    for cm in find(objs, "ConfigMap"):
        assert not SECRET_NAMES & set(cm["data"]), cm["data"].keys()
        assert not [k for k in cm["data"] if re.search(r"TOKEN|SECRET|PASSWORD|API_KEY", k)]
        for v in cm["data"].values():
            assert not any(s in v for s in secret_values)
    for obj in objs:  # no secret value anywhere but in the Secret
        if obj["kind"] != "Secret":
            assert not any(s in json.dumps(obj) for s in secret_values), obj["kind"]
    secret = one(objs, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"RCA_API_TOKEN": "tok-api-5up3r-s3cr3t", "CHROMA_TOKEN": "tok-chroma-s3cr3t",
                    "ANTHROPIC_API_KEY": "sk-ant-s3cr3t"}
    rca = env_of(pod_spec(rca_deployment(objs))["containers"][0])
    for name in SECRET_NAMES:
        ref = rca[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] == name
    assert rca["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True  # offline narrative
    assert not rca["RCA_API_TOKEN"]["valueFrom"]["secretKeyRef"].get("optional")
    assert rca["CHROMA_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is False  # in-cluster Chroma needs it
    chroma = env_of(pod_spec(one(objs, "StatefulSet"))["containers"][0])
    assert chroma["CHROMA_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


def test_generated_tokens_when_none_given(rendered):
    secret = one(rendered["default"], "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"RCA_API_TOKEN", "CHROMA_TOKEN"}  # no Anthropic key: offline narrative
    assert all(len(v) >= 32 for v in data.values()) and data["RCA_API_TOKEN"] != data["CHROMA_TOKEN"]


def test_existing_secret_with_custom_keys(chart):
    objs = render(chart, {"secrets": {"existingSecret": "vault-rca", "keys": {
        "anthropicApiKey": "anthropic", "apiToken": "api", "chromaToken": "chroma"}}})
    assert not find(objs, "Secret")
    dep = rca_deployment(objs)
    env = env_of(pod_spec(dep)["containers"][0])
    assert {n: (env[n]["valueFrom"]["secretKeyRef"]["name"], env[n]["valueFrom"]["secretKeyRef"]["key"])
            for n in SECRET_NAMES} == {"ANTHROPIC_API_KEY": ("vault-rca", "anthropic"),
                                       "RCA_API_TOKEN": ("vault-rca", "api"), "CHROMA_TOKEN": ("vault-rca", "chroma")}
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/config" in annotations and "checksum/secret" not in annotations


def test_checksums_roll_pods_on_config_change(chart):
    def checksum(values):
        return rca_deployment(render(chart, values))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum({"analyze": {"mode": "fast"}}) != checksum({"analyze": {"mode": "hybrid"}})
    assert checksum({"analyze": {"mode": "fast"}}) == checksum({"analyze": {"mode": "fast"}})


def test_irsa_annotation(rendered, chart):
    prod = _values("production-values.yaml")
    sa = one(rendered["production"], "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == prod["serviceAccount"]["roleArn"]
    assert sa["metadata"]["name"] == prod["serviceAccount"]["name"]
    # the RCA pods, MLflow (which writes the artifacts to S3) and the retrain job all run as it
    for obj in (rca_deployment(rendered["production"]), one(rendered["production"], "Deployment", component="mlflow"),
                one(rendered["production"], "CronJob")):
        assert pod_spec(obj)["serviceAccountName"] == sa["metadata"]["name"], obj["kind"]
    assert "annotations" not in one(rendered["default"], "ServiceAccount")["metadata"]
    objs = render(chart, {"serviceAccount": {"roleArn": "arn:aws:iam::123456789012:role/x",
                                             "annotations": {"team": "sre"}}})
    assert one(objs, "ServiceAccount")["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x", "team": "sre"}


# -------------------------------------------------------------------------------------------- the RCA service

def test_rca_deployment_runs_the_bento(rendered):
    objs = rendered["default"]
    dep = rca_deployment(objs)
    (c,) = pod_spec(dep)["containers"]
    assert c["image"] == "openstack-rca:0.1.0"  # image.tag empty -> appVersion
    assert "command" not in c and "args" not in c  # the Bento's entrypoint: bentoml serve
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    service_py = (ROOT / "bentos" / "service.py").read_text()
    http_port = int(re.search(r'name="openstack-rca".*?http=\{"port": (\d+)\}', service_py).group(1))
    assert ports == {"http": http_port, "grpc": 8001}
    cm = configmap_data(objs)
    assert cm["RCA_GRPC_PORT"] == str(ports["grpc"])
    assert c["envFrom"] == [{"configMapRef": {"name": one(objs, "ConfigMap")["metadata"]["name"]}}]
    svc = one(objs, "Service", name=RELEASE)
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "http": (3000, "http"), "grpc": (8001, "grpc")}
    assert matches(svc["spec"]["selector"], pod_labels(dep))
    assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    # the Service must not select the Chroma or MLflow pods
    for other in (one(objs, "StatefulSet"), one(objs, "Deployment", component="mlflow")):
        assert not matches(svc["spec"]["selector"], pod_labels(other))


@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_probes_hit_livez_and_readyz(rendered, values_name):
    (c,) = pod_spec(rca_deployment(rendered[values_name]))["containers"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/livez"
    # model + embedding model load take ~30-60 s: the startup probe allows several minutes
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180


def test_configmap_drives_the_real_config(rendered, monkeypatch):
    """The ConfigMap's names are the ones the code reads: load() and ServeSettings see the chart's values."""
    from bentos.settings import ServeSettings
    from openstack_rca.config import load

    cm = configmap_data(rendered["default"])
    for key in ("MLFLOW_TRACKING_URI", "RCA_MODEL_NAME", "RCA_MODEL_ALIAS", "RCA_MODEL_ARTIFACT_LOCATION",
                "AWS_REGION", "CHROMA_HOST", "CHROMA_PORT", "RCA_ANALYZE_MODE", "RCA_ANALYZE_TOP_K",
                "RCA_NARRATIVE_MODEL", "RCA_NARRATIVE_ENABLED", "RCA_SERVE_MAX_BODY_BYTES", "RCA_SERVE_MAX_SCORE_LINES",
                "RCA_SERVE_MAX_ANALYZE_LINES", "RCA_GRPC_PORT", "RCA_HOME", "BENTOML_HOME", "HF_HOME",
                "XDG_CACHE_HOME"):
        assert key in cm, key
    assert cm["HF_HUB_OFFLINE"] == "1"
    assert all(isinstance(v, str) for v in cm.values())
    cfg = load(env=cm)
    assert str(cfg.home) == "/var/lib/openstack-rca"
    assert cfg.model.name == "openstack-rca-lstm" and cfg.model.alias == "champion"
    assert cfg.analyze.mode == "hybrid" and cfg.analyze.top_k == 10
    assert cfg.narrative.enabled is True and cfg.narrative.model == "claude-sonnet-5-5"
    assert cfg.tracking_uri(cm) == f"http://{RELEASE}-mlflow:5000"
    assert cfg.retrieval.host(cm) == f"{RELEASE}-chroma" and cfg.retrieval.port(cm) == 8000
    assert cfg.retrieval.chroma_ssl is False and cm["RCA_RETRIEVAL_CHROMA_SSL"] == "false"
    for key, value in cm.items():  # ServeSettings reads os.environ
        monkeypatch.setenv(key, value)
    s = ServeSettings.from_env()
    assert (s.max_body_bytes, s.max_score_lines, s.max_analyze_lines, s.grpc_port, s.grpc_enabled) == (
        32 * 1024 * 1024, 10_000, 200_000, 8001, True)


def test_production_scaling_pdb_ingress(rendered):
    objs = rendered["production"]
    prod = _values("production-values.yaml")
    dep = rca_deployment(objs)
    assert "replicas" not in dep["spec"]  # the HPA owns it
    assert prod["replicaCount"] >= 3
    hpa = one(objs, "HorizontalPodAutoscaler", name=RELEASE)  # the scorer, apart in production, has its own
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] >= 3 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["minAvailable"] == 2
    assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels(dep))
    spread = pod_spec(dep)["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert all(matches(s["labelSelector"]["matchLabels"], pod_labels(dep)) for s in spread)
    assert pod_spec(dep)["containers"][0]["resources"]["requests"]["cpu"] == "2"
    ing = one(objs, "Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "openstack-rca-tls", "hosts": ["rca.example.com"]}]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": one(objs, "Service", name=RELEASE)["metadata"]["name"], "port": {"name": "http"}}
    assert not find(objs, "Secret")  # existingSecret
    assert find(objs, "ServiceMonitor")
    assert one(objs, "Deployment", component="mlflow")  # in-cluster MLflow with S3 artifacts
    assert pod_spec(dep)["containers"][0]["image"] == prod["image"]["repository"] + ":" + prod["image"]["tag"]


def test_pdb_max_unavailable(chart):
    objs = render(chart, {"replicaCount": 3, "podDisruptionBudget": {"enabled": True, "minAvailable": None,
                                                                     "maxUnavailable": "34%"}})
    assert one(objs, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": "34%", "selector": {"matchLabels": rca_deployment(objs)["spec"]["selector"]["matchLabels"]}}


def test_default_single_replica(rendered):
    assert rca_deployment(rendered["default"])["spec"]["replicas"] == 1


# ------------------------------------------------------------------------------------------------------- Chroma

def test_chroma_statefulset(rendered):
    objs = rendered["production"]
    sts = one(objs, "StatefulSet")
    spec = pod_spec(sts)
    (c,) = spec["containers"]
    assert c["command"] == ["python", "-m", "retrieval_service", "--path", "/data", "--host", "0.0.0.0",
                            "--port", "8000", "--internal-port", "8010"]
    assert c["image"] == rca_deployment(objs)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert c["workingDir"] == "/home/bentoml/bento/src"  # where the Bento keeps retrieval_service
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/api/v2/heartbeat", "port": "http"}
    assert {"mountPath": "/data", "name": "data"} in c["volumeMounts"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "gp3"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    headless = one(objs, "Service", name=f"{RELEASE}-chroma-headless")
    assert headless["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == headless["metadata"]["name"]
    svc = one(objs, "Service", name=f"{RELEASE}-chroma")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["ports"][0]["port"] == 8000
    for s in (headless, svc):
        assert matches(s["spec"]["selector"], pod_labels(sts))
    assert configmap_data(objs)["CHROMA_HOST"] == svc["metadata"]["name"]
    assert configmap_data(objs)["CHROMA_PORT"] == "8000"


def _policy_admits(policy: dict, labels: dict, port: int) -> bool:
    for rule in policy["spec"]["ingress"]:
        if port not in {p["port"] for p in rule["ports"]}:
            continue
        for peer in rule["from"]:
            if set(peer) == {"podSelector"} and matches(peer["podSelector"]["matchLabels"], labels):
                return True
    return False


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_network_policies_admit_only_this_releases_pods(rendered, values_name):
    objs = rendered[values_name]
    sts = one(objs, "StatefulSet")
    mlflow = one(objs, "Deployment", component="mlflow")
    rca = pod_labels(rca_deployment(objs))
    retrain = {**rca, "app.kubernetes.io/component": "retrain"}
    other_release = {**rca, "app.kubernetes.io/instance": "someone-else"}
    for target, port in ((sts, 8000), (mlflow, 5000)):
        policy = one(objs, "NetworkPolicy", name=target["metadata"]["name"])
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert matches(policy["spec"]["podSelector"]["matchLabels"], pod_labels(target))
        assert not matches(policy["spec"]["podSelector"]["matchLabels"], rca)
        (rule,) = policy["spec"]["ingress"]
        assert [p["port"] for p in rule["ports"]] == [port]
        # only pod selectors in this namespace: no namespaceSelector, no ipBlock
        assert all(set(peer) == {"podSelector"} for peer in rule["from"]), rule["from"]
        assert _policy_admits(policy, rca, port) and _policy_admits(policy, retrain, port)
        for stranger in (other_release, pod_labels(target), {"app": "anything"},
                         {**rca, "app.kubernetes.io/component": "test"}, pod_labels(sts), pod_labels(mlflow)):
            if stranger in (rca, retrain):
                continue
            assert not _policy_admits(policy, stranger, port), (target["metadata"]["name"], stranger)
        assert not _policy_admits(policy, rca, port + 1)


def test_rca_ingress_policy(rendered):
    objs = rendered["production"]
    policy = one(objs, "NetworkPolicy", name=RELEASE)
    assert matches(policy["spec"]["podSelector"]["matchLabels"], pod_labels(rca_deployment(objs)))
    assert _policy_admits(policy, pod_labels(one(objs, "Pod", component="test")), 3000)
    (rule,) = policy["spec"]["ingress"]
    # with the scorer apart (production) gRPC is served by the scorer's pods, not the RCA pods
    assert {p["port"] for p in rule["ports"]} == {3000}
    namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
                  if "namespaceSelector" in p]
    assert namespaces == ["ingress-nginx", "monitoring"]


# ------------------------------------------------------------------------------------------------------- MLflow

def test_mlflow_server(rendered, chart):
    objs = rendered["production"]
    dep = one(objs, "Deployment", component="mlflow")
    (c,) = pod_spec(dep)["containers"]
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ml"]
    mlflow_pin = next(p.split("==")[1] for p in pins if p.startswith("mlflow=="))
    assert c["image"] == f"ghcr.io/mlflow/mlflow:v{mlflow_pin}-full"  # the -full image carries boto3
    cmd = c["command"]
    assert cmd[:2] == ["mlflow", "server"] and "--serve-artifacts" in cmd
    arg = lambda flag: cmd[cmd.index(flag) + 1]  # noqa: E731
    assert (arg("--host"), arg("--port")) == ("0.0.0.0", "5000")
    assert arg("--artifacts-destination") == "s3://acme-openstack-rca-mlflow/mlflow"
    assert arg("--backend-store-uri") == "$(MLFLOW_BACKEND_STORE_URI)"
    assert env_of(c)["MLFLOW_BACKEND_STORE_URI"]["value"] == "sqlite:////mlflow/mlflow.db"
    allowed = arg("--allowed-hosts").split(",")
    assert f"{RELEASE}-mlflow:5000" in allowed and f"{RELEASE}-mlflow.{NS}.svc.cluster.local:5000" in allowed
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert dep["spec"]["strategy"]["type"] == "Recreate"  # sqlite on a ReadWriteOnce volume
    svc = one(objs, "Service", name=f"{RELEASE}-mlflow")
    assert matches(svc["spec"]["selector"], pod_labels(dep))
    assert configmap_data(objs)["MLFLOW_TRACKING_URI"] == f"http://{svc['metadata']['name']}:5000"
    # a database URI with a password comes from a Secret; without a bucket the artifacts stay on the PVC
    objs = render(chart, {"mlflow": {"backendStore": {"existingSecret": "mlflow-db"},
                                     "persistence": {"enabled": True}}})
    (c,) = pod_spec(one(objs, "Deployment", component="mlflow"))["containers"]
    assert env_of(c)["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlflow-db", "key": "MLFLOW_BACKEND_STORE_URI"}
    assert c["command"][c["command"].index("--artifacts-destination") + 1] == "/mlflow/artifacts"


# ----------------------------------------------------------------------------------------------------- external

def test_external_chroma_and_mlflow(rendered):
    objs = rendered["external"]
    ext = _values("external-values.yaml")
    assert not find(objs, "StatefulSet")
    assert [d["metadata"]["name"] for d in find(objs, "Deployment")] == [RELEASE]
    assert not find(objs, "PersistentVolumeClaim") and not find(objs, "NetworkPolicy")
    assert not [o for o in objs if o["kind"] == "Service" and "chroma" in o["metadata"]["name"]]
    cm = configmap_data(objs)
    assert cm["CHROMA_HOST"] == ext["chroma"]["external"]["host"]
    assert cm["CHROMA_PORT"] == str(ext["chroma"]["external"]["port"])
    assert cm["MLFLOW_TRACKING_URI"] == ext["mlflow"]["external"]["trackingUri"]
    env = env_of(pod_spec(rca_deployment(objs))["containers"][0])
    assert env["CHROMA_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True  # an external Chroma may have none


def test_external_host_wins_over_enabled(chart):
    objs = render(chart, {"chroma": {"enabled": True, "external": {"host": "10.0.0.5", "port": 9000}},
                          "mlflow": {"enabled": True, "external": {"trackingUri": "http://mlflow.corp:5000"}}})
    assert not find(objs, "StatefulSet") and not find(objs, "Deployment", component="mlflow")
    cm = configmap_data(objs)
    assert (cm["CHROMA_HOST"], cm["CHROMA_PORT"], cm["MLFLOW_TRACKING_URI"]) == (
        "10.0.0.5", "9000", "http://mlflow.corp:5000")


# ------------------------------------------------------------------------------------------------------ retrain

def _check_retrain(cron: dict, s3_uri: str) -> None:
    spec = pod_spec(cron)
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (init,) = spec["initContainers"]
    assert init["command"][:3] == ["aws", "s3", "sync"] and init["command"][-2:] == [s3_uri, "/data/logs"]
    (train,) = spec["containers"]
    # the served alias moves only through `rca train`'s promotion gate: no --promote, no other alias
    assert train["command"] == ["rca", "train", "--logs", "/data/logs", "--json"]  # the image's entry point
    assert train["workingDir"] == "/home/bentoml/bento/src"
    assert {"name": "logs", "mountPath": "/data/logs", "readOnly": True} in train["volumeMounts"]
    logs = next(v for v in spec["volumes"] if v["name"] == "logs")
    assert "emptyDir" in logs
    assert spec["restartPolicy"] == "Never"


def test_retrain_cronjob_in_chart(rendered, chart):
    assert not find(rendered["default"], "CronJob")
    objs = rendered["production"]
    cron = one(objs, "CronJob")
    _check_retrain(cron, "s3://acme-openstack-rca-logs/normal/")
    assert pod_labels(cron)["app.kubernetes.io/component"] == "retrain"
    # training runs in the training image (TensorFlow); the serving image has none
    repo, tag = rca_deployment(objs)["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)
    assert pod_spec(cron)["containers"][0]["image"] == f"{repo}-train:{tag}"
    assert pod_spec(cron)["containers"][0]["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-config"}}]
    assert "MLFLOW_TRACKING_URI" in configmap_data(objs)
    assert configmap_data(objs)["RCA_MODEL_ALIAS"] == "champion"  # the alias the gate moves is the served one
    assert env_of(pod_spec(cron)["containers"][0])["RCA_MODEL_PROMOTION_TOLERANCE"]["value"] == "0.02"
    # training needs no API, Chroma or Anthropic secret
    assert not any("secretKeyRef" in json.dumps(c) for c in containers(pod_spec(cron)))
    assert "Forbid" == cron["spec"]["concurrencyPolicy"]


def test_standalone_retrain_cronjob(rendered):
    (cron,) = [d for d in yaml.safe_load_all((K8S / "retrain-cronjob.yaml").read_text()) if d]
    for version in K8S_VERSIONS:
        kv.validate(cron, version, strict=True)
    _check_retrain(cron, "s3://LOGS_BUCKET/LOGS_PREFIX/")
    spec = pod_spec(cron)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in containers(spec):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
    env = env_of(spec["containers"][0])
    assert env["MLFLOW_TRACKING_URI"]["value"] == f"http://{RELEASE}-mlflow:5000"
    assert (env["RCA_MODEL_ALIAS"]["value"], env["RCA_MODEL_PROMOTION_TOLERANCE"]["value"]) == ("champion", "0.01")
    # the chart's policies admit it (release openstack-rca), and it runs as the chart's IRSA ServiceAccount
    prod = rendered["production"]
    for name, port in ((f"{RELEASE}-chroma", 8000), (f"{RELEASE}-mlflow", 5000)):
        assert _policy_admits(one(prod, "NetworkPolicy", name=name), pod_labels(cron), port)
    assert spec["serviceAccountName"] == one(prod, "ServiceAccount")["metadata"]["name"]


# ---------------------------------------------------------------------------------------------------- helm test

@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_helm_test_hook(rendered, values_name):
    objs = rendered[values_name]
    pod = one(objs, "Pod", component="test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["metadata"]["__template"].endswith("templates/tests/test-readyz.yaml")
    (c,) = pod["spec"]["containers"]
    script = " ".join(c["command"])
    assert "/readyz" in script and "/livez" in script and "401" in script
    url = env_of(c)["RCA_URL"]["value"]
    svc = one(objs, "Service", name=RELEASE)
    assert url == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}"
    assert c["image"] == pod_spec(rca_deployment(objs))["containers"][0]["image"]  # no extra image to pull
    assert pod["spec"]["restartPolicy"] == "Never"


class _Stub:
    """A loopback HTTP server answering like the service: {path: status}."""

    def __init__(self, answers: dict[str, int]):
        import http.server
        import threading

        answers_ = answers

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(answers_.get(self.path, 404))
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("answers,ok", [
    ({"/livez": 200, "/readyz": 200, "/analyze": 401}, True),
    ({"/livez": 200, "/readyz": 503, "/analyze": 401}, False),  # no model loaded
    ({"/livez": 200, "/readyz": 200, "/analyze": 200}, False),  # the API answers without a token
])
def test_helm_test_script_runs(rendered, answers, ok):
    """The hook's Python, run for real against a loopback stand-in for the service."""
    import subprocess
    import sys

    (c,) = one(rendered["default"], "Pod", component="test")["spec"]["containers"]
    assert c["command"][:2] == ["python", "-c"]
    script = "import time; time.sleep = lambda s: None\n" + c["command"][2]  # no 2 s waits between retries
    stub = _Stub(answers)
    try:
        proc = subprocess.run([sys.executable, "-c", script], env={"RCA_URL": stub.url, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)
    finally:
        stub.close()
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    assert "GET /readyz: " in proc.stdout


def test_notes(chart):
    notes = chart.render(_values("production-values.yaml"), name=RELEASE, namespace=NS)[
        "openstack-rca/templates/NOTES.txt"]
    for needle in ("port-forward svc/openstack-rca", "helm test openstack-rca", "Authorization: Bearer",
                   "secret openstack-rca-secrets", "/analyze", "8001", "tritonclient", "https://rca.example.com"):
        assert needle in notes, needle


# ------------------------------------------------------------------------------------------------- bad values

BAD_VALUES = [
    ({"analyze": {"mode": "turbo"}}, "/analyze/mode", "'hybrid', 'fast'"),
    ({"replicaCount": -1}, "/replicaCount", "minimum"),
    ({"replicaCounts": 3}, "additional properties 'replicaCounts'", "not allowed"),
    ({"service": {"port": "abc"}}, "/service/port", "want integer"),
    ({"analyze": {"topK": 500}}, "/analyze/topK", "maximum"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "IfNotPresent"),
    ({"serviceAccount": {"roleArn": "my-role"}}, "/serviceAccount/roleArn", "does not match"),
    ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser", "minimum"),
    ({"artifacts": {"bucket": "s3://my-bucket"}}, "/artifacts/bucket", "does not match"),
    ({"chroma": {"external": {"host": "http://chroma:8000"}}}, "/chroma/external/host", "does not match"),
    ({"retrain": {"enabled": True}}, "/retrain/logs/s3Uri", "minLength"),
    ({"retrain": {"promotionTolerance": 1.5}}, "/retrain/promotionTolerance", "exclusiveMaximum"),
    ({"extraEnv": {"RCA_API_TOKEN": "x"}}, "RCA_API_TOKEN", "propertyName"),
    ({"ingress": {"hosts": [{"host": "a.example.com", "paths": [{"path": "/", "pathType": "Wildcard"}]}]}},
     "/ingress/hosts/0/paths/0/pathType", "Prefix"),
    ({"k8sLogs": {"namespaces": ["OpenStack"]}}, "/k8sLogs/namespaces/0", "does not match"),
    ({"corpora": {"store": "/var/lib/corpora"}}, "/corpora/store", "does not match"),
    ({"observability": {"logFormat": "yaml"}}, "/observability/logFormat", "must be one of"),
]


@pytest.mark.parametrize("values,field,hint", BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_schema_refuses_bad_values(chart, values, field, hint):
    msg = helm_error(chart, values)
    assert "don't meet the specifications of the schema" in msg
    assert field in msg and hint in msg, msg
    report = helm.lint(CHART, values, namespace=NS)
    assert any(field in e for e in report["errors"]), report


@pytest.mark.parametrize("values,needle", [
    ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}, "maxReplicas must be >= "),
    ({"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}}, "not both"),
    ({"mlflow": {"persistence": {"enabled": False}}}, "set artifacts.bucket"),
])
def test_template_guards(chart, values, needle):
    with pytest.raises(helm.HelmRenderError) as err:
        chart.render(values, name=RELEASE, namespace=NS)
    assert needle in str(err.value)


# ----------------------------------------------------------------------------- pod logs (rca ingest --k8s): RBAC

def test_pod_log_rbac_is_off_by_default(rendered):
    for values_name, objs in rendered.items():
        assert not find(objs, "Role") and not find(objs, "RoleBinding"), values_name


def test_pod_log_rbac_reads_pods_and_logs_only(chart):
    """k8sLogs.namespaces: a Role per namespace with get/list on pods and get on pods/log, exactly, bound to the
    chart's ServiceAccount in the release's namespace; valid for every Kubernetes version the chart supports."""
    values = {"k8sLogs": {"namespaces": ["openstack", "openstack-infra"]}}
    objs = render(chart, values)
    roles, bindings = find(objs, "Role"), find(objs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["openstack", "openstack-infra"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["openstack", "openstack-infra"]
    sa = one(objs, "ServiceAccount")["metadata"]["name"]
    for role in roles:
        assert all(rule["apiGroups"] == [""] and set(rule) == {"apiGroups", "resources", "verbs"}
                   for rule in role["rules"]), role["rules"]
        grants = sorted((res, verb) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"])
        assert grants == [("pods", "get"), ("pods", "list"), ("pods/log", "get")]
        assert role["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    for binding in bindings:
        role = next(r for r in roles if r["metadata"]["namespace"] == binding["metadata"]["namespace"])
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": role["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NS}]
    for obj in roles + bindings:
        for version in K8S_VERSIONS:
            kv.validate(clean(obj), version, strict=True)
    report = helm.lint(CHART, values, strict=True, namespace=NS, kube_version="v" + K8S_VERSIONS[0])
    assert report["errors"] == [], report
    # an existing ServiceAccount (serviceAccount.create false) is the one bound
    objs = render(chart, {**values, "serviceAccount": {"create": False, "name": "ops-reader"}})
    assert {b["subjects"][0]["name"] for b in find(objs, "RoleBinding")} == {"ops-reader"}
    # the RCA pods, and only they, mount the token the Role is bound to
    objs = render(chart, values)
    pods = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objs if o["kind"] == "Deployment"}
    assert pods[RELEASE]["automountServiceAccountToken"] is True
    assert all(spec["automountServiceAccountToken"] is False for name, spec in pods.items() if name != RELEASE)


# ------------------------------------------------------------------------------------------------------ k8s/ (EKS)

def test_eksctl_cluster_config():
    cfg = yaml.safe_load((K8S / "eksctl-cluster.yaml").read_text())
    assert cfg["apiVersion"] == "eksctl.io/v1alpha5" and cfg["kind"] == "ClusterConfig"
    assert cfg["iam"]["withOIDC"] is True
    assert cfg["metadata"]["version"] == K8S_VERSIONS[-1].rsplit(".", 1)[0]  # the version validated above
    assert cfg["managedNodeGroups"] and cfg["managedNodeGroups"][0]["minSize"] >= 3
    prod = _values("production-values.yaml")
    (sa,) = cfg["iam"]["serviceAccounts"]
    assert sa["metadata"] == {"name": prod["serviceAccount"]["name"], "namespace": NS}
    assert prod["serviceAccount"]["roleArn"].endswith(":role/" + sa["roleName"])
    assert sa["roleOnly"] is True  # the chart creates the ServiceAccount itself
    assert any(p.endswith(":policy/openstack-rca-s3") for p in sa["attachPolicyARNs"])
    addons = {a["name"]: a for a in cfg["addons"]}
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert "aws-ebs-csi-driver" in addons


def test_iam_policy_is_least_privilege():
    policy = json.loads((K8S / "iam-policy-s3.json").read_text())
    assert policy["Version"] == "2012-10-17"
    stmts = {s["Sid"]: s for s in policy["Statement"]}
    for s in stmts.values():
        assert s["Effect"] == "Allow"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        assert all(a.startswith("s3:") and "*" not in a for a in actions), s
        assert "*" not in s["Resource"].replace("/PREFIX/*", "").replace("/LOGS_PREFIX/*", "")\
            .replace("/CORPORA_PREFIX/*", ""), s
    lst = stmts["ListMlflowArtifactPrefix"]
    assert lst["Action"] == "s3:ListBucket" and lst["Resource"] == "arn:aws:s3:::BUCKET"
    assert lst["Condition"]["StringLike"]["s3:prefix"] == ["PREFIX", "PREFIX/*"]
    rw = stmts["ReadWriteMlflowArtifacts"]
    assert sorted(rw["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert rw["Resource"] == "arn:aws:s3:::BUCKET/PREFIX/*"
    assert stmts["ReadTrainingLogs"]["Action"] == "s3:GetObject"  # logs: read only
    # corpora in S3 (RCA_CORPUS_STORE): objects under their prefix only; the conditional writes that publish
    # a version and take a writer's lease are plain PutObject/DeleteObject with If-Match / If-None-Match
    assert sorted(stmts["ReadWriteCorpora"]["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert stmts["ReadWriteCorpora"]["Resource"] == "arn:aws:s3:::CORPORA_BUCKET/CORPORA_PREFIX/*"
    assert stmts["ListCorpora"]["Condition"]["StringLike"]["s3:prefix"] == ["CORPORA_PREFIX", "CORPORA_PREFIX/*"]


def test_corpora_in_s3_reach_every_pod(chart, rendered):
    """Off by default (each pod's RCA_HOME); set, every pod reads the same bucket, and load() picks the S3 store."""
    from openstack_rca.config import load

    assert "RCA_CORPUS_STORE" not in configmap_data(rendered["default"])
    objs = render(chart, {"corpora": {"store": "s3://my-bucket/rca/corpora"},
                          "aws": {"region": "eu-west-1", "s3EndpointUrl": "http://minio:9000"}})
    cm = configmap_data(objs)
    assert cm["RCA_CORPUS_STORE"] == "s3://my-bucket/rca/corpora" and cm["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert load(env=cm).store.url == "s3://my-bucket/rca/corpora"


def test_storage_class():
    sc = yaml.safe_load((K8S / "storageclass-gp3.yaml").read_text())
    for version in K8S_VERSIONS:
        kv.validate(sc, version, strict=True)
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["parameters"]["encrypted"] == "true"
    prod = _values("production-values.yaml")
    assert prod["chroma"]["persistence"]["storageClass"] == prod["mlflow"]["persistence"]["storageClass"] == \
        sc["metadata"]["name"]


def test_kserve_inferenceservice():
    """k8s/kserve-inferenceservice.yaml. kubernetes-validate knows no CRDs (InferenceService is one), so the
    KServe keys are checked by hand; the predictor's pod part (containers, volumes, securityContext, account) is a
    core PodSpec and is validated as one, strictly."""
    isvc = yaml.safe_load((K8S / "kserve-inferenceservice.yaml").read_text())
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert set(isvc) == {"apiVersion", "kind", "metadata", "spec"} and set(isvc["spec"]) == {"predictor"}
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    pred = copy.deepcopy(isvc["spec"]["predictor"])
    assert 1 <= pred.pop("minReplicas") <= pred.pop("maxReplicas")
    (c,) = pred["containers"]
    assert c["name"] == "kserve-container" and "command" not in c and "args" not in c  # the Bento's entrypoint
    assert {(p["name"], p["containerPort"]) for p in c["ports"]} == {("http", 3000), ("h2c", 8001)}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 3000}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 3000}
    env = env_of(c)
    assert env["RCA_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "openstack-rca-secrets",
                                                                 "key": "RCA_API_TOKEN"}
    assert env["RCA_GRPC_PORT"]["value"] == "8001"
    assert not any("value" in e and n in SECRET_NAMES for n, e in env.items())  # secrets only from the Secret
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kserve-predictor"}, "spec": pred}
    for version in K8S_VERSIONS:
        kv.validate(pod, version, strict=True)
    # the probe paths are the ones the HTTP guard leaves open (probes carry no token)
    guard = pytest.importorskip("bentos.http_guard", reason="the serve extra (starlette, pydantic) is not installed")
    assert {"/v2/health/ready", "/v2/health/live"} <= guard.OPEN_PATHS


def test_prometheus_rule_alerts_on_errors_latency_and_no_model(chart, rendered):
    """Off by default; on, three alerts whose PromQL parses and reads the metrics the service exports, scoped to
    this release's scrape job."""
    promql = pytest.importorskip("promql_parser")
    assert not [o for o in rendered["default"] if o["kind"] == "PrometheusRule"]
    objs = render(chart, {"serviceMonitor": {"enabled": True},
                          "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"},
                                             "errorRatio": 0.02, "p95Seconds": 12}})
    rule = one(objs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {"RCAHighErrorRate", "RCAAnalyzeLatencyHigh", "RCAModelNotReady"}
    for r in alerts.values():
        promql.parse(r["expr"])  # raises on invalid PromQL
        assert f'namespace="{NS}"' in r["expr"] and f'job="{RELEASE}"' in r["expr"]
        assert r["for"] == "10m" and r["labels"]["severity"] == "warning" and r["annotations"]["summary"]
    assert 'rca_requests_total{' in alerts["RCAHighErrorRate"]["expr"] and '"5.."' in alerts["RCAHighErrorRate"]["expr"]
    assert alerts["RCAHighErrorRate"]["expr"].rstrip().endswith("> 0.02")
    assert "histogram_quantile(0.95" in alerts["RCAAnalyzeLatencyHigh"]["expr"] and "rca_analyze_seconds_bucket" in \
        alerts["RCAAnalyzeLatencyHigh"]["expr"] and alerts["RCAAnalyzeLatencyHigh"]["expr"].rstrip().endswith("> 12")
    assert "rca_model_info" in alerts["RCAModelNotReady"]["expr"]
    # the job label Prometheus gives the scraped series is the Service the ServiceMonitor selects
    assert one(objs, "Service", name=RELEASE)


# ------------------------------------------------------------------------------------ the scorer apart (issue 14)

SCORER_APART = {"scorer": {"enabled": True, "autoscaling": {"enabled": True}},
                "networkPolicy": {"rca": {"enabled": True}}}


def test_scorer_is_in_the_rca_pods_by_default(rendered):
    for name, objs in rendered.items():
        if ((_values(VALUE_SETS[name]) or {}).get("scorer") or {}).get("enabled"):
            continue  # production runs it apart (test_production_runs_the_scorer_apart)
        assert not [o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/component") == "scorer"]
        assert "RCA_SCORER_URL" not in env_of(pod_spec(rca_deployment(objs))["containers"][0])


def test_scorer_apart_renders_valid_objects(chart):
    objs = render(chart, SCORER_APART)
    report = helm.lint(CHART, SCORER_APART, strict=True, namespace=NS, kube_version="v" + K8S_VERSIONS[0])
    assert report["errors"] == [], report
    for version in K8S_VERSIONS:
        for obj in objs:
            if (obj["apiVersion"], obj["kind"]) not in CRD_KINDS:
                kv.validate(clean(obj), version, strict=True)
    kinds = {o["kind"] for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/component") == "scorer"}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "NetworkPolicy"}


def test_scorer_deployment_service_hpa_and_the_entry_wiring(chart):
    objs = render(chart, {**SCORER_APART, "scorer": {**SCORER_APART["scorer"], "port": 3100}})
    dep, svc = one(objs, "Deployment", component="scorer"), one(objs, "Service", component="scorer")
    hpa = one(objs, "HorizontalPodAutoscaler", component="scorer")
    labels = pod_labels(dep)
    assert matches(svc["spec"]["selector"], labels) and not matches(svc["spec"]["selector"],
                                                                    pod_labels(rca_deployment(objs)))
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"] and "replicas" not in dep["spec"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    (c,) = pod_spec(dep)["containers"]
    assert c["command"][:3] == ["bentoml", "serve", "bentos.service:Scorer"]
    assert c["command"][c["command"].index("--port") + 1] == "3100"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 3100, "grpc": 8001}
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"http": 3100, "grpc": 8001}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # its own resources, and only the secret it needs (no Anthropic key, no Chroma token)
    assert c["resources"] == yaml.safe_load((CHART / "values.yaml").read_text())["scorer"]["resources"]
    assert c["resources"] != pod_spec(rca_deployment(objs))["containers"][0]["resources"]
    assert set(env_of(c)) == {"RCA_API_TOKEN"}
    # the entry calls the scorer's Service and serves no gRPC itself
    (entry,) = pod_spec(rca_deployment(objs))["containers"]
    url = f"http://{svc['metadata']['name']}:3100"
    assert env_of(entry)["RCA_SCORER_URL"]["value"] == url
    assert [p["name"] for p in entry["ports"]] == ["http"]
    rca_policy = one(objs, "NetworkPolicy", name=RELEASE)
    assert {p["port"] for p in rca_policy["spec"]["ingress"][0]["ports"]} == {3000}
    # the scorer loads the model from MLflow: the MLflow policy lets it in
    mlflow = one(objs, "NetworkPolicy", component="mlflow")
    assert _policy_admits(mlflow, labels, 5000)


def test_scorer_network_policy_admits_only_the_entry(chart):
    objs = render(chart, SCORER_APART)
    dep = one(objs, "Deployment", component="scorer")
    policy = one(objs, "NetworkPolicy", component="scorer")
    scorer, entry = pod_labels(dep), pod_labels(rca_deployment(objs))
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert matches(policy["spec"]["podSelector"]["matchLabels"], scorer)
    assert not matches(policy["spec"]["podSelector"]["matchLabels"], entry)
    (rule,) = policy["spec"]["ingress"]  # no grpcFrom: one rule, HTTP from the entry
    assert rule["ports"] == [{"protocol": "TCP", "port": 3000}]
    assert all(set(peer) == {"podSelector"} for peer in rule["from"])
    assert _policy_admits(policy, entry, 3000)
    for stranger in (scorer, {**entry, "app.kubernetes.io/instance": "someone-else"},
                     {**entry, "app.kubernetes.io/component": "test"}, pod_labels(one(objs, "StatefulSet")),
                     {**entry, "app.kubernetes.io/component": "retrain"}, {"app": "anything"}):
        assert not _policy_admits(policy, stranger, 3000), stranger
    assert not _policy_admits(policy, entry, 8001)  # the entry never calls gRPC
    # gRPC clients only when listed
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "oip-clients"}}}]
    objs = render(chart, {**SCORER_APART, "networkPolicy": {"scorer": {"grpcFrom": peers}}})
    policy = one(objs, "NetworkPolicy", component="scorer")
    assert [(r["from"], [p["port"] for p in r["ports"]]) for r in policy["spec"]["ingress"]][1] == (peers, [8001])


@pytest.mark.parametrize("values, needle", [
    ({"scorer": {"enabled": True, "port": "http"}}, "/scorer/port"),
    ({"scorer": {"enabled": True, "replicas": 2}}, "additional properties 'replicas'"),
    ({"networkPolicy": {"scorer": {"grpcFrom": "everyone"}}}, "/networkPolicy/scorer/grpcFrom"),
])
def test_scorer_values_are_checked(chart, values, needle):
    msg = helm_error(chart, values)
    assert "don't meet the specifications of the schema" in msg and needle in msg, msg


def test_scorer_hpa_guard(chart):
    with pytest.raises(helm.HelmRenderError) as err:
        chart.render({"scorer": {"enabled": True, "autoscaling": {"enabled": True, "minReplicas": 4,
                                                                  "maxReplicas": 2}}}, name=RELEASE, namespace=NS)
    assert "scorer.autoscaling.maxReplicas must be >= scorer.autoscaling.minReplicas" in str(err.value)


def test_traces_and_json_logs_reach_the_pods(chart, rendered):
    """JSON logs by default in the cluster; an OTLP endpoint turns tracing on with BentoML's own configuration."""
    from bentos.observability import tracing_config

    cm = configmap_data(rendered["default"])
    assert cm["RCA_LOG_FORMAT"] == "json" and "RCA_OTLP_ENDPOINT" not in cm and tracing_config(cm) == {}
    cm = configmap_data(render(chart, {"observability": {"otlpEndpoint": "http://otel-collector.obs:4317",
                                                         "traceSampleRate": 0.25}}))
    t = tracing_config(cm)
    assert t["exporter_type"] == "otlp" and t["sample_rate"] == 0.25
    assert t["otlp"] == {"protocol": "grpc", "endpoint": "http://otel-collector.obs:4317", "grpc": {"insecure": True}}
    assert "/metrics" in t["excluded_urls"] and "/readyz" in t["excluded_urls"]


def test_production_runs_the_scorer_apart(rendered):
    """The production values scale the LSTM scorer on its own: a Deployment with its HPA, the RCA pods pointed at
    its Service, and only the RCA pods admitted to it."""
    objs = rendered["production"]
    scorer = one(objs, "Deployment", component="scorer")
    hpa = one(objs, "HorizontalPodAutoscaler", component="scorer")
    assert hpa["spec"]["scaleTargetRef"]["name"] == scorer["metadata"]["name"] and "replicas" not in scorer["spec"]
    svc = one(objs, "Service", component="scorer")
    url = env_of(pod_spec(rca_deployment(objs))["containers"][0])["RCA_SCORER_URL"]["value"]
    assert url == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}"
    policy = one(objs, "NetworkPolicy", component="scorer")
    assert _policy_admits(policy, pod_labels(rca_deployment(objs)), 3000)
