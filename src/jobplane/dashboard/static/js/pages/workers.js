// Workers: what each worker runs, and the queue depth per priority over the last minutes.
import { html, useEffect, useRef } from "../html.js";
import uPlot from "uplot";
import { api, serverNow } from "../api.js";
import { useLive, useTicker } from "../live.js";
import { PriorityBadge, JobLink, ErrorNote, Loading, Card, StatusBadge, PriorityLegend, useTitle } from "../components.js";
import { colours, label } from "../priority.js";
import { duration, count, clock } from "../format.js";

const HISTORY_MS = 2000; // the daemon samples every 2 s: fetched as often (a plain periodic read)

function DepthChart({ history }) {
  const box = useRef(null);
  const chart = useRef(null);
  const samples = [...history.samples, history.current];
  const priorities = [...new Set(samples.flatMap((s) => Object.keys(s.waiting).map(Number)))].sort((a, b) => a - b);
  const key = priorities.join(",");

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const series = [
      {},
      ...priorities.map((p) => ({
        label: label(p),
        stroke: colours(p).solid,
        width: 2,
        fill: colours(p).solid + "1a",
        points: { show: false },
      })),
      { label: "running", stroke: "#0f172a", width: 1.5, dash: [6, 4], points: { show: false } },
    ];
    const options = {
      width: Math.max(320, el.clientWidth),
      height: 260,
      series,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max * 1.1)] } },
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" } },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, label: "jobs" },
      ],
      legend: { live: true },
      cursor: { points: { size: 6 } },
    };
    chart.current = new uPlot(options, [[]], el);
    const resize = new ResizeObserver(() => chart.current?.setSize({ width: Math.max(320, el.clientWidth), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.current?.destroy();
      chart.current = null;
    };
  }, [key]);

  useEffect(() => {
    if (!chart.current) return;
    const data = [
      samples.map((s) => s.time),
      ...priorities.map((p) => samples.map((s) => s.waiting[String(p)] || 0)),
      samples.map((s) => s.running),
    ];
    chart.current.setData(data);
  });

  return html`<div class="chart" ref=${box} role="img"
    aria-label=${`Jobs waiting to run by priority over the last ${Math.round(history.span / 60)} minutes; now ${
      priorities.map((p) => `${history.current.waiting[String(p)] || 0} at ${label(p)}`).join(", ") || "none waiting"}`}></div>`;
}

export function WorkersPage() {
  useTitle("Workers");
  useTicker(1000);
  const now = serverNow();
  const [{ data, error }] = useLive((signal) => api("v1/workers", { signal }), [], { every: 5000 });
  const [{ data: history, error: historyError }] = useLive(
    (signal) => api("v1/status/history", { signal }), [], { every: HISTORY_MS, live: false },
  );
  const [{ data: status }] = useLive((signal) => api("v1/status", { signal }), []);
  const workers = data ? data.workers : [];
  const busy = workers.filter((w) => w.busy).length;
  const waiting = history ? Object.values(history.current.waiting).reduce((a, b) => a + b, 0) : null;

  return html`<div class="page">
    <div class="page-head"><h1>Workers</h1></div>
    <${ErrorNote} error=${error || historyError} />
    <div class="stats">
      <div class="stat"><span class="stat-num">${data ? `${busy} / ${workers.length}` : "…"}</span><span class="stat-label">workers busy</span></div>
      <div class="stat"><span class="stat-num">${waiting === null ? "…" : count(waiting)}</span><span class="stat-label">jobs waiting to run</span></div>
      <div class="stat"><span class="stat-num">${status ? count(status.running_ops) : "…"}</span><span class="stat-label">ops running</span></div>
      <div class="stat"><span class="stat-num">${status && status.oldest_queued_age !== null ? duration(status.oldest_queued_age) : "—"}</span><span class="stat-label">oldest queued job waits</span></div>
    </div>
    <div class="grid-2 workers-grid">
      <${Card} title="Workers" id="workers-head">
        <table class="workers">
          <thead><tr><th scope="col">Worker</th><th scope="col">Job</th><th scope="col">Op</th>
            <th scope="col">Priority</th><th scope="col" class="num">For</th></tr></thead>
          <tbody>
            ${workers.map((w) => html`<tr data-worker=${w.name} class=${w.busy ? "" : "idle"}>
              <th scope="row"><span class=${"dot " + (w.busy ? "dot-busy" : "dot-idle")} aria-hidden="true"></span>${w.name.replace(/^jobplane-/, "")}</th>
              <td>${w.job !== null ? html`<${JobLink} id=${w.job} />` : html`<span class="muted">idle</span>`}</td>
              <td>${w.op ? html`<code>${w.op}</code> ${w.status && w.status !== "running" ? html`<${StatusBadge} status=${w.status} />` : ""}` : ""}</td>
              <td>${w.priority !== undefined ? html`<${PriorityBadge} priority=${w.priority} />` : ""}</td>
              <td class="num">${w.started_at && w.status === "running" ? duration(now - w.started_at) : ""}</td>
            </tr>`)}
          </tbody>
        </table>
        ${!data ? html`<${Loading} />` : ""}
      <//>
      <${Card} title="Queue depth" id="depth-head" actions=${html`<${PriorityLegend} />`}>
        <p class="hint">Jobs queued or waiting for locks, by priority, sampled every ${history ? history.interval : 2} s; dashed: running.</p>
        ${history ? html`<${DepthChart} history=${history} />` : html`<${Loading} />`}
        ${history ? html`<p class="hint">Since ${clock(history.samples.length ? history.samples[0].time : history.current.time)}.</p>` : ""}
      <//>
    </div>
  </div>`;
}
