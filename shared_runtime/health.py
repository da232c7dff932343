"""GET /health (the process is up) and GET /ready (its database, Redis and broker answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared_runtime.errors import error_response

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 2.0

# Probes, not part of the API: left out of the OpenAPI the gateway publishes under /api/v1.
router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


async def readiness(app: Any) -> dict[str, str]:
    """Each dependency's check: "ok", or "down: <why>"."""
    checks: dict[str, ReadinessCheck] = app.state.readiness_checks
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    status = await readiness(request.app)
    down = [name for name, state in status.items() if state != "ok"]
    if down:
        return error_response(
            503,
            "not_ready",
            f"Not ready: {', '.join(down)} unreachable.",
            {"checks": status},
        )
    return JSONResponse({"status": "ready", "checks": status})


async def _run(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def redis_check(redis: object) -> ReadinessCheck:
    async def check() -> None:
        await redis.ping()  # type: ignore[attr-defined]

    return check
