// The catalog: search, a category, a price range, an order; the query lives in the URL, so a
// search can be bookmarked, shared and reloaded.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ok, products, type Category, type Product } from "../api/client";
import { money } from "../money";
import { Problem, useTitle } from "./common";

const SORTS = [
  ["relevance", "Best match"],
  ["newest", "Newest"],
  ["price", "Price: low to high"],
  ["-price", "Price: high to low"],
  ["name", "Name: A to Z"],
] as const;
type Sort = (typeof SORTS)[number][0];
const PAGE_SIZE = 20;

export function Catalog() {
  useTitle("Catalog");
  const [params, setParams] = useSearchParams();
  const [categories, setCategories] = useState<Category[]>([]);
  const [page, setPage] = useState<{ items: Product[]; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const search = params.get("search") ?? "";
  const category = params.get("category") ?? "";
  const minPrice = params.get("minPrice") ?? "";
  const maxPrice = params.get("maxPrice") ?? "";
  const sort = (params.get("sort") ?? "") as Sort | "";
  const pageNumber = Math.max(1, Number(params.get("page") ?? "1") || 1);

  useEffect(() => {
    ok(products.GET("/products/categories")).then(setCategories, setError);
  }, []);

  useEffect(() => {
    setError(null);
    ok(
      products.GET("/products", {
        params: {
          query: {
            search: search || undefined,
            category: category || undefined,
            minPrice: minPrice || undefined,
            maxPrice: maxPrice || undefined,
            sort: sort || undefined,
            page: pageNumber,
            pageSize: PAGE_SIZE,
          },
        },
      }),
    ).then((answer) => setPage({ items: answer.items, total: answer.total }), setError);
  }, [search, category, minPrice, maxPrice, sort, pageNumber]);

  function apply(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const next = new URLSearchParams();
    for (const key of ["search", "category", "minPrice", "maxPrice", "sort"]) {
      const value = String(form.get(key) ?? "").trim();
      if (value) next.set(key, value);
    }
    setParams(next);
  }

  function goTo(n: number) {
    const next = new URLSearchParams(params);
    next.set("page", String(n));
    setParams(next);
  }

  const pages = page ? Math.max(1, Math.ceil(page.total / PAGE_SIZE)) : 1;
  return (
    <>
      <h1>Catalog</h1>
      <form className="filters" role="search" onSubmit={apply} key={params.toString()}>
        <label>
          Search
          <input name="search" type="search" defaultValue={search} maxLength={200} />
        </label>
        <label>
          Category
          <select name="category" defaultValue={category}>
            <option value="">All categories</option>
            {categories.map((c) => (
              <option key={c.slug} value={c.slug}>
                {c.name} ({c.productCount})
              </option>
            ))}
          </select>
        </label>
        <label>
          Lowest price
          <input name="minPrice" inputMode="decimal" pattern="\d+(\.\d{1,2})?" defaultValue={minPrice} />
        </label>
        <label>
          Highest price
          <input name="maxPrice" inputMode="decimal" pattern="\d+(\.\d{1,2})?" defaultValue={maxPrice} />
        </label>
        <label>
          Order by
          <select name="sort" defaultValue={sort}>
            <option value="">Default</option>
            {SORTS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Show</button>
      </form>
      <Problem error={error} />
      {page === null ? (
        <p aria-busy="true">Loading…</p>
      ) : (
        <>
          <p aria-live="polite">
            {page.total === 0 ? "No products match." : `${page.total} products`}
          </p>
          <ul className="products">
            {page.items.map((p) => (
              <li key={p.id}>
                <Link to={`/products/${p.id}`}>
                  <span className="name">{p.name}</span>
                </Link>
                <span className="price">{money(p.price, p.currency)}</span>
                <span className={p.availableQuantity > 0 ? "stock" : "stock out"}>
                  {p.availableQuantity > 0 ? `${p.availableQuantity} in stock` : "Sold out"}
                </span>
              </li>
            ))}
          </ul>
          {pages > 1 && (
            <nav aria-label="Pages" className="pager">
              <button type="button" disabled={pageNumber <= 1} onClick={() => goTo(pageNumber - 1)}>
                Previous
              </button>
              <span>
                Page {pageNumber} of {pages}
              </span>
              <button type="button" disabled={pageNumber >= pages} onClick={() => goTo(pageNumber + 1)}>
                Next
              </button>
            </nav>
          )}
        </>
      )}
    </>
  );
}
