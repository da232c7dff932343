"""Alembic environment of user_service."""

from shared_events.store import metadata as events_metadata
from shared_runtime.migrate import run_env
from user_service.models import Base

run_env([Base.metadata, events_metadata])
