// Bundles the page (src/app.js -> dist/app.js, with the static files beside it) and the client
// (client/src/index.js -> client/dist/taskstream.js; client/src/element.js, the <taskstream-task>
// element, -> client/dist/taskstream-task.js): ES modules, minified, with source maps. Each bundle
// carries the event table, so a page that loads one needs no JSON modules.
import { build } from "esbuild";
import { existsSync } from "node:fs";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const clientDist = join(root, "client/dist");
const staticFiles = ["index.html", "styles.css", "config.js"];
const bundles = [
  ["src/app.js", join(dist, "app.js")],
  ["client/src/index.js", join(clientDist, "taskstream.js")],
  ["client/src/element.js", join(clientDist, "taskstream-task.js")],
].filter(([entry]) => existsSync(join(root, entry)));

await Promise.all([dist, clientDist].map((dir) => rm(dir, { recursive: true, force: true })));
await Promise.all([dist, clientDist].map((dir) => mkdir(dir, { recursive: true })));
await Promise.all(staticFiles.map((file) => copyFile(join(root, file), join(dist, file))));
await Promise.all(
  bundles.map(([entry, outfile]) =>
    build({
      entryPoints: [join(root, entry)],
      outfile,
      bundle: true,
      format: "esm",
      target: "es2020",
      minify: true,
      sourcemap: true,
      logLevel: "info",
    }),
  ),
);
