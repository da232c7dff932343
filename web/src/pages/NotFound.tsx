import { Link } from "react-router-dom";

export function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is nothing here. <Link to="/">Back to the catalog</Link>.
      </p>
    </>
  );
}
