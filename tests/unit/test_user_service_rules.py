"""user_service's rules, as pure functions: e-mail identity, bcrypt's password limit, login
throttling, token revocation and activation, and the refusals' statuses and codes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared_core.errors import DomainError
from shared_runtime.errors import domain_status
from user_service import domain
from user_service.schemas import ChangePasswordRequest


@dataclass
class Account:
    token_version: int = 0
    active: bool = True


LIMITS = domain.ThrottleLimits()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("  ada@example.com\n", "ada@example.com"),
        ("ADA@EXAMPLE.COM ", "ada@example.com"),
    ],
)
def test_an_email_is_one_account_whatever_its_case_and_spaces(given, expected):
    assert domain.normalise_email(given) == expected


@pytest.mark.parametrize(
    ("password", "fits"),
    [
        ("x" * 72, True),
        ("x" * 73, False),
        ("€" * 24, True),  # 72 bytes in UTF-8
        ("€" * 25, False),  # 25 characters, 75 bytes: bcrypt would cut it
        ("", True),
    ],
)
def test_a_password_fits_bcrypt_by_its_bytes_not_its_characters(password, fits):
    assert domain.fits_bcrypt(password) is fits


def test_a_new_password_bcrypt_would_truncate_is_refused_by_the_schema():
    with pytest.raises(ValidationError, match="at most 72 bytes"):
        ChangePasswordRequest(current_password="anything", new_password="é" * 37)
    ok = ChangePasswordRequest(current_password="anything", new_password="é" * 36)
    assert ok.new_password == "é" * 36


def counts(
    account_ip: int = 1,
    ip: int = 1,
    account_failures: int = 0,
    known_ip: bool = False,
    ttl_s: int = 600,
) -> domain.AttemptCounts:
    return domain.AttemptCounts(
        account_ip=domain.FailureCount(account_ip, ttl_s),
        ip=domain.FailureCount(ip, ttl_s),
        account_failures=account_failures,
        known_ip=known_ip,
    )


def test_attempts_within_their_limits_are_checked_at_once():
    assert domain.admit_attempt(counts(5, 20, 9), LIMITS) == 0.0
    assert domain.admit_attempt(counts(), LIMITS) == 0.0


@pytest.mark.parametrize(("account_ip", "ip"), [(6, 1), (1, 21), (6, 21)])
def test_an_attempt_over_a_limit_is_refused_until_its_count_expires(account_ip, ip):
    with pytest.raises(domain.TooManyAttempts) as refused:
        domain.admit_attempt(counts(account_ip, ip, ttl_s=437), LIMITS)
    assert refused.value.retry_after_s == 437
    assert refused.value.details == {"retryAfterSeconds": 437}
    assert refused.value.code == "too_many_attempts"
    assert refused.value.message == "Too many failed logins. Try again later."


@pytest.mark.parametrize("ttl_s", [-2, -1, 0])
def test_a_count_with_no_expiry_left_still_waits_a_second(ttl_s):
    with pytest.raises(domain.TooManyAttempts) as refused:
        domain.admit_attempt(counts(account_ip=6, ttl_s=ttl_s), LIMITS)
    assert refused.value.retry_after_s == 1


def test_an_account_guessed_at_from_everywhere_is_slowed_never_locked():
    # Below the threshold nothing; then a delay that doubles per failure, up to its cap.
    spacing = [domain.admit_attempt(counts(account_failures=n), LIMITS) for n in range(8, 20)]
    assert spacing[:2] == [0.0, 0.0]
    assert spacing[2:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(spacing[8:]) == {30.0}
    # Its owner, from an address it was opened from before, is not held at all.
    assert domain.admit_attempt(counts(account_failures=1000, known_ip=True), LIMITS) == 0.0


def test_a_turn_too_far_ahead_says_when_to_come_back():
    refused = domain.turn_refused(7.2)
    assert refused.retry_after_s == 8
    assert refused.code == "too_many_attempts"
    assert domain.turn_refused(0.1).retry_after_s == 1


def test_each_lockout_in_a_day_lasts_twice_the_one_before_up_to_a_day():
    assert [domain.lockout_s(n, LIMITS) for n in (1, 2, 3, 4)] == [900, 1800, 3600, 7200]
    assert domain.lockout_s(12, LIMITS) == 24 * 3600
    assert domain.lockout_s(0, LIMITS) == 900


@given(
    st.integers(0, 10_000),
    st.booleans(),
    st.integers(1, 50),
    st.floats(0.01, 60),
    st.floats(0.01, 600),
)
def test_the_spacing_is_never_negative_nor_over_its_cap(failures, known, after, delay, cap):
    limits = domain.ThrottleLimits(slow_after=after, delay_s=delay, delay_cap_s=cap)
    spacing = domain.account_spacing(failures, known, limits)
    assert 0.0 <= spacing <= cap
    assert (spacing == 0.0) == (known or failures < after)


def test_revoking_tokens_moves_the_version_on():
    account = Account(token_version=3)
    domain.revoke_tokens(account)
    assert account.token_version == 4
    assert account.active is True


@pytest.mark.parametrize(
    ("was_active", "active", "version_after"),
    [(True, False, 8), (False, True, 8), (True, True, 7), (False, False, 7)],
)
def test_a_change_of_activation_revokes_tokens_and_a_repeat_does_not(
    was_active, active, version_after
):
    account = Account(token_version=7, active=was_active)
    domain.set_active(account, active)
    assert account.active is active
    assert account.token_version == version_after


def test_tokens_revoked_by_a_deactivation_stay_revoked_after_activation():
    account = Account(token_version=0)
    domain.set_active(account, False)
    revoked_at = account.token_version
    domain.set_active(account, True)
    assert account.token_version > revoked_at > 0


def test_a_deactivated_account_cannot_log_in():
    domain.check_can_log_in(Account(active=True))
    with pytest.raises(domain.AccountDeactivated) as refused:
        domain.check_can_log_in(Account(active=False))
    assert refused.value.message == "This account has been deactivated."
    assert domain_status(refused.value) == 403


def test_an_administrator_cannot_deactivate_themself():
    admin, other = uuid.uuid4(), uuid.uuid4()
    domain.check_deactivation(other, admin)
    with pytest.raises(domain.CannotDeactivateSelf) as refused:
        domain.check_deactivation(admin, admin)
    assert refused.value.message == "An administrator cannot deactivate themself."
    assert domain_status(refused.value) == 409


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        (domain.email_taken(), 409, "email_taken", "An account with this e-mail already exists."),
        (
            domain.wrong_credentials(),
            401,
            "invalid_credentials",
            "The e-mail or password is not correct.",
        ),
        (domain.wrong_password(), 403, "invalid_password", "The password is not correct."),
        (
            domain.AccountDeactivated("This account has been deactivated."),
            403,
            "account_deactivated",
            "This account has been deactivated.",
        ),
        (domain.AccountNotFound("No such account."), 404, "not_found", "No such account."),
        (
            domain.CannotDeactivateSelf("An administrator cannot deactivate themself."),
            409,
            "cannot_deactivate_self",
            "An administrator cannot deactivate themself.",
        ),
        (domain.TooManyAttempts("Too many.", 5), 429, "too_many_attempts", "Too many."),
    ],
)
def test_each_refusal_keeps_its_status_and_code(error, status, code, message):
    assert isinstance(error, DomainError)
    assert domain_status(error) == status
    assert error.code == code
    assert error.message == message
