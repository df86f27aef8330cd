// Checks on the screens' markup where the node test environment renders no React: what every
// screen must do the same way, read from the source.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { messages } from "@/lib/i18n";

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

describe("the sidebar", () => {
  it("names its navigation in the user's language, not always 'sections'", () => {
    expect(read("components/Shell.tsx")).not.toMatch(/aria-label="sections"/);
    expect(read("components/Shell.tsx")).toMatch(/aria-label=\{t\("nav\.sections"\)\}/);
    expect(messages.en["nav.sections"]).toBe("Sections");
    expect(messages.ru["nav.sections"]).toBe("Разделы");
  });
});

describe("buttons that send", () => {
  it("the lists' CSV export drops a second click in the same frame (a ref, not only state)", () => {
    expect(read("components/GenericView.tsx")).toMatch(/useOneAtATime\(\)/);
  });

  it("the CSV page imports only: its export forms started without the list's filters", () => {
    const page = read("app/clients/csv/page.tsx");
    expect(page).not.toMatch(/function Export\(|downloadCsv|\/export/);
    expect((messages.en as Record<string, string>)["csv.exportClients"]).toBeUndefined();
  });

  it("Mark read and Mark all read are disabled while their request is out, and guard a double click", () => {
    const page = read("app/notifications/page.tsx");
    expect(page).toMatch(/useOneAtATime\(\)/);
    const buttons = [...page.matchAll(/<button\b[^>]*onClick=\{\(\) => void read\([^>]*>/gs)].map((m) => m[0]);
    expect(buttons).toHaveLength(2);
    for (const button of buttons) expect(button).toMatch(/disabled=\{reading\}/);
  });
});

describe("list filters", () => {
  it("GenericView keeps the applied filters in the address, not in component state", () => {
    const view = read("components/GenericView.tsx");
    expect(view).toMatch(/useSearchParams\(\)/);
    expect(view).toMatch(/router\.replace\(/);
    expect(view).not.toMatch(/useState<Record<string, string>>\(\{\}\);\n\s*const \[creating/);
    expect(view).toMatch(/<Suspense>/);
  });
});
