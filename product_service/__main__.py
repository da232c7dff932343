"""python -m product_service [serve | migrate | load-demo]."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import sqlalchemy as sa

from product_service.app import Settings, create_app
from product_service.importer import import_file
from product_service.models import Product
from shared_runtime.cli import run_service_cli
from shared_runtime.db import standalone_sessionmaker

DEMO_CATALOG = Path(__file__).parent / "demo_catalog.jsonl"


def load_demo(argv: list[str]) -> int:
    """Load the demo catalog, only into an empty catalog."""

    async def run() -> None:
        async with standalone_sessionmaker(Settings().database_url) as sessionmaker:
            async with sessionmaker() as session:
                count = await session.scalar(sa.select(sa.func.count()).select_from(Product))
            if count:
                print(f"product_service: catalog has {count} products; demo not loaded")
                return
            with DEMO_CATALOG.open("rb") as file:
                result = await import_file(sessionmaker, file, "jsonl")
            print(f"product_service: demo catalog loaded ({result.created} products)")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(
        run_service_cli(
            package_file=__file__,
            settings_factory=Settings,
            app_factory=create_app,
            commands={"load-demo": load_demo},
        )
    )
