"""JWT access tokens (python-jose, HS256) and the one dependency every service checks them with."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from fastapi import Depends, Request
from jose import JWTError, jwt
from pydantic import BaseModel, ConfigDict, Field

from shared_runtime.errors import ApiError

ALGORITHM = "HS256"
Role = Literal["customer", "admin"]


class Claims(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sub: uuid.UUID
    email: str
    full_name: str = Field(alias="fullName")
    role: Role = "customer"

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
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, secret: str) -> Claims:
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM])
        return Claims.model_validate(payload)
    except (JWTError, ValueError) as exc:
        raise ApiError(
            401,
            "invalid_token",
            "The access token is invalid or has expired.",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


def current_user(request: Request) -> Claims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            "A bearer access token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return decode_access_token(
        token.strip(), request.app.state.settings.jwt_secret.get_secret_value()
    )


def admin_user(user: Annotated[Claims, Depends(current_user)]) -> Claims:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "This action needs an administrator.")
    return user


CurrentUser = Annotated[Claims, Depends(current_user)]
AdminUser = Annotated[Claims, Depends(admin_user)]
