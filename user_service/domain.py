"""Accounts' rules: e-mail identity, passwords bcrypt can check, login throttling, token
revocation, and the refusals they give."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from shared_core.errors import Conflict, Forbidden, NotFound, Throttled, Unauthenticated

# bcrypt reads at most 72 bytes; a longer password would be silently truncated.
MAX_PASSWORD_BYTES = 72


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"


class InvalidPassword(Forbidden):
    code = "invalid_password"


class AccountDeactivated(Forbidden):
    code = "account_deactivated"


class AccountNotFound(NotFound):
    code = "not_found"


class CannotDeactivateSelf(Conflict):
    code = "cannot_deactivate_self"


class TooManyAttempts(Throttled):
    code = "too_many_attempts"


def email_taken() -> EmailTaken:
    return EmailTaken("An account with this e-mail already exists.")


def normalise_email(email: str) -> str:
    """One account per address, whatever its case or surrounding spaces."""
    return email.strip().lower()


def fits_bcrypt(password: str) -> bool:
    return len(password.encode()) <= MAX_PASSWORD_BYTES


@dataclass(frozen=True)
class FailureCount:
    """Failed attempts counted under one key, and the seconds until that count expires (as
    Redis says it: -1 when the key has no expiry, -2 when there is none)."""

    failures: int
    ttl_s: int


def check_attempts(counts: Mapping[str, FailureCount], limits: Mapping[str, int]) -> None:
    """Refuse while any count (per e-mail, per client IP) has reached its limit, until it
    expires. The first one reached, in the order given, says how long to wait."""
    for kind, count in counts.items():
        if count.failures >= limits[kind]:
            # A count whose expiry is unknown or past still waits a second, never zero.
            raise TooManyAttempts("Too many failed logins. Try again later.", max(count.ttl_s, 1))


def wrong_password() -> InvalidPassword:
    return InvalidPassword("The password is not correct.")


def wrong_credentials() -> InvalidCredentials:
    # The same answer for an unknown e-mail and a wrong password: no hint which it was.
    return InvalidCredentials("The e-mail or password is not correct.")


class Account(Protocol):
    """What the rules read and change of an account (a ``models.User``)."""

    token_version: int
    active: bool


def check_can_log_in(account: Account) -> None:
    """Checked only once the password is right: no one else learns the account is deactivated."""
    if not account.active:
        raise AccountDeactivated("This account has been deactivated.")


def revoke_tokens(account: Account) -> None:
    """Every token carries the version it was signed at; moving it on refuses them all."""
    account.token_version += 1


def set_active(account: Account, active: bool) -> None:
    """Deactivating revokes every token; activating moves the version on again, so the first
    token signed afterwards is newer than what the services remember and they ask at once.
    Tokens revoked by the deactivation stay revoked. Setting the state it has changes nothing."""
    if account.active != active:
        revoke_tokens(account)
    account.active = active


def check_deactivation(account_id: uuid.UUID, admin_id: uuid.UUID) -> None:
    """An administrator cannot lock themself out."""
    if account_id == admin_id:
        raise CannotDeactivateSelf("An administrator cannot deactivate themself.")
