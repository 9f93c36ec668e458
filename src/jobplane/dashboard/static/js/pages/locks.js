// Locks: holders and waiters of every lock in use, and who blocks whom.
import { html, useId } from "../html.js";
import { api } from "../api.js";
import { useLive } from "../live.js";
import { PriorityBadge, JobLink, ErrorNote, Loading, Time, Card, StatusBadge, useTitle } from "../components.js";
import { colours, label } from "../priority.js";

const REFRESH_MS = 3000; // lock hand-overs show as job changes; this catches the rest

/** Edges "waiter waits for holder" from the lock list, one per (waiter, holder), with lock names. */
function blockingEdges(locks) {
  const edges = new Map();
  for (const lock of locks) {
    for (const waiter of lock.pending) {
      if (waiter.job === null) continue;
      for (const holder of lock.owners) {
        if (holder === waiter.job) continue;
        const key = `${waiter.job}>${holder}`;
        if (!edges.has(key)) edges.set(key, { from: waiter.job, to: holder, locks: [], priority: waiter.priority });
        edges.get(key).locks.push(`${lock.level}:${lock.name}`);
      }
    }
  }
  return [...edges.values()];
}

/**
 * Lay the graph out in columns: holders that wait for nobody at the left,
 * each waiter one column right of the furthest job it waits for. Within a
 * column, jobs are ordered by where the jobs they wait for are (fewer
 * crossings), and a holder is centred on the jobs waiting for it.
 */
function layout(edges) {
  const nodes = new Set();
  const out = new Map();
  const into = new Map();
  for (const e of edges) {
    nodes.add(e.from);
    nodes.add(e.to);
    (out.get(e.from) || out.set(e.from, []).get(e.from)).push(e.to);
    (into.get(e.to) || into.set(e.to, []).get(e.to)).push(e.from);
  }
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (n) => {
    if (depth.has(n)) return depth.get(n);
    if (visiting.has(n)) return 0; // a cycle cannot happen with ordered locking; do not loop
    visiting.add(n);
    const d = Math.max(-1, ...(out.get(n) || []).map(depthOf)) + 1;
    visiting.delete(n);
    depth.set(n, d);
    return d;
  };
  nodes.forEach(depthOf);
  const columns = [];
  for (const n of [...nodes].sort((a, b) => a - b)) (columns[depth.get(n)] ||= []).push(n);
  const row = new Map();
  columns.forEach((column, ci) => {
    if (ci > 0) {
      const mean = (n) => {
        const targets = out.get(n) || [];
        return targets.reduce((sum, t) => sum + row.get(t), 0) / Math.max(1, targets.length);
      };
      column.sort((a, b) => mean(a) - mean(b) || a - b);
    }
    column.forEach((n, i) => row.set(n, i));
  });
  // y: the tallest column is stacked; others sit by their neighbours, without overlap
  const step = NODE_H + ROW_GAP;
  const y = new Map();
  const tallest = columns.reduce((best, c, i) => (c.length > columns[best].length ? i : best), 0);
  columns[tallest].forEach((n, i) => y.set(n, i * step));
  const place = (ci, neighbours) => {
    let floor = -Infinity;
    for (const n of columns[ci]) {
      const near = (neighbours.get(n) || []).filter((m) => y.has(m));
      const wanted = near.length ? near.reduce((sum, m) => sum + y.get(m), 0) / near.length : floor + step;
      const at = Math.max(wanted, floor + step, 0);
      y.set(n, at);
      floor = at;
    }
  };
  for (let ci = tallest - 1; ci >= 0; ci--) place(ci, into);
  for (let ci = tallest + 1; ci < columns.length; ci++) place(ci, out);
  return { columns, y };
}

const NODE_W = 176;
const NODE_H = 44;
const COL_GAP = 110;
const ROW_GAP = 10;
const LABELLED = 8; // edges up to this many carry their lock names; beyond, only tooltips

function Graph({ edges, jobs }) {
  if (!edges.length) {
    return html`<p class="empty">No job waits for a lock another job holds.</p>`;
  }
  const { columns, y } = layout(edges);
  const place = new Map();
  columns.forEach((column, ci) => column.forEach((job) => place.set(job, { x: 12 + ci * (NODE_W + COL_GAP), y: 8 + y.get(job) })));
  const height = Math.max(...[...place.values()].map((p) => p.y)) + NODE_H + 16;
  const width = 24 + columns.length * NODE_W + (columns.length - 1) * COL_GAP;
  const labelled = edges.length <= LABELLED;
  return html`<svg class="graph" viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height}
      role="img" aria-labelledby="graph-title graph-desc">
    <title id="graph-title">Who blocks whom</title>
    <desc id="graph-desc">${edges.map((e) => `job ${e.from} waits for job ${e.to} (${e.locks.join(", ")})`).join("; ")}</desc>
    <defs>
      <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M 0 0 L 10 5 L 0 10 z" fill="#475569" />
      </marker>
    </defs>
    ${edges.map((e) => {
      const a = place.get(e.from);
      const b = place.get(e.to);
      const x1 = a.x;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x + NODE_W;
      const y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      const text = e.locks.length > 2 ? `${e.locks[0]} +${e.locks.length - 1}` : e.locks.join(", ");
      return html`<g class="edge">
        <title>job ${e.from} waits for job ${e.to}: ${e.locks.join(", ")}</title>
        <path d=${`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 + 2} ${y2}`} marker-end="url(#arrow)" />
        ${labelled ? html`<text x=${x1 - 8} y=${y1 - 6} text-anchor="end">${text}</text>` : ""}
      </g>`;
    })}
    ${[...place.entries()].map(([job, p]) => {
      const info = jobs.get(job);
      const prio = info ? info.priority : 0;
      const c = colours(prio);
      return html`<a href=${`#/jobs/${job}`} class="node">
        <rect x=${p.x} y=${p.y} width=${NODE_W} height=${NODE_H} rx="8" fill=${c.tint} stroke=${c.solid} />
        <rect x=${p.x} y=${p.y} width="6" height=${NODE_H} rx="3" fill=${c.solid} />
        <text x=${p.x + 16} y=${p.y + 19} class="node-title">job ${job}</text>
        <text x=${p.x + 16} y=${p.y + 36} class="node-sub">${info ? `${info.op} · ${label(prio)}` : ""}</text>
      </a>`;
    })}
  </svg>`;
}

export function LocksPage({ query }) {
  useTitle("Locks");
  const showAll = query.get("all") === "1";
  const toggleId = useId();
  const [{ data, error, loading }] = useLive(async (signal) => {
    const locks = await api("v1/locks", { signal, params: { all: showAll ? "true" : undefined } });
    const involved = new Set();
    for (const lock of locks) {
      lock.owners.forEach((o) => typeof o === "number" && involved.add(o));
      lock.pending.forEach((w) => typeof w.job === "number" && involved.add(w.job));
    }
    const jobs = new Map();
    await Promise.all([...involved].slice(0, 60).map(async (id) => {
      try {
        const job = await api(`v1/jobs/${id}`, { signal });
        const index = job.ops.findIndex((op) => !["success", "error", "canceled"].includes(op.status));
        const op = job.ops[index >= 0 ? index : job.ops.length - 1];
        jobs.set(id, { priority: job.priority, status: job.status, op: op.op });
      } catch {
        /* finished and gone meanwhile: shown without details */
      }
    }));
    return { locks, jobs };
  }, [showAll], { every: REFRESH_MS });

  const locks = data ? data.locks : [];
  const jobs = data ? data.jobs : new Map();
  const edges = blockingEdges(locks);
  const busy = locks.filter((l) => l.owners.length || l.pending.length);

  return html`<div class="page">
    <div class="page-head">
      <h1>Locks</h1>
      <p class="page-sub">${busy.length} lock${busy.length === 1 ? "" : "s"} held or wanted · ${edges.length} wait${edges.length === 1 ? "" : "s"} between jobs</p>
    </div>
    <${ErrorNote} error=${error} />
    <${Card} title="Who blocks whom" id="graph-head" className="graph-card">
      <p class="hint">An arrow goes from a waiting job to the job holding the lock it waits for. Colours are priorities.</p>
      <div class="graph-body">
        <div class="graph-wrap">${data ? html`<${Graph} edges=${edges} jobs=${jobs} />` : html`<${Loading} />`}</div>
        ${edges.length ? html`<ul class="waits" aria-label="Waits">${edges.map((e) => html`<li>
          <${JobLink} id=${e.from} /> waits for <${JobLink} id=${e.to} /> <span class="muted">(${e.locks.join(", ")})</span>
        </li>`)}</ul>` : ""}
      </div>
    <//>
    <${Card} title="Locks" id="locks-head" actions=${html`<label class="check" for=${toggleId}>
        <input id=${toggleId} type="checkbox" checked=${showAll}
          onChange=${(e) => { location.hash = e.currentTarget.checked ? "#/locks?all=1" : "#/locks"; }} />
        Show free locks</label>`}>
      <table class="locks">
        <thead><tr>
          <th scope="col">Lock</th><th scope="col">Mode</th><th scope="col">Held by</th>
          <th scope="col">Since</th><th scope="col">Waiting, in grant order</th>
        </tr></thead>
        <tbody>
          ${locks.map((lock) => html`<tr data-lock=${`${lock.level}:${lock.name}`}>
            <th scope="row"><code><span class="muted">${lock.level}:</span>${lock.name}</code></th>
            <td>${lock.mode ? html`<span class=${"mode mode-" + lock.mode}>${lock.mode}</span>` : html`<span class="muted">free</span>`}</td>
            <td>${lock.owners.length ? html`<div class="holders">${lock.owners.map((o) => html`<span class="holder">${
              typeof o === "number" ? html`<${JobLink} id=${o} />` : String(o)}${
              jobs.get(o) && lock.owners.length <= 3 ? html` <${StatusBadge} status=${jobs.get(o).status} />` : ""}</span>`)}</div>` : html`<span class="muted">—</span>`}</td>
            <td><${Time} at=${lock.since} /></td>
            <td>${lock.pending.length ? html`<ol class="waiters">${lock.pending.map((w, i) => html`<li>
              <span class="pos" aria-label=${`position ${i + 1}`}>${i + 1}</span>
              ${w.job !== null ? html`<${JobLink} id=${w.job} />` : html`<span class="muted">a lock-set request</span>`}
              <${PriorityBadge} priority=${w.priority} />
              <span class="muted">${w.shared ? "shared" : "exclusive"}</span>
            </li>`)}</ol>` : html`<span class="muted">—</span>`}</td>
          </tr>`)}
        </tbody>
      </table>
      ${data && !locks.length ? html`<p class="empty">No lock is held or wanted right now.</p>` : ""}
      ${!data && loading ? html`<${Loading} />` : ""}
    <//>
  </div>`;
}
