import type { FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { ok, users } from "../api/client";
import { useAuth } from "../auth";
import { Field, Problem, useAction, useTitle } from "./common";

/** Where to go after logging in: a path of this site only (never another host). */
function nextPath(params: URLSearchParams): string {
  const next = params.get("next") ?? "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function Login() {
  useTitle("Log in");
  const { login } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { busy, error, run } = useAction();

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    void run(async () => {
      await login(String(form.get("email")), String(form.get("password")));
      navigate(nextPath(params));
    });
  }

  return (
    <>
      <h1>Log in</h1>
      <form className="stacked" onSubmit={submit}>
        <Field label="E-mail" name="email" type="email" autoComplete="email" required />
        <Field label="Password" name="password" type="password" autoComplete="current-password" required />
        <Problem error={error} />
        <button type="submit" disabled={busy}>
          Log in
        </button>
      </form>
      <p>
        <Link to="/forgot-password">Forgot your password?</Link>
      </p>
      <p>
        New here? <Link to={`/register?${params.toString()}`}>Create an account</Link>.
      </p>
    </>
  );
}

export function Register() {
  useTitle("Create an account");
  const { login } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { busy, error, run } = useAction();

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    const phone = String(form.get("phone") ?? "").trim();
    void run(async () => {
      await ok(
        users.POST("/users/register", {
          body: { email, password, fullName: String(form.get("fullName")), phone: phone || null },
        }),
      );
      await login(email, password);
      navigate(nextPath(params));
    });
  }

  return (
    <>
      <h1>Create an account</h1>
      <form className="stacked" onSubmit={submit}>
        <Field label="Full name" name="fullName" autoComplete="name" required maxLength={200} />
        <p className="hint">We send a link to your e-mail address to check it is yours.</p>
        <Field label="E-mail" name="email" type="email" autoComplete="email" required />
        <Field
          label="Password"
          hint="At least 8 characters"
          name="password"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
        />
        <Field
          label="Mobile phone"
          hint="Optional, for shipping texts, e.g. +4915112345678"
          name="phone"
          type="tel"
          autoComplete="tel"
        />
        <Problem error={error} />
        <button type="submit" disabled={busy}>
          Create account
        </button>
      </form>
    </>
  );
}
