// Orders by status, with a search by order id or the customer's e-mail. The words searched
// for go in a request body (POST /orders/search) and stay out of the page's address: a URL is
// written to access logs and traces, and a customer's e-mail must not be.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ok, orders, type Order } from "../../api/client";
import { money } from "../../money";
import { Problem, Table, useTitle } from "../common";
import { Staff } from "./Staff";

const STATUSES = ["PENDING", "CONFIRMED", "SHIPPED", "CANCELLED"] as const;
type Status = (typeof STATUSES)[number];

export function AdminOrders() {
  useTitle("Back office: orders");
  return (
    <Staff title="Orders">
      <OrderList />
    </Staff>
  );
}

function OrderList() {
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") ?? "CONFIRMED") as Status | "";
  const [search, setSearch] = useState("");
  const [page, setPage] = useState<{ items: Order[]; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    setError(null);
    ok(
      orders.POST("/orders/search", {
        body: { status: status || undefined, search: search || undefined, page: 1, pageSize: 50 },
      }),
    ).then((answer) => setPage({ items: answer.items, total: answer.total }), setError);
  }, [status, search]);

  function apply(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setSearch(String(form.get("search") ?? "").trim());
    setParams(new URLSearchParams({ status: String(form.get("status") ?? "") }));
  }

  return (
    <>
      <form className="filters" role="search" onSubmit={apply} key={`${params.toString()} ${search}`}>
        <label>
          Status
          <select name="status" defaultValue={status}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Order id or customer e-mail
          <input name="search" type="search" defaultValue={search} maxLength={200} />
        </label>
        <button type="submit">Show</button>
      </form>
      <Problem error={error} />
      {page && (
        <>
          <p aria-live="polite">{page.total === 0 ? "No orders match." : `${page.total} orders`}</p>
          <Table caption="Orders" hideCaption columns={["Order", "Placed", "Status", "Total"]}>
              {page.items.map((order) => (
                <tr key={order.id}>
                  <th scope="row">
                    <Link to={`/admin/orders/${order.id}`}>{order.id.slice(0, 8)}</Link>
                  </th>
                  <td>
                    <time dateTime={order.createdAt}>{new Date(order.createdAt).toLocaleString()}</time>
                  </td>
                  <td>{order.status}</td>
                  <td>{money(order.totalAmount, order.currency)}</td>
                </tr>
              ))}
          </Table>
        </>
      )}
    </>
  );
}
