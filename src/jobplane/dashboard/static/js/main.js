// The dashboard's shell: who is signed in, the header, and which page shows.
import { html, render, useState, useEffect, useContext } from "./html.js";
import { api, token } from "./api.js";
import { useLive } from "./live.js";
import { Who } from "./components.js";
import { Login } from "./pages/login.js";
import { JobsPage } from "./pages/jobs.js";
import { JobPage } from "./pages/job.js";
import { LocksPage } from "./pages/locks.js";
import { WorkersPage } from "./pages/workers.js";
import { TimelinePage } from "./pages/timeline.js";
import { SubmitPage } from "./pages/submit.js";

const PAGES = [
  ["jobs", "Jobs"],
  ["locks", "Locks"],
  ["workers", "Workers"],
  ["timeline", "Timeline"],
  ["submit", "Submit", "write"],
];

/** The page named by the URL fragment: #/jobs, #/jobs/42, #/locks?all=1 ... */
function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean);
  return { page: parts[0] || "jobs", id: parts[1], query: new URLSearchParams(query) };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute);
  useEffect(() => {
    const changed = () => {
      setRoute(parseRoute());
      document.getElementById("main")?.focus({ preventScroll: true });
    };
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function DrainSwitch({ drained, reload }) {
  const who = useContext(Who);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (who.role !== "write") {
    return drained ? html`<span class="pill pill-warn" title="submissions are refused">drained</span>` : null;
  }
  async function toggle() {
    setBusy(true);
    setError(null);
    try {
      await api("v1/drain", { method: "PUT", body: { drained: !drained } });
      reload();
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  }
  return html`<button type="button" class=${"switch" + (drained ? " switch-on" : "")}
      role="switch" aria-checked=${drained ? "true" : "false"} disabled=${busy} onClick=${toggle}
      title=${error ? error.message : drained ? "Submissions are refused; click to accept them again" : "Refuse new submissions"}>
    <span class="switch-track" aria-hidden="true"><span class="switch-thumb"></span></span>
    Drain${error ? html` <span class="err-mark" aria-label=${error.message}>!</span>` : ""}
  </button>`;
}

function Header({ route, onSignOut }) {
  const who = useContext(Who);
  // Drained or not, and the version: read now, after a toggle, and every 10 s (not on
  // every job change: /v1/status also counts the pool's queue).
  const [{ data: status }, reload] = useLive(
    (signal) => api("v1/status", { signal }), [], { live: false, every: 10000 },
  );
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("main").focus(); }}>Skip to content</a>
    <a class="brand" href="#/jobs" aria-label="jobplane, jobs">
      <img src="static/favicon.svg" alt="" width="24" height="24" /> jobplane
    </a>
    <nav aria-label="Main">
      <ul>
        ${PAGES.filter(([, , role]) => !role || role === who.role).map(([page, title]) => html`
          <li><a href=${`#/${page}`} aria-current=${route.page === page ? "page" : undefined}>${title}</a></li>`)}
      </ul>
    </nav>
    <div class="top-right">
      ${status ? html`<span class="version" title="daemon version">v${status.version}</span>` : ""}
      ${status ? html`<${DrainSwitch} drained=${status.drained} reload=${reload} />` : ""}
      <span class=${"pill role-" + who.role} title=${who.auth === "loopback" ? "no tokens file: loopback clients may do everything" : `signed in with a ${who.role} token`}>
        ${who.role === "write" ? "read & write" : "read only"}
      </span>
      ${who.auth === "token" ? html`<button type="button" class="link-button" onClick=${onSignOut}>Sign out</button>` : ""}
    </div>
  </header>`;
}

function Page({ route }) {
  const who = useContext(Who);
  switch (route.page) {
    case "jobs":
      return route.id ? html`<${JobPage} id=${route.id} />` : html`<${JobsPage} query=${route.query} />`;
    case "locks":
      return html`<${LocksPage} query=${route.query} />`;
    case "workers":
      return html`<${WorkersPage} />`;
    case "timeline":
      return html`<${TimelinePage} query=${route.query} />`;
    case "submit":
      return who.role === "write"
        ? html`<${SubmitPage} query=${route.query} />`
        : html`<p class="note">Submitting jobs needs a write token.</p>`;
    default:
      return html`<p class="note">No page “${route.page}”. <a href="#/jobs">Go to the jobs</a>.</p>`;
  }
}

function App() {
  const route = useRoute();
  const [who, setWho] = useState(null);
  const [problem, setProblem] = useState(null);
  const [needToken, setNeedToken] = useState(false);

  async function identify() {
    try {
      setWho(await api("v1/whoami"));
      setNeedToken(false);
      setProblem(null);
    } catch (error) {
      if (error.status === 401) {
        setNeedToken(true);
      } else {
        setProblem(error);
      }
    }
  }

  useEffect(() => {
    identify();
    const unauthorized = () => {
      setWho(null);
      setNeedToken(true);
    };
    window.addEventListener("jobplane:unauthorized", unauthorized);
    return () => window.removeEventListener("jobplane:unauthorized", unauthorized);
  }, []);

  if (needToken) {
    return html`<${Login} onSignedIn=${identify} />`;
  }
  if (problem) {
    return html`<main class="center"><div class="card login">
      <h1>jobplane</h1>
      <p class="note note-error" role="alert">${problem.message}</p>
      <button type="button" onClick=${identify}>Try again</button>
    </div></main>`;
  }
  if (!who) return html`<p class="boot" role="status">Connecting…</p>`;
  const signOut = () => {
    token.clear();
    setWho(null);
    setNeedToken(true);
  };
  return html`<${Who.Provider} value=${who}>
    <${Header} route=${route} onSignOut=${signOut} />
    <main id="main" tabindex="-1"><${Page} route=${route} /></main>
  <//>`;
}

render(html`<${App} />`, document.getElementById("app"));
