// Products for the staff: find one, create one, change its fields or its stock, take it off
// sale (deactivate) or back on.
import { useEffect, useState, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { ok, products, type Product } from "../../api/client";
import { money } from "../../money";
import { Field, Problem, useAction, useTitle } from "../common";
import { Staff } from "./Staff";

export function AdminProducts() {
  useTitle("Back office: products");
  return (
    <Staff title="Products">
      <ProductAdmin />
    </Staff>
  );
}

function fields(form: FormData) {
  const text = (name: string) => String(form.get(name) ?? "").trim();
  return {
    sku: text("sku"),
    name: text("name"),
    description: text("description"),
    category: text("category"),
    price: text("price"),
    currency: text("currency").toUpperCase(),
  };
}

function ProductAdmin() {
  const [params, setParams] = useSearchParams();
  const search = params.get("search") ?? "";
  const [items, setItems] = useState<Product[] | null>(null);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const creating = useAction();
  const [created, setCreated] = useState<string | null>(null);

  useEffect(() => {
    const query = { search: search || undefined, pageSize: 50, sort: "newest" as const, includeInactive: true };
    ok(products.GET("/products", { params: { query } })).then(
      (page) => setItems(page.items),
      setError,
    );
  }, [search, version]);

  function find(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const text = String(new FormData(event.currentTarget).get("search") ?? "").trim();
    setParams(text ? { search: text } : {});
  }

  function create(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const element = event.currentTarget;
    const form = new FormData(element);
    setCreated(null);
    void creating.run(async () => {
      const made = await ok(
        products.POST("/products", {
          body: { ...fields(form), quantity: Number(form.get("quantity")), active: true },
        }),
      );
      setCreated(`${made.name} created.`);
      element.reset();
      setVersion((v) => v + 1);
    });
  }

  return (
    <>
      <details>
        <summary>New product</summary>
        <form className="stacked" onSubmit={create} aria-label="New product">
          <Field label="SKU" name="sku" required maxLength={64} />
          <Field label="Name" name="name" required maxLength={200} />
          <Field label="Description" name="description" maxLength={10000} />
          <Field label="Category" hint="Lower case, e.g. kitchen" name="category" required maxLength={64} />
          <Field label="Price" hint="e.g. 12.50" name="price" required inputMode="decimal" pattern="\d+(\.\d{1,2})?" />
          <Field label="Currency" hint="e.g. EUR" name="currency" required defaultValue="EUR" maxLength={3} />
          <Field label="Stock" name="quantity" type="number" min={0} required defaultValue={0} />
          <Problem error={creating.error} />
          <button type="submit" disabled={creating.busy}>
            Create product
          </button>
        </form>
        {created && <p role="status">{created}</p>}
      </details>
      <form className="filters" role="search" onSubmit={find} key={search}>
        <label>
          Search products
          <input name="search" type="search" defaultValue={search} maxLength={200} />
        </label>
        <button type="submit">Find</button>
      </form>
      <Problem error={error} />
      {items && (
        <ul className="admin-products">
          {items.map((product) => (
            <ProductRow key={product.id} product={product} onChange={() => setVersion((v) => v + 1)} />
          ))}
        </ul>
      )}
    </>
  );
}

function ProductRow({ product, onChange }: { product: Product; onChange: () => void }) {
  const saving = useAction();
  const [saved, setSaved] = useState<string | null>(null);

  function save(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const { name, price } = fields(form);
    const quantity = Number(form.get("quantity"));
    setSaved(null);
    void saving.run(async () => {
      const path = { params: { path: { product_id: product.id } } };
      await ok(products.PATCH("/products/{product_id}", { ...path, body: { name, price } }));
      if (quantity !== product.availableQuantity) {
        await ok(products.PUT("/products/{product_id}/inventory", { ...path, body: { quantity } }));
      }
      setSaved("Saved.");
    });
  }

  function setOnSale(active: boolean) {
    const path = { params: { path: { product_id: product.id } } };
    void saving.run(async () => {
      if (active) await ok(products.PATCH("/products/{product_id}", { ...path, body: { active: true } }));
      else await ok(products.DELETE("/products/{product_id}", path));
      onChange();
    });
  }

  return (
    <li>
      <form className="inline" onSubmit={save} aria-label={`Edit ${product.name}`}>
        <span className="sku">{product.sku}</span>
        <Field label="Name" name="name" defaultValue={product.name} required maxLength={200} />
        <Field
          label={`Price (${product.currency})`}
          name="price"
          defaultValue={product.price}
          required
          inputMode="decimal"
          pattern="\d+(\.\d{1,2})?"
        />
        <Field label="Stock" name="quantity" type="number" min={0} defaultValue={product.availableQuantity} required />
        <button type="submit" disabled={saving.busy}>
          Save
        </button>
        {product.active ? (
          <button type="button" className="danger" disabled={saving.busy} onClick={() => setOnSale(false)}>
            Take off sale
          </button>
        ) : (
          <button type="button" disabled={saving.busy} onClick={() => setOnSale(true)}>
            Put on sale
          </button>
        )}
        {!product.active && <span className="problem">Off sale</span>}
        <span className="hint">now {money(product.price, product.currency)}</span>
      </form>
      <Problem error={saving.error} />
      {saved && <p role="status">{saved}</p>}
    </li>
  );
}
