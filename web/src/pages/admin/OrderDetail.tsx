// One order for the staff: live, with its timeline and payments; ship it with a tracking
// number, or cancel it with a reason the customer is told.
import { useEffect, useState, type FormEvent } from "react";
import { useParams } from "react-router-dom";
import { ok, orders, payments, type Order } from "../../api/client";
import type { components } from "../../api/types/payments";
import { useLiveOrder } from "../../live";
import { money } from "../../money";
import { Field, Problem, useAction, useTitle } from "../common";
import { Staff } from "./Staff";

type Payment = components["schemas"]["PaymentOut"];

export function AdminOrder() {
  useTitle("Back office: order");
  return (
    <Staff title="Order">
      <OrderDetail />
    </Staff>
  );
}

function OrderDetail() {
  const { orderId = "" } = useParams();
  const { order, error } = useLiveOrder(orderId);
  if (error) return <Problem error={error} />;
  if (!order) return <p aria-busy="true">Loading…</p>;
  return (
    <>
      <section aria-live="polite" className={`status ${order.status.toLowerCase()}`}>
        <h2>
          {order.id} — <span data-testid="order-status">{order.status}</span>
        </h2>
        {order.cancelReason && <p>{order.cancelReason}</p>}
        {order.trackingNumber && <p>Tracking number: {order.trackingNumber}</p>}
        <p>
          Total {money(order.totalAmount, order.currency)}; placed{" "}
          {new Date(order.createdAt).toLocaleString()}; ship to {order.shippingAddress.fullName as string},{" "}
          {order.shippingAddress.city as string} ({order.shippingAddress.country as string})
        </p>
      </section>
      {order.status === "CONFIRMED" && <Ship order={order} />}
      {(order.status === "PENDING" || order.status === "CONFIRMED") && <Cancel order={order} />}
      <h2>Timeline</h2>
      <ol className="timeline">
        {order.timeline.map((step, index) => (
          <li key={index}>
            <time dateTime={step.at}>{new Date(step.at).toLocaleTimeString()}</time> {step.event} (
            {step.direction}){step.details ? `: ${JSON.stringify(step.details)}` : ""}
          </li>
        ))}
      </ol>
      <Payments orderId={order.id} version={order.timeline.length} />
    </>
  );
}

function Ship({ order }: { order: Order }) {
  const { busy, error, run } = useAction();
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trackingNumber = String(new FormData(event.currentTarget).get("trackingNumber")).trim();
    void run(async () => {
      await ok(
        orders.POST("/orders/{order_id}/ship", {
          params: { path: { order_id: order.id } },
          body: { trackingNumber },
        }),
      );
    });
  }
  return (
    <form className="inline" onSubmit={submit} aria-label="Ship">
      <Field label="Tracking number" name="trackingNumber" required maxLength={100} pattern="[A-Za-z0-9-]+" />
      <button type="submit" disabled={busy}>
        Ship
      </button>
      <Problem error={error} />
    </form>
  );
}

function Cancel({ order }: { order: Order }) {
  const { busy, error, run } = useAction();
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const reason = String(new FormData(event.currentTarget).get("reason")).trim();
    void run(async () => {
      await ok(
        orders.POST("/orders/{order_id}/cancel", {
          params: { path: { order_id: order.id } },
          body: { reason },
        }),
      );
    });
  }
  return (
    <form className="inline" onSubmit={submit} aria-label="Cancel">
      <Field
        label="Reason for cancelling"
        hint="The customer is told this"
        name="reason"
        required
        maxLength={500}
      />
      <button type="submit" disabled={busy} className="danger">
        Cancel order
      </button>
      <Problem error={error} />
    </form>
  );
}

function Payments({ orderId, version }: { orderId: string; version: number }) {
  const [items, setItems] = useState<Payment[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    ok(payments.GET("/payments", { params: { query: { orderId } } })).then(
      (page) => setItems(page.items),
      setError,
    );
  }, [orderId, version]);
  return (
    <>
      <h2>Payments</h2>
      <Problem error={error} />
      {items && items.length === 0 && <p>No payment yet.</p>}
      {items && items.length > 0 && (
        <ul>
          {items.map((p) => (
            <li key={p.id}>
              {p.status}
              {p.amount && p.currency ? `, ${money(p.amount, p.currency)}` : ""}
              {p.provider ? ` via ${p.provider}` : ""}
              {p.failureReason ? `: ${p.failureReason}` : ""}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
