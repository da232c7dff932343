"""Accounts' rules: e-mail identity, passwords bcrypt can check, login throttling, token
revocation, and the refusals they give."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from math import ceil
from typing import Literal, Protocol

from shared_core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Throttled,
    Unauthenticated,
)

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


class LinkInvalid(DomainError):
    """A link that is not ours, has expired, or was used (400)."""

    code = "link_invalid"


class AlreadyVerified(Conflict):
    code = "already_verified"


LinkPurpose = Literal["verify-email", "password-reset"]

# How often links may be asked for: (uses, per seconds). A verification e-mail again, per
# account; a password reset, per client address (refused past it) and per account (past it,
# answered alike but nothing is sent: the answer must not tell whether the account exists).
RESEND_LIMITS = ((1, 60), (5, 24 * 3600))
RESET_LIMIT_PER_IP = (5, 900)
RESET_LIMIT_PER_ACCOUNT = (3, 3600)


def too_many_links(retry_after_s: int) -> TooManyAttempts:
    return TooManyAttempts(
        "Too many links asked for. Try again later.", retry_after_s, code="too_many_requests"
    )


def check_verifiable(verified: bool) -> None:
    if verified:
        raise AlreadyVerified("This account's e-mail address is already verified.")


def link_invalid(purpose: LinkPurpose) -> LinkInvalid:
    what = "verification" if purpose == "verify-email" else "password reset"
    return LinkInvalid(
        f"This {what} link is invalid, has expired or was already used; ask for a new one."
    )


def email_taken() -> EmailTaken:
    return EmailTaken("An account with this e-mail already exists.")


def normalise_email(email: str) -> str:
    """One account per address, whatever its case or surrounding spaces."""
    return email.strip().lower()


def fits_bcrypt(password: str) -> bool:
    return len(password.encode()) <= MAX_PASSWORD_BYTES


@dataclass(frozen=True)
class FailureCount:
    """Attempts counted under one key, this one included, and the seconds until that count
    expires (as Redis says it: -1 when the key has no expiry, -2 when there is none)."""

    failures: int
    ttl_s: int


@dataclass(frozen=True)
class ThrottleLimits:
    """How failed logins are throttled (docs/ARCHITECTURE.md, "Throttling logins").

    An account from one client address (``per_account_ip``) and one address over every
    account (``per_ip``) are locked out once they reach their limit, for ``window_s``, then
    twice that the next time within a day, and so on: only the address that guessed is
    refused. An account guessed at from many addresses is never locked: once it has
    ``slow_after`` failures, its password is checked for addresses it was never opened from
    at most once per spacing (``delay_s``, doubling per further failure up to ``delay_cap_s``);
    a login waits for its turn up to ``max_wait_s``, else is told when to come back."""

    per_account_ip: int = 5
    per_ip: int = 20
    window_s: int = 900
    slow_after: int = 10
    delay_s: float = 1.0
    delay_cap_s: float = 30.0
    max_wait_s: float = 5.0
    lockout_cap_s: int = 24 * 3600


@dataclass(frozen=True)
class AttemptCounts:
    """What is known when an attempt comes in, the attempt already counted: per account and
    address, per address, the account's recent failures from everywhere, and whether the
    account was opened from this address before."""

    account_ip: FailureCount
    ip: FailureCount
    account_failures: int
    known_ip: bool


def _locked(count: FailureCount) -> TooManyAttempts:
    # A count whose expiry is unknown or past still waits a second, never zero.
    return TooManyAttempts("Too many failed logins. Try again later.", max(count.ttl_s, 1))


def admit_attempt(counts: AttemptCounts, limits: ThrottleLimits) -> float:
    """Refuse an attempt over a limit (the account from this address first, then the address);
    else the seconds the account's checks must be spaced by (0: not at all)."""
    if counts.account_ip.failures > limits.per_account_ip:
        raise _locked(counts.account_ip)
    if counts.ip.failures > limits.per_ip:
        raise _locked(counts.ip)
    return account_spacing(counts.account_failures, counts.known_ip, limits)


def account_spacing(failures: int, known_ip: bool, limits: ThrottleLimits) -> float:
    """The short, growing delay between password checks of an account guessed at from many
    addresses; none from an address the account was opened from, so its owner is not held."""
    if known_ip or failures < limits.slow_after:
        return 0.0
    doublings = min(failures - limits.slow_after, 64)  # past the cap long before
    return min(limits.delay_s * 2.0**doublings, limits.delay_cap_s)


def turn_refused(wait_s: float) -> TooManyAttempts:
    """The account's checks are booked further ahead than a login may wait."""
    return TooManyAttempts(
        "This account is receiving many failed logins; try again shortly.", max(ceil(wait_s), 1)
    )


def lockout_s(strikes: int, limits: ThrottleLimits) -> int:
    """How long a key stays locked the ``strikes``-th time it reaches its limit in a day."""
    doublings = min(max(strikes - 1, 0), 32)
    return int(min(limits.window_s * 2**doublings, limits.lockout_cap_s))


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


def set_active(account: Account, active: bool) -> bool:
    """Deactivating revokes every token; activating moves the version on again, so the first
    token signed afterwards is newer than what the services remember and they ask at once.
    Tokens revoked by the deactivation stay revoked. Setting the state it has changes nothing.
    True when it changed."""
    if account.active == active:
        return False
    revoke_tokens(account)
    account.active = active
    return True


def check_deactivation(account_id: uuid.UUID, admin_id: uuid.UUID) -> None:
    """An administrator cannot lock themself out."""
    if account_id == admin_id:
        raise CannotDeactivateSelf("An administrator cannot deactivate themself.")
