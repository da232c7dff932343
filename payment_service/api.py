"""HTTP routes of payment_service: payment records for their owner or an admin."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from payment_service import service
from payment_service.schemas import PaymentOut, PaymentPage
from shared_runtime.auth import CurrentUser
from shared_runtime.db import SessionDep

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get("", response_model=PaymentPage)
async def list_payments(
    session: SessionDep,
    user: CurrentUser,
    order_id: Annotated[uuid.UUID | None, Query(alias="orderId")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> PaymentPage:
    """The caller's payments (an admin: everyone's), newest first, optionally for one order."""
    rows, total = await service.list_payments(
        session, user.user_id, user.is_admin, order_id, page, page_size
    )
    return PaymentPage(
        items=[PaymentOut.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
    )
