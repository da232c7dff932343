"""TwilioSmsProvider (the real SDK) against a local server that answers like Twilio's API."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from notification_service.providers import (
    ProviderError,
    SandboxSmsProvider,
    SmsMessage,
    TwilioSmsProvider,
)
from tests.fake_api import FakeApi, Reply

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token"
FROM_NUMBER = "+14155550100"

# --- Twilio's API, as documented: POST /2010-04-01/Accounts/{AccountSid}/Messages.json -----


class FakeTwilio(FakeApi):
    """Checks what the Twilio SDK sends and answers like Twilio."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next: tuple[int, dict[str, Any]] | None = None

    def answer(self, request: dict[str, Any]) -> Reply:
        if self.fail_next is not None:
            (status, payload), self.fail_next = self.fail_next, None
            return status, payload, {}
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request["headers"].get("Authorization") != f"Basic {expected}":
            return 401, _error(20003, "Authenticate", 401), {}
        if request["path"] != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return 404, _error(20404, "The requested resource was not found", 404), {}
        form = request["form"]
        to = form["To"][0]
        if not to.startswith("+") or not to[1:].isdigit():
            return 400, _error(21211, f"Invalid 'To' Phone Number: {to}", 400), {}
        return 201, self.message(to, form["From"][0], form["Body"][0]), {}

    def message(self, to: str, from_: str, body: str) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        uri = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}"
        now = "Thu, 01 Jan 2026 12:00:00 +0000"
        return {
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    yield fake
    fake.close()


@pytest.fixture
def twilio(fake_twilio: FakeTwilio) -> TwilioSmsProvider:
    return TwilioSmsProvider(ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, api_base=fake_twilio.url)


async def test_send_creates_a_message_and_returns_its_sid(
    fake_twilio: FakeTwilio, twilio: TwilioSmsProvider
):
    sid = await twilio.send(SmsMessage(to="+4915112345678", text="Your order has shipped."))

    [request] = fake_twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request["headers"]["Authorization"] == f"Basic {credentials}"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {
        "To": ["+4915112345678"],
        "From": [FROM_NUMBER],
        "Body": ["Your order has shipped."],
    }
    assert sid.startswith("SM")
    assert len(sid) == 34


async def test_a_wrong_token_is_a_provider_error(fake_twilio: FakeTwilio):
    provider = TwilioSmsProvider(ACCOUNT_SID, "wrong-token", FROM_NUMBER, api_base=fake_twilio.url)
    with pytest.raises(ProviderError, match="401"):
        await provider.send(SmsMessage(to="+4915112345678", text="hi"))


async def test_a_refused_number_is_a_provider_error_with_twilios_message(
    twilio: TwilioSmsProvider,
):
    with pytest.raises(ProviderError, match=r"400 \(code 21211\).*Invalid 'To' Phone Number"):
        await twilio.send(SmsMessage(to="12345", text="hi"))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, _error(20500, "Internal Server Error", 500)),
        (503, _error(20503, "Service Unavailable", 503)),
        (429, _error(20429, "Too Many Requests", 429)),
    ],
)
async def test_a_server_error_or_rate_limit_is_a_provider_error(
    fake_twilio: FakeTwilio, twilio: TwilioSmsProvider, status: int, error: dict[str, Any]
):
    fake_twilio.fail_next = (status, error)
    with pytest.raises(ProviderError, match=str(status)):
        await twilio.send(SmsMessage(to="+4915112345678", text="hi"))
    assert len(fake_twilio.requests) == 1  # the SDK does not retry by itself


async def test_an_unreachable_twilio_is_a_provider_error(fake_twilio: FakeTwilio):
    url = fake_twilio.url
    fake_twilio.close()  # nothing listens on the port any more
    provider = TwilioSmsProvider(ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, api_base=url, timeout_s=2)
    with pytest.raises(ProviderError, match="unreachable"):
        await provider.send(SmsMessage(to="+4915112345678", text="hi"))


async def test_sandbox_records_the_message():
    sandbox = SandboxSmsProvider()
    message = SmsMessage(to="+4915112345678", text="hi")
    first = await sandbox.send(message)
    second = await sandbox.send(message)
    assert first.startswith("sandbox-sms-")
    assert first != second
    assert sandbox.sent == [message, message]
