"""Payment providers: Stripe PaymentIntents with manual capture, or a sandbox that follows them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import stripe

from payment_service.domain import Action, idempotency_key


@dataclass(frozen=True)
class Authorisation:
    success: bool
    provider_payment_id: str | None
    decline_code: str | None
    reason: str | None


class ProviderError(Exception):
    """A transient failure (network, 5xx, rate limit): the caller retries."""


class InvalidPaymentState(ValueError):
    """The payment cannot go there from where it is (capture a voided one, void a captured one,
    authorise an order again with other parameters): a programming error upstream."""


# https://docs.stripe.com/currencies
ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
# Sent in thousandths, but Stripe requires the last digit to be 0: at most 2 decimals.
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())
# Sent in hundredths, but Stripe accepts whole krónur only.
WHOLE_UNIT_IN_CENTS_CURRENCIES = frozenset({"ISK"})


def to_minor_units(amount: Decimal, currency: str) -> int:
    """The amount as Stripe expects it: an integer in the currency's minor unit."""
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        decimals, factor = 0, 1
    elif code in THREE_DECIMAL_CURRENCIES:
        decimals, factor = 2, 1000
    elif code in WHOLE_UNIT_IN_CENTS_CURRENCIES:
        decimals, factor = 0, 100
    else:
        decimals, factor = 2, 100
    if not amount.is_finite() or amount.scaleb(decimals) % 1 != 0:
        raise ValueError(f"{amount} {code}: at most {decimals} decimals")
    return int(amount * factor)


class PaymentProvider(Protocol):
    name: str

    async def authorise(
        self, *, order_id: uuid.UUID, amount: Decimal, currency: str, payment_method_id: str
    ) -> Authorisation:
        """Hold the amount on the payment method; the same order twice gives the same answer."""
        ...

    async def capture(self, *, order_id: uuid.UUID, provider_payment_id: str) -> None:
        """Take the held amount; capturing a captured payment does nothing."""
        ...

    async def void(self, *, order_id: uuid.UUID, provider_payment_id: str) -> None:
        """Release the held amount; voiding a voided payment does nothing."""
        ...


# Stripe's test payment methods: https://docs.stripe.com/testing#cards
_SANDBOX_DECLINES = {
    "pm_card_chargeDeclined": ("generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
}
_SANDBOX_APPROVED = frozenset(
    {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"}
)


class SandboxPaymentProvider:
    """Moves no money: answers like Stripe does for its test payment methods."""

    name = "sandbox"

    def __init__(self) -> None:
        # provider_payment_id -> PaymentIntent status, as far as this process has seen. The
        # sandbox keeps no store of its own: after a restart an id it has not seen is one the
        # payments table recorded as authorised (only those are captured or voided), so it is
        # taken as "requires_capture", as Stripe would still know it.
        self.states: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        # What each order was first authorised with, and the answer, replayed like Stripe's
        # idempotency key does.
        self._authorised: dict[uuid.UUID, tuple[tuple[int, str, str], Authorisation]] = {}

    async def authorise(
        self, *, order_id: uuid.UUID, amount: Decimal, currency: str, payment_method_id: str
    ) -> Authorisation:
        payment_id = f"pi_sandbox_{order_id.hex}"
        self.calls.append(("authorise", payment_id))
        params = (to_minor_units(amount, currency), currency.lower(), payment_method_id)
        if order_id in self._authorised:
            first_params, result = self._authorised[order_id]
            if params != first_params:
                raise InvalidPaymentState(f"order {order_id} was authorised with other parameters")
            return result

        if payment_method_id in _SANDBOX_APPROVED:
            result = Authorisation(True, payment_id, None, None)
            self.states[payment_id] = "requires_capture"
        elif payment_method_id in _SANDBOX_DECLINES:
            code, reason = _SANDBOX_DECLINES[payment_method_id]
            result = Authorisation(False, payment_id, code, reason)
            self.states[payment_id] = "requires_payment_method"
        else:
            # Stripe creates no PaymentIntent for a payment method it does not know.
            reason = f"The payment method {payment_method_id!r} is unknown."
            result = Authorisation(False, None, "invalid_payment_method", reason)
        self._authorised[order_id] = (params, result)
        return result

    async def capture(self, *, order_id: uuid.UUID, provider_payment_id: str) -> None:
        self.calls.append(("capture", provider_payment_id))
        state = self.states.get(provider_payment_id, "requires_capture")
        if state == "succeeded":
            return
        if state != "requires_capture":
            raise InvalidPaymentState(f"cannot capture {provider_payment_id}: it is {state}")
        self.states[provider_payment_id] = "succeeded"

    async def void(self, *, order_id: uuid.UUID, provider_payment_id: str) -> None:
        self.calls.append(("void", provider_payment_id))
        state = self.states.get(provider_payment_id, "requires_capture")
        if state == "canceled":
            return
        if state not in ("requires_capture", "requires_payment_method"):
            raise InvalidPaymentState(f"cannot void {provider_payment_id}: it is {state}")
        self.states[provider_payment_id] = "canceled"


_TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


class StripePaymentProvider:
    """Stripe PaymentIntents through the official SDK's async methods (httpx underneath)."""

    name = "stripe"

    def __init__(self, api_key: str, api_base: str | None = None, timeout_s: float = 10.0) -> None:
        # The SDK's own retries are off: the caller retries, with the same idempotency keys.
        self.http_client = stripe.HTTPXClient(timeout=timeout_s)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,
            http_client=self.http_client,
        )

    async def aclose(self) -> None:
        await self.http_client.close_async()

    async def authorise(
        self, *, order_id: uuid.UUID, amount: Decimal, currency: str, payment_method_id: str
    ) -> Authorisation:
        minor_units = to_minor_units(amount, currency)
        try:
            intent = await self.client.v1.payment_intents.create_async(
                {
                    "amount": minor_units,
                    "currency": currency.lower(),
                    "payment_method": payment_method_id,
                    "capture_method": "manual",
                    "confirm": True,
                    # confirm=true needs either this or a return_url.
                    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                    "metadata": {"order_id": str(order_id)},
                },
                {"idempotency_key": idempotency_key(Action.AUTHORISE, order_id)},
            )
        except stripe.CardError as exc:
            error = exc.error
            payment_intent = error.payment_intent if error is not None else None
            return Authorisation(
                success=False,
                provider_payment_id=payment_intent.id if payment_intent is not None else None,
                decline_code=(error.decline_code if error is not None else None) or exc.code,
                reason=exc.user_message or str(exc),
            )
        except stripe.IdempotencyError as exc:
            raise InvalidPaymentState(
                f"order {order_id} was authorised with other parameters: {exc.user_message}"
            ) from exc
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing" and exc.param == "payment_method":
                return Authorisation(
                    False, None, "invalid_payment_method", exc.user_message or str(exc)
                )
            raise
        except _TRANSIENT as exc:
            raise ProviderError(f"Stripe: {exc.user_message or exc!r}") from exc

        if intent.status == "requires_capture":
            return Authorisation(True, intent.id, None, None)
        # No redirects are allowed, so a card that needs 3-D Secure stops at requires_action.
        code = "authentication_required" if intent.status == "requires_action" else intent.status
        return Authorisation(False, intent.id, code, f"The payment is {intent.status}.")

    async def capture(self, *, order_id: uuid.UUID, provider_payment_id: str) -> None:
        await self._change(
            "capture",
            "succeeded",
            provider_payment_id,
            self.client.v1.payment_intents.capture_async(
                provider_payment_id,
                options={"idempotency_key": idempotency_key(Action.CAPTURE, order_id)},
            ),
        )

    async def void(self, *, order_id: uuid.UUID, provider_payment_id: str) -> None:
        await self._change(
            "void",
            "canceled",
            provider_payment_id,
            self.client.v1.payment_intents.cancel_async(
                provider_payment_id,
                options={"idempotency_key": idempotency_key(Action.VOID, order_id)},
            ),
        )

    async def _change(
        self, action: str, done_status: str, payment_id: str, call: Awaitable[object]
    ) -> None:
        """Capture or cancel; an intent already in ``done_status`` counts as done."""
        try:
            await call
        except stripe.InvalidRequestError as exc:
            status = await self._status_after(exc, payment_id)
            if status != done_status:
                raise InvalidPaymentState(f"cannot {action} {payment_id}: it is {status}") from exc
        except _TRANSIENT as exc:
            raise ProviderError(f"Stripe: {exc.user_message or exc!r}") from exc

    async def _status_after(self, exc: stripe.InvalidRequestError, payment_id: str) -> str:
        """The intent's status when Stripe refused to change it (captured or canceled before,
        by another key or over 24 hours ago); any other refusal is raised again."""
        if exc.code != "payment_intent_unexpected_state":
            raise exc
        if exc.error is not None and exc.error.payment_intent is not None:
            return exc.error.payment_intent.status
        try:
            intent = await self.client.v1.payment_intents.retrieve_async(payment_id)
        except _TRANSIENT as retrieve_exc:
            raise ProviderError(f"Stripe: {retrieve_exc.user_message}") from retrieve_exc
        return intent.status


def build_payment_provider(api_key: str | None, api_base: str | None) -> PaymentProvider:
    if api_key:
        return StripePaymentProvider(api_key, api_base)
    return SandboxPaymentProvider()
