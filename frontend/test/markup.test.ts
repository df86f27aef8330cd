// Checks on the screens' markup where the node test environment renders no React: what every
// screen must do the same way, read from the source.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src", import.meta.url));

function sources(dir: string = SRC): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".tsx") ? [path] : [];
  });
}

const read = (path: string) => readFileSync(join(SRC, path), "utf8");

describe("error messages", () => {
  it("are announced (role=alert) on every screen: a failed list read was silent to screen readers", () => {
    const silent: string[] = [];
    for (const path of sources()) {
      for (const match of readFileSync(path, "utf8").matchAll(/<p\b[^>]*className="error"[^>]*>/g)) {
        if (!/role="alert"/.test(match[0])) silent.push(`${path.slice(SRC.length)}: ${match[0]}`);
      }
    }
    expect(silent).toEqual([]);
  });
});
