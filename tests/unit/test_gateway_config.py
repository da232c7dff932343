"""The gateway's nginx configuration: what make dev runs and what docker-compose mounts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nginx.render import HERE, PERSONAL_QUERY_PATTERN, compose_conf, render
from shared_core.fields import REDACTED_QUERY, redact_query


def test_compose_conf_is_the_rendered_one():
    assert (HERE / "compose.conf").read_text() == compose_conf(), (
        "nginx/compose.conf is stale: run `.venv/bin/python nginx/render.py --compose`"
    )


def test_compose_conf_resolves_every_service_through_docker_dns():
    conf = compose_conf()
    assert "resolver 127.0.0.11" in conf
    for service in ("user", "product", "cart", "order", "payment", "notification"):
        assert re.search(rf"server {service}-service:8000 resolve ", conf), service
        assert f"zone {service}_service 64k;" in conf
    assert "daemon off;" in conf and "error_log /dev/stderr warn;" in conf
    # The access log in hourly files on the volume Filebeat reads (test_compose checks it).
    assert "access_log /var/log/gateway/access-$access_log_hour.log json_access;" in conf
    assert "include /etc/nginx/routes.conf;" in conf


def test_every_upstream_the_routes_use_is_defined():
    routes = (HERE / "routes.conf").read_text()
    used = set(re.findall(r"proxy_pass http://(\w+)/", routes))
    defined = set(re.findall(r"upstream (\w+) \{", compose_conf()))
    assert used == defined


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.parametrize("hourly_files", [False, True], ids=["make dev", "hourly access log"])
def test_nginx_accepts_the_rendered_config(tmp_path: Path, hourly_files: bool):
    services = ["user", "product", "cart", "order", "payment", "notification"]
    upstreams = {f"{s}_service": [f"127.0.0.1:{5001 + n}"] for n, s in enumerate(services)}
    options = {"access_log_dir": str(tmp_path / "logs")} if hourly_files else {}
    conf = render(tmp_path, "18999", upstreams, **options)
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


QUERIES = [
    ("search=ada%40example.com", True),
    ("status=PENDING&page=2", False),
    ("pageSize=20&userEmail=a@b.c", True),
    ("FullName=Ada", True),
    ("%65mail=a@b.c", True),
    ("page=1&s%65arch=x", True),
    ("status=PENDING&search", True),
    ("token=abc", True),
    ("minPrice=1&sort=name", False),
    ("q=my-name-is&x=1", False),
    ("", False),
]


@pytest.mark.parametrize(("query", "personal"), QUERIES)
def test_the_gateway_masks_the_query_strings_the_services_mask(query, personal):
    """nginx's pattern (its access log) and shared_core.fields.redact_query (the spans) are
    one rule: they decide alike."""
    assert PERSONAL_QUERY_PATTERN.startswith("~*")
    by_nginx = re.search(PERSONAL_QUERY_PATTERN[2:], query, re.IGNORECASE) is not None
    assert by_nginx is personal
    assert (redact_query(query) == REDACTED_QUERY) is personal
    assert redact_query(query) == (REDACTED_QUERY if personal else query)
