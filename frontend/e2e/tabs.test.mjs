// Four tabs of one signed-in browser (one profile: one pool of six HTTP/1.1 connections to the
// host). Each tab streaming on its own held eight connections and every REST call hung; the
// tabs now share one leader's streams (src/lib/tabs.ts). Checked here: one tab holds the
// streams, REST answers in every tab, a move reaches every tab, and when the leader's
// tab closes another takes over and the next move still reaches every remaining tab; a
// sign-out in one tab signs them all out and closes the streams.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BASE, EMAIL, PASSWORD, sharedBrowser } from "./browser.mjs";
import { signedInState } from "./session.mjs";

const TIMEOUT = 10_000;

const shared = sharedBrowser();

/**
 * Counts the page's open SSE streams (window.__sseOpen), so the test sees who holds them: the
 * console reads each with fetch, open from its 200 answer until it is aborted or ends.
 */
function countStreams() {
  const native = window.fetch.bind(window);
  window.__sseOpen = 0;
  window.fetch = async (input, init) => {
    // read without making a Request of it: that would use up the body of a POST's
    const given = input instanceof Request ? input : null;
    const method = (init?.method ?? given?.method ?? "GET").toUpperCase();
    const path = new URL(given ? given.url : String(input), window.location.href).pathname;
    if (method !== "GET" || !/^\/api\/v1\/streams\/[^/]+$/.test(path)) return native(input, init);
    const signal = init?.signal ?? given?.signal ?? null;
    const response = await native(input, init);
    if (!response.ok || !response.body) return response;
    window.__sseOpen += 1;
    let open = true;
    const closed = () => {
      if (open) window.__sseOpen -= 1;
      open = false;
    };
    signal?.addEventListener("abort", closed);
    const body = response.body.pipeThrough(new TransformStream({ flush: closed }));
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** A REST call from inside the tab, given up after 5 s: a starved connection pool never answers. */
async function restStatus(page, token) {
  return page.evaluate(async (bearer) => {
    const answer = fetch("/api/v1/auth/me", { headers: { Authorization: `Bearer ${bearer}` } }).then((r) => r.status);
    const hung = new Promise((resolve) => setTimeout(() => resolve("no answer in 5 s"), 5_000));
    return Promise.race([answer, hung]);
  }, token);
}

const openSources = (pages) => Promise.all(pages.map((page) => page.evaluate(() => window.__sseOpen)));

async function moveAndSee(mover, watchers, columnIndex) {
  const columns = mover.locator('[data-testid="board"] section.column');
  const card = columns.first().locator("article.deal-card").first();
  await card.waitFor();
  const dealId = await card.getAttribute("data-deal");
  const title = await card.locator(".deal-title").innerText();
  const target = await columns.nth(columnIndex).getAttribute("data-stage");
  const moved = mover.waitForResponse((r) => r.url().endsWith(`/deals/${dealId}/move`));
  await card.getByLabel(`Move to: ${title}`).selectOption({ label: target });
  assert.equal((await moved).status(), 200);
  const landed = `section.column[data-stage="${target}"] article[data-deal="${dealId}"]`;
  await Promise.all(watchers.map((page) => page.locator(landed).waitFor({ timeout: TIMEOUT })));
}

test("four tabs share one set of streams: REST answers and events arrive in each, also after the leader closes", async () => {
  const { storageState, token } = await signedInState(BASE, EMAIL, PASSWORD);
  const context = await shared.browser.newContext({ viewport: { width: 1200, height: 800 }, storageState });
  context.setDefaultTimeout(TIMEOUT);
  await context.addInitScript(countStreams);
  const problems = [];
  const pages = [];
  try {
    for (let i = 0; i < 4; i++) {
      const page = await context.newPage();
      page.on("pageerror", (error) => problems.push(`tab ${i}: ${error.message}`));
      await page.goto(`${BASE}/deals/`);
      await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();
      await page.locator('[data-testid="board"] article.deal-card').first().waitFor();
      pages.push(page);
    }
    const counts = await openSources(pages);
    const holders = counts.filter((n) => n > 0);
    assert.equal(holders.length, 1, `one tab holds the streams, not ${JSON.stringify(counts)}`);
    assert.ok(holders[0] <= 3, `the leader opens one stream per channel on screen: ${JSON.stringify(counts)}`);
    for (const page of pages) assert.equal(await restStatus(page, token), 200);

    // a move made in one tab reaches the other three through the leader's relay
    await moveAndSee(pages[3], pages.slice(0, 3), 1);

    // the leader's tab closes: the next tab takes over and resumes its streams
    const leader = counts.findIndex((n) => n > 0);
    await pages[leader].close();
    const rest = pages.filter((_, i) => i !== leader);
    const deadline = Date.now() + TIMEOUT;
    let after = await openSources(rest);
    while (after.filter((n) => n > 0).length !== 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await openSources(rest);
    }
    assert.equal(after.filter((n) => n > 0).length, 1, `one remaining tab took the streams over: ${JSON.stringify(after)}`);
    for (const page of rest) {
      await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();
      assert.equal(await restStatus(page, token), 200);
    }
    await moveAndSee(rest[0], rest.slice(1), 2);

    // signing out in one tab signs every tab out and closes every stream
    await rest[1].getByRole("button", { name: "Sign out" }).click();
    await Promise.all(rest.map((page) => page.waitForURL(`${BASE}/login/`)));
    const signedOut = Date.now() + TIMEOUT;
    let open = await openSources(rest);
    while (open.some((n) => n > 0) && Date.now() < signedOut) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      open = await openSources(rest);
    }
    assert.deepEqual(open, [0, 0, 0], "no tab streams after the sign-out");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
