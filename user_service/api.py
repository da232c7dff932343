"""HTTP routes of user_service: register, login, me."""

from __future__ import annotations

from fastapi import APIRouter, Request

from shared_runtime.auth import Claims, CurrentUser, create_access_token
from shared_runtime.db import SessionDep
from shared_runtime.errors import ApiError
from user_service import domain
from user_service.models import User
from user_service.schemas import LoginRequest, RegisterRequest, TokenResponse, UserResponse

router = APIRouter(prefix="/users", tags=["users"])


def _user_response(user: User) -> UserResponse:
    return UserResponse.model_validate(user, from_attributes=True)


def _client_ip(request: Request) -> str:
    # The gateway sets X-Real-IP; services listen on loopback behind it.
    return request.headers.get("x-real-ip") or (request.client.host if request.client else "-")


@router.post("/register", status_code=201, response_model=UserResponse)
async def register(body: RegisterRequest, session: SessionDep) -> UserResponse:
    user = await domain.register_user(
        session,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        phone=body.phone,
    )
    return _user_response(user)


@router.post(
    "/login",
    response_model=TokenResponse,
    responses={401: {"description": "wrong e-mail or password"}, 429: {"description": "throttled"}},
)
async def login(body: LoginRequest, request: Request, session: SessionDep) -> TokenResponse:
    settings = request.app.state.settings
    throttle: domain.LoginThrottle = request.app.state.login_throttle
    ip = _client_ip(request)
    await throttle.check(body.email, ip)
    user = await domain.find_by_email(session, body.email)
    if not await domain.verify_password(body.password, user.password_hash if user else None):
        await throttle.record_failure(body.email, ip)
        raise ApiError(401, "invalid_credentials", "The e-mail or password is not correct.")
    assert user is not None
    await throttle.record_success(body.email, ip)
    claims = Claims(sub=user.id, email=user.email, full_name=user.full_name, role=user.role)
    token = create_access_token(
        claims, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_seconds
    )
    return TokenResponse(access_token=token, expires_in=settings.jwt_ttl_seconds)


@router.get("/me", response_model=UserResponse)
async def me(user: CurrentUser, session: SessionDep) -> UserResponse:
    account = await session.get(User, user.user_id)
    if account is None:
        raise ApiError(404, "not_found", "This account no longer exists.")
    return _user_response(account)
