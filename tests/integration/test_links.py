"""Links by e-mail on the real PostgreSQL and Redis (user_service in-process): an address is
verified by following the link sent to it; a forgotten password is reset by a link that works
once, within its time, and answers the same for any address; and notification_service sends
nothing a registrant chose to an address before it is verified."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from notification_service.app import create_app as create_notification_app
from shared_events.events import (
    EmailVerificationRequested,
    EmailVerified,
    OrderConfirmed,
    UserRegistered,
)
from shared_events.store import add_event
from tests.integration.test_services import (
    FakeSendGrid,
    deliveries_for,
    notification_settings,
    purge_notification_queue,
    user_settings,
)
from tests.support import error_of, eventually, migrate, running
from user_service import links
from user_service.app import create_app as create_user_app

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    migrate("user_service", "users_test")
    migrate("notification_service", "notifications_test")


@pytest.fixture
async def users() -> Any:
    app = create_user_app(user_settings())
    async with running(app) as client:
        redis = app.state.redis
        keys = [k async for k in redis.scan_iter(match="allowance:*")]
        keys += [k async for k in redis.scan_iter(match="login-*")]
        if keys:
            await redis.delete(*keys)
        client.app = app  # type: ignore[attr-defined]
        yield client


async def outbox_events(app: Any, user_id: str, event_type: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            sa.text(
                "SELECT payload FROM outbox WHERE event_type = :type"
                " AND payload ->> 'userId' = :user ORDER BY created_at"
            ),
            {"type": event_type, "user": user_id},
        )
        return [row.payload for row in rows]


async def register(client: Any, **body: str) -> dict[str, Any]:
    email = f"links-{uuid.uuid4().hex[:10]}@example.com"
    answer = await client.post(
        "/users/register",
        json={"email": email, "password": PASSWORD, "fullName": "Ada Lovelace", **body},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def bearer(client: Any, email: str, password: str = PASSWORD) -> dict[str, str]:
    login = await client.post("/users/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['accessToken']}"}


async def test_a_registration_is_unverified_until_its_link_is_followed(users):
    user = await register(users)
    assert user["emailVerified"] is False
    [sent] = await outbox_events(users.app, user["id"], "EmailVerificationRequested")
    assert sent["email"] == user["email"] and set(sent) >= {"token", "expiresAt"}
    assert "fullName" not in sent  # nothing the registrant chose but the address

    verified = await users.post("/users/verify", json={"token": sent["token"]})
    assert verified.status_code == 200 and verified.json()["emailVerified"] is True
    again = await users.post("/users/verify", json={"token": sent["token"]})
    assert again.status_code == 200 and again.json()["emailVerified"] is True
    [event] = await outbox_events(users.app, user["id"], "EmailVerified")  # once
    assert (event["email"], event["fullName"]) == (user["email"], "Ada Lovelace")
    me = await users.get("/users/me", headers=await bearer(users, user["email"]))
    assert me.json()["emailVerified"] is True


@pytest.mark.parametrize("which", ["forged", "expired", "a reset link", "an access token"])
async def test_a_link_that_is_not_a_good_verification_link_is_refused(users, which):
    user = await register(users)
    secret = users.app.state.settings.jwt_secret.get_secret_value()
    user_id = uuid.UUID(user["id"])
    token = {
        "forged": links.sign("verify-email", user_id, user["email"], "another-secret", 600).token,
        "expired": links.sign("verify-email", user_id, user["email"], secret, -1).token,
        "a reset link": links.sign("password-reset", user_id, user["email"], secret, 600).token,
        "an access token": (await bearer(users, user["email"]))["Authorization"][7:],
    }[which]
    refused = await users.post("/users/verify", json={"token": token})
    assert refused.status_code == 400 and error_of(refused)["code"] == "link_invalid"
    assert await outbox_events(users.app, user["id"], "EmailVerified") == []


async def test_the_verification_email_is_sent_again_at_most_once_a_minute(users):
    user = await register(users)
    headers = await bearer(users, user["email"])
    answers = await asyncio.gather(
        *(users.post("/users/verify/resend", headers=headers) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [202, 429, 429, 429]
    assert len(await outbox_events(users.app, user["id"], "EmailVerificationRequested")) == 2
    [first, _] = await outbox_events(users.app, user["id"], "EmailVerificationRequested")
    assert (await users.post("/users/verify", json={"token": first["token"]})).status_code == 200
    done = await users.post("/users/verify/resend", headers=headers)
    assert done.status_code == 409 and error_of(done)["code"] == "already_verified"


async def test_a_password_reset_answers_alike_for_any_address_and_its_link_works_once(users):
    user = await register(users)
    old = await bearer(users, user["email"])
    known = await users.post("/users/password-reset", json={"email": user["email"].upper()})
    unknown = await users.post("/users/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() == {"status": "accepted"}
    [sent] = await outbox_events(users.app, user["id"], "PasswordResetRequested")
    assert sent["email"] == user["email"] and "fullName" not in sent

    body = {"token": sent["token"], "newPassword": "a-brand-new-one"}
    done = await users.post("/users/password-reset/confirm", json=body)
    assert done.status_code == 204, done.text
    # Every token issued before is revoked; the new password logs in; the old one does not.
    assert (await users.get("/users/me", headers=old)).status_code == 401
    await bearer(users, user["email"], "a-brand-new-one")
    wrong = await users.post("/users/login", json={"email": user["email"], "password": PASSWORD})
    assert wrong.status_code == 401
    # Once: the same link again is refused, and sets nothing.
    again = await users.post("/users/password-reset/confirm", json=body | {"newPassword": "x" * 9})
    assert again.status_code == 400 and error_of(again)["code"] == "link_invalid"
    await bearer(users, user["email"], "a-brand-new-one")
    # Following it showed the address is the owner's.
    [revoked] = await outbox_events(users.app, user["id"], "UserTokensRevoked")
    assert revoked["reason"] == "password_reset"
    assert len(await outbox_events(users.app, user["id"], "EmailVerified")) == 1


async def test_an_expired_reset_link_or_a_bad_new_password_changes_nothing(users):
    user = await register(users)
    secret = users.app.state.settings.jwt_secret.get_secret_value()
    async with users.app.state.sessionmaker() as session:
        password_hash = await session.scalar(
            sa.text("SELECT password_hash FROM users WHERE id = :id"), {"id": user["id"]}
        )
    fingerprint = links.password_fingerprint(password_hash)
    expired = links.sign("password-reset", uuid.UUID(user["id"]), fingerprint, secret, -1)
    refused = await users.post(
        "/users/password-reset/confirm", json={"token": expired.token, "newPassword": "new-one-1"}
    )
    assert refused.status_code == 400
    good = links.sign("password-reset", uuid.UUID(user["id"]), fingerprint, secret, 600)
    short = await users.post(
        "/users/password-reset/confirm", json={"token": good.token, "newPassword": "short"}
    )
    assert short.status_code == 422
    await bearer(users, user["email"])  # the old password still works


async def test_password_reset_links_are_throttled_per_address_and_quietly_per_account(users):
    user = await register(users)
    headers = {"X-Real-IP": "203.0.113.77"}
    answers = [
        (await users.post("/users/password-reset", json={"email": user["email"]}, headers=headers))
        for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [202] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    # Per account: three links an hour, the rest answered alike but not sent.
    assert len(await outbox_events(users.app, user["id"], "PasswordResetRequested")) == 3


@pytest.fixture
async def sendgrid():
    await purge_notification_queue()
    fake = FakeSendGrid()
    yield fake
    fake.close()


async def templates_sent(app: Any, user_id: uuid.UUID) -> set[str]:
    return {delivery.template for delivery in await deliveries_for(app, user_id)}


async def test_nothing_the_registrant_typed_goes_to_an_unverified_address(sendgrid):
    app = create_notification_app(
        notification_settings(sendgrid_api_key="SG.test-key", sendgrid_api_host=sendgrid.url)
    )
    user_id = uuid.uuid4()
    email = f"{user_id.hex[:8]}@example.com"
    bait = "Click evil dot com"
    registered = UserRegistered(user_id=user_id, email=email, full_name=bait)
    confirmed = OrderConfirmed(order_id=uuid.uuid4(), user_id=user_id, user_email=email)
    link = links.sign("verify-email", user_id, email, "secret", 600)
    verify = EmailVerificationRequested(
        user_id=user_id, email=email, token=link.token, expires_at=link.expires_at
    )
    async with running(app):
        for event in (registered, verify, confirmed):
            async with app.state.sessionmaker() as session, session.begin():
                await add_event(session, event)
        sent = await eventually(
            lambda: templates_sent(app, user_id), until=lambda t: len(t) == 2, timeout=10
        )
        assert sent == {"verify_email", "order_confirmed"}  # no welcome
        verified = EmailVerified(user_id=user_id, email=email, full_name="Ada Lovelace")
        async with app.state.sessionmaker() as session, session.begin():
            await add_event(session, verified)
        await eventually(
            lambda: templates_sent(app, user_id), until=lambda t: "welcome" in t, timeout=10
        )
    mails = {m["json"]["subject"]: m["json"]["content"][0]["value"] for m in sendgrid.requests}
    for subject, text in mails.items():
        if not subject.startswith("Welcome"):
            assert bait.lower() not in text.lower() and "Hello,\n" in text, subject
    [welcome] = [text for subject, text in mails.items() if subject.startswith("Welcome")]
    assert "Hello Ada Lovelace" in welcome
    verify_mail = next(t for s, t in mails.items() if s.startswith("Verify"))
    assert f"/verify-email#token={link.token}" in verify_mail
    assert json.dumps(sendgrid.requests[0]["json"]["personalizations"][0]["to"]) == json.dumps(
        [{"email": email}]
    )


async def test_two_password_changes_at_once_are_decided_one_after_the_other(users):
    """Each change checks the current password on the locked row: the second one is checked
    against the password the first one set, so the token it would return cannot survive the
    first change's revocation."""
    user = await register(users)
    headers = await bearer(users, user["email"])
    answers = await asyncio.gather(
        *(
            users.put(
                "/users/me/password",
                json={"currentPassword": PASSWORD, "newPassword": f"new-password-{n}"},
                headers=headers,
            )
            for n in range(2)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 403]
    [won] = [a for a in answers if a.status_code == 200]
    revocations = await outbox_events(users.app, user["id"], "UserTokensRevoked")
    assert len(revocations) == 1
    assert (await users.get("/users/me", headers=headers)).status_code == 401
    fresh = {"Authorization": f"Bearer {won.json()['accessToken']}"}
    assert (await users.get("/users/me", headers=fresh)).status_code == 200
