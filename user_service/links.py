"""Signed, expiring links sent by e-mail: one that verifies an address, one that resets a
password. Nothing is stored: a link is a JWT (python-jose, HS256) signed with a key of its own
purpose, derived from JWT_SECRET, so a link is never an access token nor a link of the other
kind, and an access token is never a link.

- verification: the account and the address it verifies; good for ``VERIFY_TTL_S``, and only
  while the account still has that address;
- password reset: the account and a fingerprint of its password hash; good for
  ``RESET_TTL_S``, and once: the reset changes the hash, so the link (and any other sent
  before) no longer matches.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from jose import JWTError, jwt

from user_service import domain

ALGORITHM = "HS256"
VERIFY_TTL_S = 48 * 3600
RESET_TTL_S = 30 * 60


def _key(secret: str, purpose: domain.LinkPurpose) -> str:
    return hmac.new(secret.encode(), f"link:{purpose}".encode(), hashlib.sha256).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    """What a reset link remembers of the password it replaces (not the hash itself)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Link:
    token: str
    expires_at: datetime


def sign(
    purpose: domain.LinkPurpose, user_id: uuid.UUID, binding: str, secret: str, ttl_s: int
) -> Link:
    """A link for ``user_id``; ``binding`` is what must still hold when it is followed (the
    address verified, or the password's fingerprint)."""
    expires = int(time.time()) + ttl_s
    claims = {"sub": str(user_id), "bnd": binding, "exp": expires}
    token = jwt.encode(claims, _key(secret, purpose), algorithm=ALGORITHM)
    return Link(token, datetime.fromtimestamp(expires, UTC))


def read(purpose: domain.LinkPurpose, token: str, secret: str) -> tuple[uuid.UUID, str]:
    """The account and the binding of a good link of ``purpose``; else LinkInvalid."""
    try:
        claims = jwt.decode(token, _key(secret, purpose), algorithms=[ALGORITHM])
        user_id, binding = uuid.UUID(str(claims["sub"])), str(claims["bnd"])
    except (JWTError, KeyError, ValueError) as exc:
        raise domain.link_invalid(purpose) from exc
    if int(claims.get("exp", 0)) <= time.time():
        raise domain.link_invalid(purpose)
    return user_id, binding
