"""The shared runtime: redaction, tokens, the error shape."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from jose import jwt
from pydantic import BaseModel, SecretStr

from shared_runtime.auth import (
    Claims,
    CurrentUser,
    TokenState,
    TokenStates,
    TokenStateUnavailable,
    create_access_token,
    decode_access_token,
)
from shared_runtime.errors import ApiError, install_error_handlers
from shared_runtime.logs import REDACTED, configure_logging, redact_secrets
from shared_runtime.observability import RequestContextMiddleware
from tests.support import error_of

SECRET = "unit-test-secret"


def test_passwords_tokens_and_card_numbers_are_redacted():
    event = {
        "event": "login with Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "password": "hunter22",
        "body": {"email": "a@example.com", "cardNumber": "4242424242424242", "nested": ["ok"]},
        "note": "paid with 4242 4242 4242 4242 today",
        "Authorization": "Bearer abc",
        "user_id": "5e0c6d1a-0000-4000-8000-000000000001",
    }
    clean = redact_secrets(None, "info", event)
    assert clean["password"] == REDACTED
    assert clean["Authorization"] == REDACTED
    assert clean["body"]["cardNumber"] == REDACTED
    assert clean["body"]["email"] == REDACTED
    assert "4242" not in clean["note"]
    assert "eyJ" not in clean["event"]
    assert clean["user_id"] == event["user_id"]


def test_personal_data_in_free_text_and_tracebacks_is_redacted():
    traceback = (
        "Traceback (most recent call last):\n"
        "sqlalchemy.exc.IntegrityError: duplicate key\n"
        "[SQL: INSERT INTO orders (user_email, shipping_address) VALUES ($1, $2)]\n"
        "[parameters: ('ada@example.com', '{\"line1\": \"12 Analytical Row\"}')]\n"
        "pydantic_core.ValidationError: 1 validation error for ShippingAddress\n"
        "  Input should be a valid string [type=string_type, "
        "input_value={'line1': '12 Analytical Row'}, input_type=dict]\n"
        "RuntimeError: could not text +4915112345678 nor mail Ada.L+shop@Example.co.uk"
    )
    order_id = "5e0c6d1a-0000-4000-8000-000000000001"
    event = {
        "event": "unhandled_error",
        "exception": traceback,
        "path": f"/orders/{order_id}",
        "shipping_address": {"line1": "12 Analytical Row"},
        "recipient": "+4915112345678",
        "status": 500,
    }
    clean = redact_secrets(None, "error", event)
    text = repr(clean)
    for personal in ("ada@example.com", "Analytical", "4915112345678", "Ada.L+shop"):
        assert personal not in text, personal
    assert clean["path"] == f"/orders/{order_id}" and clean["status"] == 500
    assert "sqlalchemy.exc.IntegrityError" in clean["exception"]  # still says what failed


def claims(role: str = "customer") -> Claims:
    return Claims(sub=uuid.uuid4(), email="a@example.com", full_name="A B", role=role)  # type: ignore[arg-type]


def test_token_round_trip_carries_the_design_claims():
    original = claims("admin")
    token = create_access_token(original, SECRET, 3600)
    payload = jwt.get_unverified_claims(token)
    assert set(payload) == {"sub", "email", "fullName", "role", "tokenVersion", "iat", "exp"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert payload["exp"] - payload["iat"] == 3600
    assert decode_access_token(token, SECRET) == original.model_copy(update={"exp": payload["exp"]})


@pytest.mark.parametrize(
    "token",
    [
        create_access_token(claims(), "another-secret", 3600),
        create_access_token(claims(), SECRET, -10),
        create_access_token(claims(), SECRET, 0),  # at its exp: no longer (RFC 7519)
        jwt.encode({"sub": str(uuid.uuid4()), "exp": time.time() + 60}, SECRET, "HS256"),
        jwt.encode(
            {
                "sub": str(uuid.uuid4()),
                "email": "a@b.c",
                "fullName": "x",
                "role": "root",
                "exp": time.time() + 60,
            },
            SECRET,
            "HS256",
        ),
        "garbage",
    ],
    ids=["wrong-secret", "expired", "at-exp", "missing-claims", "unknown-role", "garbage"],
)
def test_bad_tokens_are_401(token: str):
    with pytest.raises(ApiError) as caught:
        decode_access_token(token, SECRET)
    assert caught.value.status_code == 401


class Item(BaseModel):
    quantity: int


# The accounts small_app's token check knows (user_service's answers, in the real system).
ACCOUNTS: dict[uuid.UUID, TokenState] = {}


async def known_account(user_id: uuid.UUID) -> TokenState | None:
    return ACCOUNTS.get(user_id)


def small_app() -> FastAPI:
    app = FastAPI()
    app.state.settings = type("S", (), {"jwt_secret": SecretStr(SECRET)})()
    app.state.token_states = TokenStates(known_account, fresh_s=0)
    app.add_middleware(RequestContextMiddleware, service_name="unit")
    install_error_handlers(app)

    @app.post("/items")
    async def create(item: Item) -> dict:
        return {"quantity": item.quantity}

    @app.get("/conflict")
    async def conflict() -> None:
        raise ApiError(409, "out_of_stock", "Only 2 left.", {"available": 2})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    @app.get("/mine")
    async def mine(user: CurrentUser) -> dict:
        return {"sub": str(user.sub)}

    @app.get("/peer")
    async def peer(request: Request) -> dict:
        assert request.client is not None
        return {"port": request.client.port}

    return app


def test_an_unexpected_error_is_logged_with_its_request_id_and_no_personal_data(capsys):
    configure_logging("unit")
    app = small_app()

    @app.get("/leaky")
    async def leaky() -> None:
        raise RuntimeError("cannot ship to Ada Lovelace <ada@example.com>, +4915112345678")

    client = TestClient(app, raise_server_exceptions=False)
    answer = client.get("/leaky", headers={"X-Request-ID": "req-5001"})
    assert answer.status_code == 500
    assert error_of(answer)["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "req-5001"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    [error] = [line for line in lines if line["event"] == "unhandled_error"]
    assert error["request_id"] == "req-5001" and error["path"] == "/leaky"
    assert "RuntimeError" in error["exception"]
    assert "ada@example.com" not in error["exception"] and "4915112345678" not in error["exception"]
    [access] = [line for line in lines if line["event"] == "request"]
    assert (access["request_id"], access["status"]) == ("req-5001", 500)


def test_every_error_has_the_one_shape_and_no_stack_trace():
    client = TestClient(small_app(), raise_server_exceptions=False)
    invalid = client.post("/items", json={"quantity": "many"})
    assert invalid.status_code == 422
    assert error_of(invalid)["details"][0]["field"] == "quantity"

    not_json = client.post("/items", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    assert error_of(not_json)["code"] == "validation_error"

    conflict = client.get("/conflict")
    assert conflict.status_code == 409
    assert error_of(conflict) == {
        "code": "out_of_stock",
        "message": "Only 2 left.",
        "details": {"available": 2},
    }

    missing = client.get("/nowhere")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong_method = client.delete("/items")
    assert (
        wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "method_not_allowed"
    )

    boom = client.get("/boom")
    assert boom.status_code == 500
    assert error_of(boom)["code"] == "internal_error"
    assert "hunter2" not in boom.text and "Traceback" not in boom.text


def test_current_user_dependency_reads_the_bearer_token_of_a_current_account():
    client = TestClient(small_app())
    user = claims()
    ACCOUNTS[user.sub] = TokenState(token_version=0, active=True)
    token = {"Authorization": f"Bearer {create_access_token(user, SECRET, 60)}"}
    ok = client.get("/mine", headers=token)
    assert ok.json() == {"sub": str(user.sub)}
    assert client.get("/mine").status_code == 401

    for state, message in [
        (TokenState(token_version=1, active=True), "revoked"),  # password changed since
        (TokenState(token_version=0, active=False), "deactivated"),
        (None, "no longer exists"),
    ]:
        if state is None:
            del ACCOUNTS[user.sub]
        else:
            ACCOUNTS[user.sub] = state
        refused = client.get("/mine", headers=token)
        assert refused.status_code == 401
        assert error_of(refused)["code"] == "token_revoked"
        assert message in error_of(refused)["message"]


def error_of_api(error: ApiError) -> tuple[int, str]:
    return error.status_code, error.code


async def test_token_states_ask_once_per_account_and_serve_what_they_know_when_it_cannot():
    asked: list[uuid.UUID] = []
    answer: dict[str, object] = {"state": TokenState(3, True)}

    async def fetch(user_id: uuid.UUID) -> TokenState | None:
        asked.append(user_id)
        await asyncio.sleep(0.01)
        if isinstance(answer["state"], Exception):
            raise answer["state"]
        return answer["state"]  # type: ignore[return-value]

    states = TokenStates(fetch, fresh_s=60, stale_s=60)
    user = uuid.uuid4()
    results = await asyncio.gather(*(states.state(user) for _ in range(20)))
    assert results == [TokenState(3, True)] * 20 and asked == [user]  # one question for all
    assert await states.state(user) == TokenState(3, True) and asked == [user]  # still fresh

    # A token newer than what is known (a password just changed) makes it ask again at once.
    answer["state"] = TokenState(4, True)
    newer = Claims(sub=user, email="a@example.com", full_name="A", token_version=4)
    await states.check(newer)
    assert asked == [user, user]
    with pytest.raises(ApiError) as older:
        await states.check(newer.model_copy(update={"token_version": 3}))
    assert error_of_api(older.value) == (401, "token_revoked") and asked == [user, user]

    stale = TokenStates(fetch, fresh_s=0, stale_s=60)
    answer["state"] = TokenState(4, True)
    assert await stale.state(user) == TokenState(4, True)
    answer["state"] = TokenStateUnavailable("user_service down")
    assert await stale.state(user) == TokenState(4, True)  # known, so it still serves
    with pytest.raises(ApiError) as unknown:
        await stale.state(uuid.uuid4())  # never seen: cannot be checked
    assert unknown.value.status_code == 503


async def test_an_answer_asked_for_before_a_forget_is_neither_waited_for_nor_kept():
    """A question on its way when the account changed may carry the state before the change:
    after ``forget`` the next check asks afresh, and the late answer does not overwrite it."""
    user = uuid.uuid4()
    release_old = asyncio.Event()
    answers = [TokenState(0, True), TokenState(1, True)]

    async def fetch(_: uuid.UUID) -> TokenState | None:
        answer = answers.pop(0)
        if answer.token_version == 0:
            await release_old.wait()  # answered before the change, arrives after it
        return answer

    states = TokenStates(fetch, fresh_s=60)
    before = asyncio.create_task(states.state(user))
    await asyncio.sleep(0)
    states.forget(user)  # the password changed
    async with asyncio.timeout(2):  # not waiting for the early question
        assert await states.state(user) == TokenState(1, True)
    release_old.set()
    assert await before == TokenState(0, True)  # the early caller gets its own answer...
    assert await states.state(user) == TokenState(1, True)  # ...which is not kept


def test_request_id_is_kept_or_made():
    client = TestClient(small_app())
    assert (
        client.get("/nowhere", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    )
    made = client.get("/nowhere").headers["x-request-id"]
    assert len(made) == 32


def test_an_unreachable_store_is_a_503_not_a_500():
    import redis.exceptions

    app = small_app()

    @app.get("/redis-down")
    async def redis_down() -> None:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    response = TestClient(app, raise_server_exceptions=False).get("/redis-down")
    assert response.status_code == 503
    assert error_of(response)["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "5"
