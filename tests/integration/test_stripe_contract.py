"""StripePaymentProvider (the real SDK) against a local server that answers like Stripe's API;
the sandbox and to_minor_units without a server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from payment_service.providers import (
    Authorisation,
    InvalidPaymentState,
    ProviderError,
    SandboxPaymentProvider,
    StripePaymentProvider,
    build_payment_provider,
    to_minor_units,
)
from tests.fake_api import FakeApi, Reply

API_KEY = "sk_test_contract"

# The SDK hands httpx its already encoded body as `data=`, which httpx 0.28 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

# --- Stripe's API, as documented: form-encoded POSTs, PaymentIntent objects, error bodies -----


class FakeStripe(FakeApi):
    """A local HTTP server that checks what the Stripe SDK sends and answers like Stripe.

    Like Stripe it saves the answer to each Idempotency-Key (500s included) and replays it,
    and refuses a key reused with other parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.intents: dict[str, dict[str, Any]] = {}
        self.replies: dict[str, tuple[dict[str, list[str]], int, dict[str, Any]]] = {}
        self.fail_next: int | None = None  # answer the next request with this status

    def answer(self, request: dict[str, Any]) -> Reply:
        status, payload, replayed = self._answer(request)
        headers = {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return status, payload, headers

    def _answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        if request["method"] == "GET":
            intent = self.intents.get(request["path"].removeprefix("/v1/payment_intents/"))
            if intent is None:
                return 404, _error("invalid_request_error", "resource_missing", "No such"), False
            return 200, intent, False
        if request["headers"].get("Authorization") != f"Bearer {API_KEY}":
            message = "Invalid API Key provided: sk_test_***"
            return 401, _error("invalid_request_error", None, message), False
        form = request["form"]
        key = request["headers"]["Idempotency-Key"]
        if key in self.replies:
            first_form, status, payload = self.replies[key]
            if first_form != form:
                message = (
                    "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with."
                )
                return 400, _error("idempotency_error", None, message), False
            return status, payload, True
        if self.fail_next is not None:
            status, self.fail_next = self.fail_next, None
            payload = _error("api_error", None, "An unknown error occurred")
        else:
            status, payload = self.handle(request["path"], form)
        self.replies[key] = (form, status, payload)
        return status, payload, False

    def handle(self, path: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/payment_intents":
            return self.create(form)
        intent_id, _, action = path.removeprefix("/v1/payment_intents/").partition("/")
        intent = self.intents.get(intent_id)
        if intent is None:
            message = f"No such payment_intent: '{intent_id}'"
            return 404, _error("invalid_request_error", "resource_missing", message, "intent")
        allowed = {"capture": ("requires_capture",), "cancel": ("requires_capture",)}[action]
        if intent["status"] not in allowed:
            message = (
                f"This PaymentIntent could not be {action}ed because it has a status of "
                f"{intent['status']}."
            )
            error = _error("invalid_request_error", "payment_intent_unexpected_state", message)
            error["error"]["payment_intent"] = intent
            return 400, error
        if action == "capture":
            intent.update(status="succeeded", amount_capturable=0, amount_received=intent["amount"])
        else:
            intent.update(status="canceled", amount_capturable=0, cancellation_reason=None)
        return 200, intent

    def create(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        payment_method = form["payment_method"][0]
        if not payment_method.startswith("pm_card_"):
            message = f"No such PaymentMethod: '{payment_method}'"
            return 400, _error(
                "invalid_request_error", "resource_missing", message, "payment_method"
            )
        intent_id = f"pi_{uuid.uuid4().hex[:24]}"
        amount = int(form["amount"][0])
        declined = payment_method == "pm_card_chargeDeclinedInsufficientFunds"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0 if declined else amount,
            "amount_received": 0,
            "capture_method": form["capture_method"][0],
            "client_secret": f"{intent_id}_secret_{uuid.uuid4().hex[:24]}",
            "confirmation_method": "automatic",
            "created": 1767225600,
            "currency": form["currency"][0],
            "last_payment_error": None,
            "latest_charge": f"ch_{uuid.uuid4().hex[:24]}",
            "livemode": False,
            "metadata": {"order_id": form["metadata[order_id]"][0]},
            "payment_method": None if declined else payment_method,
            "payment_method_types": ["card"],
            "status": "requires_payment_method" if declined else "requires_capture",
        }
        self.intents[intent_id] = intent
        if declined:
            message = "Your card has insufficient funds."
            error = _error("card_error", "card_declined", message)
            error["error"]["decline_code"] = "insufficient_funds"
            error["error"]["payment_intent"] = intent
            intent["last_payment_error"] = error["error"] | {"payment_intent": None}
            return 402, error
        return 200, intent

    def forget_idempotency_keys(self) -> None:
        """What 24 hours do: Stripe prunes the saved answers."""
        self.replies.clear()


def _error(type_: str, code: str | None, message: str, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    return {"error": error}


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    yield fake
    fake.close()


@pytest.fixture
async def stripe_provider(fake_stripe: FakeStripe) -> AsyncIterator[StripePaymentProvider]:
    provider = StripePaymentProvider(API_KEY, api_base=fake_stripe.url)
    yield provider
    await provider.aclose()


def posted(fake: FakeStripe) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == "POST"]


async def test_authorise_sends_a_manual_capture_payment_intent(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    order_id = uuid.uuid4()
    result = await stripe_provider.authorise(
        order_id=order_id, amount=Decimal("59.90"), currency="EUR", payment_method_id="pm_card_visa"
    )

    [request] = posted(fake_stripe)
    assert request["path"] == "/v1/payment_intents"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["Idempotency-Key"] == f"authorise-{order_id}"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {
        "amount": ["5990"],
        "currency": ["eur"],
        "payment_method": ["pm_card_visa"],
        "capture_method": ["manual"],
        "confirm": ["true"],
        "automatic_payment_methods[enabled]": ["true"],
        "automatic_payment_methods[allow_redirects]": ["never"],
        "metadata[order_id]": [str(order_id)],
    }
    [intent] = fake_stripe.intents.values()
    assert result == Authorisation(True, intent["id"], None, None)
    assert result.provider_payment_id is not None
    assert result.provider_payment_id.startswith("pi_")


async def test_a_zero_decimal_currency_is_sent_in_units(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    result = await stripe_provider.authorise(
        order_id=uuid.uuid4(),
        amount=Decimal("1200"),
        currency="JPY",
        payment_method_id="pm_card_mastercard",
    )
    assert result.success
    [request] = posted(fake_stripe)
    assert request["form"]["amount"] == ["1200"]
    assert request["form"]["currency"] == ["jpy"]


async def test_a_declined_card_is_a_declined_authorisation(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    result = await stripe_provider.authorise(
        order_id=uuid.uuid4(),
        amount=Decimal("59.90"),
        currency="EUR",
        payment_method_id="pm_card_chargeDeclinedInsufficientFunds",
    )
    [intent] = fake_stripe.intents.values()
    assert result == Authorisation(
        success=False,
        provider_payment_id=intent["id"],
        decline_code="insufficient_funds",
        reason="Your card has insufficient funds.",
    )


async def test_an_unknown_payment_method_is_declined(stripe_provider: StripePaymentProvider):
    result = await stripe_provider.authorise(
        order_id=uuid.uuid4(), amount=Decimal("5"), currency="EUR", payment_method_id="pm_nope"
    )
    assert not result.success
    assert result.provider_payment_id is None
    assert result.decline_code == "invalid_payment_method"
    assert result.reason == "No such PaymentMethod: 'pm_nope'"


async def test_authorising_an_order_twice_sends_the_same_idempotency_key(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    order_id = uuid.uuid4()
    params: dict[str, Any] = {
        "amount": Decimal("10.00"),
        "currency": "EUR",
        "payment_method_id": "pm_card_visa",
    }
    first = await stripe_provider.authorise(order_id=order_id, **params)
    second = await stripe_provider.authorise(order_id=order_id, **params)

    keys = [r["headers"]["Idempotency-Key"] for r in posted(fake_stripe)]
    assert keys == [f"authorise-{order_id}"] * 2
    assert second == first
    assert len(fake_stripe.intents) == 1


async def test_authorising_an_order_again_with_another_card_is_refused(
    stripe_provider: StripePaymentProvider,
):
    order_id = uuid.uuid4()
    await stripe_provider.authorise(
        order_id=order_id, amount=Decimal("10"), currency="EUR", payment_method_id="pm_card_visa"
    )
    with pytest.raises(InvalidPaymentState, match="other parameters"):
        await stripe_provider.authorise(
            order_id=order_id,
            amount=Decimal("10"),
            currency="EUR",
            payment_method_id="pm_card_amex",
        )


async def authorised(
    provider: StripePaymentProvider, *order_ids: uuid.UUID
) -> dict[uuid.UUID, str]:
    """Authorise 20 USD with pm_card_visa for each order: its PaymentIntent id."""
    ids = {}
    for order_id in order_ids:
        result = await provider.authorise(
            order_id=order_id,
            amount=Decimal("20"),
            currency="USD",
            payment_method_id="pm_card_visa",
        )
        assert result.provider_payment_id is not None
        ids[order_id] = result.provider_payment_id
    return ids


async def test_capture_and_void_use_their_own_idempotency_keys(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    captured, voided = uuid.uuid4(), uuid.uuid4()
    ids = await authorised(stripe_provider, captured, voided)

    await stripe_provider.capture(order_id=captured, provider_payment_id=ids[captured])
    await stripe_provider.void(order_id=voided, provider_payment_id=ids[voided])

    capture, cancel = posted(fake_stripe)[2:]
    assert capture["path"] == f"/v1/payment_intents/{ids[captured]}/capture"
    assert capture["headers"]["Idempotency-Key"] == f"capture-{captured}"
    assert cancel["path"] == f"/v1/payment_intents/{ids[voided]}/cancel"
    assert cancel["headers"]["Idempotency-Key"] == f"void-{voided}"
    assert fake_stripe.intents[ids[captured]]["status"] == "succeeded"
    assert fake_stripe.intents[ids[voided]]["status"] == "canceled"


async def test_capture_and_void_twice_are_done_once(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    captured, voided = uuid.uuid4(), uuid.uuid4()
    ids = await authorised(stripe_provider, captured, voided)

    # Within 24 hours Stripe replays the first answer to the same key...
    await stripe_provider.capture(order_id=captured, provider_payment_id=ids[captured])
    await stripe_provider.capture(order_id=captured, provider_payment_id=ids[captured])
    await stripe_provider.void(order_id=voided, provider_payment_id=ids[voided])
    await stripe_provider.void(order_id=voided, provider_payment_id=ids[voided])
    # ...after that it answers 400 payment_intent_unexpected_state, which is fine too.
    fake_stripe.forget_idempotency_keys()
    await stripe_provider.capture(order_id=captured, provider_payment_id=ids[captured])
    await stripe_provider.void(order_id=voided, provider_payment_id=ids[voided])

    assert fake_stripe.intents[ids[captured]]["status"] == "succeeded"
    assert fake_stripe.intents[ids[voided]]["status"] == "canceled"


async def test_voiding_a_captured_payment_is_an_invalid_state(
    stripe_provider: StripePaymentProvider,
):
    order_id = uuid.uuid4()
    result = await stripe_provider.authorise(
        order_id=order_id, amount=Decimal("20"), currency="USD", payment_method_id="pm_card_visa"
    )
    assert result.provider_payment_id is not None
    await stripe_provider.capture(order_id=order_id, provider_payment_id=result.provider_payment_id)
    with pytest.raises(InvalidPaymentState, match="succeeded"):
        await stripe_provider.void(
            order_id=order_id, provider_payment_id=result.provider_payment_id
        )


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_server_error_or_rate_limit_is_a_provider_error(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider, status: int
):
    fake_stripe.fail_next = status
    with pytest.raises(ProviderError):
        await stripe_provider.authorise(
            order_id=uuid.uuid4(),
            amount=Decimal("1"),
            currency="EUR",
            payment_method_id="pm_card_visa",
        )
    assert len(posted(fake_stripe)) == 1  # the SDK does not retry by itself


async def test_a_server_error_on_capture_is_a_provider_error(
    fake_stripe: FakeStripe, stripe_provider: StripePaymentProvider
):
    order_id = uuid.uuid4()
    result = await stripe_provider.authorise(
        order_id=order_id, amount=Decimal("1"), currency="EUR", payment_method_id="pm_card_visa"
    )
    assert result.provider_payment_id is not None
    fake_stripe.fail_next = 500
    with pytest.raises(ProviderError):
        await stripe_provider.capture(
            order_id=order_id, provider_payment_id=result.provider_payment_id
        )


async def test_an_unreachable_stripe_is_a_provider_error(fake_stripe: FakeStripe):
    url = fake_stripe.url
    fake_stripe.close()  # nothing listens on the port any more
    provider = StripePaymentProvider(API_KEY, api_base=url, timeout_s=2)
    try:
        with pytest.raises(ProviderError):
            await provider.authorise(
                order_id=uuid.uuid4(),
                amount=Decimal("1"),
                currency="EUR",
                payment_method_id="pm_card_visa",
            )
    finally:
        await provider.aclose()


# --- The sandbox ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payment_method", ["pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"]
)
async def test_sandbox_authorises_stripes_good_test_cards(payment_method: str):
    sandbox = SandboxPaymentProvider()
    order_id = uuid.uuid4()
    result = await sandbox.authorise(
        order_id=order_id, amount=Decimal("59.90"), currency="EUR", payment_method_id=payment_method
    )
    assert result == Authorisation(True, f"pi_sandbox_{order_id.hex}", None, None)
    assert sandbox.states[f"pi_sandbox_{order_id.hex}"] == "requires_capture"


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ],
)
async def test_sandbox_declines_stripes_declining_test_cards(
    payment_method: str, decline_code: str
):
    sandbox = SandboxPaymentProvider()
    order_id = uuid.uuid4()
    result = await sandbox.authorise(
        order_id=order_id, amount=Decimal("5"), currency="EUR", payment_method_id=payment_method
    )
    assert not result.success
    assert result.provider_payment_id == f"pi_sandbox_{order_id.hex}"
    assert result.decline_code == decline_code
    assert result.reason


async def test_sandbox_declines_an_unknown_payment_method():
    sandbox = SandboxPaymentProvider()
    result = await sandbox.authorise(
        order_id=uuid.uuid4(), amount=Decimal("5"), currency="EUR", payment_method_id="pm_whatever"
    )
    assert not result.success
    assert result.decline_code == "invalid_payment_method"
    assert result.reason is not None
    assert "unknown" in result.reason


async def test_sandbox_gives_the_same_answer_for_the_same_order():
    sandbox = SandboxPaymentProvider()
    order_id = uuid.uuid4()
    params: dict[str, Any] = {
        "amount": Decimal("5"),
        "currency": "EUR",
        "payment_method_id": "pm_card_visa",
    }
    first = await sandbox.authorise(order_id=order_id, **params)
    assert await sandbox.authorise(order_id=order_id, **params) == first
    other = await sandbox.authorise(order_id=uuid.uuid4(), **params)
    assert other.provider_payment_id != first.provider_payment_id
    with pytest.raises(InvalidPaymentState):
        await sandbox.authorise(order_id=order_id, **(params | {"amount": Decimal("6")}))


async def test_sandbox_capture_and_void_are_idempotent():
    sandbox = SandboxPaymentProvider()
    captured, voided = uuid.uuid4(), uuid.uuid4()
    params: dict[str, Any] = {
        "amount": Decimal("5"),
        "currency": "EUR",
        "payment_method_id": "pm_card_visa",
    }
    captured_id = (await sandbox.authorise(order_id=captured, **params)).provider_payment_id
    voided_id = (await sandbox.authorise(order_id=voided, **params)).provider_payment_id
    assert captured_id is not None
    assert voided_id is not None

    for _ in range(2):
        await sandbox.capture(order_id=captured, provider_payment_id=captured_id)
        await sandbox.void(order_id=voided, provider_payment_id=voided_id)

    assert sandbox.states == {captured_id: "succeeded", voided_id: "canceled"}
    assert sandbox.calls == [
        ("authorise", captured_id),
        ("authorise", voided_id),
        ("capture", captured_id),
        ("void", voided_id),
        ("capture", captured_id),
        ("void", voided_id),
    ]
    with pytest.raises(InvalidPaymentState):
        await sandbox.void(order_id=captured, provider_payment_id=captured_id)
    with pytest.raises(InvalidPaymentState):
        await sandbox.capture(order_id=voided, provider_payment_id=voided_id)


async def test_sandbox_a_declined_payment_cannot_be_captured_but_can_be_voided():
    sandbox = SandboxPaymentProvider()
    order_id = uuid.uuid4()
    result = await sandbox.authorise(
        order_id=order_id,
        amount=Decimal("5"),
        currency="EUR",
        payment_method_id="pm_card_chargeDeclined",
    )
    assert result.provider_payment_id is not None
    with pytest.raises(InvalidPaymentState):
        await sandbox.capture(order_id=order_id, provider_payment_id=result.provider_payment_id)
    await sandbox.void(order_id=order_id, provider_payment_id=result.provider_payment_id)
    assert sandbox.states[result.provider_payment_id] == "canceled"


def test_build_payment_provider_picks_stripe_when_there_is_a_key():
    assert build_payment_provider(None, None).name == "sandbox"
    assert build_payment_provider("", "http://127.0.0.1:1").name == "sandbox"
    assert build_payment_provider(API_KEY, None).name == "stripe"


# --- Amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("59.90", "EUR", 5990),
        ("59.9", "eur", 5990),
        ("0.50", "USD", 50),
        ("100", "GBP", 10000),
        ("1200", "JPY", 1200),
        ("1200.00", "jpy", 1200),
        ("15000", "KRW", 15000),
        ("5.12", "KWD", 5120),  # three decimals, the last one 0
        ("500", "ISK", 50000),  # hundredths of whole krónur
    ],
)
def test_to_minor_units(amount: str, currency: str, minor: int):
    assert to_minor_units(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("59.999", "EUR"), ("0.001", "USD"), ("12.5", "JPY"), ("5.125", "KWD"), ("10.50", "ISK")],
)
def test_to_minor_units_refuses_more_decimals_than_the_currency_has(amount: str, currency: str):
    with pytest.raises(ValueError, match="decimals"):
        to_minor_units(Decimal(amount), currency)


async def test_sandbox_after_a_restart_still_captures_and_voids_what_was_authorised():
    order_a, order_b = uuid.uuid4(), uuid.uuid4()
    before = SandboxPaymentProvider()
    first = await before.authorise(
        order_id=order_a, amount=Decimal("5.00"), currency="EUR", payment_method_id="pm_card_visa"
    )
    second = await before.authorise(
        order_id=order_b, amount=Decimal("5.00"), currency="EUR", payment_method_id="pm_card_visa"
    )
    after = SandboxPaymentProvider()  # the process restarted: nothing in memory
    assert first.provider_payment_id and second.provider_payment_id
    await after.capture(order_id=order_a, provider_payment_id=first.provider_payment_id)
    await after.void(order_id=order_b, provider_payment_id=second.provider_payment_id)
    assert after.states == {
        first.provider_payment_id: "succeeded",
        second.provider_payment_id: "canceled",
    }
