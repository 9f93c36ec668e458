// Sign in: the token is asked for once and kept for this tab's session.
import { html, useState, useEffect, useRef } from "../html.js";
import { api, token } from "../api.js";
import { useTitle } from "../components.js";

export function Login({ onSignedIn }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useTitle("Sign in");
  useEffect(() => input.current?.focus(), []);

  async function submit(event) {
    event.preventDefault();
    const secret = value.trim();
    if (!secret) {
      setError("Enter a token.");
      return;
    }
    setBusy(true);
    setError(null);
    token.set(secret);
    try {
      await api("v1/whoami");
      onSignedIn();
    } catch (e) {
      token.clear();
      setError(e.status === 401 ? "This token is not known to the daemon." : e.message);
      setBusy(false);
    }
  }

  return html`<main class="center">
    <form class="card login" onSubmit=${submit} aria-labelledby="login-title" novalidate>
      <h1 id="login-title"><img src="static/favicon.svg" alt="" width="28" height="28" /> jobplane</h1>
      <p>${"This daemon needs a token. A "}<em>read</em>${" token shows everything; a "}<em>write</em>${
        " token can also cancel, re-prioritise, archive, drain and submit."}</p>
      <label for="token">API token</label>
      <input id="token" ref=${input} type="password" autocomplete="off" spellcheck="false"
        value=${value} onInput=${(e) => setValue(e.currentTarget.value)}
        aria-invalid=${error ? "true" : undefined} aria-describedby=${error ? "token-error" : "token-hint"} />
      <p id="token-hint" class="hint">Kept in this tab's session storage until you close the tab or sign out.</p>
      ${error ? html`<p id="token-error" class="note note-error" role="alert">${error}</p>` : ""}
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Checking…" : "Sign in"}</button>
    </form>
  </main>`;
}
