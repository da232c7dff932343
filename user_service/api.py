"""HTTP routes of user_service: register, login, me, password, deletion, deactivation; and the
internal token-state route every service checks tokens against (not routed by the gateway)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from shared_runtime.auth import AdminUser, CurrentUser, TokenStates
from shared_runtime.db import SessionDep
from user_service import service
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
from user_service.throttle import LoginThrottle

router = APIRouter(prefix="/users", tags=["users"])
internal = APIRouter(prefix="/internal", include_in_schema=False)


def _user_response(user: User) -> UserResponse:
    return UserResponse.model_validate(user, from_attributes=True)


def _client_ip(request: Request) -> str:
    # The gateway sets X-Real-IP; services listen on loopback behind it.
    return request.headers.get("x-real-ip") or (request.client.host if request.client else "-")


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _token_states(request: Request) -> TokenStates:
    token_states: TokenStates = request.app.state.token_states
    return token_states


def _token_for(request: Request, user: User) -> TokenResponse:
    settings = request.app.state.settings
    token = service.access_token(
        user, secret=settings.jwt_secret.get_secret_value(), ttl_s=settings.jwt_ttl_seconds
    )
    return TokenResponse(access_token=token, expires_in=settings.jwt_ttl_seconds)


@router.post("/register", status_code=201, response_model=UserResponse)
async def register(body: RegisterRequest, session: SessionDep) -> UserResponse:
    user = await service.register_user(
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
    user = await service.log_in(
        session,
        _throttle(request),
        email=body.email,
        password=body.password,
        ip=_client_ip(request),
    )
    return _token_for(request, user)


@router.get("/me", response_model=UserResponse)
async def me(user: CurrentUser, session: SessionDep) -> UserResponse:
    return _user_response(await service.account(session, user.user_id))


@router.put(
    "/me/password",
    response_model=TokenResponse,
    responses={403: {"description": "the current password is not correct"}},
)
async def change_password(
    body: ChangePasswordRequest, request: Request, user: CurrentUser, session: SessionDep
) -> TokenResponse:
    """Set a new password. Every token issued before is revoked; the answer is a new one."""
    account = await service.change_password(
        session,
        _throttle(request),
        _token_states(request),
        user.user_id,
        current=body.current_password,
        new=body.new_password,
        ip=_client_ip(request),
    )
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
    await service.delete_account(
        session,
        _throttle(request),
        _token_states(request),
        user.user_id,
        password=body.password,
        ip=_client_ip(request),
    )
    return Response(status_code=204)


@router.post("/{user_id}/deactivate", response_model=UserResponse)
async def deactivate(
    user_id: uuid.UUID, request: Request, admin: AdminUser, session: SessionDep
) -> UserResponse:
    """Admin: the account can no longer log in, and its tokens are revoked everywhere."""
    account = await service.deactivate(session, _token_states(request), user_id, by=admin.user_id)
    return _user_response(account)


@router.post("/{user_id}/activate", response_model=UserResponse)
async def activate(
    user_id: uuid.UUID, request: Request, admin: AdminUser, session: SessionDep
) -> UserResponse:
    """Admin: the account may log in again (tokens revoked at deactivation stay revoked)."""
    account = await service.set_active(session, _token_states(request), user_id, active=True)
    return _user_response(account)


@internal.get("/users/{user_id}/token-state", response_model=TokenStateResponse)
async def token_state(user_id: uuid.UUID, session: SessionDep) -> TokenStateResponse:
    state = await service.known_token_state(session, user_id)
    return TokenStateResponse(token_version=state.token_version, active=state.active)
