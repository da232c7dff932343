"""The async SQLAlchemy engine, the session per request, and the commit at the edge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared_core.context import drop_after_commit, run_after_commit

Row = TypeVar("Row")


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """Each checkout pings its connection first: after a database restart, no request or
    event meets a dead pooled connection (without it, several did, each a 503 or a retry).
    """
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        # A database error quotes no values (customers' e-mails and addresses) into messages,
        # tracebacks or logs.
        hide_parameters=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def standalone_sessionmaker(
    database_url: str, pool_size: int = 2
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions for a command-line command (no app around it): the engine is closed after."""
    engine = create_engine(database_url, pool_size=pool_size)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the route returns, rolled back if it raises.

    Domain functions never commit; this is what keeps a state change and its outbox row
    in one transaction. The commit happens before the response is sent (scope="function"
    below), so a client never reads an answer whose change is not yet durable.
    """
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            drop_after_commit(session)
            raise
        else:
            await session.commit()
            await run_after_commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def lock_or_create(
    session: AsyncSession, model: type[Row], key: str, value: Any, **defaults: Any
) -> Row:
    """The row of ``model`` whose unique column ``key`` is ``value``, created with ``defaults``
    if there is none, and locked (``FOR UPDATE``) until the transaction ends.

    ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT ... FOR UPDATE``: concurrent callers for
    one key (events of one order arriving at once, in any order) take turns on the same row,
    whoever created it."""
    column = getattr(model, key)
    await session.execute(
        insert(model)
        .values({key: value, **defaults})
        .on_conflict_do_nothing(index_elements=[column])
    )
    row = await session.scalar(
        sa.select(model)
        .where(column == value)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row
