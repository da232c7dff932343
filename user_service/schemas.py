"""Request and response bodies of user_service (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field

from shared_core.fields import PersonName
from shared_events.events import CamelModel
from user_service.domain import MAX_PASSWORD_BYTES, fits_bcrypt

E164 = r"^\+[1-9]\d{1,14}$"


def _fits_bcrypt(value: str) -> str:
    if not fits_bcrypt(value):
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


# A password being set (registration, change); one being checked is any string up to 1 KB.
NewPassword = Annotated[
    str,
    Field(min_length=8, description="8 characters or more, 72 bytes at most"),
    AfterValidator(_fits_bcrypt),
]
Password = Annotated[str, Field(max_length=1024)]


class RegisterRequest(CamelModel):
    email: EmailStr
    password: NewPassword
    full_name: PersonName = Field(max_length=200, description="a name: no e-mail or web address")
    phone: str | None = Field(default=None, pattern=E164, description="E.164, e.g. +14155550100")


class LoginRequest(CamelModel):
    # Plain strings: a malformed e-mail is just a failed login (401), with no hint why.
    email: str = Field(max_length=320)
    password: Password


class ChangePasswordRequest(CamelModel):
    current_password: Password
    new_password: NewPassword


class DeleteAccountRequest(CamelModel):
    """The password again: deleting an account cannot be undone."""

    password: Password


class VerifyEmailRequest(CamelModel):
    """The token of the link the verification e-mail holds (after ``#token=``)."""

    token: str = Field(max_length=2000)


class PasswordResetRequest(CamelModel):
    # Any string: an address that is no account's gets the same answer, with no hint why.
    email: str = Field(max_length=320)


class PasswordResetConfirm(CamelModel):
    """The token of the link the reset e-mail holds (after ``#token=``), and the new password."""

    token: str = Field(max_length=2000)
    new_password: NewPassword


class Accepted(CamelModel):
    status: Literal["accepted"] = "accepted"


class TokenResponse(CamelModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class UserResponse(CamelModel):
    id: uuid.UUID
    email: str
    full_name: str
    phone: str | None
    role: str
    active: bool
    email_verified: bool
    created_at: datetime


class TokenStateResponse(CamelModel):
    token_version: int
    active: bool
