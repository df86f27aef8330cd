// Empty and error states a user meets off the happy path: a record's screen opened without
// the record's id, and the console's sections unreadable for a moment (the server down).
// Each once said "Loading…" for good.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BASE, EMAIL, PASSWORD, sharedBrowser } from "./browser.mjs";
import { signedInState } from "./session.mjs";

const shared = sharedBrowser();

const AGENT_EMAIL = process.env.CRM2_E2E_AGENT_EMAIL ?? "";
const AGENT_PASSWORD = process.env.CRM2_E2E_AGENT_PASSWORD ?? "";

async function open(path, email = EMAIL, password = PASSWORD) {
  const { storageState } = await signedInState(BASE, email, password);
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 }, storageState });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  if (path) await page.goto(`${BASE}${path}`);
  return { context, page, problems };
}

test("a deal, client or document screen opened without ?id= says so and leads back, not Loading… for good", async () => {
  const { context, page, problems } = await open("");
  for (const [path, back] of [
    ["/deal/", "Back to the board"],
    ["/client/", "Back to clients"],
    ["/document/", "Back to documents"],
  ]) {
    await page.goto(`${BASE}${path}`);
    const missing = page.getByTestId("record-missing");
    await missing.getByRole("alert").waitFor();
    await missing.getByRole("link", { name: back }).waitFor();
    assert.equal(await page.getByText("Loading…").count(), 0, path);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test("when the sections cannot be read, a section's screen shows the error and Try again recovers", async () => {
  const { context, page, problems } = await open("");
  let down = true;
  await context.route("**/api/v1/console/views", (route) =>
    down
      ? route.fulfill({
          status: 503,
          contentType: "application/problem+json",
          body: JSON.stringify({ status: 503, title: "Service Unavailable", detail: "crm2 is restarting" }),
        })
      : route.continue(),
  );
  for (const path of ["/", "/deals/", "/view/?key=deals.activities", "/notifications/", "/deal/?id=00000000-0000-0000-0000-000000000000"]) {
    await page.goto(`${BASE}${path}`);
    // one retry after 1 s for a 5xx, then the error (not "Loading…" for good)
    await page.getByTestId("pending-error").getByText("crm2 is restarting").waitFor();
  }
  down = false;
  await page.goto(`${BASE}/deals/`);
  await page.getByTestId("board").waitFor();
  // and Try again itself reads the sections once more
  down = true;
  await page.goto(`${BASE}/notifications/`);
  const failed = page.getByTestId("pending-error");
  await failed.getByText("crm2 is restarting").waitFor();
  down = false;
  await failed.getByRole("button", { name: "Try again" }).click();
  await page.getByTestId("feed").waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("a record that does not exist says so, without a Try again that could not help", async () => {
  const { context, page, problems } = await open("/client/?id=00000000-0000-0000-0000-000000000000");
  const failed = page.getByTestId("pending-error");
  await failed.getByRole("alert").waitFor();
  assert.equal(await failed.getByRole("button", { name: "Try again" }).count(), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a bad or unknown id reads as a broken link or a missing record, and nothing more is asked", async () => {
  const { context, page, problems } = await open("");
  const asked = [];
  page.on("request", (request) => asked.push(new URL(request.url()).pathname + new URL(request.url()).search));
  for (const [path, said, back] of [
    ["/deal/?id=nope", "This link is broken", "Back to the board"],
    ["/deal/?id=00000000-0000-0000-0000-000000000000", "This record was not found", "Back to the board"],
    ["/client/?id=nope", "This link is broken", "Back to clients"],
    ["/client/?id=00000000-0000-0000-0000-000000000000", "This record was not found", "Back to clients"],
  ]) {
    asked.length = 0;
    await page.goto(`${BASE}${path}`);
    const failed = page.getByTestId("pending-error");
    await failed.getByRole("alert").getByText(said).waitFor();
    await failed.getByRole("link", { name: back }).waitFor();
    assert.doesNotMatch(await failed.innerText(), /UUID|path\./, path);
    await page.waitForTimeout(300);
    const parts = asked.filter((p) => /\/(history|activities|contacts|timeline)|[?&](deal|client)=/.test(p));
    assert.deepEqual(parts, [], path);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test("the sign-in page, opened while signed in, goes home instead of asking to sign in again", async () => {
  const { context, page, problems } = await open("/login/");
  await page.waitForURL(`${BASE}/`);
  assert.equal(await page.getByRole("button", { name: "Sign in" }).count(), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a section the role lacks (an agent on /backup/) sends no request the server refuses", async () => {
  const { context, page, problems } = await open("", AGENT_EMAIL, AGENT_PASSWORD);
  const refused = [];
  page.on("response", (response) => {
    if (response.status() === 403) refused.push(new URL(response.url()).pathname);
  });
  await page.goto(`${BASE}/backup/`);
  await page.getByTestId("section-unavailable").waitFor();
  await page.waitForTimeout(500);
  assert.deepEqual(refused, []);
  assert.deepEqual(problems, []);
  await context.close();
});

test("pages name the console's own icon, so the browser does not ask for a missing /favicon.ico", async () => {
  const { context, page, problems } = await open("/login/");
  const href = await page.locator('link[rel="icon"]').first().getAttribute("href");
  assert.ok(href, "a <link rel=icon>");
  const answer = await page.request.get(new URL(href, BASE).toString());
  assert.equal(answer.status(), 200);
  assert.match(answer.headers()["content-type"] ?? "", /^image\//);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the CSV import page says it is not available to a role without deals:import", async () => {
  const { context, page, problems } = await open("/clients/csv/", AGENT_EMAIL, AGENT_PASSWORD);
  await page.getByTestId("section-unavailable").waitFor();
  assert.equal(await page.getByRole("heading", { name: "Import clients from CSV" }).count(), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the sign-in form is not in the static /login/ page, so a signed-in user never sees it flash", async () => {
  const { context, page, problems } = await open("");
  // before hydration the page cannot know whether this browser is signed in
  const html = await (await page.request.get(`${BASE}/login/`)).text();
  assert.doesNotMatch(html, /type="password"/);
  await page.addInitScript(() => {
    window.__sawSignIn = false;
    new MutationObserver(() => {
      if (document.querySelector('input[type="password"]')) window.__sawSignIn = true;
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(`${BASE}/login/`);
  await page.waitForURL(`${BASE}/`);
  assert.equal(await page.evaluate(() => window.__sawSignIn), false);
  // signed out, the form is there once the page knows
  const out = await shared.browser.newContext();
  const signedOut = await out.newPage();
  await signedOut.goto(`${BASE}/login/`);
  await signedOut.getByLabel("Password").waitFor();
  await out.close();
  assert.deepEqual(problems, []);
  await context.close();
});

test("Escape cancels the lost-reason form, and no move is sent", async () => {
  const { context, page, problems } = await open("/deals/");
  const moves = [];
  page.on("request", (request) => {
    if (request.url().endsWith("/move")) moves.push(request.url());
  });
  const card = page.locator('[data-testid="board"] article.deal-card').first();
  await card.waitFor();
  const title = await card.locator(".deal-title").innerText();
  await card.getByLabel(`Move to: ${title}`).selectOption({ label: "Lost" });
  const why = page.getByRole("form", { name: "Why was it lost?" });
  await why.getByLabel("Why was it lost?").fill("half typed");
  await page.keyboard.press("Escape");
  await why.waitFor({ state: "detached" });
  assert.deepEqual(moves, []);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a deal with an empty stage history says there is nothing there", async () => {
  const { context, page, problems } = await open("/deals/");
  const card = page.locator('[data-testid="board"] article.deal-card').first();
  await card.waitFor();
  const dealId = await card.getAttribute("data-deal");
  await context.route(`**/api/v1/deals/deals/${dealId}/history*`, (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ items: [], next_cursor: null }) }),
  );
  await page.goto(`${BASE}/deal/?id=${dealId}`);
  await page.getByTestId("stage-history").getByText("Nothing here yet").waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("Upload with no file chosen says to choose one, instead of doing nothing", async () => {
  const { context, page, problems } = await open("");
  const id = "00000000-0000-4000-8000-0000000000d0";
  await context.route(`**/api/v1/documents/documents/${id}`, (route) =>
    route.fulfill({
      status: 200,
      contentType: "application/json",
      body: JSON.stringify({
        id,
        title: "Contract",
        kind: "contract",
        tags: [],
        updated_at: "2026-01-01T00:00:00Z",
        created_at: "2026-01-01T00:00:00Z",
        version: 1,
      }),
    }),
  );
  await context.route(`**/api/v1/documents/documents/${id}/versions*`, (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ items: [], next_cursor: null }) }),
  );
  const uploads = [];
  page.on("request", (request) => {
    if (request.method() === "POST" && request.url().includes("/versions")) uploads.push(request.url());
  });
  await page.goto(`${BASE}/document/?id=${id}`);
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.getByRole("alert").getByText("Choose a file").waitFor();
  assert.deepEqual(uploads, []);
  assert.deepEqual(problems, []);
  await context.close();
});

test("two submits of the sign-in form in one frame (Enter pressed twice) send one login", async () => {
  const context = await shared.browser.newContext();
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const logins = [];
  page.on("request", (request) => {
    if (request.method() === "POST" && new URL(request.url()).pathname === "/api/v1/auth/login") logins.push(request.url());
  });
  await page.goto(`${BASE}/login/`);
  await page.getByLabel("E-mail").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.evaluate(() => {
    const form = document.querySelector("form");
    form.requestSubmit();
    form.requestSubmit();
  });
  await page.waitForURL(`${BASE}/`);
  await page.waitForTimeout(300);
  assert.equal(logins.length, 1);
  await context.close();
});

test("a double click on the payments' Export CSV downloads once", async () => {
  const { context, page, problems } = await open("/payments/");
  const exports = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.endsWith("/export.csv")) exports.push(request.url());
  });
  await page.getByRole("button", { name: "Export CSV" }).dblclick();
  await page.waitForTimeout(1500);
  assert.equal(exports.length, 1);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the header's profile link is named by the user's name it shows, not only 'Profile'", async () => {
  const { context, page, problems } = await open("/profile/");
  const who = page.locator("header .who");
  await page.waitForFunction(() => {
    const shown = document.querySelector("header .who")?.firstChild?.textContent ?? "";
    return shown !== "" && shown !== "Profile";
  });
  const shown = await who.evaluate((link) => link.firstChild.textContent);
  await page.getByRole("banner").getByRole("link", { name: shown }).waitFor({ timeout: 2_000 });
  assert.deepEqual(problems, []);
  await context.close();
});
