import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { cart, ok } from "../api/client";
import type { components } from "../api/types/cart";
import { money } from "../money";
import { Problem, SignedIn, Table, useTitle } from "./common";

type Cart = components["schemas"]["Cart"];

export function CartPage() {
  useTitle("Cart");
  return (
    <>
      <h1>Your cart</h1>
      <SignedIn>
        <CartLines />
      </SignedIn>
    </>
  );
}

function CartLines() {
  const [current, setCurrent] = useState<Cart | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => ok(cart.GET("/cart")).then(setCurrent, setError), []);
  useEffect(() => {
    void load();
  }, [load]);

  async function change(productId: string, quantity: number) {
    setError(null);
    try {
      setCurrent(
        quantity > 0
          ? await ok(
              cart.PUT("/cart/items/{product_id}", {
                params: { path: { product_id: productId } },
                body: { quantity },
              }),
            )
          : await ok(cart.DELETE("/cart/items/{product_id}", { params: { path: { product_id: productId } } })),
      );
    } catch (problem) {
      setError(problem);
    }
  }

  if (!current) return error ? <Problem error={error} /> : <p aria-busy="true">Loading…</p>;
  if (current.items.length === 0) {
    return (
      <p>
        Your cart is empty. <Link to="/">Browse the catalog</Link>.
      </p>
    );
  }
  return (
    <>
      <Problem error={error} />
      <Table caption="Products in your cart" hideCaption columns={["Product", "Price", "Quantity", "Total"]}>
          {current.items.map((line) => (
            <tr key={line.productId}>
              <th scope="row">
                <Link to={`/products/${line.productId}`}>{line.name}</Link>
                {!line.active && <span className="problem"> No longer sold</span>}
                {line.active && line.quantity > line.availableQuantity && (
                  <span className="problem">
                    {line.availableQuantity === 0
                      ? " Sold out since you added it"
                      : ` Only ${line.availableQuantity} left`}
                  </span>
                )}
              </th>
              <td>{money(line.unitPrice, line.currency)}</td>
              <td>
                <label className="visually-hidden" htmlFor={`qty-${line.productId}`}>
                  Quantity of {line.name}
                </label>
                <input
                  id={`qty-${line.productId}`}
                  type="number"
                  min={0}
                  max={99}
                  defaultValue={line.quantity}
                  onChange={(e) => {
                    const n = Number(e.currentTarget.value);
                    if (Number.isInteger(n) && n >= 0 && n <= 99) void change(line.productId, n);
                  }}
                />
                <button type="button" className="link" onClick={() => change(line.productId, 0)}>
                  Remove<span className="visually-hidden"> {line.name}</span>
                </button>
              </td>
              <td>{money(line.lineTotal, line.currency)}</td>
            </tr>
          ))}
      </Table>
      <p className="total">
        Total: <strong>{current.currency ? money(current.total, current.currency) : current.total}</strong>
      </p>
      {current.stale && (
        <p className="problem">
          Some prices could not be checked just now; they are checked again when you order.
        </p>
      )}
      <Link className="button" to="/checkout">
        Checkout
      </Link>
    </>
  );
}
