"use client";

import { useRouter } from "next/navigation";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { session } from "@/api/client";
import { useSignedIn } from "@/lib/useSignedIn";
import { useT } from "@/lib/useT";

export default function LoginPage() {
  const t = useT();
  const router = useRouter();
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [pending, setPending] = useState(false);
  // `busy` disables the button only once React re-renders: Enter pressed twice in one frame
  // submitted twice, two logins (two sessions, and with a second factor two confirmations)
  const sending = useRef(false);
  // already signed in (a bookmark, the back button, a second tab): home, not a second sign-in
  const signedIn = useSignedIn();
  useEffect(() => {
    if (signedIn) router.replace("/");
  }, [signedIn, router]);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (sending.current) return;
    sending.current = true;
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError("");
    let asked = false;
    try {
      const response = await session.login(
        String(form.get("email")),
        String(form.get("password")),
        () => {
          asked = true;
          setPending(true);
        },
      );
      if (response.status === 200) {
        router.replace("/");
        return;
      }
      const problem = (await response.json().catch(() => ({}))) as { detail?: string };
      if (asked) setError(response.status === 202 ? t("signin.expired") : t("signin.refused"));
      else setError(response.status === 401 ? t("signin.failed") : (problem.detail ?? t("error.generic")));
    } catch {
      setError(t("error.generic"));
    } finally {
      sending.current = false;
      setBusy(false);
      setPending(false);
    }
  }

  // null while prerendering: the static HTML cannot know whether this browser is signed in,
  // and a form in it flashed for a signed-in user until hydration sent them home
  if (signedIn !== false) return <main className="signin" aria-busy="true" />;
  return (
    <main className="signin">
      <form onSubmit={submit} className="card stack" aria-labelledby="signin-title">
        <h1 id="signin-title">{t("signin.title")}</h1>
        <label className="field">
          <span>{t("signin.email")}</span>
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label className="field">
          <span>{t("signin.password")}</span>
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        {pending && (
          <p className="muted" role="status">
            {t("signin.confirm")}
          </p>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {t("signin.submit")}
        </button>
      </form>
    </main>
  );
}
