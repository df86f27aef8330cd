// First-load JavaScript per route of the static build (what a cold browser downloads
// before the page is interactive), raw and gzip. Usage: node scripts/first-load-js.mjs [out]
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";

const root = process.argv[2] ?? "out";

function pages(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "_next") return [];
    if (statSync(path).isDirectory()) return pages(path);
    return name === "index.html" ? [path] : [];
  });
}

const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
console.log("route".padEnd(12), "scripts", "raw".padStart(10), "gzip".padStart(10));
for (const page of pages(root).sort()) {
  const html = readFileSync(page, "utf8");
  const sources = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"[^>]*>/g)]
    .filter((m) => !/noModule/i.test(m[0]))
    .map((m) => m[1]);
  let raw = 0;
  let gzip = 0;
  for (const src of new Set(sources)) {
    const body = readFileSync(join(root, src.replace(/^\//, "")));
    raw += body.length;
    gzip += gzipSync(body, { level: 9 }).length;
  }
  const route = "/" + relative(root, page).replace(/index\.html$/, "");
  console.log(route.padEnd(12), String(sources.length).padStart(7), kb(raw).padStart(10), kb(gzip).padStart(10));
}
