// Workers: what each worker runs, and the queue depth per priority over the last minutes.
import { html, useEffect, useRef } from "../html.js";
import uPlot from "uplot";
import { api, serverNow } from "../api.js";
import { useLive, useTicker } from "../live.js";
import { PriorityBadge, JobLink, ErrorNote, Loading, Card, StatusBadge, PriorityLegend, useTitle } from "../components.js";
import { colours, CHART_BANDS } from "../priority.js";
import { duration, count, clock } from "../format.js";

const HISTORY_MS = 2000; // the daemon samples every second; a plain periodic read

/** Jobs waiting in each chart band, per sample. */
function bandCounts(sample) {
  return CHART_BANDS.map(([, lowest, highest]) => Object.entries(sample.waiting)
    .filter(([p]) => Number(p) >= lowest && Number(p) <= highest)
    .reduce((sum, [, n]) => sum + n, 0));
}

/**
 * Stacked areas: each band's area sits on the bands of higher priority. uPlot
 * draws series in order, so the stack is given top first (cumulative sums,
 * each filled down to zero and painted over by the next); the legend shows
 * each band's own count.
 */
function DepthChart({ history }) {
  const box = useRef(null);
  const chart = useRef(null);
  const samples = [...history.samples, history.current];
  const counts = samples.map(bandCounts);
  const used = CHART_BANDS.map((_, b) => counts.some((c) => c[b] > 0));
  const bands = CHART_BANDS.map((band, b) => [band, b]).filter(([, b]) => used[b]);
  const key = bands.map(([, b]) => b).join(",");
  const own = useRef([]);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const top = [...bands].reverse();
    const series = [
      {},
      ...top.map(([[name, , , colourOf], b]) => ({
        label: name,
        stroke: colours(colourOf).solid,
        fill: colours(colourOf).solid,
        width: 1,
        points: { show: false },
        value: (u, v, si, i) => (i === null || i === undefined ? "—" : String(own.current[b]?.[i] ?? 0)),
      })),
      { label: "running", stroke: "#0f172a", width: 2, dash: [6, 4], points: { show: false } },
    ];
    const options = {
      width: Math.max(320, el.clientWidth),
      height: 260,
      series,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.1))] } },
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" } },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, label: "jobs" },
      ],
      legend: { live: true },
      cursor: { points: { show: false } },
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
    own.current = CHART_BANDS.map((_, b) => counts.map((c) => c[b]));
    const stacked = [];
    let below = samples.map(() => 0);
    for (const [, b] of bands) {
      below = below.map((v, i) => v + counts[i][b]);
      stacked.push(below);
    }
    chart.current.setData([
      samples.map((s) => s.time),
      ...stacked.reverse(),
      samples.map((s) => s.running),
    ]);
  });

  const now = bandCounts(history.current);
  return html`<div class="chart" ref=${box} role="img"
    aria-label=${`Jobs waiting to run by priority band over the last minutes; now ${
      CHART_BANDS.map(([name], b) => `${now[b]} ${name}`).join(", ")}`}></div>`;
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
        <p class="hint">Jobs queued or waiting for locks, stacked by priority band (highest at the bottom), sampled every ${history ? history.interval : 1} s; dashed: jobs running.</p>
        ${history ? html`<${DepthChart} history=${history} />` : html`<${Loading} />`}
        ${history ? html`<p class="hint">Since ${clock(history.samples.length ? history.samples[0].time : history.current.time)}.</p>` : ""}
      <//>
    </div>
  </div>`;
}
