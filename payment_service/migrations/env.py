"""Alembic environment of payment_service."""

from payment_service.models import Base
from shared_events.store import metadata as events_metadata
from shared_runtime.migrate import run_env

run_env([Base.metadata, events_metadata])
