// Bundles src/app.js into dist/app.js and copies the static files beside it.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const staticFiles = ["index.html", "styles.css", "config.js"];

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await Promise.all(staticFiles.map((file) => copyFile(join(root, file), join(dist, file))));
await build({
  entryPoints: [join(root, "src/app.js")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: true,
  logLevel: "info",
});
