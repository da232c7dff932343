"""``python -m <service> [serve|migrate|...]``: the same command line for every service."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared_runtime.migrate import upgrade
from shared_runtime.service import serve
from shared_runtime.settings import ConfigurationError, ServiceSettings

Command = Callable[[list[str]], int]


def run_service_cli(
    *,
    package_file: str,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[Any], Any],
    commands: dict[str, Command] | None = None,
    argv: list[str] | None = None,
) -> int:
    args = sys.argv[1:] if argv is None else argv
    name = args[0] if args else "serve"
    extra = commands or {}
    if name == "serve":
        settings = settings_factory()
        try:
            app = app_factory(settings)
        except ConfigurationError as exc:
            print(f"{settings.service_name} will not start: {exc}", file=sys.stderr)
            return 2
        serve(app, settings)
        return 0
    if name == "migrate":
        settings = settings_factory()
        upgrade(
            Path(package_file).parent,
            settings.database_url,
            admin_url=settings.database_admin_url,
        )
        print(f"{settings.service_name}: database migrated to head")
        return 0
    if name in extra:
        return extra[name](args[1:])
    known = ", ".join(["serve", "migrate", *extra])
    print(f"unknown command {name!r}; commands: {known}", file=sys.stderr)
    return 2
