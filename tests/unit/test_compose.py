"""docker-compose.yml, the Dockerfile and the observability files, checked without Docker.

What each service needs is read from the code where it can be: its Settings (prefix, fields,
shared variables), the keywords its create_app passes to create_service_app (database, Redis,
peers), the metrics the code registers, the log index template. The Compose Specification
check runs when check-jsonschema (which ships the schema) is installed.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import inspect
import json
import re
import tomllib
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from scripts.consul_acl import MANAGEMENT_TOKEN, bootstrap_script
from shared_runtime.auth import USER_SERVICE
from shared_runtime.discovery import Discovery, consul_name
from shared_runtime.registry import SERVICES
from shared_runtime.service import create_service_app
from shared_runtime.settings import ServiceSettings
from tests import hcl

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OBSERVABILITY = ROOT / "observability"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus.yml"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ecommerce.json"
KIBANA_OBJECTS = OBSERVABILITY / "kibana" / "saved_objects.ndjson"
INDEX_TEMPLATE = ROOT / "shared_runtime" / "elasticsearch" / "index_template.json"
NGINX_COMPOSE_CONF = ROOT / "nginx" / "compose.conf"
NGINX_ROUTES = ROOT / "nginx" / "routes.conf"
CONSUL_CONFIG = ROOT / "consul.d" / "server.hcl"
ACL_BOOTSTRAP = ROOT / "consul.d" / "acl-bootstrap.sh"

PACKAGES = list(SERVICES)
# Where each service listens in a container: its public port, the one the gateway reaches, and
# its internal one, the one the other services (and Consul, and Prometheus) reach.
PUBLIC_PORT, INTERNAL_PORT = "8000", "8001"
# What of the Docker host a service reads (read-only): the node exporter its filesystems.
HOST_MOUNTS = {"node-exporter": {"/"}}
# What would hand a container the Docker daemon, and so the host.
DOCKER_DAEMON = ("/var/run/docker.sock", "/run/docker.sock", "/var/lib/docker", "/run/containerd")
FILEBEAT_CONFIG = OBSERVABILITY / "filebeat.yml"
# The OpenTelemetry SDK's own settings the services get (spec: sdk-environment-variables).
OTEL_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}
INFRASTRUCTURE = {
    "migrate",
    "gateway",
    "gateway-logs-init",
    "gateway-logs-pruner",
    "postgres-users",
    "postgres-products",
    "postgres-orders",
    "postgres-main",
    "redis",
    "rabbitmq",
    "consul",
    "consul-acl-init",
    "elasticsearch",
    "kibana",
    "kibana-setup",
    "prometheus",
    "alertmanager",
    "filebeat",
    "node-exporter",
    "nginx-exporter",
    "jaeger",
    "grafana",
}
# The dashboard's metrics and the labels each must have.
METRICS = {
    "http_requests_total": {"service", "method", "route", "status"},
    "http_request_duration_seconds_bucket": {"service", "route"},
    "events_published_total": {"service", "event_type"},
    "events_consumed_total": {"service", "event_type", "outcome"},
    "outbox_backlog": {"service"},
    "outbox_oldest_unsent_age_seconds": {"service"},
    "saga_outcomes_total": {"outcome"},
    "saga_duration_seconds_bucket": {"outcome"},
    "cache_requests_total": {"service", "cache", "result"},
    "circuit_breaker_state": {"service", "peer"},
    "peer_calls_total": {"service", "peer", "outcome"},
    "log_records_dropped_total": {"service"},
}
# Variables every service reads without its prefix, found in its Settings by alias.
SHARED_VARIABLES = ["AMQP_URL", "JWT_SECRET", "CONSUL_HTTP_ADDR", "ELASTICSEARCH_URL"]
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASS$|TOKEN|_KEY$|_SID$")
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --- loading -----------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


@cache
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def interpolate(value: Any) -> str:
    """The value as docker compose would see it with .env.example as the .env file."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        current = env_example().get(name)
        if (op == "-" and current is None) or (op == ":-" and not current):
            return arg
        return current or ""

    return VARIABLE.sub(one, str(value)).replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def app_services() -> dict[str, str]:
    """Compose service name -> the package it runs (python -m <package>)."""
    found = {}
    for name, service in services().items():
        cmd = command(service)
        if cmd[:2] == ["python", "-m"] and len(cmd) == 3 and cmd[2] in PACKAGES:
            found[name] = cmd[2]
    return found


def service_running(package: str) -> tuple[str, dict[str, Any]]:
    names = [name for name, pkg in app_services().items() if pkg == package]
    assert len(names) == 1, f"{package}: one compose service must run it, found {names}"
    return names[0], services()[names[0]]


def internal_url(package: str) -> str:
    """Where the other services call ``package``: its compose name and internal port."""
    name, service = service_running(package)
    prefix = settings_class(package).model_config["env_prefix"]
    return f"http://{name}:{environment(service)[f'{prefix}INTERNAL_PORT']}"


def exposed_ports() -> list[str]:
    return [
        port
        for line in dockerfile_lines()
        if line.startswith("EXPOSE ")
        for port in line.split()[1:]
    ]


def settings_class(package: str) -> type[ServiceSettings]:
    return importlib.import_module(f"{package}.app").Settings


def create_app_keywords(package: str) -> dict[str, ast.expr]:
    """The keywords that <package>/app.py passes to create_service_app."""
    tree = ast.parse((ROOT / package / "app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "create_service_app":
            return {kw.arg: kw.value for kw in node.keywords if kw.arg}
    raise AssertionError(f"{package}/app.py does not call create_service_app")


def flag(package: str, keyword: str) -> bool:
    """What <package>/app.py tells create_service_app: the registry's word, or the default."""
    value = create_app_keywords(package).get(keyword)
    if value is None:
        return bool(inspect.signature(create_service_app).parameters[keyword].default)
    service = SERVICES[package]
    return {"uses_redis": service.uses_redis, "uses_database": service.database is not None}[
        keyword
    ]


def uses_database(package: str) -> bool:
    default = ServiceSettings.model_fields["database_url"].default
    return flag(package, "uses_database") and (
        settings_class(package).model_fields["database_url"].default != default
    )


def looked_up(package: str) -> set[str]:
    """The services <package> finds through discovery: its peers, and user_service for the
    accounts' token states unless it keeps them itself (create_service_app)."""
    found = set(peers(package))
    if "token_states" not in create_app_keywords(package):
        found.add(USER_SERVICE)
    return found


def peers(package: str) -> dict[str, str]:
    """peer package -> the Settings field holding its static URL."""
    value = create_app_keywords(package).get("peers")
    if value is None:
        return {}
    assert isinstance(value, ast.Dict)
    module = importlib.import_module(f"{package}.app")
    found = {}
    for key, val in zip(value.keys, value.values, strict=True):
        assert key is not None, f"{package}: peers must be a plain dict"
        peer = getattr(module, key.id) if isinstance(key, ast.Name) else ast.literal_eval(key)
        assert isinstance(val, ast.Attribute), f"{package}: peer URLs come from settings"
        found[peer] = val.attr
    return found


def host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(interpolate(url))
    return parts.hostname or "", parts.port


def published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host part, container port) of each published port."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            result.append((str(port.get("published", "")), str(port["target"])))
            continue
        text = interpolate(port)
        host, _, target = text.rpartition(":")
        result.append((host, target.split("/")[0]))
    return result


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts of a service: container path -> source path relative to the repository."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts[volume["target"]] = volume["source"]
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = source
    return mounts


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False)
    build = service.get("build")
    if build is None:
        return False
    return "HEALTHCHECK" in dockerfile_instructions(ROOT / build.get("context", "."))


@cache
def dockerfile_lines(path: Path = DOCKERFILE) -> list[str]:
    text = path.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def dockerfile_instructions(context: Path) -> set[str]:
    return {line.split()[0].upper() for line in dockerfile_lines(context / "Dockerfile")}


# --- the compose file --------------------------------------------------------------------------


def test_the_compose_file_has_the_whole_system():
    assert set(app_services().values()) == set(PACKAGES)
    # Service names are the names the services register under in Consul.
    assert set(app_services()) == {consul_name(package) for package in PACKAGES}
    assert INFRASTRUCTURE <= set(services())
    assert set(services()) == INFRASTRUCTURE | set(app_services())


def test_the_compose_file_follows_the_compose_specification():
    schemas = pytest.importorskip(
        "check_jsonschema.builtin_schemas", reason="needs check-jsonschema (the schema ships in it)"
    )
    import jsonschema

    schema = schemas.get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose())
    ]
    assert not errors, "\n".join(errors)


def test_every_referenced_file_exists():
    for name, service in services().items():
        build = service.get("build")
        if build is not None:
            context = ROOT / build.get("context", ".")
            assert context.is_dir(), f"{name}: build context {context}"
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for target, source in bind_mounts(service).items():
            if source in HOST_MOUNTS.get(name, set()):
                continue  # the Docker host's own, read-only
            assert (ROOT / source).exists(), f"{name}: {source} (mounted at {target}) is missing"
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str | dict) else env_files:
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            assert (ROOT / path).exists() or Path(path).name == ".env", f"{name}: {path}"
    assert ENV_EXAMPLE.is_file()


def test_the_services_run_unprivileged_on_a_read_only_root():
    for name, service in services().items():
        if service.get("image", "").startswith("${ECOMMERCE_IMAGE") or "build" in service:
            assert service.get("read_only") is True, name
            assert service.get("tmpfs") == ["/tmp"], name
            assert "no-new-privileges:true" in service.get("security_opt", []), name
            assert "user" not in service, f"{name}: the image's own unprivileged user"
    assert re.search(r"^USER 10001:10001$", DOCKERFILE.read_text(), re.M)


def test_the_six_services_publish_no_fixed_host_port_and_can_scale():
    for name in app_services():
        service = services()[name]
        assert "container_name" not in service, f"{name}: a fixed container name cannot scale"
        fixed = [port for port in published(service) if port[0]]
        assert not fixed, f"{name} publishes host ports {fixed}; it would not scale"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_service_gets_what_its_settings_read(package: str):
    name, service = service_running(package)
    env = environment(service)
    settings = settings_class(package)
    prefix = settings.model_config["env_prefix"]
    assert prefix == package.removesuffix("_service").upper() + "_"
    fields = settings.model_fields
    aliases = {
        f.validation_alias: n for n, f in fields.items() if isinstance(f.validation_alias, str)
    }

    # Every variable is one the service reads: a prefixed field or a shared alias.
    for key in env:
        if key.startswith(prefix):
            field = key.removeprefix(prefix).lower()
            assert field in fields and fields[field].validation_alias is None, (
                f"{name}: {key} is not a setting of {package}"
            )
        elif key.startswith("OTEL_"):  # read by the OpenTelemetry SDK (shared_runtime.tracing)
            assert key in OTEL_VARIABLES, f"{name}: {key} is no variable the SDK reads"
        else:
            assert key in aliases or key == "PORT", f"{name}: {package} does not read {key}"
    assert host_port(env["OTEL_EXPORTER_OTLP_ENDPOINT"]) == ("jaeger", 4318)

    # Listening: on every interface, on the public port the image's HEALTHCHECK probes and
    # the gateway's upstreams name, and on the internal one the other services call.
    assert env[f"{prefix}HOST"] == "0.0.0.0"
    assert env[f"{prefix}PORT"] == env["PORT"] == PUBLIC_PORT
    assert env[f"{prefix}INTERNAL_PORT"] == INTERNAL_PORT
    assert {PUBLIC_PORT, INTERNAL_PORT} <= set(exposed_ports())

    for variable in SHARED_VARIABLES:
        assert variable in aliases, f"{package}'s Settings no longer read {variable}"
        assert env.get(variable), f"{name}: {variable} is not set"
    assert host_port(env["AMQP_URL"]) == ("rabbitmq", 5672)
    assert host_port(env["CONSUL_HTTP_ADDR"]) == ("consul", 8500)
    assert host_port(env["ELASTICSEARCH_URL"]) == ("elasticsearch", 9200)
    assert VARIABLE.fullmatch(env["JWT_SECRET"]), "JWT_SECRET must come from .env"

    depends = service.get("depends_on", {})
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for needed in ("rabbitmq", "consul"):
        assert depends[needed]["condition"] == "service_healthy", f"{name} -> {needed}"

    database_url = env.get(f"{prefix}DATABASE_URL")
    if uses_database(package):
        assert database_url, f"{name}: {prefix}DATABASE_URL is not set"
        url = urlsplit(interpolate(database_url))
        expected = urlsplit(fields["database_url"].default)
        assert url.scheme == expected.scheme == "postgresql+asyncpg"
        assert url.path == expected.path, f"{name}: database {url.path}, code says {expected.path}"
        assert url.hostname in services() and url.port == 5432
        assert services()[url.hostname]["image"].startswith("postgres:")
        assert depends[url.hostname]["condition"] == "service_healthy"
        assert VARIABLE.search(database_url), f"{name}: the database password must come from .env"
        # Least privilege: the service's own role, never the superuser.
        assert url.username == package, f"{name}: connects as {url.username}, not {package}"
        assert f"{prefix}DATABASE_ADMIN_URL" not in env, f"{name}: only migrate is superuser"
        migrate_env = environment(services()["migrate"])
        assert migrate_env.get(f"{prefix}DATABASE_URL") == database_url, "migrate's URL differs"
        admin = urlsplit(interpolate(migrate_env[f"{prefix}DATABASE_ADMIN_URL"]))
        assert (admin.hostname, admin.username) == (url.hostname, "postgres"), name
    else:
        assert database_url is None, f"{name}: {package} has no database"

    if flag(package, "uses_redis"):
        assert host_port(env["REDIS_URL"]) == ("redis", 6379)
        redis_url = r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/\d+"
        assert re.fullmatch(redis_url, env["REDIS_URL"]), f"{name}: Redis needs its password"
        assert depends["redis"]["condition"] == "service_healthy"
    else:
        assert "REDIS_URL" not in env and "redis" not in depends

    # Peers are called on their internal port (where Consul's answers lead too).
    for peer, field in peers(package).items():
        key = f"{prefix}{field.upper()}"
        assert interpolate(env.get(key, "")) == internal_url(peer), f"{name}: {key}"
    if USER_SERVICE in looked_up(package) - set(peers(package)):
        assert interpolate(env.get("USER_SERVICE_URL", "")) == internal_url(USER_SERVICE), name
    else:
        assert "USER_SERVICE_URL" not in env, f"{name} does not ask user-service"


def test_migrations_run_once_before_the_services():
    migrate = services()["migrate"]
    assert migrate["restart"] == "no"
    script = command(migrate)
    lines = {line.strip() for line in script[-1].splitlines()}
    for package in PACKAGES:
        if uses_database(package):
            assert f"python -m {package} migrate" in lines, package
    assert "python -m product_service load-demo" in lines
    assert script[:2] == ["sh", "-ec"], "a failing step must fail the migrate service"
    migrate_env = environment(migrate)
    for key, url in migrate_env.items():
        assert key.endswith(("_DATABASE_URL", "_DATABASE_ADMIN_URL"))
        host = urlsplit(interpolate(url)).hostname
        assert migrate["depends_on"][host]["condition"] == "service_healthy"


def test_depends_on_targets_exist_and_use_conditions():
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services().items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in services(), f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            assert condition in conditions, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert has_healthcheck(services()[target]), f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services()[target].get("restart") == "no", f"{target} is not a one-shot"


def test_every_long_running_service_has_a_healthcheck():
    for name, service in services().items():
        if service.get("restart") == "no":
            continue
        assert has_healthcheck(service), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_stateful_services_keep_their_data_in_named_volumes():
    data_dirs = {
        "postgres-users": "/var/lib/postgresql/data",
        "postgres-products": "/var/lib/postgresql/data",
        "postgres-orders": "/var/lib/postgresql/data",
        "postgres-main": "/var/lib/postgresql/data",
        "redis": "/data",
        "rabbitmq": "/var/lib/rabbitmq",
        "consul": "/consul/data",
        "elasticsearch": "/usr/share/elasticsearch/data",
        "kibana": "/usr/share/kibana/data",
        "prometheus": "/prometheus",
        "alertmanager": "/alertmanager",
        "grafana": "/var/lib/grafana",
    }
    declared = set(compose().get("volumes") or {})
    used = set()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
                if name in data_dirs:
                    assert target == data_dirs[name], f"{name}: {target}"
        if name in data_dirs:
            named = [v for v in service.get("volumes", []) if not v.startswith((".", "/"))]
            assert named, f"{name} keeps its data in no named volume"
    assert used == declared


def test_infrastructure_images_ports_and_settings():
    images = {name: service.get("image", "") for name, service in services().items()}
    for name in ("postgres-users", "postgres-products", "postgres-orders", "postgres-main"):
        assert images[name] == "postgres:16"
        assert "pg_isready" in " ".join(services()[name]["healthcheck"]["test"])
    assert images["redis"].startswith("redis:7")
    redis_command = services()["redis"]["command"]
    password = redis_command[redis_command.index("--requirepass") + 1]
    assert VARIABLE.fullmatch(password) and "REDIS_PASSWORD" in password, "Redis needs a password"
    assert environment(services()["redis"])["REDISCLI_AUTH"] == password, "for the healthcheck"
    assert images["rabbitmq"].startswith("rabbitmq:3") and "management" in images["rabbitmq"]
    assert images["consul"].startswith("hashicorp/consul:")
    assert images["kibana-setup"].startswith("curlimages/curl:")
    gateway = tuple(int(n) for n in images["gateway"].split(":")[1].split("-")[0].split("."))
    assert images["gateway"].startswith("nginxinc/nginx-unprivileged:")
    assert gateway >= (1, 27), "resolve needs 1.27.3+"

    # The Python client asks for its own major version of the API: the server must have it.
    client_major = int(version("elasticsearch").split(".")[0])
    es_version = interpolate(images["elasticsearch"]).rpartition(":")[2]
    assert interpolate(images["kibana"]).rpartition(":")[2] == es_version
    assert int(es_version.split(".")[0]) >= client_major, (
        f"Elasticsearch {es_version} refuses the {client_major}.x Python client in uv.lock"
    )
    es_env = environment(services()["elasticsearch"])
    assert es_env["discovery.type"] == "single-node"
    assert es_env["xpack.security.enabled"] == "false"
    assert "-Xmx" in es_env["ES_JAVA_OPTS"]

    expected_ports = {
        "gateway": "80",
        "postgres-users": "5432",
        "postgres-products": "5433",
        "postgres-orders": "5434",
        "postgres-main": "5435",
        "rabbitmq": "15672",
        "consul": "8500",
        "elasticsearch": "9200",
        "kibana": "5601",
        "prometheus": "9090",
        "alertmanager": "9093",
        "jaeger": "16686",
        "grafana": "3000",
    }
    for name, port in expected_ports.items():
        hosts = [host for host, _ in published(services()[name])]
        assert hosts and hosts[0].rpartition(":")[2] == port, f"{name}: {hosts}"
        if name != "gateway":
            assert hosts[0].startswith("127.0.0.1:"), f"{name} is published beyond localhost"


def test_the_gateway_runs_the_compose_config():
    gateway = services()["gateway"]
    mounts = bind_mounts(gateway)
    assert mounts["/etc/nginx/nginx.conf"].removeprefix("./") == "nginx/compose.conf"
    assert mounts["/etc/nginx/routes.conf"].removeprefix("./") == "nginx/routes.conf"
    if not NGINX_COMPOSE_CONF.exists():
        pytest.skip("nginx/compose.conf is not there yet")
    conf = NGINX_COMPOSE_CONF.read_text()
    assert "include /etc/nginx/routes.conf;" in conf
    listen = re.findall(r"^\s*listen\s+(\d+)", conf, re.M)
    assert [target for _, target in published(gateway)] == listen
    # nginx refuses "daemon" twice: the config's and the image's default -g 'daemon off;'.
    if re.search(r"^\s*daemon\s+off;", conf, re.M):
        assert "-g" not in command(gateway) and command(gateway)
    assert re.search(r"^\s*resolver\s+127\.0\.0\.11\b", conf, re.M), "Docker's DNS"
    # HTTPS with the operator's certificate; plain HTTP only redirects.
    assert mounts["/etc/nginx/tls"].removeprefix("./") == "nginx/tls"
    assert "listen 8443 ssl;" in conf and "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_certificate /etc/nginx/tls/tls.crt;" in conf
    assert "return 308 https://$host$request_uri;" in conf
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf))
    used = set(re.findall(r"proxy_pass\s+http://(\w+)", NGINX_ROUTES.read_text()))
    assert used <= set(upstreams), f"routes.conf uses undefined upstreams {used - set(upstreams)}"
    for upstream, body in upstreams.items():
        assert "zone " in body, f"{upstream}: resolve needs a shared zone"
        for host, port in re.findall(r"server\s+([\w.-]+):(\d+)\s+[^;]*\bresolve\b", body):
            assert host in app_services(), f"{upstream}: {host} is not a service"
            assert port == environment(services()[host])["PORT"]
            assert app_services()[host] == upstream, f"{upstream} points at {host}"


def test_the_gateway_runs_unprivileged_on_a_read_only_root():
    gateway = services()["gateway"]
    assert gateway["image"].startswith("nginxinc/nginx-unprivileged:"), "made to run as nginx"
    uid, _, gid = gateway["user"].partition(":")
    assert (uid, gid) == ("101", "101"), "the image's nginx user, never root"
    assert gateway["read_only"] is True and gateway["tmpfs"] == ["/tmp"]
    assert gateway["cap_drop"] == ["ALL"] and "cap_add" not in gateway
    assert "no-new-privileges:true" in gateway["security_opt"]
    conf = NGINX_COMPOSE_CONF.read_text()
    # No privileged port, and all nginx writes is on the tmpfs (or a mounted volume).
    assert all(int(port) >= 1024 for port in re.findall(r"^\s*listen\s+(\d+)", conf, re.M))
    written = re.findall(r"^\s*(?:pid|\w+_temp_path|proxy_cache_path)\s+(\S+?);?\s", conf, re.M)
    assert len(written) == 7, written
    writable = ["/tmp/", *(v.split(":")[1] + "/" for v in gateway["volumes"] if v[0] not in "./")]
    for path in written:
        assert path.startswith(tuple(writable)), f"nginx writes {path} on a read-only root"


def test_the_gateway_writes_hourly_log_files_that_filebeat_reads_unprivileged():
    gateway, filebeat = services()["gateway"], services()["filebeat"]
    conf = NGINX_COMPOSE_CONF.read_text()
    (log_file,) = re.findall(r"^\s*access_log\s+(\S+)\s+json_access;", conf, re.M)
    log_dir, _, file_pattern = log_file.rpartition("/")
    assert file_pattern == "access-$access_log_hour.log"
    assert re.search(r"^\s*error_log /dev/stderr ", conf, re.M), "errors: docker compose logs"
    volume = named_volume_at(gateway, log_dir)
    assert volume and not volume_read_only(gateway, log_dir), "the gateway writes its log there"

    # Filebeat reads those files, from the same volume, read-only.
    (files_input,) = yaml.safe_load(FILEBEAT_CONFIG.read_text())["filebeat.inputs"]
    assert files_input["type"] == "filestream"
    (path,) = files_input["paths"]
    filebeat_dir, _, glob = path.rpartition("/")
    assert named_volume_at(filebeat, filebeat_dir) == volume
    assert volume_read_only(filebeat, filebeat_dir)
    assert fnmatch.fnmatch("access-2026-12-03T14.log", glob) and glob.endswith(".log")
    assert [parser for parser in files_input["parsers"] if "ndjson" in parser] == [
        {"ndjson": {"target": "", "overwrite_keys": True, "add_error_key": True}}
    ], "the JSON line's fields at the top, as the services ship theirs"
    # Hourly files, never renamed: the path names a file, and a short one is read at once.
    assert "file_identity.path" in files_input
    # Nothing of Docker's: no container log parser, no metadata from the daemon.
    assert not [parser for parser in files_input["parsers"] if "container" in parser]
    assert not [p for p in files_input.get("processors", []) if "add_docker_metadata" in p]

    # Not root: Filebeat's own user, reading the directory through its group.
    assert filebeat["user"] == "1000:1000" and "no-new-privileges:true" in filebeat["security_opt"]
    init = services()["gateway-logs-init"]
    script = command(init)[-1]
    owner = re.search(rf"chown (\d+):(\d+) {log_dir}\b", script)
    mode = re.search(rf"chmod (0?[0-7]{{3}}) {log_dir}\b", script)
    assert owner and mode, f"gateway-logs-init must hand {log_dir} over: {script}"
    assert named_volume_at(init, log_dir) == volume
    assert tuple(gateway["user"].split(":")) == owner.groups(), "owned by the gateway's user"
    assert int(mode.group(1), 8) & 0o007 == 0, "nobody else reads the access log"
    assert int(mode.group(1), 8) & 0o050 == 0o050, "its group lists and reads it"
    assert owner.group(2) in [str(gid) for gid in filebeat["group_add"]], "Filebeat's group"
    for reader in ("gateway", "filebeat"):
        depends = services()[reader]["depends_on"]["gateway-logs-init"]
        assert depends["condition"] == "service_completed_successfully", reader


def test_the_gateway_log_files_are_deleted_when_old():
    pruner = services()["gateway-logs-pruner"]
    conf = NGINX_COMPOSE_CONF.read_text()
    log_dir = re.findall(r"^\s*access_log\s+(\S+)/", conf, re.M)[0]
    assert named_volume_at(pruner, log_dir) == named_volume_at(services()["gateway"], log_dir)
    script = command(pruner)[-1]
    assert re.search(
        rf"find {log_dir} -name 'access-\*\.log' -mmin \+\$\$\(\(GATEWAY_LOG_KEEP_HOURS \* 60\)\) "
        r"-delete",
        script,
    ), script
    assert "sleep" in script and script.lstrip().startswith("while true")
    hours = environment(pruner)["GATEWAY_LOG_KEEP_HOURS"]
    assert int(interpolate(hours)) >= 24, "a day at least, for Elasticsearch to come back"
    assert pruner["user"] == services()["gateway"]["user"], "as the files' owner, not root"
    assert pruner["read_only"] is True and pruner["cap_drop"] == ["ALL"]


def test_no_container_reaches_the_docker_daemon():
    for name, service in services().items():
        for target, source in bind_mounts(service).items():
            assert not source.startswith(DOCKER_DAEMON), f"{name} mounts {source}"
            if source.startswith("/"):
                assert source in HOST_MOUNTS.get(name, set()), f"{name} mounts the host's {source}"
                read_only = [v for v in service["volumes"] if v.split(":")[1] == target]
                assert read_only and read_only[0].split(":")[2].startswith("ro"), name
        assert not service.get("privileged"), name
        assert service.get("pid") != "host" and service.get("network_mode") != "host", name


# Who each container runs as, where the compose file sets no user: the images' own USER, as
# published, or an entrypoint that starts as root only to drop to the image's user (gosu or
# su-exec) before the server runs. A container not listed, and with no user of its own here,
# fails the test below until someone says which it is.
IMAGE_USERS = {
    "docker.elastic.co/elasticsearch/elasticsearch": "elasticsearch (1000)",
    "docker.elastic.co/kibana/kibana": "kibana (1000)",
    "curlimages/curl": "curl_user (100)",
    "prom/prometheus": "nobody",
    "prom/alertmanager": "nobody",
    "prom/node-exporter": "nobody",
    "nginx/nginx-prometheus-exporter": "1001",
    "jaegertracing/all-in-one": "10001",
    "grafana/grafana": "grafana (472)",
}
DROPS_ROOT_IN_ITS_ENTRYPOINT = {
    "postgres": "postgres (gosu)",
    "redis": "redis (gosu / su-exec)",
    "rabbitmq": "rabbitmq (gosu)",
    "hashicorp/consul": "consul (su-exec, for `agent`)",
}
# One-shots that need root for a moment, with the capabilities they keep.
ROOT_ONE_SHOTS = {"gateway-logs-init": {"CHOWN", "FOWNER"}}


def test_no_container_runs_as_root_unless_it_must():
    for name, service in services().items():
        user = str(service.get("user", ""))
        if name in ROOT_ONE_SHOTS:
            assert user.split(":")[0] == "0" and service["restart"] == "no", name
            assert service["cap_drop"] == ["ALL"], name
            assert set(service["cap_add"]) == ROOT_ONE_SHOTS[name], name
        elif user:
            assert user.split(":")[0] not in ("0", "root"), f"{name} runs as root"
        elif "build" not in service:  # the project's image: USER 10001 (checked above)
            image = interpolate(service["image"]).rpartition(":")[0]
            assert image in IMAGE_USERS or image in DROPS_ROOT_IN_ITS_ENTRYPOINT, (
                f"{name}: {image} may run as root; set its user, or list who it runs as"
            )


def named_volume_at(service: dict[str, Any], target: str) -> str | None:
    for volume in service.get("volumes", []):
        source, container_path = volume.split(":")[:2]
        if container_path == target and not source.startswith((".", "/")):
            return source
    return None


def volume_read_only(service: dict[str, Any], target: str) -> bool:
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if parts[1] == target:
            return len(parts) > 2 and "ro" in parts[2].split(",")
    raise AssertionError(f"nothing mounted at {target}")


# --- Consul and its ACLs -------------------------------------------------------------------------


@cache
def consul_config() -> dict[str, Any]:
    return hcl.loads(CONSUL_CONFIG.read_text())


def variable_name(value: str) -> str:
    """NAME, for a value that is exactly ${NAME...}: it comes from .env."""
    match = VARIABLE.fullmatch(value)
    assert match, f"{value!r} is not a variable from .env"
    return match.group(1)


@cache
def acl_principals() -> dict[str, tuple[set[tuple[str, str, str]], str]]:
    """consul.d/acl-bootstrap.sh read back: principal -> (the rights of its policy, as Consul
    reads the rules; the variable holding its token's SecretID)."""
    text = ACL_BOOTSTRAP.read_text()
    policies = re.findall(r"^policy ([\w-]+) '\n(.*?)\n'$", text, re.M | re.S)
    tokens = re.findall(r'^token ([\w-]+) "\$(\w+)"$', text, re.M)
    assert len(policies) == len(re.findall(r"^policy ", text, re.M)), "a policy not read"
    assert len(tokens) == len(re.findall(r"^token ", text, re.M)), "a token not read"
    names = [name for name, _ in tokens]
    assert len(names) == len(set(names)), "one token per principal"
    assert sorted(names) == sorted(name for name, _ in policies), "a policy per token"
    rights = {}
    for name, rules in policies:
        rights[name] = {
            (resource, target, body["policy"])
            for resource, targets in hcl.loads(rules).items()
            for target, body in targets.items()
        }
    return {name: (rights[name], variable) for name, variable in tokens}


def test_consul_denies_by_default_and_keeps_its_state():
    config = consul_config()
    acl = config["acl"]
    assert acl["enabled"] is True and acl["default_policy"] == "deny"
    # The agent's token is set through the API (consul-acl-init): kept across restarts.
    assert acl["enable_token_persistence"] is True
    assert config["server"] is True and config["bootstrap_expect"] == 1
    # Nothing asks Consul's DNS, so the anonymous token needs no right at all.
    assert config["ports"]["dns"] == -1
    consul = services()["consul"]
    assert command(consul) == ["agent"], "the image's entrypoint adds the config directory"
    assert bind_mounts(consul)["/consul/config/server.hcl"] == "./consul.d/server.hcl"
    assert "consul-data:/consul/data" in consul["volumes"], "a dev agent keeps nothing"
    # The initial management token comes from .env, written by the image's entrypoint into
    # the config directory; that config holds nothing else (it would override the file's).
    assert "tokens" not in acl, "no token in a committed file"
    local = json.loads(environment(consul)["CONSUL_LOCAL_CONFIG"])
    token = local["acl"]["tokens"].pop("initial_management")
    assert local == {"acl": {"tokens": {}}}
    assert variable_name(token) == MANAGEMENT_TOKEN
    # The healthcheck needs no token: Consul's status endpoints are open.
    assert "http://127.0.0.1:8500/v1/status/leader" in " ".join(consul["healthcheck"]["test"])


def test_the_acl_bootstrap_gives_each_principal_one_token_and_only_its_rights():
    assert ACL_BOOTSTRAP.read_text() == bootstrap_script(), (
        "consul.d/acl-bootstrap.sh is stale: run `.venv/bin/python scripts/consul_acl.py`"
    )
    principals = dict(acl_principals())
    agent, _ = principals.pop("consul-agent")
    assert agent == {
        ("node", consul_config()["node_name"], "write"),
        ("service_prefix", "", "read"),
    }
    prometheus, _ = principals.pop("prometheus")
    assert prometheus == {("service_prefix", "", "read"), ("node_prefix", "", "read")}
    assert set(principals) == {consul_name(package) for package in PACKAGES}
    for package in PACKAGES:
        name = consul_name(package)
        rights, _ = principals[name]
        # Its own registration, and reading exactly the services its code looks up.
        expected = {("service", name, "write")}
        expected |= {("service", consul_name(peer), "read") for peer in looked_up(package)}
        if looked_up(package):
            expected.add(("node_prefix", "", "read"))  # the health API filters by node too
        assert rights == expected, name


def test_consul_acl_init_runs_the_bootstrap_with_the_management_token():
    init = services()["consul-acl-init"]
    assert init["restart"] == "no", "a one-shot, run again by every `docker compose up`"
    assert init["depends_on"]["consul"]["condition"] == "service_healthy"
    script = next(t for t, s in bind_mounts(init).items() if s == "./consul.d/acl-bootstrap.sh")
    assert init["entrypoint"] == ["/bin/sh", script]
    env = environment(init)
    assert host_port(env["CONSUL_HTTP_ADDR"]) == ("consul", 8500)
    assert variable_name(env["CONSUL_HTTP_TOKEN"]) == MANAGEMENT_TOKEN
    for name, (_, variable) in acl_principals().items():
        assert variable_name(env.get(variable, "")) == variable, f"{name}: {variable} not given"
    assert init["user"] != "0" and not init["user"].startswith("0:"), "the CLI needs no root"
    assert init["cap_drop"] == ["ALL"] and init["read_only"] is True


def test_each_service_registers_with_a_token_of_its_own():
    tokens = {}
    for name in app_services():
        service = services()[name]
        tokens[name] = variable_name(environment(service)["CONSUL_HTTP_TOKEN"])
        assert tokens[name] == acl_principals()[name][1], f"{name}: not its policy's token"
        depends = service["depends_on"]["consul-acl-init"]
        assert depends["condition"] == "service_completed_successfully", name
    assert len(set(tokens.values())) == len(tokens), "two services share a Consul token"
    assert MANAGEMENT_TOKEN not in tokens.values()
    # The management token: Consul (which makes it) and consul-acl-init, nothing else.
    holders = {n for n, s in services().items() if "${" + MANAGEMENT_TOKEN in json.dumps(s)}
    assert holders == {"consul", "consul-acl-init"}


# --- secrets and .env.example -----------------------------------------------------------------


def test_env_example_lists_every_variable_with_a_comment_and_a_safe_placeholder():
    lines = COMPOSE_FILE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = {match.group(1) for match in VARIABLE.finditer(text)}
    bare = re.findall(r"(?<!\$)\$(?![{$])(\w+)", text)
    assert not bare, f"use ${{NAME}} (or $$ for a literal $): {bare}"
    listed = env_example()
    assert used - set(listed) == set(), f"missing from .env.example: {used - set(listed)}"
    assert set(listed) - used == set(), f"not used by docker-compose.yml: {set(listed) - used}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[number - 1].startswith("#"), f"no comment above {line!r}"
    # Nothing usable is committed: every secret is empty, so `docker compose` refuses to start
    # (${NAME:?...}) until .env sets it; scripts/local_secrets.py makes every required one.
    from scripts.local_secrets import COMPOSE_KEYS

    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) in (":?", "?")}
    secret_names = {name for name in listed if SECRET_NAME.search(name)}
    for name in secret_names:
        assert listed[name] == "", f"{name}: a committed value would be a known secret"
    assert required == set(COMPOSE_KEYS), "local_secrets.py --compose makes what compose requires"
    assert required <= secret_names, "every required variable is a secret (others have defaults)"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_secrets_and_passwords_come_from_the_env_file():
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert VARIABLE.fullmatch(value), f"{name}: {key} must be ${{{key}...}} from .env"
            masked = VARIABLE.sub(lambda m: f"<{m.group(1)}>", value)
            userinfo = re.match(r"[\w+.-]+://[^:/@]*:([^@/]*)@", masked)
            if userinfo:
                password = userinfo.group(1)
                assert re.fullmatch(r"<\w+>", password), f"{name}: {key} has a literal password"


# --- the image ---------------------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignore_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps a path (relative, with /) out of the build context."""
    parts = path.split("/")
    result = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        regex = ignore_regex(pattern.removeprefix("!").strip("/"))
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


def test_the_dockerfile_builds_a_slim_non_root_image_of_the_locked_dependencies():
    lines = dockerfile_lines()
    args = {}
    for line in lines:
        if match := re.match(r"ARG\s+(\w+)=(\S+)", line):
            args[match.group(1)] = match.group(2)
    stages = [
        VARIABLE.sub(lambda m: args[m.group(1)], line.split()[1])
        for line in lines
        if line.startswith("FROM ")
    ]
    assert len(stages) >= 2, "multi-stage"
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert stages[-1].startswith(f"python:{python.removeprefix('>=')}-slim"), stages[-1]
    text = "\n".join(lines)
    assert re.search(r"uv sync .*--frozen", text) and "--no-dev" in text
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM "))]
    final_stage = lines[lines.index(final) :]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    healthcheck = next(line for line in final_stage if line.startswith("HEALTHCHECK"))
    assert "/health" in healthcheck and "PORT" in healthcheck and "urllib" in healthcheck
    assert re.search(r'^CMD \["python", "-m", "\w+"\]', text, re.M)

    copied = []
    for line in final_stage:
        if line.startswith("COPY ") and "--from=" not in line:
            copied += [source.rstrip("/") for source in line.split()[1:-1]]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: missing"
    needed = set(PACKAGES) | {"shared_core", "shared_runtime", "shared_events"}
    assert needed <= set(copied), f"not copied into the image: {needed - set(copied)}"
    for source in ["pyproject.toml", "uv.lock", *copied]:
        for path in [ROOT / source, *(ROOT / source).rglob("*")]:
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in relative and path.suffix != ".pyc":
                assert not ignored(relative), f".dockerignore leaves out {relative}"
    for secret in (".env", ".git", ".venv"):
        assert ignored(secret), f".dockerignore must leave out {secret}"


# --- Prometheus and Grafana ------------------------------------------------------------------


def test_prometheus_finds_the_services_in_consul():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["localhost:9090"]
    consul_jobs = [job for job in jobs.values() if "consul_sd_configs" in job]
    assert len(consul_jobs) == 1
    job = consul_jobs[0]
    (sd,) = job["consul_sd_configs"]
    assert sd["server"] == "consul:8500" and "consul" in services()
    # The tag the services register with (shared_runtime.discovery).
    assert sd["tags"] == ["metrics"] and '"metrics"' in inspect.getsource(Discovery.register)
    # Consul denies by default: Prometheus's own token, from .env, through a file in memory.
    prometheus = services()["prometheus"]
    token_file = sd["authorization"]["credentials_file"]
    assert token_file.startswith("/tmp/") and prometheus["tmpfs"] == ["/tmp"]
    script = prometheus["entrypoint"][2]
    assert f'"$$CONSUL_HTTP_TOKEN" > {token_file}' in script and "umask 077" in script
    assert 'exec /bin/prometheus "$$@"' in script, "then Prometheus with the command's arguments"
    token = variable_name(environment(prometheus)["CONSUL_HTTP_TOKEN"])
    assert token == acl_principals()["prometheus"][1]
    # Without a datacenter Prometheus asks the agent for it, which its token may not.
    assert sd["datacenter"] == consul_config()["datacenter"]
    relabels = job["relabel_configs"]
    assert any("__meta_consul_service" in r.get("source_labels", []) for r in relabels)
    # The metrics' own "service" label must not be renamed to exported_service.
    assert all(r.get("target_label") != "service" for r in relabels)
    config_path = next(a.split("=", 1)[1] for a in command(prometheus) if "config.file" in a)
    assert bind_mounts(prometheus)[config_path].removeprefix("./") == "observability/prometheus.yml"


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    grafana = services()["grafana"]
    mounts = {source.removeprefix("./"): target for target, source in bind_mounts(grafana).items()}
    provisioning = mounts["observability/grafana/provisioning"]
    assert provisioning == "/etc/grafana/provisioning"
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    assert host_port(datasource["url"]) == ("prometheus", 9090)
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == mounts["observability/grafana/dashboards"]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == datasource["uid"]


@cache
def registered_metrics() -> dict[str, set[str]]:
    """Exposed metric name -> label names, for every metric the code registers."""
    found: dict[str, set[str]] = {}
    for package in [*PACKAGES, "shared_core", "shared_runtime", "shared_events"]:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                kind = node.func.id
                if kind not in ("Counter", "Gauge", "Histogram") or not node.args:
                    continue
                args, keywords = node.args, {k.arg: k.value for k in node.keywords}
                name = ast.literal_eval(args[0])
                labels_node = args[2] if len(args) > 2 else keywords.get("labelnames")
                labels = set(ast.literal_eval(labels_node)) if labels_node else set()
                if kind == "Counter":
                    found[name if name.endswith("_total") else f"{name}_total"] = labels
                elif kind == "Histogram":
                    for suffix in ("_bucket", "_sum", "_count"):
                        found[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
                else:
                    found[name] = labels
    return found


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
PROMQL_WORDS |= {"unless", "bool", "offset"}


def promql_metrics(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(metric names, labels matched per metric, labels grouped by) of a PromQL expression."""
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    matched: dict[str, set[str]] = {}
    for metric, matchers in re.findall(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", expr):
        matched.setdefault(metric, set()).update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    grouped: set[str] = set()
    for labels in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        grouped.update(label.strip() for label in labels.split(",") if label.strip())
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", re.sub(r"\{[^}]*\}", "", expr))
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    names = {
        m.group(0)
        for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", bare)
        if not bare[m.end() :].lstrip().startswith("(") and m.group(0) not in PROMQL_WORDS
    }
    return names, matched, grouped


def test_the_dashboard_queries_the_metrics_the_services_export():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and 36 <= dashboard["schemaVersion"] <= 41
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    queried: set[str] = set()
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            names, matched, grouped = promql_metrics(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            queried |= names
            for name in names:
                assert name in METRICS, f"{panel['title']}: {name} is not a dashboard metric"
                assert name in registered_metrics(), f"{name} is registered nowhere in the code"
            for metric, labels in matched.items():
                assert labels <= registered_metrics()[metric], f"{metric} has no {labels}"
            available = set().union(*(registered_metrics()[name] for name in names))
            assert grouped <= available, f"{panel['title']}: grouped by {grouped - available}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
            assert query, f"variable {variable['name']}: {variable['definition']}"
            metric, label = query.groups()
            assert metric in METRICS and label in registered_metrics()[metric]
    assert queried == set(METRICS), f"no panel for {set(METRICS) - queried}"
    for name, labels in METRICS.items():
        assert labels <= registered_metrics()[name], f"{name}: the code has no {labels}"


# --- Kibana ------------------------------------------------------------------------------------


def test_kibana_saved_objects_search_the_shipped_logs():
    objects = [json.loads(line) for line in KIBANA_OBJECTS.read_text().splitlines() if line]
    by_id = {(obj["type"], obj["id"]): obj for obj in objects}
    assert len(by_id) == len(objects), "ids are unique"
    template = json.loads(INDEX_TEMPLATE.read_text())
    fields = template["template"]["mappings"]["properties"]
    (data_view,) = [obj for obj in objects if obj["type"] == "index-pattern"]
    assert [data_view["attributes"]["title"]] == template["index_patterns"]
    assert data_view["attributes"]["timeFieldName"] == "timestamp"
    assert fields["timestamp"]["type"] == "date"

    searches = {}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in by_id, f"{obj['id']}: dangling {ref}"
        if obj["type"] != "search":
            continue
        source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["query"]["language"] == "kuery"
        assert set(obj["attributes"]["columns"]) <= set(fields), obj["id"]
        assert obj["attributes"]["sort"][0][0] == "timestamp"
        assert {ref["id"] for ref in obj["references"]} == {data_view["id"]}
        searches[obj["attributes"]["title"]] = source["query"]["query"]
    for package in PACKAGES:
        service_name = settings_class(package).model_fields["service_name"].default
        assert f'service: "{service_name}"' in searches.values(), f"no saved search for {package}"
    assert searches["One order's saga"].startswith("correlation_id")

    setup = services()["kibana-setup"]
    mounts = {source.removeprefix("./"): target for target, source in bind_mounts(setup).items()}
    mounted = mounts["observability/kibana/saved_objects.ndjson"]
    script = " ".join(command(setup))
    assert "/api/saved_objects/_import?overwrite=true" in script
    assert "kbn-xsrf: true" in script and f"file=@{mounted}" in script
    assert setup["depends_on"]["kibana"]["condition"] == "service_healthy"
