// Small pieces every page uses.
import { html, createContext, useEffect } from "./html.js";
import { colours, label, nameOf, ALL } from "./priority.js";
import { dateTime, iso, clock } from "./format.js";

/** {role: "read" | "write", auth: "token" | "loopback"} of whoever uses the page. */
export const Who = createContext({ role: "read", auth: "token" });

export const FINAL = new Set(["success", "error", "canceled"]);
export const STATUSES = ["queued", "waiting", "running", "canceling", "canceled", "success", "error"];

export function StatusBadge({ status }) {
  return html`<span class="status status-${status}">${status}</span>`;
}

/**
 * A priority as a coloured badge with its number and name; ``escalations``
 * adds an arrow marker: the priority was raised that many steps by lock
 * escalation or aging.
 */
export function PriorityBadge({ priority, escalations = 0, muted = false }) {
  const c = colours(priority);
  const name = nameOf(priority);
  const style = `--p-solid:${c.solid};--p-text:${c.text};--p-tint:${c.tint};--p-border:${c.border};--p-ink:${c.ink}`;
  const title = escalations
    ? `priority ${label(priority)}, raised ${escalations} step${escalations > 1 ? "s" : ""} by escalation or aging`
    : `priority ${label(priority)}`;
  return html`<span class=${"prio" + (muted ? " prio-muted" : "")} style=${style} title=${title}
    ><span class="prio-dot" aria-hidden="true"></span
    ><span class="prio-num">${priority}</span>${name ? html` <span class="prio-name">${name}</span>` : ""}${
      escalations
        ? html`<span class="prio-up" aria-label=${`raised ${escalations} steps`}>↑${escalations}</span>`
        : ""
    }</span>`;
}

export function JobLink({ id, children }) {
  return html`<a class="job-link" href=${`#/jobs/${id}`}>${children || html`job ${id}`}</a>`;
}

export function Time({ at, withDate = false }) {
  if (!at) return html`<span class="muted">—</span>`;
  return html`<time datetime=${iso(at)} title=${dateTime(at)}>${withDate ? dateTime(at) : clock(at)}</time>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="note note-error" role="alert"><strong>${
    error.code ? `${error.code}: ` : ""
  }</strong>${error.message}</p>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted loading" role="status">${what}…</p>`;
}

export function Card({ title, id, actions, children, className = "" }) {
  return html`<section class=${"card " + className} aria-labelledby=${id}>
    <header class="card-head">
      <h2 id=${id}>${title}</h2>
      ${actions ? html`<div class="card-actions">${actions}</div>` : ""}
    </header>
    ${children}
  </section>`;
}

/** A <select> of every priority, -20..19, with the named ones labelled. */
export function PrioritySelect({ id, value, onChange, disabled }) {
  return html`<select id=${id} value=${String(value)} disabled=${disabled}
      onChange=${(e) => onChange(Number(e.currentTarget.value))}>
    ${ALL.map((p) => html`<option value=${String(p)}>${label(p)}</option>`)}
  </select>`;
}

/** A legend of the priority colour scale. */
export function PriorityLegend() {
  const stops = ALL.map((p, i) => `${colours(p).solid} ${(i / (ALL.length - 1)) * 100}%`).join(",");
  return html`<div class="prio-legend" aria-label="priority colours: red is highest (−20), slate normal (0), blue lowest (19)">
    <span>−20 highest</span>
    <span class="prio-ramp" style=${`background:linear-gradient(to right,${stops})`}></span>
    <span>19 lowest</span>
  </div>`;
}

/** Set the document title while a page is shown. */
export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · jobplane` : "jobplane";
  }, [title]);
}
