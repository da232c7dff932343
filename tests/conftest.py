"""What every test run shares: its own signing key, made for this run and never written down."""

from __future__ import annotations

import os
import secrets


def pytest_configure() -> None:
    # The apps the tests build, the test stack and the tokens the tests mint all read it.
    os.environ["JWT_SECRET"] = secrets.token_urlsafe(48)
