// The console with a third-party plugin (examples/plugins/hello, added by e2e_server.py), an
// agent's view of the board, and accessibility (axe-core) on each screen.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";
import { BASE, EMAIL, PASSWORD, sharedBrowser } from "./browser.mjs";
import { signedInState } from "./session.mjs";

const require = createRequire(import.meta.url);
const AGENT_EMAIL = process.env.CRM2_E2E_AGENT_EMAIL ?? "";
const AGENT_PASSWORD = process.env.CRM2_E2E_AGENT_PASSWORD ?? "";
const TIMEOUT = 15_000;

const shared = sharedBrowser();

async function signedIn(email, password, options = {}) {
  const { storageState } = await signedInState(BASE, email, password);
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 }, storageState, ...options });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  await page.goto(`${BASE}/`);
  await page.getByRole("navigation", { name: "sections" }).getByRole("link").first().waitFor();
  return { context, page, problems };
}

async function api(method, path, { token, body, headers = {} } = {}) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      "Content-Type": "application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response;
}

test("a third-party plugin's section lists, creates and edits its records; a stale edit is refused", async () => {
  const { context, page, problems } = await signedIn(EMAIL, PASSWORD);
  const nav = page.getByRole("navigation", { name: "sections" });
  await nav.getByRole("link", { name: "Greetings", exact: true }).click();
  const view = page.locator('section[data-view="hello.greetings"]');
  await view.getByRole("heading", { name: "Greetings" }).waitFor();

  // create: the server's 422 lands on its field, then a valid one appears in the list
  await view.getByRole("button", { name: "Create" }).click();
  const create = view.getByRole("form", { name: "Create" });
  await create.getByRole("button", { name: "Save" }).click();
  await create.locator("#field-name-error").waitFor();
  assert.equal(await create.locator("#field-name").getAttribute("aria-invalid"), "true");
  const name = `Ada ${Date.now()}`;
  await create.locator("#field-name").fill(name);
  await create.getByRole("button", { name: "Save" }).click();
  const row = view.locator("tbody tr", { hasText: name });
  await row.waitFor();

  // an impatient double click on Save, over a slow network, creates one greeting, not two
  const slow = async (route) => {
    if (route.request().method() === "POST") await new Promise((resolve) => setTimeout(resolve, 800));
    await route.continue();
  };
  await page.route("**/api/v1/hello/greetings", slow);
  await view.getByRole("button", { name: "Create" }).click();
  const once = `Once ${Date.now()}`;
  await create.locator("#field-name").fill(once);
  await create.getByRole("button", { name: "Save" }).dblclick();
  await view.locator("tbody tr", { hasText: once }).first().waitFor();
  await page.unroute("**/api/v1/hello/greetings", slow);

  // edit: someone else changes the greeting between our read and our save
  await row.getByRole("button", { name }).click();
  const edit = view.getByRole("form", { name: "Edit" });
  await edit.locator("#field-message").waitFor();
  const login = await (await api("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } })).json();
  const list = await (await api("GET", "/api/v1/hello/greetings?limit=200", { token: login.access_token })).json();
  assert.equal(list.items.filter((g) => g.name === once).length, 1, "one greeting per Save");
  const greeting = list.items.find((g) => g.name === name);
  const current = await api("GET", `/api/v1/hello/greetings/${greeting.id}`, { token: login.access_token });
  const patched = await api("PATCH", `/api/v1/hello/greetings/${greeting.id}`, {
    token: login.access_token,
    body: { message: "changed elsewhere" },
    headers: { "If-Match": current.headers.get("etag") },
  });
  assert.equal(patched.status, 200);

  await edit.locator("#field-message").fill("mine");
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.getByRole("alert").filter({ hasText: "Someone else changed this record" }).waitFor();
  // the list behind the form shows the record as it now is (it kept the old message)
  await row.filter({ hasText: "changed elsewhere" }).waitFor({ timeout: 5_000 });
  await edit.getByRole("button", { name: "Reload" }).click();
  // the input shows the record as it now is, not what was typed before the 412
  await page.waitForFunction(() => document.querySelector("#field-message")?.value === "changed elsewhere");
  await edit.locator("#field-message").fill("mine");
  await edit.getByRole("button", { name: "Save" }).click();
  await view.locator("tbody tr", { hasText: name }).filter({ hasText: "mine" }).waitFor();

  // an impatient double click on the edit form's Save, over a slow network, sends one PATCH:
  // a second one would carry the ETag the first just spent and meet a 412 of our own making
  const patches = [];
  const slowPatch = async (route) => {
    if (route.request().method() === "PATCH") {
      patches.push(route.request().headers()["if-match"]);
      await new Promise((resolve) => setTimeout(resolve, 800));
    }
    await route.continue();
  };
  await page.route(`**/api/v1/hello/greetings/${greeting.id}`, slowPatch);
  await row.getByRole("button", { name }).click();
  await edit.locator("#field-message").waitFor();
  await edit.locator("#field-message").fill("twice");
  await edit.getByRole("button", { name: "Save" }).dblclick();
  await view.locator("tbody tr", { hasText: name }).filter({ hasText: "twice" }).waitFor();
  // both clicks' submits reach the route at once, so by the time the first PATCH (held 800 ms)
  // has been answered and shown, a second one would have been counted
  assert.equal(patches.length, 1, "one PATCH per Save (a second would be a 412)");
  await page.unroute(`**/api/v1/hello/greetings/${greeting.id}`, slowPatch);
  assert.deepEqual(problems, []);
  await context.close();
});

test("an edit form kept open while the record changes elsewhere still gets the 412 (the live refresh does not swap its ETag)", async () => {
  const { context, page, problems } = await signedIn(EMAIL, PASSWORD);
  const login = await (await api("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } })).json();
  const token = login.access_token;
  const name = `Live edit ${Date.now()}`;
  const client = await (await api("POST", "/api/v1/deals/clients", { token, body: { kind: "company", name } })).json();
  await page.goto(`${BASE}/clients/`);
  const view = page.locator('section[data-view="deals.clients"]');
  const filters = view.getByRole("form", { name: "Filter" });
  await filters.locator('input[name="q"]').fill(name);
  await filters.getByRole("button", { name: "Filter" }).click();
  await view.locator("tbody tr", { hasText: name }).getByRole("button", { name }).click();
  const edit = view.getByRole("form", { name: "Edit" });
  await edit.locator("#field-name").waitFor();
  await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();

  // someone else renames it; the deals stream tells this page, which refetches the record
  const current = await api("GET", `/api/v1/deals/clients/${client.id}`, { token });
  const refetched = page.waitForResponse((r) => r.url().endsWith(`/api/v1/deals/clients/${client.id}`) && r.request().method() === "GET");
  const patched = await api("PATCH", `/api/v1/deals/clients/${client.id}`, {
    token, body: { name: `${name} (theirs)` }, headers: { "If-Match": current.headers.get("etag") },
  });  // prettier-ignore
  assert.equal(patched.status, 200);
  await refetched;

  await edit.locator("#field-name").fill(`${name} (mine)`);
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.getByRole("alert").filter({ hasText: "Someone else changed this record" }).waitFor();
  const stored = await (await api("GET", `/api/v1/deals/clients/${client.id}`, { token })).json();
  assert.equal(stored.name, `${name} (theirs)`, "their change is not overwritten unseen");
  assert.deepEqual(problems, []);
  await context.close();
});

test("an edit form opened again after the record changed shows it as it now is, not as first cached", async () => {
  const { context, page, problems } = await signedIn(EMAIL, PASSWORD);
  const login = await (await api("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } })).json();
  const token = login.access_token;
  const name = `Reopened ${Date.now()}`;
  const client = await (await api("POST", "/api/v1/deals/clients", { token, body: { kind: "company", name } })).json();
  await page.goto(`${BASE}/clients/`);
  const view = page.locator('section[data-view="deals.clients"]');
  const filters = view.getByRole("form", { name: "Filter" });
  await filters.locator('input[name="q"]').fill(name);
  await filters.getByRole("button", { name: "Filter" }).click();
  await view.locator("tbody tr", { hasText: name }).getByRole("button", { name }).click();
  const edit = view.getByRole("form", { name: "Edit" });
  await edit.locator("#field-name").waitFor();
  await edit.getByRole("button", { name: "Cancel" }).click();
  await page.getByTestId("live-status").filter({ hasText: "Live" }).waitFor();

  // someone else renames it while the form is closed; the list shows the new name
  const current = await api("GET", `/api/v1/deals/clients/${client.id}`, { token });
  const patched = await api("PATCH", `/api/v1/deals/clients/${client.id}`, {
    token, body: { name: `${name} (theirs)` }, headers: { "If-Match": current.headers.get("etag") },
  });  // prettier-ignore
  assert.equal(patched.status, 200);
  const renamed = view.locator("tbody tr").getByRole("button", { name: `${name} (theirs)` });
  await renamed.waitFor();

  // opened again, the form holds the record as it now is: saving over it is no 412
  await renamed.click();
  await page.waitForFunction((expected) => document.querySelector("#field-name")?.value === expected, `${name} (theirs)`);
  await edit.locator("#field-name").fill(`${name} (mine)`);
  await edit.getByRole("button", { name: "Save" }).click();
  await view.locator("tbody tr").getByRole("button", { name: `${name} (mine)` }).waitFor();
  const stored = await (await api("GET", `/api/v1/deals/clients/${client.id}`, { token })).json();
  assert.equal(stored.name, `${name} (mine)`);
  assert.deepEqual(problems, []);
  await context.close();
});

test("an agent's board holds only their own deals", async () => {
  const { context, page } = await signedIn(AGENT_EMAIL, AGENT_PASSWORD);
  const token = (await (await api("POST", "/api/v1/auth/login", {
    body: { email: AGENT_EMAIL, password: AGENT_PASSWORD },
  })).json()).access_token;
  const me = await (await api("GET", "/api/v1/auth/me", { token })).json();
  const mine = await (await api("POST", "/api/v1/deals/clients", {
    token, body: { kind: "person", name: "Agent's own client" },
  })).json();
  const created = await api("POST", "/api/v1/deals/deals", {
    token, body: { title: "Agent's own deal", client_id: mine.id, value: "100.00" },
  });
  assert.equal(created.status, 201);

  await page.goto(`${BASE}/deals/`);
  await page.locator("article.deal-card", { hasText: "Agent's own deal" }).waitFor();
  // the demo holds 200 deals of other owners on this board's pipelines: none may show
  const pipelines = page.getByLabel("Pipeline");
  const values = await pipelines.locator("option").evaluateAll((os) => os.map((o) => o.value));
  assert.ok(values.length >= 2, "the demo has two pipelines");
  let cards = 0;
  for (const [index, value] of values.entries()) {
    if (index > 0) {
      const loaded = page.waitForResponse((r) => r.url().includes(`pipeline=${value}`) && r.ok());
      await pipelines.selectOption(value);
      await loaded;
    }
    await page.locator('[data-testid="board"] section.column').first().waitFor();
    const owners = await page.locator("article.deal-card").evaluateAll((els) =>
      els.map((el) => el.getAttribute("data-owner")),
    );
    cards += owners.length;
    assert.deepEqual(owners.filter((owner) => owner !== me.id), [], `pipeline ${value}`);
  }
  assert.equal(cards, 1, "the agent's one deal, and nothing of the demo's 200");
  await context.close();
});

test("a board larger than the console loads says so, and its filters narrow it", async () => {
  const { context, page, problems } = await signedIn(EMAIL, PASSWORD);
  // a pipeline of more deals than the board's 2,000: every unfiltered page says there is more
  // (the demo's 200 deals are too few to reach the cap for real)
  const pages = [];
  await page.route("**/api/v1/deals/deals?*", async (route) => {
    const url = new URL(route.request().url());
    if (url.searchParams.has("q")) return route.continue();
    pages.push(url.searchParams.get("cursor"));
    if (url.searchParams.get("cursor")?.startsWith("e2e-more")) {
      return route.fulfill({ json: { items: [], next_cursor: `e2e-more-${pages.length}` } });
    }
    const response = await route.fetch();
    const body = await response.json();
    await route.fulfill({ response, json: { ...body, next_cursor: "e2e-more-0" } });
  });
  await page.goto(`${BASE}/deals/`);
  const notice = page.getByTestId("board-truncated");
  await notice.filter({ hasText: "this pipeline holds more" }).waitFor();
  assert.equal(pages.length, 10, "the board stops at its cap instead of loading everything");
  const title = await page.locator("article.deal-card .deal-title").first().textContent();

  const filters = page.getByRole("form", { name: "Filter" });
  await filters.getByLabel("Title contains").fill(title);
  await filters.getByRole("button", { name: "Filter" }).click();
  await page.locator("article.deal-card", { hasText: title }).first().waitFor();
  await notice.waitFor({ state: "detached" });
  assert.deepEqual(problems, []);
  await context.close();
});

async function firstClientPath() {
  const token = (await (await api("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } })).json())
    .access_token;
  const clients = await (await api("GET", "/api/v1/deals/clients?limit=1", { token })).json();
  return `/client/?id=${clients.items[0].id}`;
}

test("no serious or critical accessibility violations on any screen (axe-core)", async () => {
  // axe is injected as a script: this one context lets it past the page's CSP
  const { context, page } = await signedIn(EMAIL, PASSWORD, { bypassCSP: true });
  const axeSource = require("axe-core").source;
  const screens = [
    ["home", "/", ".tiles .tile"],
    ["board", "/deals/", "article.deal-card"],
    ["clients", "/clients/", "tbody tr"],
    ["client timeline", await firstClientPath(), "[data-testid=timeline] li"],
    ["clients csv", "/clients/csv/", "[data-testid=import]"],
    ["greetings", "/view/?key=hello.greetings", "h1"],
    ["profile", "/profile/", "dl.props"],
  ];
  const found = [];
  for (const [name, path, ready] of screens) {
    const started = Date.now();
    await page.goto(`${BASE}${path}`);
    await page.locator(ready).first().waitFor();
    const loaded = Date.now();
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      (await axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"] } })).violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        nodes: v.nodes.length,
      })),
    );
    const took = `${loaded - started} ms to load, ${Date.now() - loaded} ms axe`;
    console.log(`axe ${name}: ${result.map((v) => `${v.id} (${v.impact})`).join(", ") || "no violations"} (${took})`);
    for (const v of result) if (v.impact === "serious" || v.impact === "critical") found.push({ screen: name, ...v });
  }
  const signin = await shared.browser.newContext({ bypassCSP: true });
  const login = await signin.newPage();
  await login.goto(`${BASE}/login/`);
  await login.getByLabel("E-mail").waitFor();
  await login.addScriptTag({ content: axeSource });
  const loginViolations = await login.evaluate(async () =>
    // eslint-disable-next-line no-undef
    (await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"] } })).violations.map((v) => ({ id: v.id, impact: v.impact })),
  );
  for (const v of loginViolations) if (v.impact === "serious" || v.impact === "critical") found.push({ screen: "signin", ...v });
  assert.deepEqual(found, []);
  await signin.close();
  await context.close();
});

test("an overdue task is completed from the Overdue list", async () => {
  const { context, page, problems } = await signedIn(EMAIL, PASSWORD);
  const token = (await (await api("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } })).json())
    .access_token;
  const title = `Call back ${Date.now()}`;
  const created = await api("POST", "/api/v1/tasks/tasks", {
    token,
    body: { title, due_at: new Date(Date.now() - 86_400_000).toISOString() },
  });
  assert.equal(created.status, 201);

  await page.getByRole("navigation", { name: "sections" }).getByRole("link", { name: "Overdue", exact: true }).click();
  const view = page.locator('section[data-view="tasks.overdue"]');
  const row = view.locator("tbody tr", { hasText: title });
  await row.waitFor();
  const done = page.waitForResponse((r) => r.url().endsWith("/complete") && r.request().method() === "POST");
  await row.getByRole("button", { name: `Complete: ${title}` }).click();
  assert.equal((await done).status(), 200);
  await row.waitFor({ state: "detached" });
  const task = await (await api("GET", `/api/v1/tasks/tasks/${(await created.json()).id}`, { token })).json();
  assert.equal(task.status, "done");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a double click on a row's action sends it once (Complete, not Complete and a 409)", async () => {
  const { context, page, problems } = await signedIn(EMAIL, PASSWORD);
  const token = (await (await api("POST", "/api/v1/auth/login", { body: { email: EMAIL, password: PASSWORD } })).json())
    .access_token;
  const title = `Double click ${Date.now()}`;
  const created = await api("POST", "/api/v1/tasks/tasks", {
    token,
    body: { title, due_at: new Date(Date.now() - 86_400_000).toISOString() },
  });
  assert.equal(created.status, 201);
  const sent = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/complete") && r.method() === "POST") sent.push(r.url());
  });
  await page.getByRole("navigation", { name: "sections" }).getByRole("link", { name: "Overdue", exact: true }).click();
  const view = page.locator('section[data-view="tasks.overdue"]');
  const row = view.locator("tbody tr", { hasText: title });
  await row.waitFor();
  await row.getByRole("button", { name: `Complete: ${title}` }).dblclick();
  await row.waitFor({ state: "detached" });
  assert.equal(sent.length, 1);
  assert.equal(await view.getByRole("alert").count(), 0, "no error shown");
  assert.deepEqual(problems, []);
  await context.close();
});
