"""The deployment kit in deploy/ holds together: every file parses, and the pieces reference
each other consistently (what an operator would find out at 3 a.m. otherwise: a service that
depends on one that does not exist, a probe on a route the server lacks, a setting the server
rejects, a PodDisruptionBudget that selects no pod)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _settings_accept(env: dict[str, str], tmp_path: Path) -> None:
    """The server would start with this environment (every key is a real setting); secret
    files stand in with real-looking values."""
    env = dict(env)
    for name in [n for n in env if n.endswith("_FILE")]:
        path = tmp_path / name.lower()
        path.write_text("postgresql://nexgate:pw@db/nexgate" if "DATABASE" in name else "s" * 48)
        env[name] = str(path)
    load_settings(env=env)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def kube() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_compose_has_the_multi_node_layout_and_consistent_references(compose, tmp_path):
    services = compose["services"]
    assert {"postgres", "redis", "worker", "haproxy"} <= set(services)
    nodes = [n for n, s in services.items() if s.get("command") == ["nexgate", "serve"]]
    assert len(nodes) >= 2
    assert services["worker"]["command"] == ["nexgate", "worker"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency in depends:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for secret in service.get("secrets") or ():
            assert secret in compose["secrets"], f"{name} uses undeclared secret {secret}"
        for volume in service.get("volumes") or ():
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
    for node in [*nodes, "worker"]:
        env = {k: str(v) for k, v in services[node]["environment"].items()}
        assert "NEXGATE_AUTH_JWT_SECRET_FILE" in env  # shared secret: required with Redis
        _settings_accept(env, tmp_path)
        assert services[node]["healthcheck"]["test"]


def test_haproxy_balances_the_compose_nodes_and_checks_readiness(compose):
    cfg = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = re.findall(r"(?m)^\s*server (\S+) (\S+):(\d+) check", cfg)
    nodes = {n for n, s in compose["services"].items() if s.get("command") == ["nexgate", "serve"]}
    assert {host for _, host, _ in servers} == nodes
    assert {port for _, _, port in servers} == {"8080"}
    assert "option httpchk GET /readyz" in cfg
    # ... and a fleet that is unready as a whole (a shared dependency down) still serves.
    assert "use_backend nexgate_live if fleet_unready" in cfg
    assert "timeout tunnel" in cfg  # WebSockets outlive the HTTP timeouts
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if Path(haproxy).exists():
        check = subprocess.run(
            [haproxy, "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_kubernetes_manifests_reference_each_other(kube, tmp_path):
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in kube:
        by_kind.setdefault(doc["kind"], []).append(doc)
    for kind in (
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "Ingress",
        "ConfigMap",
        "Secret",
        "Job",
    ):
        assert kind in by_kind, f"no {kind} in deploy/kubernetes"
    configmaps = {d["metadata"]["name"]: d for d in by_kind["ConfigMap"]}
    secrets = {d["metadata"]["name"]: d for d in by_kind["Secret"]}
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert {"nexgate-server", "nexgate-worker"} <= set(deployments)

    pod_specs = [d["spec"]["template"] for d in deployments.values()]
    pod_specs += [j["spec"]["template"] for j in by_kind["Job"]]
    for name, deployment in deployments.items():
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _labels_match(deployment["spec"]["selector"]["matchLabels"], template_labels), name
    for template in pod_specs:
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", ())}
        for container in spec["containers"]:
            env = {}
            for source in container.get("envFrom", ()):
                env.update(configmaps[source["configMapRef"]["name"]]["data"])
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", ())}
            for var in container.get("env", ()):
                env[var["name"]] = var["value"]
                if var["name"].endswith("_FILE"):  # the file is a key of a mounted Secret
                    directory, key = var["value"].rsplit("/", 1)
                    secret = secrets[volumes[mounts[directory]]["secret"]["secretName"]]
                    assert key in secret["stringData"], var
            _settings_accept({k: str(v) for k, v in env.items()}, tmp_path)

    server = deployments["nexgate-server"]
    pod = server["spec"]["template"]
    container = pod["spec"]["containers"][0]
    # Readiness tolerates a Redis outage (every pod has it at once: unready pods would empty the
    # Service); PostgreSQL down or draining still takes a pod out.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz?degraded=ok"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    settings = configmaps["nexgate-config"]["data"]
    drain = float(settings["NEXGATE_SERVER_DRAIN_GRACE_S"]) + float(
        settings["NEXGATE_SERVER_DRAIN_SPREAD_S"]
    )
    assert pod["spec"]["terminationGracePeriodSeconds"] > drain + 10  # + jobs.shutdown_grace_s
    assert server["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    pdb = by_kind["PodDisruptionBudget"][0]
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    port_names = {p["name"] for p in container["ports"]}
    for service in services.values():
        assert _labels_match(service["spec"]["selector"], pod["metadata"]["labels"])
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    for ingress in by_kind["Ingress"]:
        notes = ingress["metadata"]["annotations"]
        assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports


def test_prometheus_scrapes_what_the_pods_announce(kube):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert "nexgate" in jobs and "nexgate-compose" in jobs
    for doc in kube:
        if doc["kind"] != "Deployment":
            continue
        notes = doc["spec"]["template"]["metadata"]["annotations"]
        ports = {
            str(p["containerPort"])
            for p in doc["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/port"] in ports


def test_the_image_declares_its_data_volume_and_checks_the_configured_port():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'VOLUME ["/var/lib/nexgate"]' in dockerfile
    assert "NEXGATE_SERVER_PORT" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert "-c constraints.txt" in dockerfile
    pins = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", p) for p in pins)
    pinned = {p.split("==")[0] for p in pins}
    assert {"aiohttp", "redis", "aiopg", "orjson"} <= pinned
