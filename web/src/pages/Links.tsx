// The pages the shop's e-mails link to, and asking for those e-mails: verify the address
// (/verify-email#token=…), a forgotten password (/forgot-password), a new one
// (/reset-password#token=…). The token comes after "#": the browser never sends it to a server,
// so no access log holds it; the page posts it in a request body.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useLocation } from "react-router-dom";
import { ok, users } from "../api/client";
import { useAuth } from "../auth";
import { Field, Problem, useAction, useTitle } from "./common";

/** The link's token, from the page address's fragment (#token=…). */
function useLinkToken(): string {
  const { hash } = useLocation();
  return new URLSearchParams(hash.replace(/^#/, "")).get("token") ?? "";
}

export function VerifyEmail() {
  useTitle("Verify your e-mail address");
  const token = useLinkToken();
  const { refresh } = useAuth();
  const [done, setDone] = useState(false);
  const { busy, error, run } = useAction();

  useEffect(() => {
    if (!token) return;
    void run(async () => {
      await ok(users.POST("/users/verify", { body: { token } }));
      setDone(true);
      await refresh();
    });
  }, [token, run, refresh]);

  return (
    <>
      <h1>Verify your e-mail address</h1>
      {!token && <Problem error="This page opens from the link in the e-mail we sent you." />}
      {busy && <p aria-busy="true">Checking the link…</p>}
      <Problem error={error} />
      {done && (
        <p role="status">
          Thank you: your e-mail address is verified. <Link to="/">Go to the shop</Link>.
        </p>
      )}
    </>
  );
}

export function ForgotPassword() {
  useTitle("Forgot your password?");
  const [sent, setSent] = useState(false);
  const { busy, error, run } = useAction();

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const email = String(new FormData(event.currentTarget).get("email"));
    void run(async () => {
      await ok(users.POST("/users/password-reset", { body: { email } }));
      setSent(true);
    });
  }

  return (
    <>
      <h1>Forgot your password?</h1>
      {sent ? (
        <p role="status">
          If an account has this address, we sent it a link to set a new password. It works
          once, within 30 minutes.
        </p>
      ) : (
        <form className="stacked" onSubmit={submit}>
          <Field label="E-mail" name="email" type="email" autoComplete="email" required />
          <Problem error={error} />
          <button type="submit" disabled={busy}>
            Send me a link
          </button>
        </form>
      )}
    </>
  );
}

export function ResetPassword() {
  useTitle("Set a new password");
  const token = useLinkToken();
  const { logout } = useAuth();
  const [done, setDone] = useState(false);
  const { busy, error, run } = useAction();
  const [mismatch, setMismatch] = useState(false);

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const newPassword = String(form.get("password"));
    setMismatch(newPassword !== String(form.get("again")));
    if (newPassword !== String(form.get("again"))) return;
    void run(async () => {
      await ok(users.POST("/users/password-reset/confirm", { body: { token, newPassword } }));
      logout(); // every token was revoked, this browser's too
      setDone(true);
    });
  }

  if (!token) {
    return (
      <>
        <h1>Set a new password</h1>
        <Problem error="This page opens from the link in the e-mail we sent you." />
        <p>
          <Link to="/forgot-password">Ask for a new link</Link>.
        </p>
      </>
    );
  }
  return (
    <>
      <h1>Set a new password</h1>
      {done ? (
        <p role="status">
          Your password is set; you are logged out everywhere. <Link to="/login">Log in</Link>{" "}
          with the new one.
        </p>
      ) : (
        <form className="stacked" onSubmit={submit}>
          <Field
            label="New password"
            hint="At least 8 characters"
            name="password"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
          />
          <Field
            label="The new password again"
            name="again"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
          />
          <Problem error={mismatch ? "The two passwords differ." : error} />
          <button type="submit" disabled={busy}>
            Set the password
          </button>
          {error !== null && (
            <p>
              <Link to="/forgot-password">Ask for a new link</Link>.
            </p>
          )}
        </form>
      )}
    </>
  );
}

/** For a logged-in customer whose address is not verified yet: say so, and send the link again. */
export function UnverifiedNotice() {
  const { account } = useAuth();
  const [sent, setSent] = useState(false);
  const { busy, error, run } = useAction();
  if (!account || account.emailVerified) return null;
  return (
    <aside className="notice" aria-label="E-mail address">
      <p>
        Your e-mail address is not verified yet: open the link we sent to {account.email}.{" "}
        {sent ? (
          <span role="status">We sent it again.</span>
        ) : (
          <button
            type="button"
            className="link"
            disabled={busy}
            onClick={() =>
              void run(async () => {
                await ok(users.POST("/users/verify/resend"));
                setSent(true);
              })
            }
          >
            Send the link again
          </button>
        )}
      </p>
      <Problem error={error} />
    </aside>
  );
}
