// One job: its ops, live log, why it waits, dependencies and (with a write token) actions.
import { html, useState, useEffect, useRef, useContext } from "../html.js";
import { api, serverNow } from "../api.js";
import { useLive, useTicker } from "../live.js";
import {
  Who, StatusBadge, PriorityBadge, JobLink, ErrorNote, Loading, Time, Card, PrioritySelect,
  FINAL, useTitle,
} from "../components.js";
import { duration, clockMs, json } from "../format.js";

const WAIT_TIMEOUT_S = 5;

/**
 * The job, kept current by the long poll GET /v1/jobs/{id}/wait: it answers
 * as soon as the job has a new log line or another status, with the whole
 * job. Stops once the job is final (it never changes again).
 */
function useWatchedJob(id) {
  const [state, setState] = useState({ job: null, error: null });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let alive = true;
    const controller = new AbortController();
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    (async () => {
      let job;
      try {
        job = await api(`v1/jobs/${id}`, { signal: controller.signal });
      } catch (error) {
        if (alive && error.name !== "AbortError") setState({ job: null, error });
        return;
      }
      if (!alive) return;
      setState({ job, error: null });
      let backoff = 1000;
      while (alive && !FINAL.has(job.status)) {
        const serial = lastSerial(job);
        try {
          const answer = await api(`v1/jobs/${id}/wait`, {
            signal: controller.signal,
            params: { since_serial: serial, status: job.status, timeout: WAIT_TIMEOUT_S },
          });
          backoff = 1000;
          if (answer.changed && alive) {
            job = answer.job;
            setState({ job, error: null });
          }
        } catch (error) {
          if (!alive || error.name === "AbortError") return;
          setState((old) => ({ ...old, error }));
          await pause(backoff);
          backoff = Math.min(backoff * 2, 10000);
        }
      }
    })();
    return () => {
      alive = false;
      controller.abort();
    };
  }, [id, generation]);
  return [state, () => setGeneration((g) => g + 1)];
}

function lastSerial(job) {
  let serial = 0;
  for (const op of job.ops) for (const line of op.log) serial = Math.max(serial, line.serial);
  return serial;
}

function Actions({ job, reload }) {
  const who = useContext(Who);
  const [priority, setPriority] = useState(job.priority);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setPriority(job.priority), [job.priority]);
  if (who.role !== "write") return null;
  const final = FINAL.has(job.status);

  async function act(what, call) {
    setBusy(true);
    setError(null);
    setMessage(null);
    try {
      const answer = await call();
      setMessage(answer && answer.message ? answer.message : `${what}: done`);
      reload();
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  }

  return html`<div class="actions" role="group" aria-label="Actions">
    ${!final ? html`
      <button type="button" class="danger" disabled=${busy || job.status === "canceling"}
        onClick=${() => act("cancel", () => api(`v1/jobs/${job.id}/cancel`, { method: "POST" }))}>Cancel job</button>
      <form class="inline-form" onSubmit=${(e) => {
        e.preventDefault();
        act("priority", () => api(`v1/jobs/${job.id}/priority`, { method: "PUT", body: { priority } }));
      }}>
        <label for="new-priority">Priority</label>
        <${PrioritySelect} id="new-priority" value=${priority} onChange=${setPriority} disabled=${busy} />
        <button type="submit" disabled=${busy}>Change priority</button>
      </form>` : ""}
    ${final && !job.archived ? html`
      <button type="button" disabled=${busy}
        onClick=${() => act("archive", () => api(`v1/jobs/${job.id}/archive`, { method: "POST" }))}>Archive</button>` : ""}
    <span class="action-result" role="status">${message || ""}</span>
    <${ErrorNote} error=${error} />
  </div>`;
}

function Explain({ job }) {
  const [{ data, error }] = useLive(
    (signal) => api(`v1/jobs/${job.id}/explain`, { signal }),
    [job.id, job.status, job.priority, lastSerial(job)],
    { live: false },
  );
  return html`<${Card} title="Why it is not running" id="explain-title" className="explain">
    <${ErrorNote} error=${error} />
    ${data ? html`<ul class="reasons">${data.reasons.map((r) => html`<li>${r}</li>`)}</ul>` : html`<${Loading} />`}
  <//>`;
}

function Ops({ job, now }) {
  return html`<${Card} title="Ops" id="ops-title">
    <table class="ops">
      <thead><tr>
        <th scope="col" class="num">#</th><th scope="col">Op</th><th scope="col">Status</th>
        <th scope="col">Priority</th><th scope="col">Started</th><th scope="col">Ended</th>
        <th scope="col" class="num">Duration</th>
      </tr></thead>
      <tbody>
        ${job.ops.map((op, index) => html`
          <tr>
            <td class="num">${index}</td>
            <th scope="row"><code>${op.op}</code></th>
            <td><${StatusBadge} status=${op.status} /></td>
            <td><${PriorityBadge} priority=${op.priority} escalations=${op.escalations} /></td>
            <td><${Time} at=${op.started_at} /></td>
            <td><${Time} at=${op.ended_at} /></td>
            <td class="num">${op.started_at ? duration((op.ended_at || now) - op.started_at) : html`<span class="muted">—</span>`}</td>
          </tr>
          <tr class="op-detail">
            <td></td>
            <td colspan="6">
              <details open=${job.ops.length === 1}>
                <summary>Parameters${op.result !== null ? " and result" : ""}</summary>
                <div class="kv">
                  <div>${op.result !== null ? html`<h3>Parameters</h3>` : ""}<pre>${json(op.params)}</pre></div>
                  ${op.result !== null ? html`<div><h3>Result</h3><pre class=${op.status === "error" ? "result-error" : ""}>${
                    typeof op.result === "string" ? op.result : json(op.result)}</pre></div>` : ""}
                </div>
              </details>
            </td>
          </tr>`)}
      </tbody>
    </table>
  <//>`;
}

function Log({ job }) {
  const lines = [];
  job.ops.forEach((op, index) => op.log.forEach((line) => lines.push({ ...line, index, op: op.op })));
  lines.sort((a, b) => a.serial - b.serial);
  const box = useRef(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  const final = FINAL.has(job.status);
  return html`<${Card} title="Log" id="log-title"
      actions=${final ? html`<span class="muted">finished</span>` : html`<span class="live-dot">live</span>`}>
    <ol class="log" role="log" aria-labelledby="log-title" ref=${box}
      onScroll=${(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
      }}>
      ${lines.map((line) => html`<li key=${line.serial}>
        <time>${clockMs(line.time)}</time><span class="log-op" title=${line.op}>op ${line.index}</span><span class="log-msg">${line.message}</span>
      </li>`)}
      ${!lines.length ? html`<li class="muted log-empty">No log lines yet.</li>` : ""}
    </ol>
  <//>`;
}

function Dependencies({ job }) {
  const [{ data }] = useLive(async (signal) => {
    const deps = job.depends.slice(0, 20);
    return Promise.all(deps.map(async (d) => {
      try {
        const other = await api(`v1/jobs/${d.job}`, { signal });
        return { ...d, status: other.status };
      } catch (e) {
        return { ...d, status: e.status === 404 ? "unknown" : "?" };
      }
    }));
  }, [job.id, job.status]);
  if (!job.depends.length) return null;
  return html`<${Card} title="Depends on" id="deps-title">
    <ul class="deps">
      ${(data || job.depends).map((d) => html`<li>
        <${JobLink} id=${d.job} /> ${d.status ? html`<${StatusBadge} status=${d.status} />` : ""}
        <span class="muted">must end in ${d.statuses.length ? d.statuses.join(" or ") : "any final status"}</span>
      </li>`)}
    </ul>
  <//>`;
}

export function JobPage({ id }) {
  useTitle(`Job ${id}`);
  const [{ job, error }, reload] = useWatchedJob(id);
  useTicker(1000);
  const now = serverNow();
  if (!job) {
    return html`<div class="page">
      <p class="crumbs"><a href="#/jobs">Jobs</a> › job ${id}</p>
      ${error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} what="Loading the job" />`}
    </div>`;
  }
  const waiting = job.status === "queued" || job.status === "waiting";
  const escalations = job.ops.reduce((n, op) => n + op.escalations, 0);
  return html`<div class="page">
    <p class="crumbs"><a href="#/jobs">Jobs</a> › job ${job.id}</p>
    <div class="page-head job-head">
      <h1>Job ${job.id}</h1>
      <${StatusBadge} status=${job.status} />
      <${PriorityBadge} priority=${job.priority} escalations=${escalations} muted=${FINAL.has(job.status)} />
      ${job.archived ? html`<span class="pill">archived</span>` : ""}
    </div>
    <dl class="facts">
      <div><dt>Received</dt><dd><${Time} at=${job.received_at} withDate /></dd></div>
      <div><dt>Started</dt><dd><${Time} at=${job.started_at} /></dd></div>
      <div><dt>Ended</dt><dd><${Time} at=${job.ended_at} /></dd></div>
      <div><dt>Duration</dt><dd>${job.started_at ? duration((job.ended_at || now) - job.started_at) : "—"}</dd></div>
      <div><dt>Waited</dt><dd>${duration((job.started_at || now) - job.received_at)}</dd></div>
    </dl>
    <${Actions} job=${job} reload=${reload} />
    <${ErrorNote} error=${error} />
    ${waiting ? html`<${Explain} job=${job} />` : ""}
    <div class="grid-2">
      <${Ops} job=${job} now=${now} />
      <div class="stack">
        <${Dependencies} job=${job} />
        <${Log} job=${job} />
      </div>
    </div>
  </div>`;
}
