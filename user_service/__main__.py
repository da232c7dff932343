"""python -m user_service [serve | migrate | create-admin --email E --password P]."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared_runtime.cli import run_service_cli
from shared_runtime.db import standalone_sessionmaker
from user_service.app import Settings, create_app
from user_service.schemas import RegisterRequest
from user_service.service import make_admin


def create_admin(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m user_service create-admin")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--full-name", default="Administrator")
    args = parser.parse_args(argv)
    # The same validation as the API's register.
    body = RegisterRequest(email=args.email, password=args.password, full_name=args.full_name)

    async def run() -> None:
        async with standalone_sessionmaker(Settings().database_url) as sessionmaker:
            async with sessionmaker() as session, session.begin():
                user = await make_admin(
                    session, email=body.email, password=body.password, full_name=body.full_name
                )
            print(f"admin {user.email} ({user.id})")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(
        run_service_cli(
            package_file=__file__,
            settings_factory=Settings,
            app_factory=create_app,
            commands={"create-admin": create_admin},
        )
    )
