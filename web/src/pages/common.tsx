// Small pieces every page uses: an error message, a sign-in gate, the page title.
import { useCallback, useEffect, useId, useState, type InputHTMLAttributes, type ReactNode } from "react";
import { Link, useLocation } from "react-router-dom";
import { ApiError } from "../api/client";
import { useAuth } from "../auth";

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Shop`;
  }, [title]);
}

export function Problem({ error }: { error: unknown }) {
  if (!error) return null;
  const message =
    typeof error === "string"
      ? error
      : error instanceof ApiError
        ? error.message
        : "Something went wrong. Please try again.";
  return (
    <p role="alert" className="problem">
      {message}
    </p>
  );
}

/** The children for a logged-in customer; a link to log in (and come back) for anyone else. */
export function SignedIn({ children }: { children: ReactNode }) {
  const { account, ready } = useAuth();
  const location = useLocation();
  if (!ready) return <p aria-busy="true">Loading…</p>;
  if (!account) {
    return (
      <p>
        Please <Link to={`/login?next=${encodeURIComponent(location.pathname)}`}>log in</Link>{" "}
        first.
      </p>
    );
  }
  return <>{children}</>;
}

/** A labelled input; a hint is read after the label as its description, not part of its name. */
export function Field({
  label,
  hint,
  ...input
}: { label: string; hint?: string } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {hint && (
        <span id={`${id}-hint`} className="hint">
          {hint}
        </span>
      )}
      <input id={id} aria-describedby={hint ? `${id}-hint` : undefined} {...input} />
    </div>
  );
}

/** A form's action: busy while it runs, its error shown until the next try. */
export function useAction(): {
  busy: boolean;
  error: unknown;
  run: (action: () => Promise<void>) => Promise<void>;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run };
}

/** A table with a caption (hidden from sight with ``hideCaption``) and column headings. */
export function Table({
  caption,
  columns,
  hideCaption = false,
  children,
}: {
  caption: string;
  columns: string[];
  hideCaption?: boolean;
  children: ReactNode;
}) {
  return (
    <table className="lines">
      <caption className={hideCaption ? "visually-hidden" : undefined}>{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th scope="col" key={column}>
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
