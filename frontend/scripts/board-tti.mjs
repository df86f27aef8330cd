// Time until the pipeline board is interactive with N deals on it, in headless Chromium.
// Run against a crm2 with the console (e.g. python3 dev.py run; crm2 seed demo):
//   CRM2_E2E_BASE_URL=… CRM2_E2E_EMAIL=… CRM2_E2E_PASSWORD=… node scripts/board-tti.mjs 500
// It tops the default pipeline up to N deals through the API, then loads /deals/ five
// times in fresh browser profiles and prints the time from navigation start until every
// card is on screen and its "Move to" control answers (median and all runs).
import { chromium } from "playwright-core";

const BASE = process.env.CRM2_E2E_BASE_URL ?? "http://127.0.0.1:8000";
const EMAIL = process.env.CRM2_E2E_EMAIL;
const PASSWORD = process.env.CRM2_E2E_PASSWORD;
const WANTED = Number(process.argv[2] ?? 500);

async function call(method, path, token, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const login = await fetch(`${BASE}/api/v1/auth/login`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
});
const tokens = await login.json();
const token = tokens.access_token;
const pipelines = await call("GET", "/api/v1/deals/pipelines?limit=50", token);
const pipeline = pipelines.items.find((p) => p.is_default) ?? pipelines.items[0];
let count = 0;
for (let cursor = ""; ; ) {
  const page = await call("GET", `/api/v1/deals/deals?pipeline=${pipeline.id}&limit=200${cursor}`, token);
  count += page.items.length;
  if (!page.next_cursor) break;
  cursor = `&cursor=${encodeURIComponent(page.next_cursor)}`;
}
const client = (await call("GET", "/api/v1/deals/clients?limit=1", token)).items[0];
const open = pipeline.stages.filter((s) => s.kind === "open");
const missing = Math.max(0, WANTED - count);
for (let i = 0; i < missing; i += 10) {
  await Promise.all(
    Array.from({ length: Math.min(10, missing - i) }, (_, j) =>
      call("POST", "/api/v1/deals/deals", token, {
        title: `Board load ${i + j}`,
        client_id: client.id,
        pipeline_id: pipeline.id,
        stage_id: open[(i + j) % open.length].id,
        value: `${100 + ((i + j) % 900)}.00`,
      }),
    ),
  );
}
const total = count + missing;

const browser = await chromium.launch({
  executablePath: process.env.CRM2_E2E_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const runs = [];
for (let run = 0; run < 5; run++) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${BASE}/login/`);
  await page.evaluate(
    (t) =>
      localStorage.setItem(
        "crm2.auth",
        JSON.stringify({ state: { tokens: t }, version: 0 }),
      ),
    { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, expiresAt: Date.now() + 600_000 },
  );
  await page.goto(`${BASE}/deals/`);
  await page.waitForFunction((n) => document.querySelectorAll("article.deal-card").length >= n, total, {
    timeout: 60_000,
  });
  await page.locator("article.deal-card select").last().focus();
  const ms = await page.evaluate(() => performance.now());
  runs.push(Math.round(ms));
  await context.close();
}
await browser.close();
runs.sort((a, b) => a - b);
console.log(`board with ${total} deals: interactive after ${runs[2]} ms (median of 5; runs ${runs.join(", ")})`);
