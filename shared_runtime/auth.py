"""JWT access tokens (python-jose, HS256) and the one dependency every service checks them with.

A token is good when its signature and expiry are, and when it is still the account's: the
account exists, is active, and its token version is the one the token was signed at. A
password change, a deactivation or a deletion changes that in user_service, so every token
signed before is refused everywhere within ``AUTH_CACHE_S`` seconds (docs/ARCHITECTURE.md,
"Revoking tokens"). Each process asks user_service (``GET /internal/users/{id}/token-state``)
and keeps the answer that long; nothing of it lives in Redis or the broker, so neither one's
restart can bring a revoked token back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, NamedTuple

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import JWTError, jwt
from pydantic import BaseModel, ConfigDict, Field

from shared_runtime.errors import ApiError
from shared_runtime.peers import PeerClient, PeerUnavailable

log = structlog.get_logger(__name__)

ALGORITHM = "HS256"
Role = Literal["customer", "admin"]
USER_SERVICE = "user_service"


class Claims(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sub: uuid.UUID
    email: str
    full_name: str = Field(alias="fullName")
    role: Role = "customer"
    token_version: int = Field(0, alias="tokenVersion", ge=0)
    # When the token expires (seconds since the epoch): what is open with it ends then.
    exp: int | None = None

    @property
    def user_id(self) -> uuid.UUID:
        return self.sub

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def create_access_token(claims: Claims, secret: str, ttl_seconds: int) -> str:
    now = int(time.time())
    payload = {
        "sub": str(claims.sub),
        "email": claims.email,
        "fullName": claims.full_name,
        "role": claims.role,
        "tokenVersion": claims.token_version,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def decode_access_token(token: str, secret: str) -> Claims:
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM])
        claims = Claims.model_validate(payload)
    except (JWTError, ValueError) as exc:
        raise _unauthorized("invalid_token", "The access token is invalid or has expired.") from exc
    # From its exp on (RFC 7519: valid only before it); python-jose still takes it during
    # that second, when a stream opened with it has just been ended.
    if claims.exp is not None and claims.exp <= time.time():
        raise _unauthorized("invalid_token", "The access token is invalid or has expired.")
    return claims


class TokenState(NamedTuple):
    """What user_service says of an account: the token version it signs at, and if active."""

    token_version: int
    active: bool


class TokenStateUnavailable(Exception):
    """user_service could not say (down, or its database is)."""


# The account's state, or None when there is no such account.
FetchTokenState = Callable[[uuid.UUID], Awaitable[TokenState | None]]


class TokenStates:
    """Per-process cache of accounts' token states, asked of ``fetch`` at most every
    ``fresh_s`` seconds per account (concurrent requests for one account share one question).

    When ``fetch`` cannot answer, a state known for less than ``stale_s`` still serves (only
    user_service revokes, and it is the one not answering); an account never seen gets 503.
    """

    def __init__(
        self,
        fetch: FetchTokenState,
        *,
        fresh_s: float = 5.0,
        stale_s: float = 600.0,
        max_entries: int = 100_000,
    ) -> None:
        self.fetch = fetch
        self.fresh_s = fresh_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self._known: OrderedDict[uuid.UUID, tuple[float, TokenState | None]] = OrderedDict()
        self._asking: dict[uuid.UUID, asyncio.Task[TokenState | None]] = {}

    def forget(self, user_id: uuid.UUID) -> None:
        """Ask again next time (user_service, right after it changed the account). A question
        already on its way may have been answered before the change: it is not waited for,
        and its answer is not kept."""
        self._known.pop(user_id, None)
        self._asking.pop(user_id, None)

    async def state(self, user_id: uuid.UUID) -> TokenState | None:
        now = time.monotonic()
        known = self._known.get(user_id)
        if known is not None and now - known[0] < self.fresh_s:
            return known[1]
        asking = self._asking.get(user_id)
        if asking is None:
            # A task of its own: a request that gives up does not leave the others waiting.
            asking = asyncio.create_task(self._ask(user_id))
            self._asking[user_id] = asking
            asking.add_done_callback(lambda done: self._asked(user_id, done))
        try:
            return await asyncio.shield(asking)
        except TokenStateUnavailable:
            if known is not None and now - known[0] < self.stale_s:
                log.warning("token_state_stale", user_id=str(user_id))
                return known[1]
            raise ApiError(
                503,
                "service_unavailable",
                "Accounts cannot be checked right now. Try again shortly.",
                headers={"Retry-After": "5"},
            ) from None

    async def _ask(self, user_id: uuid.UUID) -> TokenState | None:
        state = await self.fetch(user_id)
        if self._asking.get(user_id) is asyncio.current_task():  # not forgotten meanwhile
            self._known[user_id] = (time.monotonic(), state)
            self._known.move_to_end(user_id)
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)
        return state

    def _asked(self, user_id: uuid.UUID, done: asyncio.Task[TokenState | None]) -> None:
        if self._asking.get(user_id) is done:
            del self._asking[user_id]
        if not done.cancelled():
            done.exception()  # seen here, so one nobody awaited is not reported as lost

    async def check(self, claims: Claims) -> None:
        state = await self.state(claims.user_id)
        if state is not None and claims.token_version > state.token_version:
            # Signed after a change this process has not seen yet (a new password, an account
            # activated again): only user_service signs, so what is known here is old.
            self.forget(claims.user_id)
            state = await self.state(claims.user_id)
        if state is None:
            raise _unauthorized("token_revoked", "This account no longer exists.")
        if not state.active:
            raise _unauthorized("token_revoked", "This account has been deactivated.")
        if claims.token_version != state.token_version:
            raise _unauthorized(
                "token_revoked", "This access token has been revoked; log in again."
            )


def ask_user_service(peers: PeerClient) -> FetchTokenState:
    """Token states from user_service's internal route, through the one peer client."""

    async def fetch(user_id: uuid.UUID) -> TokenState | None:
        try:
            answer = await peers.get(USER_SERVICE, f"/internal/users/{user_id}/token-state")
        except PeerUnavailable as exc:
            raise TokenStateUnavailable(exc.reason) from exc
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise TokenStateUnavailable(f"HTTP {answer.status_code}")
        body = answer.json()
        return TokenState(int(body["tokenVersion"]), bool(body["active"]))

    return fetch


# Declares the bearer scheme in the OpenAPI of every route that needs a token (the check is
# ours: a missing or malformed header is answered in the error shape, not FastAPI's).
BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="The accessToken of POST /api/v1/users/login.",
)


async def current_user(
    request: Request, declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
) -> Claims:
    del declared  # read below, as sent, so every malformed header gets the same answer
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("unauthorized", "A bearer access token is required.")
    secret = request.app.state.settings.jwt_secret.get_secret_value()
    claims = decode_access_token(token.strip(), secret)
    await request.app.state.token_states.check(claims)
    return claims


def admin_user(user: Annotated[Claims, Depends(current_user)]) -> Claims:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "This action needs an administrator.")
    return user


CurrentUser = Annotated[Claims, Depends(current_user)]
AdminUser = Annotated[Claims, Depends(admin_user)]
