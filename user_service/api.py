"""HTTP routes of user_service: register, verify the e-mail, login, me, password (changed, or
reset by a link), deletion, deactivation; and the internal token-state route every service
checks tokens against (not routed by the gateway)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from shared_runtime.auth import AdminUser, CurrentUser, TokenStates
from shared_runtime.db import SessionDep
from shared_runtime.ports import client_address
from user_service import service
from user_service.models import User
from user_service.schemas import (
    Accepted,
    ChangePasswordRequest,
    DeleteAccountRequest,
    LoginRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterRequest,
    TokenResponse,
    TokenStateResponse,
    UserResponse,
    VerifyEmailRequest,
)
from user_service.throttle import Allowances, LoginThrottle

router = APIRouter(prefix="/users", tags=["users"])
internal = APIRouter(prefix="/internal", include_in_schema=False)


def _user_response(user: User) -> UserResponse:
    return UserResponse.model_validate(user, from_attributes=True)


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


def _secret(request: Request) -> str:
    secret: str = request.app.state.settings.jwt_secret.get_secret_value()
    return secret


def _allowances(request: Request) -> Allowances:
    allowances: Allowances = request.app.state.allowances
    return allowances


@router.post("/register", status_code=201, response_model=UserResponse)
async def register(body: RegisterRequest, request: Request, session: SessionDep) -> UserResponse:
    """A new account, unverified: an e-mail with a link that verifies the address goes to it
    (it holds nothing the registrant chose); the welcome e-mail follows the verification."""
    user = await service.register_user(
        session,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        phone=body.phone,
        verification_secret=_secret(request),
    )
    return _user_response(user)


@router.post(
    "/verify",
    response_model=UserResponse,
    responses={400: {"description": "the link is invalid or has expired"}},
)
async def verify_email(
    body: VerifyEmailRequest, request: Request, session: SessionDep
) -> UserResponse:
    """Follow the link of the verification e-mail (no login needed): the address is verified.
    Again: the same answer, nothing more happens."""
    return _user_response(await service.verify_email(session, body.token, _secret(request)))


@router.post(
    "/verify/resend",
    status_code=202,
    response_model=Accepted,
    responses={409: {"description": "already verified"}, 429: {"description": "asked too often"}},
)
async def resend_verification(request: Request, user: CurrentUser, session: SessionDep) -> Accepted:
    """The verification e-mail again, to the caller's address (once a minute, five a day)."""
    await service.resend_verification(session, _allowances(request), user.user_id, _secret(request))
    return Accepted()


@router.post(
    "/password-reset",
    status_code=202,
    response_model=Accepted,
    responses={429: {"description": "asked too often from this address"}},
)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, session: SessionDep
) -> Accepted:
    """A forgotten password: a link that sets a new one goes to the account with this address,
    if there is one. The answer is the same whether there is or not. The link works once,
    within 30 minutes."""
    await service.request_password_reset(
        session, _allowances(request), body.email, client_address(request), _secret(request)
    )
    return Accepted()


@router.post(
    "/password-reset/confirm",
    status_code=204,
    response_class=Response,
    responses={400: {"description": "the link is invalid, has expired or was used"}},
)
async def reset_password(
    body: PasswordResetConfirm, request: Request, session: SessionDep
) -> Response:
    """Set the new password with the link's token. Every token issued before is revoked; log
    in with the new password."""
    await service.reset_password(
        session,
        _throttle(request),
        _token_states(request),
        token=body.token,
        new_password=body.new_password,
        ip=client_address(request),
        secret=_secret(request),
    )
    return Response(status_code=204)


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
        ip=client_address(request),
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
        ip=client_address(request),
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
        ip=client_address(request),
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
