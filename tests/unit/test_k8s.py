"""The Kubernetes manifests in k8s/: valid for Kubernetes, consistent with each other and the code.

k8s/ is a Kustomize base and two overlays; ``kustomize()`` composes them as ``kubectl apply -k``
would (resources only: no patches are used), since no kustomize binary is installed here. The
checks below run on the dev composition (base + overlays/dev) and, for what only production
has (the operators' resources), on base + overlays/production.

Schema validation uses kubernetes-validate (the Kubernetes JSON schemas, offline); the other
checks need only PyYAML. The gateway's ConfigMap is nginx/render.py's output around
nginx/routes.conf; after changing either, rewrite it with ``python -m tests.unit.test_k8s``.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
import yaml

from scripts.local_secrets import COMPOSE_KEYS
from shared_runtime.registry import SERVICES as REGISTRY

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAYS = {name: K8S / "overlays" / name for name in ("dev", "production")}
GATEWAY_FILE = BASE / "50-gateway.yaml"
NAMESPACE = "ecommerce"
IMAGE = "ghcr.io/example/ecommerce:latest"
# The oldest Kubernetes the manifests are for (preStop `sleep` is on by default from 1.30)
# and the newest whose schemas kubernetes-validate 1.37 bundles.
K8S_VERSIONS = ("1.30", "1.37")
PART_OF = "ecommerce"
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
CLUSTER_KINDS = ("Namespace",)
# Each service's public port (the gateway's upstreams, the probes) and its internal port (the
# other services' calls, Prometheus's scrape of /metrics).
PORT, INTERNAL_PORT = 8000, 8001
# Each service connects as its own role, which owns its database alone; only the migration
# Jobs have the superuser's password (ADMIN_URL), to create those roles and databases.
DB_URL = "postgresql+asyncpg://{role}:$({key})@postgres:5432/{db}"
ADMIN_URL = "postgresql://postgres:$(POSTGRES_PASSWORD)@postgres:5432/postgres"
REDIS_URL = "redis://:$(REDIS_PASSWORD)@redis:6379/0"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|_AUTH$|TOKEN|_KEY$|_SID$")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Doc = dict[str, Any]


class Svc(NamedTuple):
    package: str
    prefix: str
    database: str | None


# The manifests hold every service of the registry, by its host name (user-service).
SERVICES = {s.hostname: Svc(s.name, f"{s.env_prefix}_", s.database) for s in REGISTRY.values()}
AUTOSCALED = {"product-service", "order-service", "payment-service"}
SHARED_ENV = {"AMQP_URL", "JWT_SECRET", "LOG_LEVEL", "ELASTICSEARCH_URL"}
USES_REDIS = {s.hostname for s in REGISTRY.values() if s.uses_redis}
# Every service but user-service checks tokens against it; peers are called on their internal
# port.
_USERS = {"USER_SERVICE_URL": "http://user-service:8001"}
PEER_ENV = {
    "product-service": _USERS,
    "cart-service": {"CART_PRODUCT_SERVICE_URL": "http://product-service:8001", **_USERS},
    "order-service": {"ORDER_CART_SERVICE_URL": "http://cart-service:8001", **_USERS},
    "payment-service": _USERS,
    "notification-service": _USERS,
}
PROVIDER_SECRETS = {
    "payment-service": {"STRIPE_API_KEY"},
    "notification-service": {"SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"},
}
# Never a literal value in a manifest: always a secretKeyRef (the same secrets as compose's).
SECRET_ENV = {
    *COMPOSE_KEYS,
    "REDISCLI_AUTH",
    "RABBITMQ_DEFAULT_PASS",
    *set().union(*PROVIDER_SECRETS.values()),
}
# Keys that optional references may name while the ConfigMap/Secret leaves them out.
OPTIONAL_ABSENT_KEYS = {("ConfigMap", "ecommerce-config", "ELASTICSEARCH_URL")}
STATEFUL = {
    "postgres": ("postgres:16", "/var/lib/postgresql/data"),
    "redis": ("redis:7", "/data"),
    "rabbitmq": ("rabbitmq:3", "/var/lib/rabbitmq"),
}
# The placeholder until the ConfigMap names the shop's own origins.
GATEWAY_CORS_ORIGINS = ["https://shop.example.com"]
GATEWAY_CONFIG_DIR = "/etc/nginx/gateway"
# Whose X-Forwarded-For the gateway takes a client's address from: the Ingress controller's
# pods, by the cluster's pod network (kubeadm's, kind's and minikube's by default; another
# cluster sets its own in the ConfigMap, k8s/README.md, and a rewrite keeps it). Only the
# controller's pods may connect to the gateway (60-network-policies.yaml), so no other pod of
# that range can speak for a client.
GATEWAY_TRUSTED_PROXIES = ["10.244.0.0/16"]
GATEWAY_WORKERS = 2  # the gateway container's CPU limit


# --- loading ---------------------------------------------------------------------------------


def kustomize(directory: Path) -> list[tuple[str, Doc]]:
    """The documents of a kustomization, in the order of its ``resources`` (a directory is
    another kustomization, composed first where it is listed)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization", directory
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}, "resources only"
    docs = []
    for resource in kustomization["resources"]:
        path = (directory / resource).resolve()
        if path.is_dir():
            docs += kustomize(path)
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = kustomize(OVERLAYS["dev"])
PRODUCTION = kustomize(OVERLAYS["production"])


def name_of(doc: Doc) -> str:
    return str(doc["metadata"]["name"])


def doc_id(item: tuple[str, Doc]) -> str:
    file, doc = item
    return f"{file}:{doc['kind']}/{doc['metadata']['name']}"


def of_kind(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == kind}


def workloads() -> list[Doc]:
    return [d for _, d in DOCS if d["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: Doc) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def db_url(svc: Svc) -> str:
    assert svc.database
    return DB_URL.format(
        role=svc.package, key=f"{svc.database.upper()}_DB_PASSWORD", db=svc.database
    )


def secret_keys() -> set[str]:
    """The keys of ecommerce-secrets: made by the command in k8s/README.md (no Secret is
    committed), plus the optional provider keys an operator may add."""
    readme = (K8S / "README.md").read_text()
    command = readme.partition("create secret generic ecommerce-secrets")[2].partition("```")[0]
    made = set(re.findall(r"--from-literal=([A-Z_]+)=", command))
    assert made, "k8s/README.md shows no `kubectl create secret` command"
    return made | set().union(*PROVIDER_SECRETS.values())


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selected_workloads(selector: dict[str, str]) -> list[Doc]:
    return [w for w in workloads() if selects(selector, pod_labels(w))]


def replicas(workload: Doc) -> int:
    hpas = [
        h
        for h in of_kind("HorizontalPodAutoscaler").values()
        if h["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
        and h["spec"]["scaleTargetRef"]["kind"] == workload["kind"]
    ]
    if hpas:
        return int(hpas[0]["spec"].get("minReplicas", 1))
    return int(workload["spec"].get("replicas", 1))


def container_port(container: Doc, port: int | str) -> int | None:
    for p in container.get("ports", []):
        if port in (p.get("name"), p["containerPort"]):
            return int(p["containerPort"])
    return None


def service_deployment(name: str) -> Doc:
    deployment = of_kind("Deployment").get(name)
    assert deployment is not None, f"no Deployment {name}"
    return deployment


def main_container(workload: Doc) -> Doc:
    assert len(pod_spec(workload)["containers"]) == 1
    return pod_spec(workload)["containers"][0]


def python_module(container: Doc) -> str | None:
    command = container.get("command", [])
    if command[:2] == ["python", "-m"] and len(command) == 3:
        return command[2]
    return None


# --- the gateway's nginx configuration -------------------------------------------------------


def current_cors_origins() -> list[str]:
    """The origins in the ConfigMap's nginx.conf: set there, kept by a rewrite."""
    text = GATEWAY_FILE.read_text() if GATEWAY_FILE.exists() else ""
    return re.findall(r'^ *"([^"]+)" \$http_origin;$', text, re.M) or GATEWAY_CORS_ORIGINS


def current_trusted_proxies() -> list[str]:
    """The gateway's trusted proxies in the ConfigMap's nginx.conf: set there, kept by a rewrite."""
    text = GATEWAY_FILE.read_text() if GATEWAY_FILE.exists() else ""
    return re.findall(r"^ *set_real_ip_from (\S+);$", text, re.M) or GATEWAY_TRUSTED_PROXIES


def gateway_files() -> dict[str, str]:
    """What the gateway ConfigMap holds: nginx/render.py's container config with the Services'
    names as upstreams (cluster IPs are stable, so no run-time resolver), and routes.conf."""
    from nginx.render import render_conf

    conf = render_conf(
        listen="8080",
        upstreams={s.package: [f"{name}:{PORT}"] for name, s in SERVICES.items()},
        routes=f"{GATEWAY_CONFIG_DIR}/routes.conf",
        run_dir=None,
        container=True,
        cors_origins=current_cors_origins(),
        # The Ingress controller in front: its X-Forwarded-For names the client.
        real_ip_from=current_trusted_proxies(),
    )
    # "auto" would start one worker per CPU of the node, whatever the container's limit.
    conf = conf.replace("worker_processes auto;", f"worker_processes {GATEWAY_WORKERS};")
    routes = (ROOT / "nginx" / "routes.conf").read_text().replace("@LISTEN@", "8080")
    return {"nginx.conf": conf, "routes.conf": routes}


def write_gateway_config() -> None:
    """Rewrite the data of the ConfigMap (the first document of 50-gateway.yaml, data last)."""
    text = GATEWAY_FILE.read_text()
    head, sep, rest = text.partition("\ndata:\n")
    _, sep2, tail = rest.partition("\n---\n")
    assert sep and sep2, "50-gateway.yaml: expected the ConfigMap first, its data last"
    data = ""
    for key, content in gateway_files().items():
        body = "".join(f"    {line}" if line.strip() else "\n" for line in content.splitlines(True))
        data += f"  {key}: |\n{body}"
    GATEWAY_FILE.write_text(f"{head}\ndata:\n{data}---\n{tail}")


OBSERVABILITY_FILE = BASE / "70-observability.yaml"
# ConfigMap -> key -> the file of observability/ it holds
OBSERVABILITY_DATA = {
    "prometheus-rules": {"alerts.yml": ROOT / "observability" / "alerts.yml"},
    "alertmanager-config": {"alertmanager.yml": ROOT / "observability" / "alertmanager.yml"},
}


def write_observability_config() -> None:
    """Rewrite the data of the ConfigMaps of 70-observability.yaml from observability/."""
    documents = OBSERVABILITY_FILE.read_text().split("\n---\n")
    for index, document in enumerate(documents):
        for name, files in OBSERVABILITY_DATA.items():
            if f"kind: ConfigMap\nmetadata:\n  name: {name}\n" not in document:
                continue
            head, sep, _ = document.partition("\ndata:")
            assert sep, f"{name}: expected its data last"
            data = ""
            for key, path in files.items():
                body = "".join(
                    f"    {line}" if line.strip() else "\n"
                    for line in path.read_text().splitlines(True)
                )
                data += f"  {key}: |\n{body}"
            documents[index] = f"{head}\ndata:\n{data.rstrip(chr(10))}"
    OBSERVABILITY_FILE.write_text("\n---\n".join(documents))


# --- every document --------------------------------------------------------------------------


def test_every_kustomization_lists_every_manifest_of_its_directory():
    for directory in [BASE, *OVERLAYS.values()]:
        listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        files = {p.name for p in directory.glob("*.y*ml")} - {"kustomization.yaml"}
        assert {r for r in listed if not r.startswith("..")} == files, directory
        assert all((directory / r).exists() for r in listed), directory
    assert not list(K8S.glob("*.y*ml")), "manifests belong in base/ or an overlay"


def test_files_are_numbered_and_documents_well_formed():
    names = [p.name for p in sorted(BASE.glob("*.y*ml"))] + [
        p.name for p in sorted(OVERLAYS["dev"].glob("*.y*ml"))
    ]
    names.remove("kustomization.yaml")
    names.remove("kustomization.yaml")
    assert names, "no manifests in k8s/"
    assert all(re.fullmatch(r"\d\d-[a-z0-9-]+\.yaml", n) for n in names), names
    assert DOCS[0][1]["kind"] == "Namespace" and DOCS[0][1]["metadata"]["name"] == NAMESPACE
    seen = set()
    for item in DOCS:
        _, doc = item
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{doc_id(item)} twice"
        seen.add(key)
        if doc["kind"] not in CLUSTER_KINDS:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc_id(item)
    # Pods that are not non-root, seccomp-confined, without privileges are refused.
    labels = of_kind("Namespace")[NAMESPACE]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_validates_against_the_kubernetes_schema(version):
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed: add it to the dev dependency group",
    )
    errors = []
    for item in DOCS:
        try:
            validated = kv.validate(item[1], version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{doc_id(item)}: {path}: {e.message}")
        except kv.SchemaNotFoundError as e:
            errors.append(f"{doc_id(item)}: {e.message}")
        else:
            assert validated == version
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("item", DOCS, ids=doc_id)
def test_labels_are_consistent(item):
    _, doc = item
    if doc["kind"] in CLUSTER_KINDS:
        return
    labels = doc["metadata"].get("labels", {})
    assert all(label in labels for label in LABELS), doc_id(item)
    assert labels["app.kubernetes.io/part-of"] == PART_OF
    if doc["kind"] in WORKLOAD_KINDS:
        assert pod_labels(doc) == labels, "pods carry their workload's labels"
        if doc["kind"] != "Job":
            assert doc["spec"]["selector"]["matchLabels"] == {
                "app.kubernetes.io/name": labels["app.kubernetes.io/name"],
                "app.kubernetes.io/part-of": PART_OF,
            }


@pytest.mark.parametrize("workload", workloads(), ids=name_of)
def test_pods_meet_the_restricted_pod_security_standard(workload):
    spec = pod_spec(workload)
    pod_sc = spec.get("securityContext", {})
    assert spec.get("automountServiceAccountToken") is False
    # No <SERVICE>_PORT=tcp://... variables next to the services' own USER_PORT and the like.
    assert spec.get("enableServiceLinks") is False
    for c in containers(workload):
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, c["name"]
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, c["name"]
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", c["name"]
        assert sc.get("allowPrivilegeEscalation") is False, c["name"]
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
        assert "add" not in sc.get("capabilities", {}), c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]


# --- the six services ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_service_deployment_runs_the_service_with_probes_and_limits(name):
    deployment = service_deployment(name)
    svc = SERVICES[name]
    container = main_container(deployment)
    assert container["image"] == IMAGE
    assert python_module(container) == svc.package
    assert container.get("args", ["serve"]) == ["serve"]
    assert container_port(container, "http") == PORT
    assert container_port(container, "internal") == INTERNAL_PORT

    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert container_port(container, http["port"]) == PORT, probe
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == "/health"

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    pod_sc = pod_spec(deployment).get("securityContext", {})
    assert container.get("securityContext", {}).get("runAsNonRoot", pod_sc.get("runAsNonRoot"))

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(INTERNAL_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"

    service = of_kind("Service").get(name)
    assert service is not None, f"no Service {name}"
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", PORT, "http"),
        ("internal", INTERNAL_PORT, "internal"),
    ]
    assert selected_workloads(service["spec"]["selector"]) == [deployment]


@pytest.mark.parametrize("name", SERVICES)
def test_service_has_every_variable_it_needs(name):
    svc = SERVICES[name]
    env = env_of(main_container(service_deployment(name)))
    required = {f"{svc.prefix}HOST", f"{svc.prefix}PORT", f"{svc.prefix}INTERNAL_PORT"}
    required |= SHARED_ENV
    if name in USES_REDIS:
        required.add("REDIS_URL")
    required |= set(PEER_ENV.get(name, {})) | PROVIDER_SECRETS.get(name, set())
    if svc.database:
        required.add(f"{svc.prefix}DATABASE_URL")
    assert required <= set(env), f"missing: {sorted(required - set(env))}"

    assert env[f"{svc.prefix}HOST"]["value"] == "0.0.0.0"
    assert env[f"{svc.prefix}PORT"]["value"] == str(PORT)
    assert env[f"{svc.prefix}INTERNAL_PORT"]["value"] == str(INTERNAL_PORT)
    if svc.database:
        assert env[f"{svc.prefix}DATABASE_URL"]["value"] == db_url(svc)
    else:
        assert f"{svc.prefix}DATABASE_URL" not in env
    # Least privilege: no superuser password, and Redis only where it is used, with its password.
    assert "POSTGRES_PASSWORD" not in env and f"{svc.prefix}DATABASE_ADMIN_URL" not in env
    if name in USES_REDIS:
        assert env["REDIS_URL"]["value"] == REDIS_URL
    else:
        assert "REDIS_URL" not in env and "REDIS_PASSWORD" not in env
    for var, url in PEER_ENV.get(name, {}).items():
        assert env[var]["value"] == url
    assert "secretKeyRef" in env["JWT_SECRET"]["valueFrom"]
    for var in PROVIDER_SECRETS.get(name, set()) | {"ELASTICSEARCH_URL"}:
        ref = next(iter(env[var]["valueFrom"].values()))
        assert ref.get("optional") is True, f"{var} is optional"
    # Provider keys only where they are used; no Consul in Kubernetes (Service DNS instead).
    others = set().union(*PROVIDER_SECRETS.values()) - PROVIDER_SECRETS.get(name, set())
    assert not others & set(env)
    assert "CONSUL_HTTP_ADDR" not in env


def settings_variables(package: str) -> set[str]:
    """The environment variables a service's Settings read."""
    settings = importlib.import_module(f"{package}.app").Settings
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif alias is not None:
            names |= {str(choice).upper() for choice in alias.choices}
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


@pytest.mark.parametrize(
    "workload",
    [w for w in workloads() if w["kind"] != "StatefulSet"],
    ids=name_of,
)
def test_every_variable_set_is_read_by_the_service(workload):
    """Catches misspelt names: a variable is a setting of the service it is given to, or a
    piece ($(POSTGRES_PASSWORD), ...) of another variable of the same container."""
    for c in containers(workload):
        package = python_module(c)
        if package is None:
            assert not c.get("env"), f"{c['name']}: no settings to check the variables against"
            continue
        env = env_of(c)
        known = settings_variables(package)
        pieces = {ref for e in env.values() for ref in VAR_REF.findall(e.get("value", ""))}
        # The OpenTelemetry SDK's own variables (shared_runtime.tracing).
        otel = {name for name in env if name.startswith("OTEL_")}
        assert otel <= {
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
        }
        unknown = set(env) - known - pieces - otel
        assert not unknown, f"{workload['metadata']['name']}/{c['name']}: {sorted(unknown)}"


@pytest.mark.parametrize("workload", workloads(), ids=name_of)
def test_variable_references_resolve(workload):
    config_maps = of_kind("ConfigMap")
    for c in containers(workload):
        defined: set[str] = set()
        for e in c.get("env", []):
            where = f"{workload['metadata']['name']}/{c['name']}/{e['name']}"
            if e["name"] in SECRET_ENV:
                assert "secretKeyRef" in e.get("valueFrom", {}), f"{where}: use the Secret"
            # Kubernetes leaves $(X) as it is when X is not defined above it.
            for ref in VAR_REF.findall(e.get("value", "")):
                assert ref in defined, f"{where}: $({ref}) is not defined before it"
            for kind, source in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = e.get("valueFrom", {}).get(source)
                if ref is None:
                    continue
                if kind == "Secret":
                    assert ref["name"] == "ecommerce-secrets", f"{where}: {ref['name']}"
                    assert ref["key"] in secret_keys(), f"{where}: README makes no {ref['key']}"
                    continue
                assert ref["name"] in config_maps, f"{where}: no {kind} {ref['name']}"
                obj = config_maps[ref["name"]]
                keys = {*obj.get("data", {}), *obj.get("stringData", {})}
                if (kind, ref["name"], ref["key"]) in OPTIONAL_ABSENT_KEYS:
                    assert ref.get("optional") is True, f"{where}: {ref['key']} may be absent"
                else:
                    assert ref["key"] in keys, f"{where}: no key {ref['key']} in {ref['name']}"
            defined.add(e["name"])
        assert not c.get("envFrom"), "variables are listed one by one"


def urls_in_manifests() -> list[tuple[str, str]]:
    found = []
    for w in workloads():
        for c in containers(w):
            for e in c.get("env", []):
                value = VAR_REF.sub("x", e.get("value", ""))
                if "://" in value:
                    found.append((f"{w['metadata']['name']}/{e['name']}", value))
    for name, cm in of_kind("ConfigMap").items():
        for key, value in cm.get("data", {}).items():
            if re.fullmatch(r"[a-z0-9+]+://\S+", value):
                found.append((f"{name}/{key}", value))
    return found


URLS = urls_in_manifests()


@pytest.mark.parametrize("where,url", URLS, ids=[where for where, _ in URLS])
def test_urls_name_a_service_and_its_port(where, url):
    parts = urlsplit(url)
    service = of_kind("Service").get(parts.hostname or "")
    assert service is not None, f"{where}: no Service {parts.hostname}"
    assert parts.port in [p["port"] for p in service["spec"]["ports"]], where


def test_no_secret_value_is_committed():
    assert not of_kind("Secret"), "create ecommerce-secrets as k8s/README.md says; commit none"
    for _, doc in DOCS:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] != "gateway-nginx":
            assert not any(SECRET_NAME.search(key) for key in doc.get("data", {})), name_of(doc)
    for workload in workloads():
        for c in containers(workload):
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]):
                    assert "value" not in e, f"{name_of(workload)}: {e['name']} has a value"
    redis = main_container(of_kind("StatefulSet")["redis"])
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"


# --- Services, autoscalers, disruption budgets -----------------------------------------------


@pytest.mark.parametrize("service", of_kind("Service").values(), ids=name_of)
def test_every_service_selects_pods_with_its_target_ports(service):
    selector = service["spec"]["selector"]
    targets = selected_workloads(selector)
    assert targets, f"Service {service['metadata']['name']} selects no pods"
    assert all(t["kind"] != "Job" for t in targets)
    for port in service["spec"]["ports"]:
        for t in targets:
            ports = [container_port(c, port["targetPort"]) for c in containers(t)]
            assert any(ports), f"{t['metadata']['name']} has no port {port['targetPort']}"


def test_hpas_scale_product_order_and_payment_on_cpu():
    hpas = of_kind("HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == AUTOSCALED
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["apiVersion"] == "apps/v1"
        deployment = service_deployment(target["name"])
        # An applied replicas count would undo the autoscaler's on every `kubectl apply`.
        assert "replicas" not in deployment["spec"]
        assert "cpu" in main_container(deployment)["resources"]["requests"]
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        [metric] = hpa["spec"]["metrics"]
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["type"] == "Utilization"


def test_pdbs_cover_every_workload_with_more_than_one_replica():
    pdbs = of_kind("PodDisruptionBudget")
    covered = set()
    for pdb in pdbs.values():
        targets = selected_workloads(pdb["spec"]["selector"]["matchLabels"])
        assert targets, f"PDB {pdb['metadata']['name']} selects no pods"
        for t in targets:
            covered.add(t["metadata"]["name"])
            if "minAvailable" in pdb["spec"]:
                assert pdb["spec"]["minAvailable"] < replicas(t), "a drain could never evict"
            else:
                assert pdb["spec"]["maxUnavailable"] >= 1
    several = {w["metadata"]["name"] for w in workloads() if w["kind"] != "Job" and replicas(w) > 1}
    assert several == covered
    assert set(SERVICES) | {"gateway"} <= several


# --- migrations ------------------------------------------------------------------------------


def test_one_migration_job_per_database():
    databases = {}
    for job in of_kind("Job").values():
        runs = [(python_module(c), c) for c in containers(job) if c.get("args") == ["migrate"]]
        assert len(runs) == 1, f"{job['metadata']['name']} runs migrate {len(runs)} times"
        package, container = runs[0]
        [svc] = [s for s in SERVICES.values() if s.package == package]
        env = env_of(container)
        assert env[f"{svc.prefix}DATABASE_URL"]["value"] == db_url(svc)
        assert env[f"{svc.prefix}DATABASE_ADMIN_URL"]["value"] == ADMIN_URL
        assert container["image"] == IMAGE
        assert svc.database not in databases
        databases[svc.database] = job
        assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
        assert job["spec"].get("parallelism", 1) == 1 and job["spec"].get("completions", 1) == 1
    assert set(databases) == {s.database for s in SERVICES.values() if s.database}

    # The demo catalog goes in after product's migration, in the same Job.
    products = databases["products"]
    assert [c["args"] for c in pod_spec(products)["initContainers"]] == [["migrate"]]
    [load] = pod_spec(products)["containers"]
    assert python_module(load) == "product_service" and load["args"] == ["load-demo"]
    assert env_of(load)["PRODUCT_DATABASE_URL"]["value"] == db_url(SERVICES["product-service"])
    assert "POSTGRES_PASSWORD" not in env_of(load), "loading the catalog needs no superuser"


# --- PostgreSQL, Redis, RabbitMQ -------------------------------------------------------------


@pytest.mark.parametrize("name", STATEFUL)
def test_stateful_parts_keep_their_data_behind_headless_services(name):
    image, data_path = STATEFUL[name]
    statefulset = of_kind("StatefulSet")[name]
    service = of_kind("Service")[statefulset["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    assert selected_workloads(service["spec"]["selector"]) == [statefulset]
    assert statefulset["spec"]["replicas"] == 1
    container = main_container(statefulset)
    assert container["image"].startswith(image)
    assert "readinessProbe" in container and "livenessProbe" in container
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == data_path


# --- NetworkPolicies: who may reach whom --------------------------------------------------------


def _peer_matches(peer: Doc, labels: dict[str, str], namespace: str) -> bool:
    if "ipBlock" in peer:
        return namespace == "internet"
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = namespace == NAMESPACE
    else:
        wanted = namespaces.get("matchLabels", {})
        in_namespace = all(
            {"kubernetes.io/metadata.name": namespace}.get(k) == v for k, v in wanted.items()
        )
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    return in_namespace and all(labels.get(k) == v for k, v in pods.items())


def _rules_allow(rules: list[Doc], key: str, labels: dict[str, str], namespace: str, port: int):
    for rule in rules:
        peers = rule.get(key)
        ports = rule.get("ports")
        if ports is not None and port not in [p["port"] for p in ports]:
            continue
        if peers is None or any(_peer_matches(p, labels, namespace) for p in peers):
            return True
    return False


def _policies_for(labels: dict[str, str], kind: str) -> list[Doc]:
    return [
        p["spec"]
        for p in of_kind("NetworkPolicy").values()
        if kind in p["spec"]["policyTypes"]
        and all(
            labels.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items()
        )
    ]


# Who may come from outside the namespace: the Ingress controller's pods and Prometheus, each
# by its namespace and its labels together (60-network-policies.yaml, k8s/README.md).
INGRESS_CONTROLLER = (
    "ingress-nginx",
    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
)
PROMETHEUS = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
# Sources outside the namespace: (namespace, pod labels). "internet" is outside the cluster.
OUTSIDE = {
    "client": ("internet", {}),
    "ingress-controller": INGRESS_CONTROLLER,
    "prometheus": PROMETHEUS,
    # What must be refused: the right labels in another namespace, or the right namespace with
    # other labels.
    "prometheus-elsewhere": ("default", PROMETHEUS[1]),
    "grafana-in-monitoring": ("monitoring", {"app.kubernetes.io/name": "grafana"}),
    "ingress-lookalike": ("default", INGRESS_CONTROLLER[1]),
    "ingress-admission": ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
}


def located(name: str) -> tuple[str, dict[str, str]]:
    """A source or target's namespace and pod labels: a workload of ours by its name, else
    one of OUTSIDE (or "internet")."""
    if name == "internet":
        return "internet", {}
    if name in OUTSIDE:
        return OUTSIDE[name]
    return NAMESPACE, pod_labels(next(w for w in workloads() if w["metadata"]["name"] == name))


def reaches(source: str, target: str, port: int) -> bool:
    """Whether the policies let ``source`` open a connection to ``target`` on ``port`` (our
    workloads by name, the sources of OUTSIDE, or "internet")."""
    src_ns, src = located(source)
    dst_ns, dst = located(target)
    egress_ok = src_ns != NAMESPACE or any(
        _rules_allow(p.get("egress", []), "to", dst, dst_ns, port)
        for p in _policies_for(src, "Egress")
    )
    ingress_ok = dst_ns != NAMESPACE or any(
        _rules_allow(p.get("ingress", []), "from", src, src_ns, port)
        for p in _policies_for(dst, "Ingress")
    )
    return egress_ok and ingress_ok


def test_network_policies_deny_by_default_and_allow_only_what_each_part_needs():
    [deny] = [p for p in of_kind("NetworkPolicy").values() if p["spec"]["podSelector"] == {}
              and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}]  # fmt: skip
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    with_db = {n for n, s in SERVICES.items() if s.database}
    calls = {"cart-service": {"product-service"}, "order-service": {"cart-service"}}
    services = set(SERVICES)
    # Who may reach each workload's port, and nobody else may.
    expected = {
        # Clients come through the Ingress controller, never straight to the gateway.
        ("gateway", 8080): {"ingress-controller"},
        ("postgres", 5432): with_db | {"migrate-users"},
        ("redis", 6379): USES_REDIS,
        ("rabbitmq", 5672): services,
        ("rabbitmq", 15672): set(),
        ("rabbitmq", 15692): {"prometheus"},
        ("alertmanager", 9093): {"prometheus"},
        ("jaeger", 4318): services,
        ("jaeger", 16686): set(),
    }
    for name in services:
        callers = {c for c, targets in calls.items() if name in targets}
        if name == "user-service":  # every other service checks tokens against it
            callers |= services - {"user-service"}
        # The public port is the gateway's alone; the internal one its callers' and the scrape's.
        expected[(name, PORT)] = {"gateway"}
        expected[(name, INTERNAL_PORT)] = {"prometheus", *callers}
    sources = {"gateway", "postgres", "redis", "rabbitmq", "migrate-users", "alertmanager"}
    sources |= services | set(OUTSIDE)
    for (target, port), allowed in expected.items():
        reached = {s for s in sources if s != target and reaches(s, target, port)}
        assert reached == allowed, f"{target}:{port} reached by {sorted(reached)}"
    # Out of the namespace: only payment and notification, to their providers' HTTPS APIs.
    to_internet = {s for s in sources if reaches(s, "internet", 443)}
    assert to_internet - set(OUTSIDE) == {
        "payment-service",
        "notification-service",
        "alertmanager",  # to tell the team
    }


def peers_from_outside(policies: dict[str, Doc]) -> list[tuple[str, Doc]]:
    """Every peer of every rule that admits pods of other namespaces: (policy, peer)."""
    return [
        (name, peer)
        for name, policy in policies.items()
        for rule in [*policy["spec"].get("ingress", []), *policy["spec"].get("egress", [])]
        for peer in [*rule.get("from", []), *rule.get("to", [])]
        if "namespaceSelector" in peer
    ]


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_pods_of_other_namespaces_are_admitted_by_namespace_and_labels_together(overlay):
    policies = of_kind("NetworkPolicy") if overlay == "dev" else production_of_kind("NetworkPolicy")
    for name, peer in peers_from_outside(policies):
        namespaces = peer["namespaceSelector"]
        # Never "any namespace": a pod anyone may label so in a namespace of their own.
        assert namespaces.get("matchLabels") or namespaces.get("matchExpressions"), name
        namespace = namespaces.get("matchLabels", {}).get("kubernetes.io/metadata.name")
        if namespace in (INGRESS_CONTROLLER[0], PROMETHEUS[0]):
            # Pods of one kind there, not the whole namespace: both selectors in one peer.
            assert peer.get("podSelector", {}).get("matchLabels"), name
    # And no rule lets the monitoring or the ingress namespace in by a second, separate peer
    # (two peers are either one: every pod of the namespace, or those labels anywhere here).
    for policy in policies.values():
        for rule in policy["spec"].get("ingress", []):
            named = [
                peer
                for peer in rule.get("from", [])
                if "namespaceSelector" in peer
                and peer["namespaceSelector"]
                .get("matchLabels", {})
                .get("kubernetes.io/metadata.name")
                in (INGRESS_CONTROLLER[0], PROMETHEUS[0])
            ]
            if named:
                assert rule["from"] == named, policy["metadata"]["name"]


# --- the gateway -----------------------------------------------------------------------------


def test_gateway_config_is_rendered_from_nginx_render_and_routes():
    config = of_kind("ConfigMap")["gateway-nginx"]["data"]
    expected = gateway_files()
    for key, text in expected.items():
        assert config[key] == text, (
            f"k8s/50-gateway.yaml's {key} differs from nginx/render.py and nginx/routes.conf: "
            "rewrite it with `python -m tests.unit.test_k8s`"
        )
    routes = expected["routes.conf"]
    upstreams = set(re.findall(r"^\s*upstream (\w+) \{", config["nginx.conf"], re.M))
    assert set(re.findall(r"proxy_pass http://(\w+)", routes)) <= upstreams
    assert "map $http_x_request_id $request_id_out" in config["nginx.conf"]


def test_gateway_deployment_and_service():
    deployment = of_kind("Deployment")["gateway"]
    container = main_container(deployment)
    assert container["image"].startswith("nginx:1.27")
    assert container_port(container, "http") == 8080
    assert "listen 8080;" in of_kind("ConfigMap")["gateway-nginx"]["data"]["nginx.conf"]
    assert f"-c {GATEWAY_CONFIG_DIR}/nginx.conf" in " ".join(container["command"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "gateway-nginx"
    assert mounts["config"] == GATEWAY_CONFIG_DIR
    assert mounts["tmp"] == "/tmp" and "emptyDir" in volumes["tmp"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    service = of_kind("Service")["gateway"]
    assert service["spec"]["type"] == "ClusterIP"  # reached through the Ingress only
    # The client's own address reaches nginx through the Ingress's X-Forwarded-For, trusted
    # from the controller's pods only: per-address rate limits and login throttling. Never a
    # whole private range (a load balancer's or a node's address there would be every client's)
    # nor everything.
    conf = of_kind("ConfigMap")["gateway-nginx"]["data"]["nginx.conf"]
    trusted = [ipaddress.ip_network(cidr) for cidr in re.findall(r"set_real_ip_from (\S+);", conf)]
    assert trusted, "the gateway would see the Ingress controller as every client"
    for network in trusted:
        assert network.prefixlen >= (16 if network.version == 4 else 48), network
    assert "real_ip_header X-Forwarded-For;" in conf


def test_the_ingress_serves_https_to_the_gateway():
    [ingress] = of_kind("Ingress").values()
    [tls] = ingress["spec"]["tls"]
    assert tls["secretName"] == "ecommerce-tls" and tls["hosts"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/ssl-protocols"] == "TLSv1.2 TLSv1.3"
    assert "cert-manager.io/cluster-issuer" in (BASE / "55-ingress.yaml").read_text()
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    [path] = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == "gateway" and backend["port"]["name"] == "http"
    # Imports of up to 200 MB pass the Ingress as they pass the gateway.
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "200m"


def test_gateway_config_passes_nginx_t(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed")
    config = of_kind("ConfigMap")["gateway-nginx"]["data"]
    for key, text in config.items():
        # Local paths for the container's, and an address for each Service's name.
        text = re.sub(rf"(?<= )({GATEWAY_CONFIG_DIR}|/tmp)/", f"{tmp_path}/", text)
        text = re.sub(r"server [a-z-]+:(\d+)", r"server 127.0.0.1:\1", text)
        (tmp_path / key).write_text(text)
    result = subprocess.run(
        [nginx, "-t", "-q", "-e", "stderr", "-p", f"{tmp_path}/", "-c", f"{tmp_path}/nginx.conf"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_the_alert_rules_and_routing_are_those_of_observability():
    config_maps = of_kind("ConfigMap")
    for name, files in OBSERVABILITY_DATA.items():
        for key, path in files.items():
            assert config_maps[name]["data"][key] == path.read_text(), (
                f"k8s/70-observability.yaml's {name} differs from {path.relative_to(ROOT)}: "
                "rewrite it with `python -m tests.unit.test_k8s`"
            )


def test_every_service_sends_its_spans_to_jaeger():
    jaeger = of_kind("Service")["jaeger"]
    assert {p["name"]: p["port"] for p in jaeger["spec"]["ports"]}["otlp-http"] == 4318
    for name in SERVICES:
        env = env_of(main_container(service_deployment(name)))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://jaeger:4318"
        assert reaches(name, "jaeger", 4318), name
    assert not reaches("gateway", "jaeger", 4318)
    assert not reaches("client", "jaeger", 16686)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write_gateway_config()
    print(f"rewrote {GATEWAY_FILE.relative_to(ROOT)}")
    write_observability_config()
    print(f"rewrote {OBSERVABILITY_FILE.relative_to(ROOT)}")


# --- the production overlay: the operators' clusters -------------------------------------------

OPERATOR_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
    ("rabbitmq.com/v1beta1", "User"),
    ("rabbitmq.com/v1beta1", "Permission"),
}


def production_of_kind(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for _, d in PRODUCTION if d["kind"] == kind}


def test_production_runs_the_stores_through_their_operators_not_statefulsets():
    statefulsets = set(production_of_kind("StatefulSet"))
    assert statefulsets == {"redis"}, "PostgreSQL and RabbitMQ come from their operators"
    kinds = {(d["apiVersion"], d["kind"]) for _, d in PRODUCTION}
    assert OPERATOR_KINDS <= kinds
    base = {(d["kind"], d["metadata"]["name"]) for _, d in kustomize(BASE)}
    assert base <= {(d["kind"], d["metadata"]["name"]) for _, d in PRODUCTION}
    for _, doc in PRODUCTION:
        assert doc["metadata"].get("namespace") == NAMESPACE or doc["kind"] in CLUSTER_KINDS


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_production_overlays_own_kubernetes_documents_validate(version):
    kv = pytest.importorskip("kubernetes_validate")
    for file, doc in PRODUCTION:
        if (doc["apiVersion"], doc["kind"]) in OPERATOR_KINDS:
            continue  # custom resources: checked field by field below
        assert kv.validate(doc, version, strict=True) == version, f"{file}: {doc['kind']}"


def test_postgres_is_a_cloudnativepg_cluster_of_three_with_continuous_backup():
    cluster = production_of_kind("Cluster")["postgres"]["spec"]
    assert cluster["instances"] == 3
    assert cluster["affinity"]["enablePodAntiAffinity"] is True
    # The migration Jobs log in as postgres: the operator must allow it, with a Secret of ours.
    assert cluster["enableSuperuserAccess"] is True
    assert cluster["superuserSecret"]["name"] == "postgres-superuser"
    timeout = cluster["postgresql"]["parameters"]["archive_timeout"]
    assert int(timeout.rstrip("s")) <= 300, "the design's RPO is under 5 minutes"
    store = cluster["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    for key in ("accessKeyId", "secretAccessKey"):
        assert set(store["s3Credentials"][key]) == {"name", "key"}
    assert cluster["backup"]["retentionPolicy"] == "30d"
    [scheduled] = production_of_kind("ScheduledBackup").values()
    assert scheduled["spec"]["cluster"]["name"] == "postgres"
    assert scheduled["spec"]["method"] == "barmanObjectStore"
    assert len(scheduled["spec"]["schedule"].split()) == 6  # the operator's cron has seconds


def test_the_services_reach_the_postgres_primary_by_the_name_they_use():
    service = production_of_kind("Service")["postgres"]["spec"]
    assert service["selector"] == {"cnpg.io/cluster": "postgres", "cnpg.io/instanceRole": "primary"}
    assert [p["port"] for p in service["ports"]] == [5432]
    # Every pod of the cluster carries the labels the base's NetworkPolicies select it by.
    inherited = production_of_kind("Cluster")["postgres"]["spec"]["inheritedMetadata"]["labels"]
    policy = production_of_kind("NetworkPolicy")["postgres-network"]["spec"]
    assert selects(policy["podSelector"]["matchLabels"], inherited)


def test_rabbitmq_is_a_cluster_of_three_with_the_services_account():
    cluster = production_of_kind("RabbitmqCluster")["rabbitmq"]
    assert cluster["spec"]["replicas"] == 3
    # The operator names its Service and the pods' app.kubernetes.io/name after the cluster.
    labels = {"app.kubernetes.io/name": cluster["metadata"]["name"]}
    override = cluster["spec"]["override"]["statefulSet"]["spec"]["template"]["metadata"]
    labels |= override["labels"]
    policy = production_of_kind("NetworkPolicy")["rabbitmq-network"]["spec"]
    assert selects(policy["podSelector"]["matchLabels"], labels)
    config = of_kind("ConfigMap")["ecommerce-config"]["data"]
    user = production_of_kind("User")["ecommerce"]["spec"]
    permission = production_of_kind("Permission")["ecommerce"]["spec"]
    assert user["rabbitmqClusterReference"]["name"] == "rabbitmq"
    assert permission["user"] == config["RABBITMQ_USER"]
    assert permission["permissions"] == {"configure": ".*", "write": ".*", "read": ".*"}


def test_the_operators_clusters_may_talk_among_themselves_and_to_their_operator():
    policies = production_of_kind("NetworkPolicy")
    postgres = policies["postgres-cluster-network"]["spec"]
    ingress_ports = {p["port"] for rule in postgres["ingress"] for p in rule["ports"]}
    assert {5432, 8000} <= ingress_ports
    sources = [s for rule in postgres["ingress"] for s in rule["from"]]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}}
    } in sources
    rabbitmq = policies["rabbitmq-cluster-network"]["spec"]
    assert {4369, 25672} <= {p["port"] for rule in rabbitmq["egress"] for p in rule["ports"]}
