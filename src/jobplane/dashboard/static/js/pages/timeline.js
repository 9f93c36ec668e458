// Timeline: recent op runs per worker, coloured by priority (a Gantt chart in SVG).
import { html, useState, useId, useRef, useEffect } from "../html.js";
import { api, serverNow } from "../api.js";
import { useLive, useTicker } from "../live.js";
import { ErrorNote, Loading, Card, PriorityLegend, useTitle } from "../components.js";
import { colours, label } from "../priority.js";
import { duration, clock } from "../format.js";

const WINDOWS = [
  ["fit", "all kept runs"],
  [30, "the last 30 seconds"],
  [60, "the last minute"],
  [300, "the last 5 minutes"],
  [600, "the last 10 minutes"],
];
const FIT_MIN_S = 10;
const ROW_H = 34;
const BAR_H = 22;
const LEFT = 104;
const TOP = 28;

function ticks(start, end, width) {
  const span = end - start;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300];
  const step = steps.find((s) => (span / s) * 90 <= width) || 600;
  const first = Math.ceil(start / step) * step;
  const out = [];
  for (let t = first; t <= end; t += step) out.push(t);
  return out;
}

function useWidth() {
  const ref = useRef(null);
  const [width, setWidth] = useState(900);
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    setWidth(el.clientWidth);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

function Gantt({ runs, running, workers, start, end, width }) {
  const names = [...new Set([...workers, ...runs.map((r) => r.worker), ...running.map((r) => r.worker)])];
  const plot = Math.max(200, width - LEFT - 12);
  const x = (t) => LEFT + ((Math.max(start, Math.min(end, t)) - start) / (end - start)) * plot;
  const height = TOP + names.length * ROW_H + 8;
  const row = new Map(names.map((n, i) => [n, i]));
  const bar = (r, open) => {
    const x0 = x(r.started_at);
    const x1 = Math.max(x0 + 2, x(open ? end : r.ended_at));
    const y = TOP + row.get(r.worker) * ROW_H + (ROW_H - BAR_H) / 2;
    const c = colours(r.priority);
    const took = (open ? end : r.ended_at) - r.started_at;
    const title = `job ${r.job}, op ${r.op_index} ${r.op}: priority ${label(r.priority)}, ${
      open ? "running" : r.status}, ${duration(took)} from ${clock(r.started_at)}`;
    return html`<a href=${`#/jobs/${r.job}`} class=${"bar bar-" + (open ? "running" : r.status)} data-job=${r.job}>
      <title>${title}</title>
      <rect x=${x0} y=${y} width=${x1 - x0} height=${BAR_H} rx="3" fill=${c.solid}
        stroke=${r.status === "error" ? "#7f1d1d" : c.text} stroke-width=${r.status === "error" ? 2 : 0.5}
        fill-opacity=${r.status === "canceled" ? 0.35 : 1} />
      ${open ? html`<rect x=${x0} y=${y} width=${x1 - x0} height=${BAR_H} rx="3" fill="url(#running)" />` : ""}
      ${x1 - x0 > 30 ? html`<text x=${x0 + 5} y=${y + BAR_H / 2 + 4} class="bar-label" fill=${c.ink}>${r.job}</text>` : ""}
    </a>`;
  };
  return html`<svg class="gantt" width=${width} height=${height} role="img" aria-labelledby="gantt-title gantt-desc">
    <title id="gantt-title">Op runs per worker, from ${clock(start)} to ${clock(end)}</title>
    <desc id="gantt-desc">${runs.length} finished and ${running.length} running op runs; each bar is one op of a job, coloured by its priority.</desc>
    <defs>
      <pattern id="running" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <rect width="4" height="8" fill="#ffffff" fill-opacity="0.28" />
      </pattern>
    </defs>
    ${ticks(start, end, plot).filter((t) => x(t) < LEFT + plot - 28).map((t) => html`<g class="tick">
      <line x1=${x(t)} x2=${x(t)} y1=${TOP - 6} y2=${height - 8} />
      <text x=${x(t)} y=${TOP - 12} text-anchor="middle">${clock(t)}</text>
    </g>`)}
    ${names.map((n, i) => html`<g class="lane">
      <rect x=${LEFT} y=${TOP + i * ROW_H} width=${plot} height=${ROW_H} class=${i % 2 ? "lane-odd" : "lane-even"} />
      <text x=${LEFT - 10} y=${TOP + i * ROW_H + ROW_H / 2 + 4} text-anchor="end">${n.replace(/^jobplane-/, "")}</text>
    </g>`)}
    ${runs.filter((r) => r.ended_at >= start && row.has(r.worker)).map((r) => bar(r, false))}
    ${running.map((r) => bar(r, true))}
    <line class="now" x1=${x(end)} x2=${x(end)} y1=${TOP - 6} y2=${height - 8} />
  </svg>`;
}

export function TimelinePage({ query }) {
  useTitle("Timeline");
  const asked = query.get("window");
  const [span, setSpan] = useState(WINDOWS.some(([s]) => String(s) === asked) ? asked : "fit");
  const windowId = useId();
  useTicker(1000);
  const end = serverNow();
  const [ref, width] = useWidth();
  const [{ data, error }] = useLive(async (signal) => {
    const [runs, workers] = await Promise.all([
      api("v1/runs", { signal, params: { since: Math.floor(serverNow() - 600) } }),
      api("v1/workers", { signal }),
    ]);
    return { runs: runs.runs, workers: workers.workers };
  }, [], { every: 10000 });
  const earliest = data
    ? Math.min(end, ...data.runs.map((r) => r.started_at), ...data.workers.filter((w) => w.started_at).map((w) => w.started_at))
    : end;
  const seconds = span === "fit" ? Math.min(600, Math.max(FIT_MIN_S, (end - earliest) * 1.04)) : Number(span);
  const start = end - seconds;
  const running = data
    ? data.workers.filter((w) => w.busy && w.status === "running" && w.started_at)
      .map((w) => ({ worker: w.name, job: w.job, op: w.op, op_index: w.op_index, priority: w.priority, started_at: w.started_at }))
    : [];
  const ended = data ? data.runs.filter((r) => r.ended_at >= start).length : 0;

  return html`<div class="page">
    <div class="page-head">
      <h1>Timeline</h1>
      <p class="page-sub">${data ? `${ended} op run${ended === 1 ? "" : "s"} ended in the last ${duration(seconds)}` : ""}</p>
    </div>
    <${ErrorNote} error=${error} />
    <${Card} title="Op runs per worker" id="timeline-head" actions=${html`
      <${PriorityLegend} />
      <label for=${windowId}>Show</label>
      <select id=${windowId} value=${String(span)} onChange=${(e) => setSpan(e.currentTarget.value)}>
        ${WINDOWS.map(([s, text]) => html`<option value=${String(s)}>${text}</option>`)}
      </select>`}>
      <p class="hint">Each bar is one op of a job, coloured by the priority it ran at; striped bars are running now. High-priority work overtaking a backlog shows as warm bars cutting in between cool ones. Select a bar to open its job.</p>
      <div class="gantt-wrap" ref=${ref}>
        ${data ? html`<${Gantt} runs=${data.runs} running=${running} workers=${data.workers.map((w) => w.name)}
          start=${start} end=${end} width=${width} />` : html`<${Loading} />`}
      </div>
    <//>
  </div>`;
}
