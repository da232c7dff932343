import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { cart, ok, products, type Product } from "../api/client";
import { useAuth } from "../auth";
import { money } from "../money";
import { Problem, useAction, useTitle } from "./common";

export function ProductPage() {
  const { productId = "" } = useParams();
  const { account } = useAuth();
  const navigate = useNavigate();
  const [product, setProduct] = useState<Product | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [added, setAdded] = useState<string | null>(null);
  const adding = useAction();
  useTitle(product?.name ?? "Product");

  useEffect(() => {
    ok(products.GET("/products/{product_id}", { params: { path: { product_id: productId } } })).then(
      setProduct,
      setError,
    );
  }, [productId]);

  function add(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!account) {
      navigate(`/login?next=${encodeURIComponent(`/products/${productId}`)}`);
      return;
    }
    const quantity = Number(new FormData(event.currentTarget).get("quantity"));
    setAdded(null);
    void adding.run(async () => {
      await ok(cart.POST("/cart/items", { body: { productId, quantity } }));
      setAdded(`${quantity} × ${product?.name} added to your cart.`);
    });
  }

  if (!product) return error ? <Problem error={error} /> : <p aria-busy="true">Loading…</p>;
  const inStock = product.availableQuantity > 0;
  return (
    <article className="product">
      <h1>{product.name}</h1>
      <p className="price">{money(product.price, product.currency)}</p>
      <p className={inStock ? "stock" : "stock out"}>
        {inStock ? `${product.availableQuantity} in stock` : "Sold out"}
      </p>
      {product.description && <p>{product.description}</p>}
      {inStock && (
        <form onSubmit={add} className="add">
          <label>
            Quantity
            <input
              name="quantity"
              type="number"
              min={1}
              max={Math.min(99, product.availableQuantity)}
              defaultValue={1}
              required
            />
          </label>
          <button type="submit" disabled={adding.busy}>
            Add to cart
          </button>
        </form>
      )}
      <Problem error={adding.error} />
      {added && (
        <p role="status">
          {added} <Link to="/cart">View your cart</Link>
        </p>
      )}
    </article>
  );
}
