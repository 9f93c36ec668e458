// Submit a job: pick an op, fill in the form its parameter schema gives, send.
import { html, useState, useEffect, useMemo, useId } from "../html.js";
import { api } from "../api.js";
import { useLive } from "../live.js";
import { Card, ErrorNote, Loading, PrioritySelect, useTitle } from "../components.js";
import { SchemaFields, fieldsOf, paramsFrom } from "../schema-form.js";
import { json } from "../format.js";

export function SubmitPage({ query }) {
  useTitle("Submit a job");
  const [{ data: ops, error: opsError }] = useLive((signal) => api("v1/ops", { signal }), [], { live: false });
  const [name, setName] = useState(query.get("op") || "");
  const [values, setValues] = useState({});
  const [priority, setPriority] = useState(0);
  const [depends, setDepends] = useState("");
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const ids = { op: useId(), depends: useId() };

  useEffect(() => {
    if (ops && ops.length && !ops.some((o) => o.name === name)) setName(ops[0].name);
  }, [ops]);
  useEffect(() => setValues({}), [name]);

  const op = ops ? ops.find((o) => o.name === name) : null;
  const fields = useMemo(() => (op ? fieldsOf(op.params_schema) : []), [op]);

  let body = null;
  let draftError = null;
  try {
    if (op) {
      const deps = depends.split(",").map((t) => t.trim()).filter(Boolean).map((t) => {
        if (!/^\d+$/.test(t)) throw new Error(`dependency “${t}” is not a job id`);
        return { job: Number(t) };
      });
      body = { ops: [{ op: op.name, params: paramsFrom(fields, values) }], priority };
      if (deps.length) body.depends = deps;
    }
  } catch (e) {
    draftError = e.message;
  }

  async function submit(event) {
    event.preventDefault();
    if (draftError || !body) {
      setProblem({ code: "invalid_request", message: draftError || "choose an op" });
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      const answer = await api("v1/jobs", { method: "POST", body });
      location.hash = `#/jobs/${answer.id}`;
    } catch (e) {
      setProblem(e);
      setBusy(false);
    }
  }

  return html`<div class="page">
    <div class="page-head"><h1>Submit a job</h1></div>
    <${ErrorNote} error=${opsError} />
    ${!ops ? html`<${Loading} />` : html`<form class="submit-form" onSubmit=${submit} novalidate>
      <div class="grid-2">
        <${Card} title="Operation" id="submit-op">
          <div class="field">
            <label for=${ids.op}>Op</label>
            <select id=${ids.op} value=${name} onChange=${(e) => setName(e.currentTarget.value)}>
              ${ops.map((o) => html`<option value=${o.name}>${o.name}</option>`)}
            </select>
            ${op && op.description ? html`<p class="hint">${op.description}</p>` : ""}
          </div>
          <fieldset>
            <legend>Parameters</legend>
            <${SchemaFields} fields=${fields} values=${values}
              onInput=${(key, value) => setValues((v) => ({ ...v, [key]: value }))} />
          </fieldset>
        <//>
        <${Card} title="Scheduling" id="submit-job">
          <div class="field">
            <label for="submit-priority">Priority</label>
            <${PrioritySelect} id="submit-priority" value=${priority} onChange=${setPriority} />
            <p class="hint">Lower numbers run first: −20 is the highest, 19 the lowest.</p>
          </div>
          <div class="field">
            <label for=${ids.depends}>Depends on</label>
            <input id=${ids.depends} type="text" inputmode="numeric" placeholder="job ids, e.g. 12, 14"
              value=${depends} onInput=${(e) => setDepends(e.currentTarget.value)} />
            <p class="hint">The job starts once these jobs have succeeded.</p>
          </div>
          <details class="preview">
            <summary>Request body</summary>
            <pre>${body ? json(body) : draftError}</pre>
          </details>
          <${ErrorNote} error=${problem} />
          <button type="submit" class="primary" disabled=${busy}>${busy ? "Submitting…" : "Submit job"}</button>
        <//>
      </div>
    </form>`}
  </div>`;
}
