// Memory soak of the pipeline board under live events, in headless Chromium.
// Run against a crm2 with the console and the demo data (bench/console_soak.py starts one):
//   CRM2_E2E_BASE_URL=… CRM2_E2E_EMAIL=… CRM2_E2E_PASSWORD=… \
//     node scripts/soak.mjs [minutes=10] [events_per_second=2] [sample_seconds=30]
// One signed-in browser keeps /deals/ open on its SSE stream while this process moves
// deals between the open stages through the API (each move is a deals.deal.stage_changed
// the board applies live, then refetches). Every sample forces a garbage collection over
// CDP and reads the JS heap, DOM nodes and event listeners. It prints every sample, then
// the first and last quarter's medians and the least-squares slope per hour, and writes
// them as JSON to CRM2_SOAK_OUT when set. It measures; it asserts nothing but that the
// board kept up (the last moved deal is in its column at the end).
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE = process.env.CRM2_E2E_BASE_URL ?? "http://127.0.0.1:8000";
const EMAIL = process.env.CRM2_E2E_EMAIL;
const PASSWORD = process.env.CRM2_E2E_PASSWORD;
const MINUTES = Number(process.argv[2] ?? 10);
const RATE = Number(process.argv[3] ?? 2);
const SAMPLE_S = Number(process.argv[4] ?? 30);

let token = "";
async function login() {
  const response = await fetch(`${BASE}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
  });
  if (!response.ok) throw new Error(`login: ${response.status}`);
  token = (await response.json()).access_token;
}

async function call(method, path, body, retried = false) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !retried) {
    await login();
    return call(method, path, body, true);
  }
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? +((s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2).toFixed(2) : NaN;
};

function slopePerHour(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? (num / den) * 3600 : NaN;
}

await login();
const pipelines = await call("GET", "/api/v1/deals/pipelines?limit=50");
const pipeline = pipelines.items.find((p) => p.is_default) ?? pipelines.items[0];
const open = pipeline.stages.filter((s) => s.kind === "open");
const deals = (await call("GET", `/api/v1/deals/deals?pipeline=${pipeline.id}&status=open&limit=200`)).items;
if (open.length < 2 || deals.length === 0) throw new Error("the default pipeline needs open deals and two open stages");

const browser = await chromium.launch({
  executablePath: process.env.CRM2_E2E_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
context.setDefaultTimeout(30_000);
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
await page.goto(`${BASE}/login/`);
await page.getByLabel("E-mail").fill(EMAIL);
await page.getByLabel("Password").fill(PASSWORD);
await page.getByRole("button", { name: "Sign in" }).click();
await page.waitForURL(`${BASE}/`);
await page.goto(`${BASE}/deals/`);
await page.locator("article.deal-card").first().waitFor();
await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();

const cdp = await context.newCDPSession(page);
await cdp.send("Performance.enable");
const browserCdp = await browser.newBrowserCDPSession();

// resident memory (VmRSS, Linux /proc) of Chromium's renderer processes and of all of them
function rssMb(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    return line ? Number(line.split(/\s+/)[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
async function rss() {
  try {
    const { processInfo } = await browserCdp.send("SystemInfo.getProcessInfo");
    let renderer = 0;
    let total = 0;
    for (const p of processInfo) {
      const mb = rssMb(p.id);
      total += mb;
      if (p.type === "renderer") renderer += mb;
    }
    return { rss_renderer_mb: +renderer.toFixed(1), rss_total_mb: +total.toFixed(1) };
  } catch {
    return { rss_renderer_mb: null, rss_total_mb: null };
  }
}

async function sample(t) {
  await cdp.send("HeapProfiler.collectGarbage");
  const { usedSize, totalSize } = await cdp.send("Runtime.getHeapUsage");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  return {
    t: Math.round(t),
    heap_mb: +(usedSize / 2 ** 20).toFixed(2),
    heap_total_mb: +(totalSize / 2 ** 20).toFixed(2),
    nodes: m.Nodes,
    listeners: m.JSEventListeners,
    documents: m.Documents,
    ...(await rss()),
  };
}

const samples = [];
const started = Date.now();
const end = started + MINUTES * 60_000;
let moves = 0;
let failures = 0;
let last = null;
const status = page.getByTestId("live-status");
let notLive = 0;

// the event generator: RATE moves a second, each to the next open stage of a random deal
const generator = (async () => {
  const interval = 1000 / RATE;
  let next = Date.now();
  let i = 0;
  while (Date.now() < end) {
    const deal = deals[i++ % deals.length];
    const stage = open[(open.findIndex((s) => s.id === deal.stage_id) + 1) % open.length];
    try {
      await call("POST", `/api/v1/deals/deals/${deal.id}/move`, { stage_id: stage.id });
      deal.stage_id = stage.id;
      last = { id: deal.id, stage: stage.name };
      moves++;
    } catch {
      failures++;
    }
    next += interval;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
})();

samples.push(await sample(0));
console.log(`soak: ${MINUTES} min, ${RATE} events/s, a sample every ${SAMPLE_S} s`);
console.log(JSON.stringify(samples[0]));
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, Math.min(SAMPLE_S * 1000, Math.max(0, end - Date.now()))));
  if (!(await status.innerText()).includes("Live")) notLive++;
  const s = await sample((Date.now() - started) / 1000);
  samples.push(s);
  console.log(JSON.stringify({ ...s, moves }));
}
await generator;
// the board kept up: the last moved deal shows in its stage's column
let keptUp = false;
if (last) {
  keptUp = await page
    .locator(`section.column[data-stage="${last.stage}"] article[data-deal="${last.id}"]`)
    .waitFor({ timeout: 10_000 })
    .then(() => true, () => false);
}
const final = await sample((Date.now() - started) / 1000);
samples.push(final);
await browser.close();

const quarter = Math.max(1, Math.floor(samples.length / 4));
const head = samples.slice(0, quarter);
const tail = samples.slice(-quarter);
const summary = {
  minutes: MINUTES,
  events_per_second: RATE,
  moves,
  failed_moves: failures,
  samples_not_live: notLive,
  board_kept_up: keptUp,
  page_errors: pageErrors,
  heap_mb_first_quarter_median: median(head.map((s) => s.heap_mb)),
  heap_mb_last_quarter_median: median(tail.map((s) => s.heap_mb)),
  heap_mb_min: Math.min(...samples.map((s) => s.heap_mb)),
  heap_mb_max: Math.max(...samples.map((s) => s.heap_mb)),
  heap_mb_slope_per_hour: +slopePerHour(samples.slice(1).map((s) => [s.t, s.heap_mb])).toFixed(2),
  rss_renderer_mb_first_quarter_median: median(head.map((s) => s.rss_renderer_mb ?? NaN)),
  rss_renderer_mb_last_quarter_median: median(tail.map((s) => s.rss_renderer_mb ?? NaN)),
  rss_total_mb_first_last: [samples[0].rss_total_mb, final.rss_total_mb],
  nodes_first_last: [samples[0].nodes, final.nodes],
  listeners_first_last: [samples[0].listeners, final.listeners],
  nodes_slope_per_hour: +slopePerHour(samples.slice(1).map((s) => [s.t, s.nodes])).toFixed(0),
};
console.log(JSON.stringify(summary, null, 2));
if (process.env.CRM2_SOAK_OUT) writeFileSync(process.env.CRM2_SOAK_OUT, JSON.stringify({ summary, samples }, null, 2));
if (!keptUp || moves === 0) process.exitCode = 1;
