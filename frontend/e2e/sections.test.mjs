// The sections of crm2's own later plugins (payments, documents, notifications, backup), each
// shown only while its plugin is enabled: one sharp scenario per plugin, with axe-core on its
// screen. The admin signs in for backup (backup:read and backup:run are the admin's).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { BASE, EMAIL, PASSWORD, sharedBrowser } from "./browser.mjs";
import { apiLogin, signedInState } from "./session.mjs";

const require = createRequire(import.meta.url);
const ADMIN_EMAIL = process.env.CRM2_E2E_ADMIN_EMAIL ?? "";
const ADMIN_PASSWORD = process.env.CRM2_E2E_ADMIN_PASSWORD ?? "";
const SHOTS = process.env.CRM2_E2E_SHOTS ?? "";

const shared = sharedBrowser();

async function open(email, password, path) {
  const { storageState, token } = await signedInState(BASE, email, password);
  // bypassCSP only so that axe-core can be injected; console.test.mjs checks the CSP itself
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 }, storageState, bypassCSP: true });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  await page.goto(`${BASE}${path}`);
  return { context, page, problems, token };
}

async function call(method, path, token, body, headers = {}) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response;
}

async function axe(page, name) {
  await page.addScriptTag({ content: require("axe-core").source });
  const violations = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    (await axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"] } })).violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact})`),
  );
  assert.deepEqual(violations, [], `axe on ${name}`);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

test("payments: record a payment, find it, see the balances and export the list as CSV", async () => {
  const { context, page, problems } = await open(EMAIL, PASSWORD, "/");
  await page.getByRole("navigation", { name: "sections" }).getByRole("link", { name: "Payments", exact: true }).click();
  const view = page.locator('section[data-view="payments.payments"]');
  await page.getByTestId("balances").getByRole("heading", { name: "Balances" }).waitFor();

  const payer = `E2E payer ${Date.now()}`;
  await view.getByRole("button", { name: "Create" }).click();
  const create = view.getByRole("form", { name: "Create" });
  await create.locator("#field-amount").fill("123.45");
  await create.locator("#field-currency").selectOption("EUR");
  await create.locator("#field-payer").fill(payer);
  const created = page.waitForResponse((r) => r.url().endsWith("/api/v1/payments/payments") && r.request().method() === "POST");
  await create.getByRole("button", { name: "Save" }).click();
  assert.equal((await created).status(), 201);
  await view.locator("tbody tr", { hasText: payer }).waitFor();

  await view.getByLabel("Q", { exact: true }).fill(payer);
  await view.getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction(() => document.querySelectorAll('section[data-view="payments.payments"] tbody tr').length === 1);
  // the balances of what the list shows: the one payment, not every payment's (they took only
  // the policy and client filters, and summed the whole list under a text search)
  const eur = page.getByTestId("balances").locator('tr[data-currency="EUR"]');
  await eur.waitFor();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="balances"] tr[data-currency="EUR"] td')?.textContent?.includes("123.45"),
  );
  assert.equal(await page.getByTestId("balances").locator("tbody tr").count(), 1);
  const downloading = page.waitForEvent("download");
  await view.getByRole("button", { name: "Export CSV" }).click();
  const download = await downloading;
  const csv = await new Response(await download.createReadStream()).text();
  const lines = csv.trim().split(/\r?\n/);
  assert.equal(lines.length, 2, "the header and the one filtered payment");
  assert.ok(lines[1].includes(payer));
  await axe(page, "payments");
  assert.deepEqual(problems, []);
  await context.close();
});

test("documents: create a document, upload its file with progress, download it back", async () => {
  const { context, page, problems } = await open(EMAIL, PASSWORD, "/");
  await page.getByRole("navigation", { name: "sections" }).getByRole("link", { name: "Documents", exact: true }).click();
  const view = page.locator('section[data-view="documents.documents"]');
  const title = `E2E contract ${Date.now()}`;
  await view.getByRole("button", { name: "Create" }).click();
  const create = view.getByRole("form", { name: "Create" });
  await create.locator("#field-title").fill(title);
  await create.getByRole("button", { name: "Save" }).click();
  await view.getByRole("link", { name: `Open: ${title}` }).click();

  const doc = page.getByTestId("document");
  await doc.getByRole("heading", { name: title }).waitFor();
  await doc.getByText("No file yet").waitFor();
  const content = Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(300_000, "x"), Buffer.from("\n%%EOF\n")]);
  await doc.getByLabel("File").setInputFiles({ name: "contract.pdf", mimeType: "application/pdf", buffer: content });
  const uploaded = page.waitForResponse((r) => r.url().endsWith("/versions") && r.request().method() === "POST");
  await doc.getByRole("button", { name: "Upload", exact: true }).click();
  assert.equal((await uploaded).status(), 201);
  await doc.getByRole("status").filter({ hasText: "Uploaded" }).waitFor();
  assert.equal(await doc.getByTestId("upload-progress").getAttribute("value"), "100");
  await doc.locator('tr[data-version="1"]', { hasText: "contract.pdf" }).waitFor();

  const downloading = page.waitForEvent("download");
  await doc.getByRole("button", { name: "Download contract.pdf (version 1)" }).click();
  const download = await downloading;
  assert.equal(download.suggestedFilename(), "contract.pdf");
  const body = Buffer.from(await new Response(await download.createReadStream()).arrayBuffer());
  assert.ok(body.equals(content), "the downloaded file is the uploaded one");
  await axe(page, "document");
  assert.deepEqual(problems, []);
  await context.close();
});

test("notifications: the bell counts a new notification live over SSE; the feed marks it read", async () => {
  const admin = (await apiLogin(BASE, ADMIN_EMAIL, ADMIN_PASSWORD)).access_token;
  const { context, page, problems, token } = await open(EMAIL, PASSWORD, "/");
  const me = await (await call("GET", "/api/v1/auth/me", token)).json();
  const bell = page.getByTestId("bell");
  await bell.waitFor();
  await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();
  const unread = async () => Number((await bell.getAttribute("aria-label")).match(/(\d+) unread/)[1]);
  const before = await unread();

  // a rule (the admin's): every new client notifies this manager in the console
  const stamp = Date.now();
  const title = `New client ${stamp}`;
  const rule = await call("POST", "/api/v1/notifications/rules", admin, {
    name: `e2e bell ${stamp}`,
    event_type: "deals.client.created",
    template: { title, body: "created through the API" },
    recipients: { users: [me.id], record_fields: [] },
    channels: ["inapp"],
  });
  assert.equal(rule.status, 201, await rule.text());
  const client = await call("POST", "/api/v1/deals/clients", token, { kind: "person", name: `Bell ${stamp}` });
  assert.equal(client.status, 201);
  await page.waitForFunction(
    (n) => document.querySelector("[data-testid=bell]")?.getAttribute("aria-label")?.includes(`${n} unread`),
    before + 1,
    { timeout: 10_000 },
  );

  await bell.click();
  const item = page.getByTestId("feed").locator("li.unread", { hasText: title });
  await item.waitFor();
  await item.getByRole("button", { name: `Mark read: ${title}` }).click();
  await page.getByTestId("feed").locator("li.read", { hasText: title }).waitFor();
  await page.waitForFunction(
    (n) => document.querySelector("[data-testid=bell]")?.getAttribute("aria-label")?.includes(`${n} unread`),
    before,
  );
  await axe(page, "notifications");
  assert.deepEqual(problems, []);
  await context.close();
});

test("backup: the Backups link opens the admin page; Back up now shows the new set; its drill is listed", async () => {
  const { context, page, problems, token } = await open(ADMIN_EMAIL, ADMIN_PASSWORD, "/");
  // the admin's shell names six streamed sections: all of them open at once starved the
  // browser's six connections to the host, so this click (and every fetch) never went out
  await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();
  const nav = page.getByRole("navigation", { name: "sections" });
  await nav.getByRole("link", { name: "Backups", exact: true }).click();
  await page.waitForURL(`${BASE}/backup/`);
  const sets = page.locator('section[data-view="backup.sets"]');
  await page.getByTestId("backup-status").getByRole("heading", { name: "Backup status" }).waitFor();
  await sets.locator("table").waitFor();

  // 201 (written) or 202 (queued: the console polls the set until it settles)
  const posted = page.waitForResponse((r) => r.url().endsWith("/api/v1/backup/sets") && r.request().method() === "POST");
  await page.getByRole("button", { name: "Back up now" }).click();
  const answer = await posted;
  assert.ok([201, 202].includes(answer.status()), `POST /backup/sets answered ${answer.status()}`);
  const { id } = await answer.json();
  await page.getByTestId("backup-result").and(page.locator('[data-status="completed"]')).waitFor({ timeout: 60_000 });
  // the row of that set (its started_at is when it ran, not when it was queued)
  const made = await (await call("GET", `/api/v1/backup/sets/${id}`, token)).json();
  const verify = page.getByRole("button", { name: `Verify: ${made.started_at}` });
  const row = sets.locator("tbody tr", { has: verify });
  await row.filter({ hasText: "completed" }).waitFor();
  await page.getByTestId("backup-status").getByText("· completed").waitFor();

  const drilled = page.waitForResponse((r) => r.url().endsWith(`/api/v1/backup/sets/${id}/verify`));
  await row.getByRole("button", { name: `Verify: ${made.started_at}` }).click();
  // 202: the drill runs in the background; the console polls its run (Location) until done
  const accepted = await drilled;
  assert.equal(accepted.status(), 202);
  assert.match(accepted.headers()["location"] ?? "", /\/api\/v1\/backup\/runs\//);
  await axe(page, "backup");
  await nav.getByRole("link", { name: "Restore drills", exact: true }).click();
  const drill = page.locator('section[data-view="backup.drills"] tbody tr', { hasText: id });
  await drill.filter({ hasText: "true" }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("a link to a section the user may not open says why, instead of an empty list", async () => {
  const agent = process.env.CRM2_E2E_AGENT_EMAIL ?? "";
  const agentPassword = process.env.CRM2_E2E_AGENT_PASSWORD ?? "";
  // backup is the admin's; auth.users needs auth:users: an agent holds neither
  const { context, page, problems } = await open(agent, agentPassword, "/backup/");
  await page.getByTestId("section-unavailable").getByText("This section is not available").waitFor();
  assert.equal(await page.getByText("Nothing here yet").count(), 0);
  await page.goto(`${BASE}/view/?key=auth.users`);
  await page.getByTestId("section-unavailable").waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("a link to a deal, client or document while its plugin is switched off says so, not a raw error", async () => {
  const { context, page, problems } = await open(EMAIL, PASSWORD, "/");
  // what a deployment without deals and documents (CRM2_PLUGINS) answers: no views of theirs,
  // and their routes are not mounted (404)
  await context.route("**/api/v1/console/views", async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.views = body.views.filter((v) => v.plugin !== "deals" && v.plugin !== "documents");
    await route.fulfill({ response, json: body });
  });
  const gone = (route) =>
    route.fulfill({
      status: 404,
      contentType: "application/problem+json",
      json: { type: "about:blank", title: "Not Found", status: 404, detail: "Not Found" },
    });
  await context.route("**/api/v1/deals/**", gone);
  await context.route("**/api/v1/documents/**", gone);
  const id = "0b5d8a4e-6f1c-4a44-9a53-3f1f2a7c9d10";
  for (const path of [`/deal/?id=${id}`, `/client/?id=${id}`, `/document/?id=${id}`]) {
    await page.goto(`${BASE}${path}`);
    await page.getByTestId("section-unavailable").getByText("This section is not available").waitFor();
    assert.equal(await page.getByText("Not Found").count(), 0, path);
  }
  assert.deepEqual(problems, []);
  await context.close();
});
