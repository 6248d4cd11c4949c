// The hand-written types (types/index.d.ts) cannot rot: tests/types-usage.ts is type-checked
// against them, the values they declare are the module's exports, and their event types are the
// event table's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import * as client from "../src/index.js";

const usage = fileURLToPath(new URL("./types-usage.ts", import.meta.url));
const declarations = fileURLToPath(new URL("../types/index.d.ts", import.meta.url));
const program = ts.createProgram([usage, declarations], {
  strict: true,
  noEmit: true,
  noUnusedLocals: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
});
const checker = program.getTypeChecker();
const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(declarations));
const exported = checker.getExportsOfModule(moduleSymbol);

test("the usage file type-checks against the declarations, and each misuse in it is refused", () => {
  const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const where = diagnostic.file ? `${diagnostic.file.fileName.split("/").at(-1)}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1}` : "";
    return `${where} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`;
  });
  assert.deepEqual(problems, []);
});

test("the declared values are exactly the module's exports", () => {
  const declared = exported
    .filter((symbol) => symbol.flags & ts.SymbolFlags.Value) // not the interfaces and type aliases
    .map((symbol) => symbol.getName())
    .sort();
  assert.deepEqual(declared, Object.keys(client).sort());
});

test("the declared event types are the event table's", () => {
  const alias = exported.find((symbol) => symbol.getName() === "EventType");
  const union = checker.getDeclaredTypeOfSymbol(alias);
  const names = union.types.map((type) => type.value).sort();
  assert.deepEqual(names, [...client.EVENT_TYPES].sort());
});
