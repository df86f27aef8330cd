/**
 * Form fields from an OpenAPI component, for the views third-party plugins declare:
 * the console knows their schemas only at run time, from /openapi.json.
 */

export type FieldKind = "text" | "number" | "boolean" | "date" | "datetime" | "enum" | "list" | "textarea";

export interface FormField {
  name: string;
  kind: FieldKind;
  required: boolean;
  options: string[];
  maxLength?: number;
  description?: string;
}

type Schema = {
  type?: string;
  format?: string;
  enum?: unknown[];
  anyOf?: Schema[];
  $ref?: string;
  items?: Schema;
  maxLength?: number;
  description?: string;
  pattern?: string;
  properties?: Record<string, Schema>;
  required?: string[];
};

export interface OpenApiDoc {
  components?: { schemas?: Record<string, Schema> };
}

function deref(doc: OpenApiDoc, schema: Schema): Schema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.split("/").pop() ?? "";
  return doc.components?.schemas?.[name] ?? {};
}

function nonNull(doc: OpenApiDoc, schema: Schema): Schema {
  const resolved = deref(doc, schema);
  if (!resolved.anyOf) return resolved;
  const options = resolved.anyOf.map((s) => deref(doc, s)).filter((s) => s.type !== "null");
  const first = options[0] ?? {};
  return { ...first, description: resolved.description ?? first.description };
}

function kindOf(schema: Schema): FieldKind {
  if (schema.enum) return "enum";
  if (schema.type === "array") return "list";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.format === "date") return "date";
  if (schema.format === "date-time") return "datetime";
  if (schema.type === "string" && (schema.maxLength ?? 0) > 2000) return "textarea";
  return "text";
}

export function formFields(doc: OpenApiDoc, component: string, names: string[]): FormField[] {
  const schema = doc.components?.schemas?.[component];
  if (!schema?.properties) return names.map((name) => ({ name, kind: "text", required: false, options: [] }));
  const required = new Set(schema.required ?? []);
  return names.map((name) => {
    const property = nonNull(doc, schema.properties?.[name] ?? {});
    return {
      name,
      kind: kindOf(property),
      required: required.has(name),
      options: (property.enum ?? []).map(String),
      maxLength: property.maxLength,
      description: property.description,
    };
  });
}

/** A typed value for the request body from what the input holds; undefined leaves it out. */
export function coerce(field: FormField, raw: string | boolean): unknown {
  if (field.kind === "boolean") return Boolean(raw);
  const text = String(raw).trim();
  if (text === "") return undefined;
  switch (field.kind) {
    case "number":
      return Number.isNaN(Number(text)) ? text : Number(text);
    case "list":
      return text
        .split(",")
        .map((part) => part.trim())
        .filter(Boolean);
    case "datetime":
      return new Date(text).toISOString();
    default:
      return text;
  }
}

/** How a list cell shows a value of any JSON type. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(cellText).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A readable label from an API field name: `end_date` → "End date". */
export function fieldLabel(name: string): string {
  const words = name.replace(/_/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * The Idempotency-Key of each create a form sends: the same body sent again (a double click, a
 * retry after a network error) carries the same key, so the server creates the record once and
 * answers the repeat with the first answer; a changed body (fixed after a 422) gets a new key,
 * since crm2 refuses a key reused with another body.
 */
export function idempotencyKeys(newKey: () => string = () => crypto.randomUUID()): (body: unknown) => string {
  let last: { body: string; key: string } | null = null;
  return (body) => {
    const text = JSON.stringify(body);
    if (last === null || last.body !== text) last = { body: text, key: newKey() };
    return last.key;
  };
}

/**
 * A form's saves, one at a time: a save asked for while the previous one is still out is dropped
 * (resolves false). A double click on Save otherwise sent two requests: two records from a create,
 * and from an edit a second PATCH carrying the ETag the first had just spent, which met a 412.
 */
export function oneAtATime(): (save: () => Promise<void>) => Promise<boolean> {
  let running = false;
  return async (save) => {
    if (running) return false;
    running = true;
    try {
      await save();
      return true;
    } finally {
      running = false;
    }
  };
}
