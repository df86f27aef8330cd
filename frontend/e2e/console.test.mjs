// End-to-end: Debian's Chromium (driven by playwright-core) against a real `crm2 serve`.
// plugins/console/tests/test_browser.py starts the server, seeds it and runs this file:
//   CRM2_E2E_BASE_URL, CRM2_E2E_EMAIL, CRM2_E2E_PASSWORD, CRM2_E2E_CHROMIUM, CRM2_E2E_SHOTS
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { BASE, EMAIL, PASSWORD, sharedBrowser } from "./browser.mjs";
import { startProxy } from "./proxy.mjs";
import { apiLogin } from "./session.mjs";

const SHOTS = process.env.CRM2_E2E_SHOTS ?? "";
const TIMEOUT = 15_000;

const shared = sharedBrowser();

before(() => {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

/** A fresh browser profile with a page that records CSP violations and page errors. */
async function openPage() {
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) {
      problems.push(`csp: ${message.text()}`);
    }
  });
  return { context, page, problems };
}

async function signIn(page, base = BASE) {
  await page.goto(`${base}/login/`);
  await page.getByLabel("E-mail").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

test("a wrong password keeps the user on the sign-in page with a message", async () => {
  const { context, page, problems } = await openPage();
  await page.goto(`${BASE}/login/`);
  await page.getByLabel("E-mail").fill(EMAIL);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "Wrong e-mail or password" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/login/");
  await shot(page, "signin-error");
  assert.deepEqual(problems, []);
  await context.close();
});

test("sign in shows the enabled plugins' sections, under a strict CSP, in English and Russian", async () => {
  const { context, page, problems } = await openPage();
  await signIn(page);
  const nav = page.getByRole("navigation", { name: "sections" });
  for (const name of ["Deals", "Clients", "Policies", "Activity"]) {
    await nav.getByRole("link", { name, exact: true }).waitFor();
  }
  await shot(page, "home");
  await page.getByLabel("Language").selectOption("ru");
  const ruNav = page.getByRole("navigation", { name: "Разделы" });
  await ruNav.getByRole("link", { name: "Сделки", exact: true }).waitFor();
  await page.getByRole("button", { name: "Выйти" }).waitFor();
  await page.getByLabel("Язык").selectOption("en");
  await nav.getByRole("link", { name: "Clients", exact: true }).click();
  await page.locator('section[data-view="deals.clients"] tbody tr').first().waitFor();
  await shot(page, "clients");
  assert.deepEqual(problems, []);
  await context.close();
});

test("moving a deal on the board moves it on a second signed-in browser within a second (reported)", async () => {
  const a = await openPage();
  const b = await openPage();
  await signIn(a.page);
  await signIn(b.page);
  await a.page.goto(`${BASE}/deals/`);
  await b.page.goto(`${BASE}/deals/`);
  await b.page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();

  const columns = a.page.locator('[data-testid="board"] section.column');
  await columns.first().locator("article.deal-card").first().waitFor();
  const card = columns.first().locator("article.deal-card").first();
  const dealId = await card.getAttribute("data-deal");
  const title = await card.locator(".deal-title").innerText();
  const target = await columns.nth(1).getAttribute("data-stage");
  assert.ok(dealId && target);
  await b.page.locator(`article[data-deal="${dealId}"]`).waitFor();
  await shot(a.page, "board");

  // B stamps, with its own clock, the moment the card lands in the target column: a
  // MutationObserver in the page, not Playwright's polling nor the test runner's turn
  await b.page.evaluate(([id, stage]) => {
    const selector = `section.column[data-stage="${CSS.escape(stage)}"] article[data-deal="${CSS.escape(id)}"]`;
    window.__landed = new Promise((resolve) => {
      const observer = new MutationObserver(() => {
        if (!document.querySelector(selector)) return;
        observer.disconnect();
        resolve(Date.now());
      });
      observer.observe(document.body, { childList: true, subtree: true });
    });
  }, [dealId, target]);
  const moved = a.page.waitForResponse((r) => r.url().endsWith(`/deals/${dealId}/move`));
  await card.getByLabel(`Move to: ${title}`).selectOption({ label: target });
  const response = await moved;
  assert.equal(response.status(), 200);
  // the move's commit time: the server sets stage_entered_at in the transaction that writes
  // the deals.deal.stage_changed event (the same machine's clock as the browser's)
  const committedAt = Date.parse((await response.json()).stage_entered_at);
  await a.page.locator(`section.column[data-stage="${target}"] article[data-deal="${dealId}"]`).waitFor();
  const landedAt = await b.page.evaluate(
    () => Promise.race([window.__landed, new Promise((resolve) => setTimeout(() => resolve(null), 10_000))]),
  );
  assert.ok(landedAt !== null, "the second browser never showed the move (10 s)");
  const latency = landedAt - committedAt;
  // The target is one second; on the shared 2-core machine a loaded moment can take
  // longer, so the figure is reported and only a clear miss (no live path: 5 s) fails.
  console.log(`live update: commit to the second browser's DOM in ${latency} ms (target 1000 ms)`);
  assert.ok(latency < 5_000, `the second browser showed the move ${latency} ms after its commit`);
  await shot(b.page, "board-live");

  await a.page.locator(`article[data-deal="${dealId}"] .deal-title`).click();
  await a.page.getByTestId("deal-stage").filter({ hasText: target }).waitFor();
  await a.page.getByRole("heading", { name: "Stage history" }).waitFor();
  await shot(a.page, "deal");

  // a lost stage asks why before the move is sent
  await a.page.goto(`${BASE}/deals/`);
  const lost = a.page.locator('section.column[data-stage="Lost"]');
  const again = a.page.locator(`article[data-deal="${dealId}"]`);
  await again.getByLabel(`Move to: ${title}`).selectOption({ label: "Lost" });
  const why = a.page.getByRole("form", { name: "Why was it lost?" });
  await why.getByLabel("Why was it lost?").fill("Chose a cheaper broker");
  const lostMove = a.page.waitForResponse((r) => r.url().endsWith(`/deals/${dealId}/move`));
  await why.getByRole("button", { name: "Save" }).click();
  assert.equal((await lostMove).status(), 200);
  await lost.locator(`article[data-deal="${dealId}"]`).waitFor();
  await b.page.locator(`section.column[data-stage="Lost"] article[data-deal="${dealId}"]`).waitFor();
  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await a.context.close();
  await b.context.close();
});

test("after a network drop the board says reconnecting, then resumes without missing a move", async () => {
  const proxy = await startProxy(BASE);
  const a = await openPage();
  const b = await openPage(); // B reaches crm2 only through the proxy: its network can be cut
  try {
    await signIn(a.page);
    await signIn(b.page, proxy.url);
    await a.page.goto(`${BASE}/deals/`);
    await b.page.goto(`${proxy.url}/deals/`);
    const status = b.page.getByTestId("live-status");
    await status.filter({ hasText: "Live" }).waitFor();

    const columns = a.page.locator('[data-testid="board"] section.column');
    const card = columns.nth(1).locator("article.deal-card").first();
    await card.waitFor();
    const dealId = await card.getAttribute("data-deal");
    const target = await columns.nth(2).getAttribute("data-stage");
    await b.page.locator(`article[data-deal="${dealId}"]`).waitFor();

    proxy.cut();
    await status.filter({ hasText: "Reconnecting" }).waitFor({ timeout: 5_000 });
    await shot(b.page, "board-reconnecting");
    // this time by drag and drop onto the target column
    const moved = a.page.waitForResponse((r) => r.url().endsWith(`/deals/${dealId}/move`));
    await card.dragTo(columns.nth(2), { sourcePosition: { x: 4, y: 4 }, targetPosition: { x: 20, y: 10 } });
    assert.equal((await moved).status(), 200);
    const stale = b.page.locator(`section.column[data-stage="${target}"] article[data-deal="${dealId}"]`);
    assert.equal(await stale.count(), 0, "B cannot know of the move while cut off");

    proxy.restore();
    await status.filter({ hasText: "Live" }).waitFor({ timeout: 40_000 });
    await stale.waitFor({ timeout: 5_000 });
    assert.deepEqual(a.problems, []);
  } finally {
    await a.context.close();
    await b.context.close();
    await proxy.close();
  }
});

test("back from further than the server replays, the board reloads on the reset and shows the move it skipped", async () => {
  // test_browser.py serves with CRM2_SSE_MAX_REPLAY_EVENTS=40: B's resume after 50 more events
  // gets `reset` instead of the replay, so only a reload can show the move made meanwhile
  const proxy = await startProxy(BASE);
  const a = await openPage();
  const b = await openPage();
  try {
    await signIn(a.page);
    await signIn(b.page, proxy.url);
    await a.page.goto(`${BASE}/deals/`);
    await b.page.goto(`${proxy.url}/deals/`);
    const status = b.page.getByTestId("live-status");
    await status.filter({ hasText: "Live" }).waitFor();

    const columns = a.page.locator('[data-testid="board"] section.column');
    const card = columns.first().locator("article.deal-card").first();
    await card.waitFor();
    const dealId = await card.getAttribute("data-deal");
    const title = await card.locator(".deal-title").innerText();
    const target = await columns.nth(1).getAttribute("data-stage");
    assert.ok(dealId && target);
    await b.page.locator(`article[data-deal="${dealId}"]`).waitFor();

    proxy.cut();
    await status.filter({ hasText: "Reconnecting" }).waitFor({ timeout: 5_000 });
    const moved = a.page.waitForResponse((r) => r.url().endsWith(`/deals/${dealId}/move`));
    await card.getByLabel(`Move to: ${title}`).selectOption({ label: target });
    assert.equal((await moved).status(), 200);
    const { access_token: token } = await apiLogin(BASE, EMAIL, PASSWORD);
    const stamp = Date.now();
    for (let i = 0; i < 50; i++) {
      const response = await fetch(`${BASE}/api/v1/deals/clients`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ kind: "company", name: `Reset ${i} ${stamp}` }),
      });
      assert.ok(response.ok, `POST clients: ${response.status}`);
    }
    const shown = b.page.locator(`section.column[data-stage="${target}"] article[data-deal="${dealId}"]`);
    assert.equal(await shown.count(), 0, "B cannot know of the move while cut off");

    proxy.restore();
    await status.filter({ hasText: "Live" }).waitFor({ timeout: 40_000 });
    await shown.waitFor({ timeout: 10_000 });
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await a.context.close();
    await b.context.close();
    await proxy.close();
  }
});
