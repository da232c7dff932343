"""HTTP routes of payment_service: payment records for their owner or an admin."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query

from payment_service.models import Payment
from payment_service.schemas import PaymentOut
from shared_runtime.auth import CurrentUser
from shared_runtime.db import SessionDep

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get("", response_model=list[PaymentOut])
async def list_payments(
    session: SessionDep,
    user: CurrentUser,
    order_id: Annotated[uuid.UUID | None, Query(alias="orderId")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[PaymentOut]:
    """The caller's payments (an admin: everyone's), newest first, optionally for one order."""
    conditions: list[Any] = [Payment.status != "cancelled"]
    if not user.is_admin:
        conditions.append(Payment.user_id == user.user_id)
    if order_id is not None:
        conditions.append(Payment.order_id == order_id)
    rows = await session.scalars(
        sa.select(Payment).where(*conditions).order_by(Payment.created_at.desc()).limit(limit)
    )
    return [PaymentOut.model_validate(row, from_attributes=True) for row in rows]
