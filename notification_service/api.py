"""HTTP routes of notification_service: the caller's own delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from notification_service.models import Delivery
from notification_service.schemas import DeliveryPage, DeliveryResponse
from shared_runtime.auth import CurrentUser
from shared_runtime.db import SessionDep

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=DeliveryPage)
async def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> DeliveryPage:
    own = Delivery.user_id == user.user_id
    total = await session.scalar(select(func.count()).select_from(Delivery).where(own))
    rows = await session.scalars(
        select(Delivery)
        .where(own)
        .order_by(Delivery.created_at.desc(), Delivery.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return DeliveryPage(
        items=[DeliveryResponse.model_validate(row, from_attributes=True) for row in rows],
        total=total or 0,
        page=page,
        page_size=page_size,
    )
