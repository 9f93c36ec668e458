// Talking to the /v1 API: the token, errors, and the change feed.
//
// The token lives in sessionStorage: it is asked for once per browser tab
// session and forgotten when the tab closes (or on "Sign out"). Without a
// tokens file the daemon serves loopback clients with no token at all.

const TOKEN_KEY = "jobplane.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An error answer of the API: its HTTP status, stable code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let skewMs = 0; // the server's clock minus ours, from each answer's Date header

/** The server's wall clock now, in seconds (job timestamps come from it). */
export function serverNow() {
  return (Date.now() + skewMs) / 1000;
}

/** Call the API; resolves to the JSON answer or throws ApiError. */
export async function api(path, { method = "GET", params, body, signal } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const secret = token.get();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, headers, signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", "the daemon does not answer; is it running?");
  }
  const date = Date.parse(response.headers.get("date") || "");
  if (!Number.isNaN(date)) skewMs = date - Date.now();
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.error;
    const error = new ApiError(
      response.status,
      detail ? detail.code : "http_error",
      detail ? detail.message : `${response.status} ${response.statusText}`,
    );
    if (response.status === 401) window.dispatchEvent(new CustomEvent("jobplane:unauthorized"));
    throw error;
  }
  return data;
}

// -- the change feed --------------------------------------------------------
//
// One long poll of GET /v1/changes per tab, shared by every part of the page
// that shows live data: the daemon answers when any job changed (or after
// the timeout), and each subscriber reloads what it shows. After a change the
// next poll waits CALM_MS, so a burst of changes costs one reload, not many.

const POLL_TIMEOUT_S = 5;
const CALM_MS = 250;
const listeners = new Set();
let polling = false;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Call ``listener()`` after each change of any job; returns the unsubscribe function. */
export function onChange(listener) {
  listeners.add(listener);
  if (!polling) poll();
  return () => listeners.delete(listener);
}

async function poll() {
  polling = true;
  let serial = null;
  let backoff = 1000;
  try {
    while (listeners.size) {
      try {
        const params = serial === null ? {} : { since: serial, timeout: POLL_TIMEOUT_S };
        const answer = await api("v1/changes", { params });
        const changed = serial !== null && answer.serial !== serial;
        serial = answer.serial;
        backoff = 1000;
        if (changed) {
          for (const listener of [...listeners]) listener();
          await pause(CALM_MS);
        }
      } catch (error) {
        if (error.status === 401 || error.status === 403) return;
        await pause(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  } finally {
    polling = false;
  }
}
