"""The outbox and inbox tables every service database has, and writing an event to the outbox."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared_core.context import current_request_id, inject_trace
from shared_events.events import Event

# The relay LISTENs on this channel; NOTIFY is delivered when the writing transaction commits.
OUTBOX_CHANNEL = "outbox"

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("routing_key", sa.String(200), nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("correlation_id", sa.String(200), nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index(
        "ix_outbox_unpublished",
        "created_at",
        postgresql_where=sa.text("published_at IS NULL"),
    ),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)

# The people erased here (UserDeleted): the tombstone that makes a late event about them (one
# published before the deletion, delivered after it) store or send nothing personal.
erased_users = sa.Table(
    "erased_users",
    metadata,
    sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "erased_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")

# What stands in for a person once their account is deleted (UserDeleted): kept where a record
# must stay (orders and payments, for accounting), identifying no one.
ERASED_EMAIL = "erased@erased.invalid"
ERASED_NAME = "(erased)"
# The personal fields an event body may carry, and what stands in for each once the person is
# erased (in outboxes, and in messages waiting in retry or parked queues).
ERASED_EVENT_FIELDS: dict[str, Any] = {
    "email": ERASED_EMAIL,
    "userEmail": ERASED_EMAIL,
    "fullName": ERASED_NAME,
    "phone": None,
}
_ERASED_EVENT_FIELDS = json.dumps(ERASED_EVENT_FIELDS)


def anonymised(payload: dict[str, Any]) -> dict[str, Any]:
    """An event body with the personal fields it has replaced (as ``erase_from_outbox`` does)."""
    return payload | {key: value for key, value in ERASED_EVENT_FIELDS.items() if key in payload}


def trace_headers(request_id: str | None = None) -> dict[str, str]:
    """x-request-id and the W3C trace context of the work in progress: the current span's when
    tracing is on, else one whose trace id is the request id when it can be (so the event's
    consumers still log one id for the whole story)."""
    request_id = request_id or current_request_id() or uuid.uuid4().hex
    headers = {"x-request-id": request_id}
    if not inject_trace(headers):
        trace_id = request_id if _HEX32.match(request_id) else secrets.token_hex(16)
        headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    return headers


async def add_event(session: AsyncSession, event: Event, *, correlation_id: Any = None) -> None:
    """Write ``event`` to the outbox in the caller's transaction; it is published after commit."""
    request_headers = trace_headers()
    await session.execute(
        outbox.insert()
        .values(
            id=event.id,
            event_type=event.event_type(),
            routing_key=event.routing_key,
            payload=event.model_dump(mode="json", by_alias=True),
            headers=request_headers,
            correlation_id=str(correlation_id or request_headers["x-request-id"]),
        )
        # The wake-up for the relay, in the same round trip (delivered on commit, and
        # PostgreSQL folds a transaction's identical notifications into one).
        .returning(sa.func.pg_notify(OUTBOX_CHANNEL, ""))
    )


async def erase_from_outbox(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Anonymise the personal fields (those present) of every outbox event about ``user_id``,
    sent or not: the outbox keeps events for days, and must not keep the person with them."""
    await session.execute(
        sa.text(
            "UPDATE outbox SET payload = payload || ("
            "  SELECT coalesce(jsonb_object_agg(key, CAST(:erased AS jsonb) -> key), '{}')"
            "  FROM jsonb_object_keys(payload) AS key WHERE CAST(:erased AS jsonb) ? key"
            ") WHERE payload ->> 'userId' = :user_id"
        ),
        {"erased": _ERASED_EVENT_FIELDS, "user_id": str(user_id)},
    )


def _person_lock_key(user_id: uuid.UUID) -> int:
    """The advisory lock standing for one person in a service's database (64 bits of the id;
    two people sharing one only wait for each other a moment)."""
    return int.from_bytes(user_id.bytes[:8], "big", signed=True)


async def record_erasure(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The tombstone, under the person's lock held exclusively to the commit: whoever checked
    ``is_erased`` and is still writing about them finishes first (the erasure then sees and
    anonymises what they wrote), and whoever checks after waits for the tombstone."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_person_lock_key(user_id))))
    await session.execute(insert(erased_users).values(user_id=user_id).on_conflict_do_nothing())


async def is_erased(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the person was erased here; the person's lock is then held (shared) to the
    commit, so what the caller writes of them either precedes the erasure or is refused.
    (Two statements: the look-up's snapshot must be taken once the lock is held.)"""
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock_shared(_person_lock_key(user_id)))
    )
    found = await session.scalar(
        sa.select(erased_users.c.user_id).where(erased_users.c.user_id == user_id)
    )
    return found is not None


def create_erasure_table(op: Any) -> None:
    """Called from a migration of each service that holds personal data."""
    metadata.create_all(bind=op.get_bind(), tables=[erased_users])


def drop_erasure_table(op: Any) -> None:
    metadata.drop_all(bind=op.get_bind(), tables=[erased_users])


def create_tables(op: Any) -> None:
    """Called from each service's first Alembic migration: the same two tables everywhere."""
    metadata.create_all(bind=op.get_bind(), tables=[outbox, inbox])


def drop_tables(op: Any) -> None:
    metadata.drop_all(bind=op.get_bind(), tables=[outbox, inbox])
