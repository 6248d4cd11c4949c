/**
 * JSON Schema (as the server publishes for each task kind's params) -> form field descriptors,
 * and validation of what the user typed against them.
 *
 * Pure: no DOM. Raw values come from the view as strings (text, number and select controls),
 * booleans (checkboxes) or null (a number input whose text the browser could not parse).
 * Select options are addressed by index, so enum members of any JSON type survive the round trip.
 * Anything the form cannot model as a simple control (arrays, objects) is edited as JSON text.
 */

export function fieldsFromSchema(schema) {
  const root = schema && typeof schema === "object" ? schema : {};
  const required = new Set(Array.isArray(root.required) ? root.required : []);
  const properties = root.properties && typeof root.properties === "object" ? root.properties : {};
  return Object.entries(properties).map(([name, property]) =>
    describeField(name, resolve(property, root), required.has(name)),
  );
}

function describeField(name, property, required) {
  const { schema, nullable } = unwrapNullable(property);
  const field = {
    name,
    label: schema.title || property.title || humanize(name),
    description: schema.description || property.description || "",
    type: fieldType(schema),
    required,
    nullable,
    hasDefault: "default" in property || "default" in schema,
    default: "default" in property ? property.default : schema.default,
  };
  if (field.type === "number" || field.type === "integer") Object.assign(field, numericBounds(schema, field.type));
  if (field.type === "string") {
    if (Number.isInteger(schema.minLength)) field.minLength = schema.minLength;
    if (Number.isInteger(schema.maxLength)) field.maxLength = schema.maxLength;
    if (typeof schema.pattern === "string") field.pattern = schema.pattern;
    if (typeof schema.format === "string") field.format = schema.format;
  }
  if (field.type === "enum") {
    const members = "const" in schema ? [schema.const] : schema.enum;
    field.options = members.map((value, index) => ({ value: String(index), label: optionLabel(value), data: value }));
  }
  return field;
}

function fieldType(schema) {
  if (Array.isArray(schema.enum) || "const" in schema) return "enum";
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "integer" || type === "number" || type === "boolean" || type === "string") return type;
  return "json";
}

function numericBounds(schema, type) {
  const bounds = {};
  if (typeof schema.minimum === "number") bounds.minimum = schema.minimum;
  if (typeof schema.maximum === "number") bounds.maximum = schema.maximum;
  // Draft 2020-12 gives exclusive bounds as numbers; draft 4 as booleans beside minimum/maximum.
  if (typeof schema.exclusiveMinimum === "number") bounds.exclusiveMinimum = schema.exclusiveMinimum;
  else if (schema.exclusiveMinimum === true && "minimum" in bounds) bounds.exclusiveMinimum = bounds.minimum;
  if (typeof schema.exclusiveMaximum === "number") bounds.exclusiveMaximum = schema.exclusiveMaximum;
  else if (schema.exclusiveMaximum === true && "maximum" in bounds) bounds.exclusiveMaximum = bounds.maximum;
  if (bounds.exclusiveMinimum === bounds.minimum) delete bounds.minimum;
  if (bounds.exclusiveMaximum === bounds.maximum) delete bounds.maximum;
  if (typeof schema.multipleOf === "number" && schema.multipleOf > 0) bounds.multipleOf = schema.multipleOf;
  bounds.step = stepFor(type, bounds);
  return bounds;
}

/** The input's step: exact for integers and multipleOf, a fine step for small ranges, else free. */
function stepFor(type, bounds) {
  if (bounds.multipleOf) return String(bounds.multipleOf);
  if (type === "integer") return "1";
  const low = bounds.minimum ?? bounds.exclusiveMinimum;
  const high = bounds.maximum ?? bounds.exclusiveMaximum;
  if (low !== undefined && high !== undefined && high - low <= 1) return "0.01";
  return "any";
}

/** Follows local $ref ("#/$defs/Name") and single-member allOf, as pydantic emits for enums. */
function resolve(property, root, depth = 0) {
  if (!property || typeof property !== "object" || depth > 8) return {};
  const { $ref, allOf, ...rest } = property;
  let base = {};
  if (typeof $ref === "string" && $ref.startsWith("#/")) {
    const target = $ref.slice(2).split("/").reduce((node, key) => node?.[key], root);
    base = resolve(target, root, depth + 1);
  } else if (Array.isArray(allOf) && allOf.length === 1) {
    base = resolve(allOf[0], root, depth + 1);
  }
  const merged = { ...base, ...rest };
  for (const key of ["anyOf", "oneOf"]) {
    if (Array.isArray(merged[key])) merged[key] = merged[key].map((member) => resolve(member, root, depth + 1));
  }
  return merged;
}

/** `anyOf: [{...}, {type: "null"}]` (an Optional field) becomes the inner schema, nullable. */
function unwrapNullable(property) {
  const union = property.anyOf || property.oneOf;
  if (Array.isArray(union)) {
    const members = union.filter((member) => member.type !== "null");
    if (members.length === 1) return { schema: { ...members[0], ...omit(property, ["anyOf", "oneOf"]) }, nullable: true };
  }
  const nullable = Array.isArray(property.type) && property.type.includes("null");
  return { schema: property, nullable };
}

function omit(object, keys) {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

function humanize(name) {
  const words = name.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function optionLabel(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** What a control shows before the user types: the schema default, or empty. */
export function initialValue(field) {
  const value = field.default;
  if (field.type === "boolean") return value === true;
  if (!field.hasDefault || value === null || value === undefined) return "";
  if (field.type === "enum") {
    const option = field.options.find((o) => sameValue(o.data, value));
    return option ? option.value : "";
  }
  if (field.type === "json") return JSON.stringify(value);
  return String(value);
}

function sameValue(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Coerces and checks every field. Returns `{ values, errors }`: `values` is the params object to
 * send (blank optional fields are left out so the server applies its defaults), `errors` maps a
 * field name to a message and is empty when the form is valid.
 */
export function validate(fields, raw) {
  const values = {};
  const errors = {};
  for (const field of fields) {
    const outcome = validateField(field, raw[field.name]);
    if (outcome.error) errors[field.name] = outcome.error;
    else if (outcome.present) values[field.name] = outcome.value;
  }
  return { values, errors };
}

/** `{present, value}` or `{error}` for one field. */
export function validateField(field, raw) {
  if (raw === null) return { error: field.type === "integer" ? "Enter a whole number." : "Enter a number." };
  if (field.type === "boolean") return { present: true, value: raw === true || raw === "true" };
  const text = typeof raw === "string" ? raw : raw === undefined ? "" : String(raw);
  // A blank string is a value (minLength decides); a blank number, choice or JSON is absent.
  const blank = field.type === "string" ? text === "" && !field.required : text.trim() === "";
  if (blank) {
    if (field.required && !field.nullable) return { error: "This field is required." };
    return field.required ? { present: true, value: null } : { present: false };
  }
  const coerced = coerce(field, text);
  if (coerced.error) return coerced;
  const problem = check(field, coerced.value);
  return problem ? { error: problem } : { present: true, value: coerced.value };
}

function coerce(field, text) {
  switch (field.type) {
    case "number":
    case "integer":
      return coerceNumber(field, text.trim());
    case "enum": {
      const option = field.options.find((o) => o.value === text);
      return option ? { value: option.data } : { error: "Choose one of the options." };
    }
    case "json":
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { error: "Enter valid JSON." };
      }
    default:
      return { value: text };
  }
}

const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function coerceNumber(field, text) {
  const normalized = text.replace(",", ".");
  const value = NUMBER_PATTERN.test(normalized) ? Number(normalized) : NaN;
  if (!Number.isFinite(value)) return { error: field.type === "integer" ? "Enter a whole number." : "Enter a number." };
  if (field.type === "integer" && !Number.isInteger(value)) return { error: "Enter a whole number." };
  return { value };
}

function check(field, value) {
  if (field.type === "number" || field.type === "integer") return checkNumber(field, value);
  if (field.type === "string") return checkString(field, value);
  return null;
}

function checkNumber(field, value) {
  if (field.minimum !== undefined && value < field.minimum) return `Must be at least ${field.minimum}.`;
  if (field.maximum !== undefined && value > field.maximum) return `Must be at most ${field.maximum}.`;
  if (field.exclusiveMinimum !== undefined && value <= field.exclusiveMinimum) {
    return `Must be greater than ${field.exclusiveMinimum}.`;
  }
  if (field.exclusiveMaximum !== undefined && value >= field.exclusiveMaximum) {
    return `Must be less than ${field.exclusiveMaximum}.`;
  }
  if (field.multipleOf) {
    const ratio = value / field.multipleOf;
    if (Math.abs(ratio - Math.round(ratio)) > 1e-9) return `Must be a multiple of ${field.multipleOf}.`;
  }
  return null;
}

function checkString(field, value) {
  const length = [...value].length;
  if (field.minLength !== undefined && length < field.minLength) {
    return `Must be at least ${field.minLength} character${field.minLength === 1 ? "" : "s"}.`;
  }
  if (field.maxLength !== undefined && length > field.maxLength) {
    return `Must be at most ${field.maxLength} character${field.maxLength === 1 ? "" : "s"}.`;
  }
  if (field.pattern) {
    let pattern;
    try {
      pattern = new RegExp(field.pattern, "u");
    } catch {
      return null; // A pattern this browser cannot compile is left to the server.
    }
    if (!pattern.test(value)) return "Does not have the expected format.";
  }
  return null;
}

/**
 * Maps a 422's errors (`field` like "params.x") onto form fields. Errors naming no field of the
 * form (e.g. "kind", or a path the form does not know) are collected as `formErrors`.
 */
export function serverErrorsToFields(fields, serverErrors) {
  const names = new Set(fields.map((field) => field.name));
  const errors = {};
  const formErrors = [];
  for (const entry of serverErrors) {
    const path = typeof entry?.field === "string" ? entry.field.split(".") : [];
    const message = typeof entry?.message === "string" ? entry.message : "Invalid value.";
    const name = path[0] === "params" ? path[1] : undefined;
    if (name !== undefined && names.has(name)) {
      errors[name] = errors[name] ? `${errors[name]} ${message}` : message;
    } else {
      formErrors.push(path.length ? `${path.join(".")}: ${message}` : message);
    }
  }
  return { errors, formErrors };
}
