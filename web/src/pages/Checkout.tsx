// Checkout: where to ship, how to pay (the sandbox's and Stripe's test payment methods, each
// saying what it does), then the order. One Idempotency-Key per attempt, kept while the page
// is open: pressing "Place order" twice, or again after a lost answer, places one order.
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { ok, orders } from "../api/client";
import { Field, Problem, SignedIn, useAction, useTitle } from "./common";

export const PAYMENT_METHODS = [
  ["pm_card_visa", "Visa test card", "the payment succeeds"],
  ["pm_card_mastercard", "Mastercard test card", "the payment succeeds"],
  ["pm_card_chargeDeclined", "Declined card", "the card is declined and the order cancelled"],
  [
    "pm_card_chargeDeclinedInsufficientFunds",
    "Card without funds",
    "declined for insufficient funds; the order is cancelled",
  ],
  ["pm_card_chargeDeclinedExpiredCard", "Expired card", "declined as expired; the order is cancelled"],
] as const;

/** A random Idempotency-Key (crypto.randomUUID needs HTTPS; getRandomValues does not). */
function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function Checkout() {
  useTitle("Checkout");
  return (
    <>
      <h1>Checkout</h1>
      <SignedIn>
        <CheckoutForm />
      </SignedIn>
    </>
  );
}

function CheckoutForm() {
  const navigate = useNavigate();
  const [key] = useState(newKey);
  const { busy, error, run } = useAction();

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const field = (name: string) => String(form.get(name) ?? "").trim();
    void run(async () => {
      const placed = await ok(
        orders.POST("/orders", {
          params: { header: { "Idempotency-Key": key } },
          body: {
            shippingAddress: {
              fullName: field("fullName"),
              line1: field("line1"),
              line2: field("line2") || null,
              city: field("city"),
              postalCode: field("postalCode"),
              country: field("country").toUpperCase(),
            },
            paymentMethodId: field("paymentMethod"),
          },
        }),
      );
      navigate(`/orders/${placed.id}`);
    });
  }

  return (
    <form className="stacked" onSubmit={submit}>
      <fieldset>
        <legend>Shipping address</legend>
        <Field label="Full name" name="fullName" autoComplete="shipping name" required maxLength={200} />
        <Field label="Address" name="line1" autoComplete="shipping address-line1" required maxLength={200} />
        <Field
          label="Address, second line"
          hint="Optional"
          name="line2"
          autoComplete="shipping address-line2"
          maxLength={200}
        />
        <Field label="City" name="city" autoComplete="shipping address-level2" required maxLength={100} />
        <Field label="Postal code" name="postalCode" autoComplete="shipping postal-code" required maxLength={20} />
        <Field
          label="Country"
          hint="Two letters, e.g. DE, FR, US"
          name="country"
          autoComplete="shipping country"
          required
          pattern="[A-Za-z]{2}"
          maxLength={2}
        />
      </fieldset>
      <fieldset>
        <legend>Payment (test cards: no money moves)</legend>
        {PAYMENT_METHODS.map(([id, name, effect], index) => (
          <label key={id} className="choice">
            <input type="radio" name="paymentMethod" value={id} defaultChecked={index === 0} required />
            <span>
              {name} <span className="hint">({id}): {effect}</span>
            </span>
          </label>
        ))}
      </fieldset>
      <Problem error={error} />
      <button type="submit" disabled={busy}>
        Place order
      </button>
    </form>
  );
}
