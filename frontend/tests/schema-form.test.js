import { test } from "node:test";
import assert from "node:assert/strict";
import { fieldsFromSchema, initialValue, serverErrorsToFields, validate, validateField } from "../src/schema-form.js";

// The params schemas of the three shipped kinds, as the server publishes them.
const ADD = {
  type: "object",
  title: "AddParams",
  properties: { x: { type: "number", title: "X" }, y: { type: "number", title: "Y" } },
  required: ["x", "y"],
  additionalProperties: false,
};
const LONG = {
  type: "object",
  properties: { seconds: { type: "integer", title: "Seconds", default: 5, minimum: 1, maximum: 60 } },
  additionalProperties: false,
};
const UNRELIABLE = {
  type: "object",
  properties: {
    failure_rate: { type: "number", title: "Failure Rate", default: 0.5, minimum: 0, maximum: 1 },
    max_retries: { type: "integer", title: "Max Retries", default: 3, minimum: 0, maximum: 10 },
  },
  additionalProperties: false,
};

const byName = (fields) => Object.fromEntries(fields.map((field) => [field.name, field]));

test("add: two required numbers with free steps and no defaults", () => {
  const fields = fieldsFromSchema(ADD);
  assert.deepEqual(fields.map((f) => [f.name, f.label, f.type, f.required]), [
    ["x", "X", "number", true],
    ["y", "Y", "number", true],
  ]);
  assert.equal(fields[0].step, "any");
  assert.equal(initialValue(fields[0]), "");
});

test("long: an optional integer with bounds, step 1 and its default", () => {
  const [seconds] = fieldsFromSchema(LONG);
  assert.equal(seconds.type, "integer");
  assert.equal(seconds.required, false);
  assert.equal(seconds.minimum, 1);
  assert.equal(seconds.maximum, 60);
  assert.equal(seconds.step, "1");
  assert.equal(initialValue(seconds), "5");
});

test("unreliable: a 0..1 number gets a fine step, the integer keeps step 1", () => {
  const fields = byName(fieldsFromSchema(UNRELIABLE));
  assert.equal(fields.failure_rate.step, "0.01");
  assert.equal(fields.failure_rate.label, "Failure Rate");
  assert.equal(initialValue(fields.failure_rate), "0.5");
  assert.equal(fields.max_retries.step, "1");
  assert.equal(initialValue(fields.max_retries), "3");
});

test("add: values are coerced to numbers; blanks and text are rejected", () => {
  const fields = fieldsFromSchema(ADD);
  assert.deepEqual(validate(fields, { x: "2", y: "-3.5" }), { values: { x: 2, y: -3.5 }, errors: {} });
  const { errors } = validate(fields, { x: "", y: "abc" });
  assert.equal(errors.x, "This field is required.");
  assert.equal(errors.y, "Enter a number.");
  assert.equal(validate(fields, { x: null, y: "1" }).errors.x, "Enter a number.", "unparseable browser input");
});

test("long: bounds and integer type are enforced, a blank optional field is left to the server", () => {
  const fields = fieldsFromSchema(LONG);
  assert.deepEqual(validate(fields, { seconds: "60" }).values, { seconds: 60 });
  assert.equal(validate(fields, { seconds: "0" }).errors.seconds, "Must be at least 1.");
  assert.equal(validate(fields, { seconds: "61" }).errors.seconds, "Must be at most 60.");
  assert.equal(validate(fields, { seconds: "2.5" }).errors.seconds, "Enter a whole number.");
  assert.deepEqual(validate(fields, { seconds: "" }), { values: {}, errors: {} });
});

test("unreliable: a number bound at 1 accepts 1 and refuses 1.01", () => {
  const fields = fieldsFromSchema(UNRELIABLE);
  assert.deepEqual(validate(fields, { failure_rate: "1", max_retries: "0" }).values, { failure_rate: 1, max_retries: 0 });
  const { errors } = validate(fields, { failure_rate: "1.01", max_retries: "11" });
  assert.equal(errors.failure_rate, "Must be at most 1.");
  assert.equal(errors.max_retries, "Must be at most 10.");
});

test("booleans become checkboxes and enums (also behind $ref) become choices keeping their JSON type", () => {
  const schema = {
    type: "object",
    $defs: { Mode: { enum: ["fast", "safe"], type: "string", title: "Mode" } },
    properties: {
      verbose: { type: "boolean", title: "Verbose", default: true },
      mode: { $ref: "#/$defs/Mode", default: "safe" },
      level: { enum: [1, 2, 3], type: "integer" },
    },
    required: ["level"],
  };
  const fields = byName(fieldsFromSchema(schema));
  assert.equal(fields.verbose.type, "boolean");
  assert.equal(initialValue(fields.verbose), true);
  assert.equal(fields.mode.type, "enum");
  assert.equal(fields.mode.label, "Mode");
  assert.deepEqual(fields.mode.options.map((o) => o.label), ["fast", "safe"]);
  assert.equal(initialValue(fields.mode), "1");
  const result = validate(Object.values(fields), { verbose: false, mode: "0", level: "2" });
  assert.deepEqual(result.values, { verbose: false, mode: "fast", level: 3 });
  assert.equal(validate(Object.values(fields), { verbose: true, mode: "0", level: "" }).errors.level, "This field is required.");
});

test("strings check minLength and maxLength; an optional blank string is omitted", () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string", minLength: 2, maxLength: 5 },
      note: { type: "string" },
    },
    required: ["name"],
  };
  const fields = fieldsFromSchema(schema);
  assert.equal(fields[0].label, "Name", "a missing title is derived from the name");
  assert.equal(validate(fields, { name: "a", note: "" }).errors.name, "Must be at least 2 characters.");
  assert.equal(validate(fields, { name: "abcdef", note: "" }).errors.name, "Must be at most 5 characters.");
  assert.deepEqual(validate(fields, { name: "abc", note: "" }), { values: { name: "abc" }, errors: {} });
});

test("exclusive bounds in both JSON Schema dialects", () => {
  const modern = fieldsFromSchema({ properties: { r: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1 } } })[0];
  assert.equal(validateField(modern, "0").error, "Must be greater than 0.");
  assert.equal(validateField(modern, "1").error, "Must be less than 1.");
  assert.deepEqual(validateField(modern, "0.5"), { present: true, value: 0.5 });
  const draft4 = fieldsFromSchema({ properties: { r: { type: "number", minimum: 0, exclusiveMinimum: true } } })[0];
  assert.equal(validateField(draft4, "0").error, "Must be greater than 0.");
});

test("an Optional field (anyOf with null) is unwrapped and marked nullable", () => {
  const [field] = fieldsFromSchema({
    properties: { limit: { anyOf: [{ type: "integer", minimum: 1 }, { type: "null" }], default: null, title: "Limit" } },
  });
  assert.equal(field.type, "integer");
  assert.equal(field.nullable, true);
  assert.equal(field.minimum, 1);
  assert.equal(initialValue(field), "");
  assert.equal(validateField(field, "0").error, "Must be at least 1.");
});

test("unknown shapes fall back to JSON text", () => {
  const [field] = fieldsFromSchema({ properties: { tags: { type: "array", items: { type: "string" } } } });
  assert.equal(field.type, "json");
  assert.deepEqual(validateField(field, '["a"]'), { present: true, value: ["a"] });
  assert.equal(validateField(field, "[a").error, "Enter valid JSON.");
});

test("a missing or empty schema gives no fields", () => {
  assert.deepEqual(fieldsFromSchema(undefined), []);
  assert.deepEqual(fieldsFromSchema({ type: "object" }), []);
});

test("server 422 errors land on their field; others go to the form", () => {
  const fields = fieldsFromSchema(ADD);
  const mapped = serverErrorsToFields(fields, [
    { field: "params.x", message: "Input should be a valid number", type: "float_parsing" },
    { field: "kind", message: "Unknown kind", type: "value_error" },
    { field: "params.z", message: "Extra inputs are not permitted", type: "extra_forbidden" },
  ]);
  assert.deepEqual(mapped.errors, { x: "Input should be a valid number" });
  assert.deepEqual(mapped.formErrors, ["kind: Unknown kind", "params.z: Extra inputs are not permitted"]);
});
