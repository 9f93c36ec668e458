// Jobs: a live table, newest first, with filters, search and keyset paging.
import { html, useState, useEffect, useRef, useId } from "../html.js";
import { api, serverNow } from "../api.js";
import { useLive, useTicker } from "../live.js";
import {
  StatusBadge, PriorityBadge, JobLink, ErrorNote, Loading, FINAL, STATUSES, useTitle,
} from "../components.js";
import { BANDS } from "../priority.js";
import { age, duration, count, dateTime } from "../format.js";

const UNFINISHED = "queued,waiting,running,canceling";
const SIZES = [25, 50, 100, 200];

function filtersFrom(query) {
  return {
    status: query.get("status") || "",
    priority: query.get("priority") || "",
    q: query.get("q") || "",
    archived: query.get("archived") === "true" ? "true" : "false",
    size: SIZES.includes(Number(query.get("size"))) ? Number(query.get("size")) : 50,
  };
}

function mirrorInUrl(filters) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    const fallback = { archived: "false", size: 50 }[key] ?? "";
    if (value !== "" && String(value) !== String(fallback)) params.set(key, value);
  }
  const text = params.toString();
  history.replaceState(null, "", `#/jobs${text ? "?" + text : ""}`);
}

/** A job's shown priority: the current one, or for a finished job the one its ops ran at. */
function shownPriority(job) {
  if (!FINAL.has(job.status) || !job.op_priorities?.length) return job.priority;
  return Math.min(...job.op_priorities);
}

function Summary({ names }) {
  const shown = names.slice(0, 3).join(" → ");
  const more = names.length > 3 ? ` +${names.length - 3} more` : "";
  return html`<span class="summary" title=${names.join(" → ")}>${shown}<span class="muted">${more}</span></span>`;
}

function JobRow({ job, now, changed }) {
  const started = job.started_at;
  const ended = job.ended_at;
  const running = started && !ended;
  return html`<tr class=${changed ? "changed" : ""} data-job=${job.id}>
    <th scope="row" class="num"><${JobLink} id=${job.id}>${job.id}<//></th>
    <td><${StatusBadge} status=${job.status} /></td>
    <td><${PriorityBadge} priority=${shownPriority(job)} escalations=${job.escalations || 0}
      muted=${FINAL.has(job.status)} /></td>
    <td><${Summary} names=${job.op_names} /></td>
    <td class="num" title=${`received ${dateTime(job.received_at)}`}>${age(now - job.received_at)}</td>
    <td class="num">${started ? html`${duration((ended || now) - started)}${running ? html`<span class="muted"> …</span>` : ""}` : html`<span class="muted">—</span>`}</td>
  </tr>`;
}

export function JobsPage({ query }) {
  useTitle("Jobs");
  const [filters, setFilters] = useState(() => filtersFrom(query));
  const [search, setSearch] = useState(filters.q);
  const [cursors, setCursors] = useState([]); // the `before` of each page above this one
  const cursor = cursors.length ? cursors[cursors.length - 1] : null;
  useTicker(1000);
  const now = serverNow();
  const seen = useRef(new Map());
  const ids = { status: useId(), priority: useId(), search: useId(), archived: useId(), size: useId() };

  useEffect(() => {
    mirrorInUrl(filters);
    setCursors([]);
  }, [filters.status, filters.priority, filters.q, filters.archived, filters.size]);

  useEffect(() => {
    const timer = setTimeout(() => {
      if (search.trim() !== filters.q) setFilters((f) => ({ ...f, q: search.trim() }));
    }, 300);
    return () => clearTimeout(timer);
  }, [search]);

  const byId = /^\d+$/.test(filters.q);
  const [{ data, error, loading }] = useLive(async (signal) => {
    if (byId) {
      try {
        const job = await api(`v1/jobs/${filters.q}`, { signal });
        const names = job.ops.map((op) => op.op);
        return {
          jobs: [{
            ...job,
            op_names: names,
            op_priorities: job.ops.map((op) => op.priority),
            escalations: job.ops.reduce((n, op) => n + op.escalations, 0),
          }],
          next: null,
        };
      } catch (e) {
        if (e.status === 404) return { jobs: [], next: null, missing: true };
        throw e;
      }
    }
    return api("v1/jobs", {
      signal,
      params: {
        order: "desc",
        limit: filters.size,
        before: cursor,
        status: filters.status,
        priority: filters.priority,
        op: filters.q,
        archived: filters.archived,
      },
    });
  }, [filters.status, filters.priority, filters.q, filters.archived, filters.size, cursor]);

  const [{ data: status }] = useLive((signal) => api("v1/status", { signal }), []);

  const jobs = data ? data.jobs : [];
  const changed = new Set();
  for (const job of jobs) {
    const before = seen.current.get(job.id);
    if (before && before !== job.status) changed.add(job.id);
  }
  useEffect(() => {
    for (const job of jobs) seen.current.set(job.id, job.status);
  }, [data]);

  const set = (key) => (e) => setFilters((f) => ({ ...f, [key]: e.currentTarget.value }));
  const totals = status ? status.jobs_by_status : null;
  const unfinished = totals ? totals.queued + totals.waiting + totals.running + totals.canceling : 0;
  const all = totals ? Object.values(totals).reduce((a, b) => a + b, 0) : 0;

  return html`<div class="page">
    <div class="page-head">
      <h1>Jobs</h1>
      ${totals ? html`<p class="page-sub">${[
        `${count(all)} current`,
        `${count(totals.running)} running`,
        `${count(totals.queued)} queued`,
        `${count(totals.waiting)} waiting for locks or jobs`,
        `${count(unfinished)} unfinished`,
      ].join(" · ")}</p>` : ""}
    </div>
    <form class="filters" role="search" aria-label="Filter jobs" onSubmit=${(e) => {
      e.preventDefault();
      setFilters((f) => ({ ...f, q: search.trim() }));
    }}>
      <div class="field grow">
        <label for=${ids.search}>Search</label>
        <input id=${ids.search} type="search" placeholder="job id or op name, e.g. 42 or migrate"
          value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for=${ids.status}>Status</label>
        <select id=${ids.status} value=${filters.status} onChange=${set("status")}>
          <option value="">Any status</option>
          <option value=${UNFINISHED}>Unfinished</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for=${ids.priority}>Priority</label>
        <select id=${ids.priority} value=${filters.priority} onChange=${set("priority")}>
          <option value="">Any priority</option>
          ${BANDS.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for=${ids.archived}>Archive</label>
        <select id=${ids.archived} value=${filters.archived} onChange=${set("archived")}>
          <option value="false">Current jobs</option>
          <option value="true">Archived jobs</option>
        </select>
      </div>
      <div class="field">
        <label for=${ids.size}>Per page</label>
        <select id=${ids.size} value=${String(filters.size)}
          onChange=${(e) => setFilters((f) => ({ ...f, size: Number(e.currentTarget.value) }))}>
          ${SIZES.map((n) => html`<option value=${String(n)}>${n}</option>`)}
        </select>
      </div>
    </form>
    <${ErrorNote} error=${error} />
    <div class="card table-card">
      <table class="jobs">
        <caption class="sr-only">Jobs, newest first${filters.q ? `, matching “${filters.q}”` : ""}; the table updates by itself</caption>
        <colgroup>
          <col class="c-id" /><col class="c-status" /><col class="c-prio" /><col />
          <col class="c-time" /><col class="c-time" />
        </colgroup>
        <thead><tr>
          <th scope="col" class="num">ID</th><th scope="col">Status</th><th scope="col">Priority</th>
          <th scope="col">Ops</th><th scope="col" class="num">Age</th><th scope="col" class="num">Duration</th>
        </tr></thead>
        <tbody>
          ${jobs.map((job) => html`<${JobRow} key=${job.id} job=${job} now=${now} changed=${changed.has(job.id)} />`)}
        </tbody>
      </table>
      ${!data && loading ? html`<${Loading} what="Loading jobs" />` : ""}
      ${data && !jobs.length ? html`<p class="empty">${
        data.missing ? `There is no job ${filters.q}.` : cursors.length ? "No older jobs." : "No jobs match."
      }</p>` : ""}
    </div>
    ${byId ? "" : html`<nav class="pager" aria-label="Pages of jobs">
      <button type="button" disabled=${!cursors.length} onClick=${() => setCursors([])}>Newest</button>
      <button type="button" disabled=${!cursors.length} onClick=${() => setCursors((c) => c.slice(0, -1))}>← Newer</button>
      <span class="muted" aria-live="polite">${jobs.length ? `jobs ${jobs[0].id} to ${jobs[jobs.length - 1].id}` : ""}</span>
      <button type="button" disabled=${!data || !data.next} onClick=${() => setCursors((c) => [...c, data.next])}>Older →</button>
    </nav>`}
  </div>`;
}
