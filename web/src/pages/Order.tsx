// One order, live: its state as the server pushes it (useLiveOrder), in plain words.
import { Link, useParams } from "react-router-dom";
import type { Order } from "../api/client";
import { useLiveOrder } from "../live";
import { money } from "../money";
import { Problem, SignedIn, Table, useTitle } from "./common";

const STEPS: Record<string, string> = {
  OrderCreated: "Order received",
  StockReserved: "Items set aside for you",
  StockReservationFailed: "Items not available",
  PaymentProcessed: "Payment answered",
  OrderConfirmed: "Order confirmed",
  OrderCancelled: "Order cancelled",
  OrderShipped: "Order shipped",
  CustomerCancelled: "Cancelled at your request",
  DeadlinePassed: "Not completed in time",
};

function Status({ order }: { order: Order }) {
  switch (order.status) {
    case "PENDING":
      return <p>We are checking stock and payment…</p>;
    case "CONFIRMED":
      return <p>Your order is confirmed. We will let you know when it ships.</p>;
    case "CANCELLED":
      return <p>Your order was cancelled. {order.cancelReason ?? ""}</p>;
    case "SHIPPED":
      return (
        <p>
          Your order is on its way. Tracking number: <strong>{order.trackingNumber}</strong>
        </p>
      );
    default:
      return <p>{order.status}</p>;
  }
}

export function OrderPage() {
  useTitle("Your order");
  return (
    <SignedIn>
      <LiveOrder />
    </SignedIn>
  );
}

function LiveOrder() {
  const { orderId = "" } = useParams();
  const { order, connected, error } = useLiveOrder(orderId);
  if (error) return <Problem error={error} />;
  if (!order) return <p aria-busy="true">Loading your order…</p>;
  return (
    <article className="order">
      <h1>Order {order.id.slice(0, 8)}</h1>
      <section aria-live="polite" aria-atomic="true" className={`status ${order.status.toLowerCase()}`}>
        <h2>
          Status: <span data-testid="order-status">{order.status}</span>
        </h2>
        <Status order={order} />
      </section>
      <p className="hint">{connected ? "Live: this page updates by itself." : "Reconnecting…"}</p>
      <Table caption="Products in this order" hideCaption columns={["Product", "Quantity", "Total"]}>
          {order.items.map((line) => (
            <tr key={line.productId}>
              <th scope="row">{line.name}</th>
              <td>{line.quantity}</td>
              <td>{money(line.lineTotal, order.currency)}</td>
            </tr>
          ))}
      </Table>
      <p className="total">
        Total: <strong>{money(order.totalAmount, order.currency)}</strong>
      </p>
      <h2>What happened</h2>
      <ol className="timeline">
        {order.timeline.map((step, index) => (
          <li key={index}>
            <time dateTime={step.at}>{new Date(step.at).toLocaleTimeString()}</time>{" "}
            {STEPS[step.event] ?? step.event}
          </li>
        ))}
      </ol>
      <p>
        <Link to="/orders">All your orders</Link>
      </p>
    </article>
  );
}
