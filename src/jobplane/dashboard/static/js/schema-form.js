// A form built from an op's parameter schema (the JSON Schema pydantic makes).
//
// Scalars get inputs (text, number, checkbox, select for enums); lists of
// scalars a comma-separated text; anything else a JSON text area. Empty
// optional fields are left out, so the op's defaults apply.
import { html, useId } from "./html.js";

function resolve(schema, root) {
  let s = schema || {};
  for (let i = 0; i < 10 && s.$ref; i++) {
    const name = s.$ref.split("/").pop();
    s = { ...((root.$defs || root.definitions || {})[name] || {}), ...s, $ref: undefined };
  }
  const branches = s.anyOf || s.oneOf;
  if (branches) {
    const real = branches.filter((b) => b.type !== "null");
    if (real.length === 1) {
      return { ...resolve(real[0], root), title: s.title, description: s.description, default: s.default, nullable: true };
    }
  }
  if (s.allOf && s.allOf.length === 1) return { ...resolve(s.allOf[0], root), ...s, allOf: undefined };
  return s;
}

/** How a field is edited: "enum", "boolean", "integer", "number", "string", "list" or "json". */
export function kindOf(field) {
  if (field.enum) return "enum";
  if (field.type === "boolean") return "boolean";
  if (field.type === "integer" || field.type === "number" || field.type === "string") return field.type;
  if (field.type === "array" && field.items && ["string", "integer", "number"].includes(field.items.type)) return "list";
  return "json";
}

/** The fields of a schema: [{name, field, kind, required}]. */
export function fieldsOf(schema) {
  const root = schema || {};
  const required = new Set(root.required || []);
  return Object.entries(root.properties || {}).map(([name, raw]) => {
    const field = resolve(raw, root);
    if (field.items) field.items = resolve(field.items, root);
    return { name, field, kind: kindOf(field), required: required.has(name) };
  });
}

/** The params object from the form's text values; throws Error naming the field at fault. */
export function paramsFrom(fields, values) {
  const params = {};
  for (const { name, field, kind, required } of fields) {
    const raw = values[name];
    if (kind === "boolean") {
      if (raw !== undefined) params[name] = raw;
      continue;
    }
    const text = raw === undefined ? "" : String(raw).trim();
    if (text === "") {
      if (required) throw new Error(`${field.title || name} is required`);
      continue;
    }
    if (kind === "integer" || kind === "number") {
      const n = Number(text);
      if (!Number.isFinite(n) || (kind === "integer" && !Number.isInteger(n))) {
        throw new Error(`${field.title || name} must be ${kind === "integer" ? "a whole number" : "a number"}`);
      }
      params[name] = n;
    } else if (kind === "list") {
      const items = text.split(",").map((t) => t.trim()).filter(Boolean);
      params[name] = field.items.type === "string" ? items : items.map(Number);
    } else if (kind === "json") {
      try {
        params[name] = JSON.parse(text);
      } catch {
        throw new Error(`${field.title || name} must be JSON`);
      }
    } else if (kind === "enum") {
      const match = field.enum.find((v) => String(v) === text);
      params[name] = match === undefined ? text : match;
    } else {
      params[name] = text;
    }
  }
  return params;
}

function Field({ name, field, kind, required, value, onInput }) {
  const id = useId();
  const hint = useId();
  const title = field.title || name;
  const describe = field.description || (kind === "list" ? "comma-separated" : kind === "json" ? "JSON" : "");
  const common = { id, name, "aria-describedby": describe ? hint : undefined, required };
  let input;
  if (kind === "boolean") {
    input = html`<input type="checkbox" ...${common} checked=${value ?? field.default ?? false}
      onChange=${(e) => onInput(name, e.currentTarget.checked)} />`;
  } else if (kind === "enum") {
    input = html`<select ...${common} value=${value ?? ""} onChange=${(e) => onInput(name, e.currentTarget.value)}>
      ${required ? "" : html`<option value="">${field.default !== undefined ? `default (${field.default})` : "—"}</option>`}
      ${field.enum.map((v) => html`<option value=${String(v)}>${String(v)}</option>`)}
    </select>`;
  } else if (kind === "json") {
    input = html`<textarea ...${common} rows="3" spellcheck="false" value=${value ?? ""}
      placeholder=${field.default !== undefined ? JSON.stringify(field.default) : ""}
      onInput=${(e) => onInput(name, e.currentTarget.value)}></textarea>`;
  } else {
    const numeric = kind === "integer" || kind === "number";
    input = html`<input ...${common} type=${numeric ? "number" : "text"}
      step=${kind === "integer" ? "1" : numeric ? "any" : undefined}
      min=${field.minimum ?? field.exclusiveMinimum} max=${field.maximum ?? field.exclusiveMaximum}
      maxlength=${field.maxLength} value=${value ?? ""}
      placeholder=${field.default !== undefined && field.default !== null ? String(field.default) : ""}
      onInput=${(e) => onInput(name, e.currentTarget.value)} />`;
  }
  return html`<div class=${"field" + (kind === "boolean" ? " field-check" : "")}>
    <label for=${id}>${title}${required ? html` <span class="req">(required)</span>` : ""}</label>
    ${input}
    ${describe ? html`<p class="hint" id=${hint}>${describe}</p>` : ""}
  </div>`;
}

/** The inputs of a schema's fields, controlled by ``values`` and ``onInput(name, value)``. */
export function SchemaFields({ fields, values, onInput }) {
  if (!fields.length) return html`<p class="muted">This op takes no parameters.</p>`;
  return html`<div class="schema-fields">
    ${fields.map((f) => html`<${Field} key=${f.name} ...${f} value=${values[f.name]} onInput=${onInput} />`)}
  </div>`;
}
