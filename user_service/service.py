"""Accounts' use cases: registration, admins, login, password checks and changes, activation,
deletion and token states; and the login throttle's counts in Redis."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import bcrypt
import redis.asyncio as redis
import structlog
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared_core.context import after_commit
from shared_events.events import UserDeleted, UserRegistered
from shared_events.store import add_event, erase_from_outbox
from shared_runtime.auth import Claims, TokenState, TokenStates, create_access_token
from user_service import domain
from user_service.models import User

log = structlog.get_logger(__name__)

BCRYPT_COST = 10
# Compared against when the e-mail is unknown, so a miss costs as much as a hit.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(BCRYPT_COST))


async def hash_password(password: str) -> str:
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(BCRYPT_COST))
    return hashed.decode()


async def verify_password(password: str, password_hash: str | None) -> bool:
    if not domain.fits_bcrypt(password):
        return False
    stored = password_hash.encode() if password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(bcrypt.checkpw, password.encode(), stored)
    return matches and password_hash is not None


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == domain.normalise_email(email)))


async def account(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The caller's own account (their token may outlive it)."""
    user = await session.get(User, user_id)
    if user is None:
        raise domain.AccountNotFound("This account no longer exists.")
    return user


def access_token(user: User, *, secret: str, ttl_s: int) -> str:
    claims = Claims(
        sub=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        token_version=user.token_version,
    )
    return create_access_token(claims, secret, ttl_s)


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
    email = domain.normalise_email(email)
    if await find_by_email(session, email) is not None:
        raise domain.email_taken()
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
        raise domain.email_taken() from exc
    await add_event(
        session,
        UserRegistered(user_id=user.id, email=email, full_name=full_name, phone=phone),
        correlation_id=user.id,
    )
    return user


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


async def known_token_state(session: AsyncSession, user_id: uuid.UUID) -> TokenState:
    """The token state of an account that exists; the other services read a refusal as
    "no such account" (shared_runtime.auth.ask_user_service)."""
    state = await token_state(session, user_id)
    if state is None:
        raise domain.AccountNotFound("No such account.")
    return state


async def log_in(
    session: AsyncSession, throttle: LoginThrottle, *, email: str, password: str, ip: str
) -> User:
    """The account whose password this is. Failures are counted; a deactivated account is
    refused only once its password is right, so no one else learns it is."""
    attempt = await throttle.reserve(email, ip)
    user = await find_by_email(session, email)
    # An unknown e-mail is checked against a dummy hash: as slow as a wrong password.
    right = await verify_password(password, user.password_hash if user else None)
    if user is None or not right:
        await throttle.failed(attempt)
        raise domain.wrong_credentials()
    await throttle.succeeded(attempt)
    domain.check_can_log_in(user)
    return user


async def confirm_password(throttle: LoginThrottle, user: User, password: str, ip: str) -> None:
    """The account's password, re-entered before a change that cannot be undone. Failures
    count like failed logins: a stolen token is no way to guess the password."""
    attempt = await throttle.reserve(user.email, ip)
    if not await verify_password(password, user.password_hash):
        await throttle.failed(attempt)
        raise domain.wrong_password()
    await throttle.succeeded(attempt)


def _revoked_after_commit(
    session: AsyncSession, token_states: TokenStates, user_id: uuid.UUID
) -> None:
    """This process asks again at once; the others within AUTH_CACHE_S."""

    async def forget() -> None:
        token_states.forget(user_id)

    after_commit(session, forget)


async def change_password(
    session: AsyncSession,
    throttle: LoginThrottle,
    token_states: TokenStates,
    user_id: uuid.UUID,
    *,
    current: str,
    new: str,
    ip: str,
) -> User:
    """Set a new password; every token signed before it is revoked (the version moves on)."""
    user = await account(session, user_id)
    await confirm_password(throttle, user, current, ip)
    user.password_hash = await hash_password(new)
    domain.revoke_tokens(user)
    _revoked_after_commit(session, token_states, user.id)
    return user


async def set_active(
    session: AsyncSession, token_states: TokenStates, user_id: uuid.UUID, *, active: bool
) -> User:
    """Deactivate (tokens revoked, logins refused) or reactivate an account (tokens revoked by
    the deactivation stay revoked)."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise domain.AccountNotFound("No such account.")
    domain.set_active(user, active)
    _revoked_after_commit(session, token_states, user_id)
    return user


async def deactivate(
    session: AsyncSession, token_states: TokenStates, user_id: uuid.UUID, *, by: uuid.UUID
) -> User:
    """An administrator (``by``) deactivates an account other than their own."""
    domain.check_deactivation(user_id, by)
    return await set_active(session, token_states, user_id, active=False)


async def delete_account(
    session: AsyncSession,
    throttle: LoginThrottle,
    token_states: TokenStates,
    user_id: uuid.UUID,
    *,
    password: str,
    ip: str,
) -> None:
    """The customer's own erasure: the account goes, UserDeleted tells every other service to
    erase or anonymise what it holds, and this database keeps nothing of the person (their
    UserRegistered in the outbox is anonymised too)."""
    user = await account(session, user_id)
    await confirm_password(throttle, user, password, ip)
    await session.delete(user)
    await erase_from_outbox(session, user.id)
    await add_event(session, UserDeleted(user_id=user.id), correlation_id=user.id)
    _revoked_after_commit(session, token_states, user.id)
    email = user.email

    async def forget_addresses() -> None:
        await throttle.forget(email)

    after_commit(session, forget_addresses)


# Atomic steps the throttle needs beyond one command (redis-py runs them with EVALSHA).
# A turn of the account's password checks: the next free one, if it comes within max_wait_ms
# (then booked, the following one spacing_ms later); else minus the wait, and nothing booked.
_TAKE_TURN = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local turn = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local wait = turn - now
if wait > tonumber(ARGV[2]) then return -wait end
redis.call('SET', KEYS[1], turn + tonumber(ARGV[1]), 'PX', ARGV[3])
return wait
"""
# Give back an attempt counted in advance, on keys that still exist (a decrement would
# otherwise create a key of -1 that never expires).
_REFUND = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
"""
KNOWN_IPS_TTL_S = 30 * 24 * 3600
ACCOUNTS_UNDER_ATTACK = Counter(
    "login_accounts_under_attack_total",
    "Accounts whose failed logins from many addresses reached the point where their password "
    "checks are spaced (a distributed guessing attack).",
)
LOGINS_THROTTLED = Counter(
    "login_attempts_throttled_total",
    "Login attempts refused or held by the throttle, by what held them.",
    ["scope"],
)


@dataclass
class Attempt:
    """One login attempt, counted before its password is checked."""

    email: str
    ip: str
    counted: bool = True


class LoginThrottle:
    """Failed logins counted in Redis per (account, client address), per address, and per
    account; ``domain.admit_attempt`` decides from the counts (docs/ARCHITECTURE.md,
    "Throttling logins").

    An attempt is counted before its password is checked (one atomic increment, then the
    comparison), so parallel guesses all count; a right password gives its count back.

    If Redis is unreachable the throttle lets logins through and says so in the log:
    a Redis outage must not lock every customer out.
    """

    def __init__(self, client: redis.Redis, limits: domain.ThrottleLimits) -> None:
        self.client = client
        self.limits = limits
        self._take_turn = client.register_script(_TAKE_TURN)
        self._refund = client.register_script(_REFUND)

    @staticmethod
    def _keys(email: str, ip: str) -> dict[str, str]:
        email = domain.normalise_email(email)
        return {
            "account_ip": f"login-failures:account-ip:{email}:{ip}",
            "ip": f"login-failures:ip:{ip}",
            "account": f"login-failures:account:{email}",
            "turn": f"login-turn:{email}",
            "known_ips": f"login-known-ips:{email}",
        }

    async def reserve(self, email: str, ip: str) -> Attempt:
        """Count this attempt, and refuse it (TooManyAttempts) or hold it for the account's
        turn as the rules say."""
        keys = self._keys(email, ip)
        window = self.limits.window_s
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for kind in ("account_ip", "ip"):
                    pipe.incr(keys[kind])
                    pipe.expire(keys[kind], window, nx=True)
                    pipe.ttl(keys[kind])
                pipe.get(keys["account"])
                pipe.sismember(keys["known_ips"], ip)
                values = await pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
            return Attempt(email, ip, counted=False)
        counts = domain.AttemptCounts(
            account_ip=domain.FailureCount(int(values[0]), int(values[2])),
            ip=domain.FailureCount(int(values[3]), int(values[5])),
            account_failures=int(values[6] or 0),
            known_ip=bool(values[7]),
        )
        try:
            spacing = domain.admit_attempt(counts, self.limits)
            if spacing:
                await self._wait_turn(keys["turn"], spacing)
        except domain.TooManyAttempts:
            await self._give_back(keys)
            raise
        return Attempt(email, ip)

    async def _wait_turn(self, key: str, spacing_s: float) -> None:
        max_wait_ms = int(self.limits.max_wait_s * 1000)
        ttl_ms = int(self.limits.window_s * 1000)
        try:
            wait_ms = int(
                await self._take_turn([key], [int(spacing_s * 1000), max_wait_ms, ttl_ms])
            )
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
            return
        if wait_ms < 0:
            LOGINS_THROTTLED.labels("account").inc()
            raise domain.turn_refused(-wait_ms / 1000)
        if wait_ms:
            LOGINS_THROTTLED.labels("account_wait").inc()
            await asyncio.sleep(wait_ms / 1000)

    async def _give_back(self, keys: dict[str, str]) -> None:
        try:
            await self._refund([keys["account_ip"], keys["ip"]])
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))

    async def failed(self, attempt: Attempt) -> None:
        """The password was wrong: the attempt stays counted, the account's failures from
        everywhere grow, and a count that reached its limit is locked, longer each time."""
        if not attempt.counted:
            return
        keys = self._keys(attempt.email, attempt.ip)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(keys["account"])
                pipe.expire(keys["account"], self.limits.window_s, nx=True)
                pipe.get(keys["account_ip"])
                pipe.get(keys["ip"])
                account, _, account_ip, ip = await pipe.execute()
            for kind, count, limit in (
                ("account_ip", account_ip, self.limits.per_account_ip),
                ("ip", ip, self.limits.per_ip),
            ):
                if int(count or 0) >= limit:
                    await self._lock(keys[kind])
                    LOGINS_THROTTLED.labels(kind).inc()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
            return
        if int(account) == self.limits.slow_after:
            ACCOUNTS_UNDER_ATTACK.inc()
            log.warning("login_account_under_attack", failures=int(account))

    async def _lock(self, key: str) -> None:
        strikes_key = f"{key}:strikes"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(strikes_key)
            pipe.expire(strikes_key, self.limits.lockout_cap_s)
            strikes, _ = await pipe.execute()
        await self.client.expire(key, domain.lockout_s(int(strikes), self.limits))

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: its count goes back, what this address got wrong for this
        account is forgotten (not what it got wrong for others), and the address is one the
        account is known to be opened from."""
        if not attempt.counted:
            return
        keys = self._keys(attempt.email, attempt.ip)
        try:
            await self._refund([keys["ip"]])
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(keys["account_ip"])
                pipe.sadd(keys["known_ips"], attempt.ip)
                pipe.expire(keys["known_ips"], KNOWN_IPS_TTL_S)
                await pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))

    async def forget(self, email: str) -> None:
        """An account deleted: nothing of it (its addresses) stays in Redis."""
        keys = self._keys(email, "-")
        try:
            await self.client.delete(keys["account"], keys["turn"], keys["known_ips"])
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
