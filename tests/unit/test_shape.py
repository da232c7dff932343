"""Every service has the same shape (docs/ARCHITECTURE.md, "Every service has the same
shape"): the rules in domain.py do no I/O and know no HTTP, no placeholder files, and no file
grows past what a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared_runtime.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
# What a rule must not reach for: stores, the network, the web framework, the runtime (and so
# shared_runtime.errors' HTTP types), logging.
IO_AND_HTTP = {
    "sqlalchemy",
    "asyncpg",
    "redis",
    "aio_pika",
    "httpx",
    "aiohttp",
    "fastapi",
    "starlette",
    "structlog",
    "shared_runtime",
}
MAX_LINES = 400
SOURCES = ["shared_core", "shared_events", "shared_runtime", "scripts", "nginx", *SERVICES]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_rules_of_a_service_do_no_io_and_know_no_http(service):
    domain = ROOT / service / "domain.py"
    assert domain.exists(), f"{service} has no domain.py"
    reached = {
        name
        for name in imports(domain)
        if name.split(".")[0] in IO_AND_HTTP or name == f"{service}.models"
    }
    assert reached == set()


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_role_a_service_lacks_is_an_absent_file_not_a_placeholder(service):
    placeholders = []
    for path in (ROOT / service).glob("*.py"):
        body = ast.parse(path.read_text()).body
        if path.name != "__init__.py" and all(
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body
        ):
            placeholders.append(path.name)
    assert placeholders == []


def test_no_source_file_is_longer_than_a_reader_takes_in():
    long = {
        str(path.relative_to(ROOT)): n
        for source in SOURCES
        for path in (ROOT / source).rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
