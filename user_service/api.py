"""HTTP routes of user_service: register, login, me, password, deletion, deactivation; and the
internal token-state route every service checks tokens against (not routed by the gateway)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from shared_core.context import after_commit
from shared_runtime.auth import AdminUser, Claims, CurrentUser, create_access_token
from shared_runtime.db import SessionDep
from shared_runtime.errors import ApiError
from user_service import domain
from user_service.models import User
from user_service.schemas import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    LoginRequest,
    RegisterRequest,
    TokenResponse,
    TokenStateResponse,
    UserResponse,
)

router = APIRouter(prefix="/users", tags=["users"])
internal = APIRouter(prefix="/internal", include_in_schema=False)


def _user_response(user: User) -> UserResponse:
    return UserResponse.model_validate(user, from_attributes=True)


def _client_ip(request: Request) -> str:
    # The gateway sets X-Real-IP; services listen on loopback behind it.
    return request.headers.get("x-real-ip") or (request.client.host if request.client else "-")


def _token_for(request: Request, user: User) -> TokenResponse:
    settings = request.app.state.settings
    claims = Claims(
        sub=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        token_version=user.token_version,
    )
    token = create_access_token(
        claims, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_seconds
    )
    return TokenResponse(access_token=token, expires_in=settings.jwt_ttl_seconds)


def _revoked_after_commit(request: Request, session: AsyncSession, user_id: uuid.UUID) -> None:
    """This process asks again at once; the others within AUTH_CACHE_S."""

    async def forget() -> None:
        request.app.state.token_states.forget(user_id)

    after_commit(session, forget)


async def _account(session: AsyncSession, user: Claims) -> User:
    account = await session.get(User, user.user_id)
    if account is None:
        raise ApiError(404, "not_found", "This account no longer exists.")
    return account


async def _confirm_password(request: Request, account: User, password: str) -> None:
    await domain.confirm_password(
        request.app.state.login_throttle, account, password, _client_ip(request)
    )


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
    throttle: domain.LoginThrottle = request.app.state.login_throttle
    ip = _client_ip(request)
    await throttle.check(body.email, ip)
    user = await domain.find_by_email(session, body.email)
    if not await domain.verify_password(body.password, user.password_hash if user else None):
        await throttle.record_failure(body.email, ip)
        raise ApiError(401, "invalid_credentials", "The e-mail or password is not correct.")
    assert user is not None
    await throttle.record_success(body.email, ip)
    if not user.active:
        raise ApiError(403, "account_deactivated", "This account has been deactivated.")
    return _token_for(request, user)


@router.get("/me", response_model=UserResponse)
async def me(user: CurrentUser, session: SessionDep) -> UserResponse:
    return _user_response(await _account(session, user))


@router.put(
    "/me/password",
    response_model=TokenResponse,
    responses={403: {"description": "the current password is not correct"}},
)
async def change_password(
    body: ChangePasswordRequest, request: Request, user: CurrentUser, session: SessionDep
) -> TokenResponse:
    """Set a new password. Every token issued before is revoked; the answer is a new one."""
    account = await _account(session, user)
    await _confirm_password(request, account, body.current_password)
    await domain.change_password(account, body.new_password)
    _revoked_after_commit(request, session, account.id)
    return _token_for(request, account)


@router.delete(
    "/me",
    status_code=204,
    response_class=Response,
    responses={403: {"description": "the password is not correct"}},
)
async def delete_me(
    body: DeleteAccountRequest, request: Request, user: CurrentUser, session: SessionDep
) -> Response:
    """Delete the caller's account for good (the password again, in the body). Every service
    then erases or anonymises what it holds of them (UserDeleted); orders and payments stay,
    anonymised, for the shop's accounts."""
    account = await _account(session, user)
    await _confirm_password(request, account, body.password)
    await domain.delete_account(session, account)
    _revoked_after_commit(request, session, account.id)
    return Response(status_code=204)


@router.post("/{user_id}/deactivate", response_model=UserResponse)
async def deactivate(
    user_id: uuid.UUID, request: Request, admin: AdminUser, session: SessionDep
) -> UserResponse:
    """Admin: the account can no longer log in, and its tokens are revoked everywhere."""
    if user_id == admin.user_id:
        raise ApiError(
            409, "cannot_deactivate_self", "An administrator cannot deactivate themself."
        )
    account = await domain.set_active(session, user_id, active=False)
    _revoked_after_commit(request, session, user_id)
    return _user_response(account)


@router.post("/{user_id}/activate", response_model=UserResponse)
async def activate(
    user_id: uuid.UUID, request: Request, admin: AdminUser, session: SessionDep
) -> UserResponse:
    """Admin: the account may log in again (tokens revoked at deactivation stay revoked)."""
    account = await domain.set_active(session, user_id, active=True)
    _revoked_after_commit(request, session, user_id)
    return _user_response(account)


@internal.get("/users/{user_id}/token-state", response_model=TokenStateResponse)
async def token_state(user_id: uuid.UUID, session: SessionDep) -> TokenStateResponse:
    state = await domain.token_state(session, user_id)
    if state is None:
        raise ApiError(404, "not_found", "No such account.")
    return TokenStateResponse(token_version=state.token_version, active=state.active)
