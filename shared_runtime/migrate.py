"""Alembic per service: create the service database if missing and upgrade it to head.

Each service keeps its revisions in ``<service>/migrations/versions``; its ``env.py`` is one
call to :func:`run_env`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

# Hand every relation of the schema to the database's owner (a database first made by a
# superuser, before the service had a role of its own). Sequences follow their tables.
_TAKE_OVER_TABLES = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
               AND c.relowner <> (SELECT datdba FROM pg_database WHERE datname = current_database())
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', r.name,
                       (SELECT pg_get_userbyid(datdba) FROM pg_database
                        WHERE datname = current_database()));
    END LOOP;
END $$;
"""


def _dsn(url: URL, database: str) -> str:
    return url.set(drivername="postgresql", database=database).render_as_string(hide_password=False)


async def ensure_database(database_url: str, admin_url: str | None = None) -> None:
    """Create the service database if missing.

    With ``admin_url`` (a role that may create roles and databases), the service's own role
    (the user of ``database_url``) is created or given its password, and made the owner of
    its database and of everything in it; no other role may connect to it. Without it, the
    database is created as the user of ``database_url``.
    """
    url = make_url(database_url)
    admin = make_url(admin_url) if admin_url else url
    conn = await asyncpg.connect(_dsn(admin, "postgres"))
    try:
        if admin_url and url.username and url.username != admin.username:
            await _ensure_role(conn, url.username, url.password)
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", url.database
        )
        if owner is None:
            owned_by = f' OWNER "{url.username}"' if admin_url and url.username else ""
            await conn.execute(f'CREATE DATABASE "{url.database}"{owned_by}')
        if admin_url and url.username:
            await conn.execute(f'REVOKE ALL ON DATABASE "{url.database}" FROM PUBLIC')
            if owner is not None and owner != url.username:
                await conn.execute(f'ALTER DATABASE "{url.database}" OWNER TO "{url.username}"')
                inside = await asyncpg.connect(_dsn(admin, str(url.database)))
                try:
                    await inside.execute(_TAKE_OVER_TABLES)
                finally:
                    await inside.close()
    finally:
        await conn.close()


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # Roles and passwords cannot be bind parameters in DDL: format() quotes them.
    statement = await conn.fetchval(
        "SELECT format('%s ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', $1::text, $2::text)"
        " || CASE WHEN $3::text IS NULL THEN '' ELSE format(' PASSWORD %L', $3::text) END",
        verb,
        role,
        password,
    )
    await conn.execute(statement)


def alembic_config(service_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(service_dir / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(
    service_dir: Path, database_url: str, revision: str = "head", admin_url: str | None = None
) -> None:
    asyncio.run(ensure_database(database_url, admin_url))
    command.upgrade(alembic_config(service_dir, database_url), revision)


def run_env(target_metadata: sa.MetaData | list[sa.MetaData]) -> None:
    """The body of every service's migrations/env.py (online mode, async engine)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def do_run(connection: sa.Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
