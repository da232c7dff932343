"""A service refuses to start with a signing key anyone could know, and says why in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared_runtime.registry import SERVICES
from tests.support import ROOT


def start(service: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    if secret is not None:
        env["JWT_SECRET"] = secret
    # A port nothing listens on: if the check let it through, it would serve (and time out).
    env[f"{SERVICES[service].env_prefix}_PORT"] = "1"
    return subprocess.run(
        [sys.executable, "-m", service], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
def test_no_secret_no_start(service):
    result = start(service, None)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"{service} will not start: JWT_SECRET is not set; generate one with: "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "secret,why",
    [
        ("change-me-in-production", "is shorter than 32 bytes"),
        ("s3cr3t-" * 3, "is shorter than 32 bytes"),
        ("change-me-jwt-secret-at-least-32-characters", "is a placeholder"),
        ("ab" * 24, "has too little entropy"),
        ("correct horse battery staple and more words", "has too little entropy"),
    ],
    ids=["old-default", "short", "placeholder", "repeated", "words"],
)
def test_a_weak_or_public_secret_stops_the_service(secret, why):
    result = start("order_service", secret)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"order_service will not start: JWT_SECRET {why}")
    assert secret not in line, "the error never repeats the secret"
