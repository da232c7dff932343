"""No usable secret ships: the signing key is refused when weak or public; no file commits one."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from scripts.local_secrets import COMPOSE_KEYS, CONSUL_TOKENS, ensure, read_env_file
from shared_runtime.settings import ConfigurationError, ServiceSettings, secret_problem

ROOT = Path(__file__).resolve().parents[2]
# Shapes of real provider credentials and keys.
CREDENTIAL = re.compile(
    r"sk_(live|test)_[A-Za-z0-9]{16,}|rk_live_[A-Za-z0-9]{16,}|AKIA[0-9A-Z]{16}|SG\.[A-Za-z0-9_-]{20,}\.|"
    r"BEGIN [A-Z ]*PRIVATE KEY|AC[0-9a-f]{32}"
)
# A secret-looking name given a literal value in a deployment or settings file.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASS|TOKEN|_KEY|_SID|_AUTH)$", re.IGNORECASE)
ASSIGNMENT = re.compile(r"^\s*-?\s*([A-Za-z_][A-Za-z0-9_.]*)\s*[:=]\s*(.*?)\s*$")
# Values that are not a credential: empty, a name of one, or a reference to where it lives (the
# environment, make, GitHub Actions' secrets).
NOT_A_VALUE = re.compile(
    r'^(true|false|\d+|""|\'\'|\$\{[A-Z_]+(:?[-?][^}]*)?\}|\$\([A-Z_]+\)|[A-Z_]+|'
    r"\$\{\{ secrets\.[A-Za-z_][A-Za-z0-9_]* \}\}|)$"
)


def committed_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [ROOT / name.decode() for name in listed if name and (ROOT / name.decode()).is_file()]


def test_a_missing_short_placeholder_or_committed_secret_is_refused():
    assert secret_problem("") == "is not set"
    assert "shorter than 32 bytes" in str(secret_problem("x" * 31))
    assert secret_problem("change-me-jwt-secret-at-least-32-characters") == "is a placeholder"
    # Any 32 bytes of any committed file: as public as the repository.
    source = (ROOT / "shared_runtime" / "auth.py").read_text()
    committed = source[source.index("def decode_access_token") :][:40]
    assert "appears in the repository" in str(secret_problem(committed))
    assert secret_problem(secrets.token_urlsafe(48)) is None

    for value in ("", "short", committed):
        with pytest.raises(ConfigurationError, match=r"^JWT_SECRET "):
            ServiceSettings(jwt_secret=SecretStr(value)).check_secrets()


def test_no_committed_file_holds_a_usable_credential():
    found = []
    for path in committed_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if CREDENTIAL.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: looks like a credential")
        if path.suffix in (".yml", ".yaml", ".conf") or path.name.startswith((".env", "Docker")):
            for number, line in enumerate(text.splitlines(), 1):
                match = ASSIGNMENT.match(line)
                if (
                    match
                    and SECRET_NAME.search(match.group(1))
                    and not line.lstrip().startswith("#")
                ):
                    value = match.group(2).split(" #")[0].strip()
                    if not NOT_A_VALUE.match(value):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(1)}")
    assert not found, "\n".join(found)


def test_local_secrets_are_random_kept_and_private(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=DEBUG\nREDIS_PASSWORD=kept-as-it-is")  # no final newline
    assert ensure(["JWT_SECRET"], env_file) == ["JWT_SECRET"]
    first = read_env_file(env_file)
    assert secret_problem(first["JWT_SECRET"]) is None
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600

    added = ensure(COMPOSE_KEYS, env_file)
    assert "JWT_SECRET" not in added and "REDIS_PASSWORD" not in added
    values = read_env_file(env_file)
    assert values["JWT_SECRET"] == first["JWT_SECRET"]
    assert values["REDIS_PASSWORD"] == "kept-as-it-is" and values["LOG_LEVEL"] == "DEBUG"
    generated = [values[key] for key in added]
    assert len(set(generated)) == len(generated) and all(len(v) >= 32 for v in generated)
    # Consul takes a token's SecretID only as a UUID.
    for key in CONSUL_TOKENS:
        assert str(uuid.UUID(values[key])) == values[key], key
    assert ensure(COMPOSE_KEYS, env_file) == []
