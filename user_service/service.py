"""Accounts' use cases: registration, admins, login, password checks and changes, activation,
deletion and token states."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import bcrypt
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared_core.context import after_commit
from shared_events.events import (
    EmailVerificationRequested,
    EmailVerified,
    PasswordResetRequested,
    UserDeleted,
    UserRegistered,
    UserTokensRevoked,
)
from shared_events.store import add_event, erase_from_outbox
from shared_runtime.auth import Claims, TokenState, TokenStates, create_access_token
from user_service import domain, links
from user_service.models import User
from user_service.throttle import Allowances, LoginThrottle

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


async def account(session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False) -> User:
    """The caller's own account (their token may outlive it); with ``lock``, its row locked
    to the commit, so a change decided on what was read (a password checked, then replaced)
    is not decided twice at once on the same old state."""
    user = await session.get(User, user_id, with_for_update=lock)
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
    verification_secret: str | None,
    phone: str | None = None,
    role: str = "customer",
) -> User:
    """Create the account and write UserRegistered to the outbox in the same transaction, and
    the e-mail that verifies its address, its link signed with ``verification_secret``; with
    None, the address is taken as verified (an operator's own, made on the command line)."""
    verified = verification_secret is None
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
        email_verified_at=datetime.now(UTC) if verified else None,
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
    if verification_secret is not None:
        await _send_verification(session, user, verification_secret)
    return user


async def make_admin(session: AsyncSession, *, email: str, password: str, full_name: str) -> User:
    """Create an administrator (its address as the operator typed it, taken as verified), or
    promote an existing account and set its password."""
    user = await find_by_email(session, email)
    if user is None:
        return await register_user(
            session,
            email=email,
            password=password,
            full_name=full_name,
            verification_secret=None,
            role="admin",
        )
    user.role = "admin"
    user.password_hash = await hash_password(password)
    # A recovery: whoever held the account's tokens (or its old password) holds nothing now.
    await revoke_tokens(session, None, user, "role_changed")
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


async def revoke_tokens(
    session: AsyncSession, token_states: TokenStates | None, user: User, reason: str
) -> None:
    """Every token of ``user`` is refused from the commit on: the version moves on, and
    UserTokensRevoked ends the live streams opened with one (order_service)."""
    domain.revoke_tokens(user)
    await add_event(
        session, UserTokensRevoked(user_id=user.id, reason=reason), correlation_id=user.id
    )
    if token_states is not None:
        _revoked_after_commit(session, token_states, user.id)


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
    user = await account(session, user_id, lock=True)
    await confirm_password(throttle, user, current, ip)
    user.password_hash = await hash_password(new)
    await revoke_tokens(session, token_states, user, "password_changed")
    return user


async def set_active(
    session: AsyncSession, token_states: TokenStates, user_id: uuid.UUID, *, active: bool
) -> User:
    """Deactivate (tokens revoked, logins refused) or reactivate an account (tokens revoked by
    the deactivation stay revoked)."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise domain.AccountNotFound("No such account.")
    if domain.set_active(user, active):
        await add_event(
            session,
            UserTokensRevoked(user_id=user.id, reason="activated" if active else "deactivated"),
            correlation_id=user.id,
        )
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
    user = await account(session, user_id, lock=True)
    await confirm_password(throttle, user, password, ip)
    await session.delete(user)
    await erase_from_outbox(session, user.id)
    await add_event(session, UserDeleted(user_id=user.id), correlation_id=user.id)
    _revoked_after_commit(session, token_states, user.id)
    email = user.email

    async def forget_addresses() -> None:
        await throttle.forget(email)

    after_commit(session, forget_addresses)


# --- links by e-mail: verifying the address, resetting the password ---------------------------


async def _send_verification(session: AsyncSession, user: User, secret: str) -> None:
    link = links.sign("verify-email", user.id, user.email, secret, links.VERIFY_TTL_S)
    await add_event(
        session,
        EmailVerificationRequested(
            user_id=user.id, email=user.email, token=link.token, expires_at=link.expires_at
        ),
        correlation_id=user.id,
    )


async def _mark_verified(session: AsyncSession, user: User) -> None:
    """The address is the owner's: the shop may now greet them by name there."""
    if user.email_verified_at is not None:
        return
    user.email_verified_at = datetime.now(UTC)
    await add_event(
        session,
        EmailVerified(
            user_id=user.id, email=user.email, full_name=user.full_name, phone=user.phone
        ),
        correlation_id=user.id,
    )


async def verify_email(session: AsyncSession, token: str, secret: str) -> User:
    """Follow a verification link: good while it has not expired and the account still has the
    address it was sent to. Following it again changes nothing."""
    user_id, address = links.read("verify-email", token, secret)
    user = await session.get(User, user_id, with_for_update=True)
    if user is None or user.email != address:
        raise domain.link_invalid("verify-email")
    await _mark_verified(session, user)
    return user


async def resend_verification(
    session: AsyncSession, allowances: Allowances, user_id: uuid.UUID, secret: str
) -> None:
    """The verification e-mail again, to the caller's own address (at most once a minute and
    five times a day)."""
    user = await account(session, user_id)
    domain.check_verifiable(user.email_verified_at is not None)
    for limit, window_s in domain.RESEND_LIMITS:
        key = Allowances.key(f"verify-{window_s}", str(user.id))
        wait_s = await allowances.take(key, limit, window_s)
        if wait_s is not None:
            raise domain.too_many_links(wait_s)
    await _send_verification(session, user, secret)


async def request_password_reset(
    session: AsyncSession, allowances: Allowances, email: str, ip: str, secret: str
) -> None:
    """Send a reset link to the account with this address, if there is one (and it is active).
    Whatever the address, the caller learns nothing: the same answer, the same work (the
    per-account count is taken for unknown addresses too), and past the per-account limit
    nothing is sent, silently. Past the per-address limit: refused (it says nothing of the
    account)."""
    limit, window_s = domain.RESET_LIMIT_PER_IP
    wait_s = await allowances.take(Allowances.key("reset-ip", ip), limit, window_s)
    if wait_s is not None:
        raise domain.too_many_links(wait_s)
    email = domain.normalise_email(email)
    limit, window_s = domain.RESET_LIMIT_PER_ACCOUNT
    over = await allowances.take(Allowances.key("reset-account", email), limit, window_s)
    user = await find_by_email(session, email)
    if user is None or not user.active or over is not None:
        log.info("password_reset_not_sent")
        return
    fingerprint = links.password_fingerprint(user.password_hash)
    link = links.sign("password-reset", user.id, fingerprint, secret, links.RESET_TTL_S)
    await add_event(
        session,
        PasswordResetRequested(
            user_id=user.id, email=user.email, token=link.token, expires_at=link.expires_at
        ),
        correlation_id=user.id,
    )


async def reset_password(
    session: AsyncSession,
    throttle: LoginThrottle,
    token_states: TokenStates,
    *,
    token: str,
    new_password: str,
    ip: str,
    secret: str,
) -> User:
    """Follow a reset link: the new password is set and every token revoked. The link works
    once (the password it was signed for is gone) and only for an active account. Having it
    shows the address is the owner's, so the address counts as verified, and what this client
    got wrong logging in to the account is forgotten."""
    user_id, fingerprint = links.read("password-reset", token, secret)
    user = await session.get(User, user_id, with_for_update=True)
    if (
        user is None
        or not user.active
        or links.password_fingerprint(user.password_hash) != fingerprint
    ):
        raise domain.link_invalid("password-reset")
    user.password_hash = await hash_password(new_password)
    await revoke_tokens(session, token_states, user, "password_reset")
    await _mark_verified(session, user)
    email = user.email

    async def forgive() -> None:
        await throttle.forgive(email, ip)

    after_commit(session, forgive)
    return user
