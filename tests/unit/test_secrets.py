"""No usable secret ships: the signing key is refused when weak or public; no file commits one."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
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


def test_a_missing_short_or_placeholder_secret_is_refused():
    assert secret_problem("") == "is not set"
    assert "shorter than 32 bytes" in str(secret_problem("x" * 31))
    assert secret_problem("change-me-jwt-secret-at-least-32-characters") == "is a placeholder"
    assert secret_problem(secrets.token_urlsafe(48)) is None

    for value in ("", "short"):
        with pytest.raises(ConfigurationError, match=r"^JWT_SECRET "):
            ServiceSettings(jwt_secret=SecretStr(value)).check_secrets()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a" * 32, "1 different characters"),
        ("ab" * 16, "2 different characters"),
        ("0123456789abcdef" * 2, "repeats, sequences or common words"),
        ("qwertyuiopasdfghjklzxcvbnm123456", "dictionary words"),  # common passwords are words
        ("Password2026!Password2026!Passw0rd", "repeats, sequences or common words"),
        ("correct horse battery staple and more words", "dictionary words"),
        ("CorrectHorseBatteryStapleWithExtraWords", "dictionary words"),
        ("thisismysupersecretjwtsigningkey2026!", "dictionary words"),
    ],
)
def test_a_long_secret_with_little_entropy_is_refused_with_one_clear_line(value, why):
    assert secret_problem(value) == f"has too little entropy ({why})"
    with pytest.raises(ConfigurationError) as refused:
        ServiceSettings(jwt_secret=SecretStr(value)).check_secrets()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("JWT_SECRET has too little entropy")
    assert "secrets.token_urlsafe(48)" in message


@pytest.mark.parametrize(
    "make",
    [lambda: secrets.token_urlsafe(48), lambda: secrets.token_hex(32)],
    ids=["48 bytes, base64 (make dev's)", "32 bytes, hex"],
)
def test_random_secrets_pass_every_time(make):
    assert [secret_problem(make()) for _ in range(50)] == [None] * 50


def local_secret_values() -> dict[str, str]:
    """This machine's secrets: the local .env (git-ignored) and the test run's JWT_SECRET."""
    values = {"JWT_SECRET (this run)": os.environ["JWT_SECRET"]}
    values |= {
        f"{name} (.env)": value
        for name, value in read_env_file(ROOT / ".env").items()
        if SECRET_NAME.search(name) and len(value) >= 16
    }
    return values


def test_no_secret_of_this_machine_is_committed():
    """A value from the local .env (or the environment) pasted into a committed file is as
    public as the repository: anyone who read it could sign tokens or reach the stores."""
    values = local_secret_values()
    found = []
    for path in committed_files():
        try:
            text = path.read_bytes()
        except OSError:
            continue
        found += [
            f"{path.relative_to(ROOT)}: {name}" for name, v in values.items() if v.encode() in text
        ]
    assert not found, "\n".join(found)


def test_the_check_of_committed_secrets_finds_one(tmp_path, monkeypatch):
    # The scan above, against a repository that did commit the run's key.
    leak = tmp_path / "leaked.yml"
    leak.write_text(f"jwt: {os.environ['JWT_SECRET']}\n")
    monkeypatch.setattr(sys.modules[__name__], "committed_files", lambda: [leak])
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match=r"leaked\.yml: JWT_SECRET"):
        test_no_secret_of_this_machine_is_committed()


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
