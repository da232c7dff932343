"""Accounts: registration, password checks, login throttling, admins."""

from __future__ import annotations

import asyncio
import uuid

import bcrypt
import redis.asyncio as redis
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared_events.events import UserDeleted, UserRegistered
from shared_events.store import add_event, erase_from_outbox
from shared_runtime.auth import TokenState
from shared_runtime.errors import ApiError
from user_service.models import User

log = structlog.get_logger(__name__)

BCRYPT_COST = 10
# Compared against when the e-mail is unknown, so a miss costs as much as a hit.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(BCRYPT_COST))


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def hash_password(password: str) -> str:
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(BCRYPT_COST))
    return hashed.decode()


async def verify_password(password: str, password_hash: str | None) -> bool:
    candidate = password.encode()
    if len(candidate) > 72:
        return False
    stored = password_hash.encode() if password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(bcrypt.checkpw, candidate, stored)
    return matches and password_hash is not None


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalise_email(email)))


async def register_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str,
    phone: str | None = None,
    role: str = "customer",
) -> User:
    """Create the account and write UserRegistered to the outbox in the same transaction."""
    email = normalise_email(email)
    if await find_by_email(session, email) is not None:
        raise _email_taken()
    user = User(
        id=uuid.uuid4(),
        email=email,
        password_hash=await hash_password(password),
        full_name=full_name,
        phone=phone,
        role=role,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration with the same e-mail won
        raise _email_taken() from exc
    await add_event(
        session,
        UserRegistered(user_id=user.id, email=email, full_name=full_name, phone=phone),
        correlation_id=user.id,
    )
    return user


def _email_taken() -> ApiError:
    return ApiError(409, "email_taken", "An account with this e-mail already exists.")


async def make_admin(session: AsyncSession, *, email: str, password: str, full_name: str) -> User:
    """Create an administrator, or promote an existing account and set its password."""
    user = await find_by_email(session, email)
    if user is None:
        return await register_user(
            session, email=email, password=password, full_name=full_name, role="admin"
        )
    user.role = "admin"
    user.password_hash = await hash_password(password)
    return user


async def token_state(session: AsyncSession, user_id: uuid.UUID) -> TokenState | None:
    """What every service checks a token against (shared_runtime.auth.TokenStates)."""
    row = (
        await session.execute(select(User.token_version, User.active).where(User.id == user_id))
    ).one_or_none()
    return TokenState(row.token_version, row.active) if row else None


async def confirm_password(throttle: LoginThrottle, user: User, password: str, ip: str) -> None:
    """The account's password, re-entered before a change that cannot be undone. Failures
    count like failed logins: a stolen token is no way to guess the password."""
    await throttle.check(user.email, ip)
    if not await verify_password(password, user.password_hash):
        await throttle.record_failure(user.email, ip)
        raise ApiError(403, "invalid_password", "The password is not correct.")
    await throttle.record_success(user.email, ip)  # also: no counter keyed by the e-mail stays


async def change_password(user: User, new: str) -> User:
    """Set a new password; every token signed before it is revoked (the version moves on)."""
    user.password_hash = await hash_password(new)
    user.token_version += 1
    return user


async def set_active(session: AsyncSession, user_id: uuid.UUID, active: bool) -> User:
    """Deactivate (tokens revoked, logins refused) or reactivate an account (tokens revoked by
    the deactivation stay revoked)."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise ApiError(404, "not_found", "No such account.")
    if user.active != active:
        # Deactivating revokes every token; activating moves on again, so the first token
        # signed afterwards is newer than what the services remember and they ask at once.
        user.token_version += 1
    user.active = active
    return user


async def delete_account(session: AsyncSession, user: User) -> None:
    """The customer's own erasure: the account goes, UserDeleted tells every other service to
    erase or anonymise what it holds, and this database keeps nothing of the person (their
    UserRegistered in the outbox is anonymised too)."""
    await session.delete(user)
    await erase_from_outbox(session, user.id)
    await add_event(session, UserDeleted(user_id=user.id), correlation_id=user.id)


class LoginThrottle:
    """Counts failed logins per e-mail and per client IP in Redis, over a sliding window.

    If Redis is unreachable the throttle lets logins through and says so in the log:
    a Redis outage must not lock every customer out.
    """

    def __init__(self, client: redis.Redis, *, per_email: int, per_ip: int, window_s: int) -> None:
        self.client = client
        self.limits = {"email": per_email, "ip": per_ip}
        self.window_s = window_s

    def _keys(self, email: str, ip: str) -> dict[str, str]:
        return {
            "email": f"login-failures:email:{normalise_email(email)}",
            "ip": f"login-failures:ip:{ip}",
        }

    async def check(self, email: str, ip: str) -> None:
        keys = self._keys(email, ip)
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys.values():
                    pipe.get(key)
                    pipe.ttl(key)
                values = await pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
            return
        for index, kind in enumerate(keys):
            count, ttl = values[2 * index], values[2 * index + 1]
            if count is not None and int(count) >= self.limits[kind]:
                retry_after = max(int(ttl), 1)
                raise ApiError(
                    429,
                    "too_many_attempts",
                    "Too many failed logins. Try again later.",
                    {"retryAfterSeconds": retry_after},
                    headers={"Retry-After": str(retry_after)},
                )

    async def record_failure(self, email: str, ip: str) -> None:
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for key in self._keys(email, ip).values():
                    pipe.incr(key)
                    pipe.expire(key, self.window_s, nx=True)
                await pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))

    async def record_success(self, email: str, ip: str) -> None:
        try:
            await self.client.delete(self._keys(email, ip)["email"])
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
