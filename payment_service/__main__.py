"""python -m payment_service [serve | migrate]."""

from __future__ import annotations

import sys

from payment_service.app import Settings, create_app
from shared_runtime.cli import run_service_cli

if __name__ == "__main__":
    sys.exit(
        run_service_cli(package_file=__file__, settings_factory=Settings, app_factory=create_app)
    )
