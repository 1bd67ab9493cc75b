"""Offline checks of the Kubernetes manifests in deploy/k8s (no cluster).

- every object validates, in strict mode (unknown fields are errors), against
  the Kubernetes OpenAPI schemas that kubernetes-validate bundles, for the
  oldest version the manifests support (1.30: the preStop `sleep` action) and
  the newest the package ships;
- kustomization.yaml lists every manifest, and every object is in its namespace;
- the ConfigMap's router.yaml passes `switchyard check` (see router_check.py
  for keys the binary may not know yet);
- the objects agree with each other, with the Dockerfile and with the router
  config: probes, ports, the config mount, `--config`, selectors, the HPA's
  target, resources, the security context, graceful shutdown, the Secret's
  keys and the Redis address.

Run through deploy/tests/run.sh, or by hand with SWITCHYARD_BIN set.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from router_check import (
    PENDING_REASON,
    PendingConfigKeys,
    check_or_pending,
    config_env_refs,
    dump,
    env_refs,
    run_check,
    without_pending,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
NAMESPACE = "switchyard"
# Oldest: lifecycle.preStop.sleep is on by default from 1.30. Newest: what
# kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version())]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_objects() -> list[tuple[str, dict]]:
    out = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                out.append((path.name, doc))
    return out


OBJECTS = load_objects()


def obj(kind: str, name: str) -> dict:
    found = [o for _, o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def dockerfile_final_stage() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    last_from = max(i for i, (w, _) in enumerate(instructions) if w == "FROM")
    return instructions[last_from:]


def dockerfile(word: str) -> list[str]:
    return [rest for w, rest in dockerfile_final_stage() if w == word]


@pytest.fixture(scope="module")
def deployment() -> dict:
    return obj("Deployment", "switchyard")


@pytest.fixture(scope="module")
def container(deployment) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="module")
def router_text() -> str:
    return obj("ConfigMap", "switchyard-config")["data"]["router.yaml"]


@pytest.fixture(scope="module")
def router(router_text) -> dict:
    return yaml.safe_load(router_text)


def named_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return match


def duration_seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(value).strip())
    assert m, value
    return float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


# -- schemas ---------------------------------------------------------------------------


def test_there_are_manifests():
    kinds = sorted(o["kind"] for _, o in OBJECTS)
    assert kinds == sorted([
        "Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "Deployment", "Service", "NetworkPolicy",
    ]), kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "source,document", OBJECTS, ids=[f"{f}:{o['kind']}/{o['metadata']['name']}" for f, o in OBJECTS]
)
def test_manifest_matches_the_kubernetes_schema(source, document, version):
    # SchemaNotFoundError (an unknown kind or apiVersion) fails the test too.
    validated = kubernetes_validate.validate(document, version, strict=True)
    assert validated == version


def test_the_schemas_do_reject_mistakes(deployment):
    """Strict validation is not vacuous: a misspelt field, a wrong type, an
    unknown apiVersion each fail."""
    version = KUBERNETES_VERSIONS[-1]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/", "port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)
    broken = copy.deepcopy(obj("HorizontalPodAutoscaler", "switchyard"))
    broken["apiVersion"] = "autoscaling/v3"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_the_schemas_are_bundled():
    """kubernetes-validate reads its schemas from the package, not the network."""
    package = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    for version in KUBERNETES_VERSIONS:
        strict = package / f"v{version}.0-local-strict"
        assert (strict / "deployment-apps-v1.json").is_file(), strict


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == NAMESPACE
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    assert "configMapGenerator" not in kustomization, "a generated ConfigMap restarts pods on every edit"


def test_everything_is_in_the_namespace():
    for source, o in OBJECTS:
        if o["kind"] == "Namespace":
            assert o["metadata"]["name"] == NAMESPACE
        else:
            assert o["metadata"].get("namespace") == NAMESPACE, f"{source}: {o['kind']}/{o['metadata']['name']}"


# -- the router config ---------------------------------------------------------------


def deployment_env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def check_env(router: dict, container: dict) -> dict[str, str]:
    """A value for every variable router.yaml reads, as the Deployment would set it."""
    env = {}
    for name, entry in deployment_env(container).items():
        env[name] = entry.get("value", f"test-value-of-{name}")
    return {name: env[name] for name in config_env_refs(router) if name in env}


def test_every_variable_the_config_reads_is_set(router, container):
    env = deployment_env(container)
    assert config_env_refs(router) >= {"REDIS_URL", "SWITCHYARD_API_KEY", "UPSTREAM_API_KEY"}
    missing = config_env_refs(router) - set(env)
    assert not missing, f"router.yaml reads {sorted(missing)}, which the Deployment does not set"


@pytest.mark.xfail(strict=False, raises=PendingConfigKeys, reason=PENDING_REASON)
def test_configmap_router_yaml_passes_switchyard_check(router, router_text, container):
    check_or_pending(router_text, check_env(router, container))


def test_configmap_router_yaml_without_the_new_keys_passes_switchyard_check(router, container):
    """Everything but `keys`, `state` and `cache.shared` must pass with any
    binary: those alone may wait for a newer one."""
    result = run_check(dump(without_pending(router)), check_env(router, container))
    assert result.returncode == 0, result.stdout + result.stderr


def test_configmap_router_yaml_shares_state_through_redis(router, container):
    redis = router["state"]["redis"]
    assert redis["url"] == "${REDIS_URL}"
    assert redis["on_error"] in ("fail_open", "fail_closed")
    assert router["cache"]["shared"] is True
    assert router["models"]["demo"]["targets"] == [{"upstream": "mock"}]
    assert router["upstreams"]["mock"]["provider"] == "mock"
    # The state file, used only without Redis, is on a writable volume.
    state_dir = str(Path(router["state"]["file"]).parent)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert state_dir in mounts and not mounts[state_dir].get("readOnly")


def test_redis_url_is_the_redis_service(container):
    url = urlsplit(deployment_env(container)["REDIS_URL"]["value"])
    assert url.scheme == "redis"
    service = obj("Service", url.hostname)
    assert url.port in {p["port"] for p in service["spec"]["ports"]}
    redis = obj("Deployment", "redis")
    pod_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_secret_refs_exist(container):
    secrets = {o["metadata"]["name"]: o for _, o in OBJECTS if o["kind"] == "Secret"}
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert refs
    for ref in refs:
        secret = secrets[ref["name"]]
        assert ref["key"] in secret["stringData"], ref
        assert "PLACEHOLDER" in secret["stringData"][ref["key"]], "the example Secret holds placeholders only"


def test_upstream_keys_come_from_the_secret(router, container):
    env = deployment_env(container)
    for name, upstream in router["upstreams"].items():
        if upstream["provider"] == "mock":
            continue
        (var,) = env_refs(upstream["api_key"])
        assert "secretKeyRef" in env[var].get("valueFrom", {}), f"upstreams.{name}.api_key"
    (var,) = env_refs(router["server"]["auth"]["keys"][0])
    assert "secretKeyRef" in env[var].get("valueFrom", {})


# -- the Deployment against the image, the config and the other objects --------------


def test_container_port_is_the_image_port_and_server_listen(container, router):
    exposed = {int(p.split("/")[0]) for rest in dockerfile("EXPOSE") for p in rest.split()}
    ports = {p["containerPort"] for p in container["ports"]}
    assert ports == exposed == {8000}
    assert "SWITCHYARD_LISTEN=0.0.0.0:8000" in " ".join(dockerfile("ENV"))
    assert router["server"]["listen"].rsplit(":", 1)[1] == "8000"
    assert "SWITCHYARD_LISTEN" not in deployment_env(container), "the image's listen address is the port"


def test_probes_point_at_the_health_endpoints(container):
    readiness, liveness = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/health/ready"
    assert liveness["path"] == "/health"
    for probe in (readiness, liveness):
        assert named_port(container, probe["port"]) == 8000
    # The paths are the ones the router serves (README.md's endpoint table).
    readme = (ROOT / "README.md").read_text()
    assert "| `GET /health/ready` |" in readme and "`GET /health`" in readme


def test_config_is_mounted_as_a_directory_at_the_config_path(deployment, container):
    """--config names router.yaml inside the ConfigMap's mount, which is a
    whole-directory mount (no subPath), so the kubelet's `..data` symlink
    swap reaches the pod and the router's directory watcher reloads it."""
    entrypoint = dockerfile("ENTRYPOINT")[-1]
    assert entrypoint == '["/switchyard"]'
    args = container["args"]
    assert "command" not in container, "keep the image's ENTRYPOINT"
    config_path = Path(args[args.index("--config") + 1])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent]
    assert "subPath" not in mount and "subPathExpr" not in mount
    assert mount.get("readOnly") is True
    configmap = volumes[mount["name"]]["configMap"]
    assert "items" not in configmap
    assert config_path.name in obj("ConfigMap", configmap["name"])["data"]


def test_image_and_user(deployment, container):
    assert container["image"] == "switchyard:latest"
    assert container["imagePullPolicy"] == "IfNotPresent"
    (user,) = dockerfile("USER")
    uid, gid = (int(x) for x in user.split(":"))
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]


def test_graceful_shutdown_covers_shutdown_grace(deployment, container, router):
    spec = deployment["spec"]["template"]["spec"]
    grace = duration_seconds(router["server"]["shutdown_grace"])
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] >= pause + grace + 5, (
        "the kubelet would SIGKILL the router before server.shutdown_grace ends"
    )


def test_every_container_has_resources():
    for source, o in OBJECTS:
        if o["kind"] != "Deployment":
            continue
        for c in o["spec"]["template"]["spec"]["containers"]:
            resources = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{source}: {c['name']}"
            assert "memory" in resources.get("limits", {}), f"{source}: {c['name']}"


def test_sizing_cites_the_benchmarks():
    assert "docs/benchmarks.md" in (K8S / "deployment.yaml").read_text()


def test_service_selects_the_deployment(deployment, container):
    service = obj("Service", "switchyard")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for port in service["spec"]["ports"]:
        assert named_port(container, port["targetPort"]) == 8000


def test_hpa_targets_the_deployment(deployment):
    hpa = obj("HorizontalPodAutoscaler", "switchyard")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "switchyard")
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"] == 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    # Utilization is a share of the request, which must therefore be set.
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c["resources"]["requests"]["cpu"]


def test_pdb_selects_the_deployment(deployment):
    pdb = obj("PodDisruptionBudget", "switchyard")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # With the minimum of 2 replicas, a drain still leaves one serving.
    assert pdb["spec"].get("maxUnavailable", 0) == 1 or pdb["spec"].get("minAvailable") == 1


def test_redis_never_evicts_live_limits():
    redis = obj("Deployment", "redis")
    (c,) = redis["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "redis:7-alpine"
    args = c["args"]
    option = lambda name: args[args.index(name) + 1]  # noqa: E731
    assert option("--maxmemory-policy") in ("noeviction", "volatile-ttl")
    assert option("--appendonly") == "no"
    assert option("--maxmemory")
    assert redis["spec"]["strategy"]["type"] == "Recreate"
    assert {p["containerPort"] for p in c["ports"]} == {6379}


def test_networkpolicy_lets_only_switchyard_reach_redis(deployment):
    policy = obj("NetworkPolicy", "redis-from-switchyard")
    redis_labels = obj("Deployment", "redis")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= redis_labels.items()
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert source["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert [p["port"] for p in rule["ports"]] == [6379]


def test_readme_gives_the_apply_command():
    text = (K8S / "README.md").read_text()
    assert "kubectl apply -k deploy/k8s" in text
    for path in manifest_files():
        assert path.name in text, f"deploy/k8s/README.md does not mention {path.name}"
