import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { ok, orders, type Order } from "../api/client";
import { money } from "../money";
import { Problem, SignedIn, useTitle } from "./common";

export function OrderHistory() {
  useTitle("Your orders");
  return (
    <>
      <h1>Your orders</h1>
      <SignedIn>
        <History />
      </SignedIn>
    </>
  );
}

function History() {
  const [items, setItems] = useState<Order[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    ok(orders.GET("/orders", { params: { query: { pageSize: 50 } } })).then(
      (page) => setItems(page.items),
      setError,
    );
  }, []);
  if (!items) return error ? <Problem error={error} /> : <p aria-busy="true">Loading…</p>;
  if (items.length === 0) return <p>You have not ordered anything yet.</p>;
  return (
    <ul className="orders">
      {items.map((order) => (
        <li key={order.id}>
          <Link to={`/orders/${order.id}`}>Order {order.id.slice(0, 8)}</Link>{" "}
          <time dateTime={order.createdAt}>{new Date(order.createdAt).toLocaleDateString()}</time>{" "}
          <span className={`badge ${order.status.toLowerCase()}`}>{order.status}</span>{" "}
          {money(order.totalAmount, order.currency)}
        </li>
      ))}
    </ul>
  );
}
